"""Local clustering tasks that are *not* MTEB tasks: Banking77 intents and Emotion labels as clusters.

Scored by mteb's ``AbsTaskClustering``: every test text is embedded, then ``n_clusters=10`` times a
bootstrap sample of 2,048 texts is clustered with mini-batch k-means (k = number of labels present);
the main score is the mean V-measure against the gold labels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict
from mteb.abstasks.clustering import AbsTaskClustering

from harness.files import read_banking77, read_banking77_categories, read_emotion
from harness.tasks._local import LocalTask, local_metadata

_COMMON: dict[str, Any] = dict(
    type="Clustering",
    category="t2c",
    modalities=["text"],
    eval_splits=["test"],
    eval_langs=["eng-Latn"],
    main_score="v_measure",
    annotations_creators="human-annotated",
    dialect=[],
    sample_creation="found",
    bibtex_citation="",
)


class LocalLabelClustering(LocalTask, AbsTaskClustering):
    """Base: ``read`` returns ``{"test": Dataset(sentences, labels)}``."""

    max_fraction_of_documents_to_embed = None  # embed the whole test split
    max_document_to_embed = None
    max_documents_per_cluster = 2048
    n_clusters = 10

    def split_texts(self, split: str) -> set[str]:
        return set(self.dataset[split]["sentences"])


class LocalBanking77Clustering(LocalLabelClustering):
    """Banking77 test queries clustered into their 77 intents."""

    files = ("banking77/test.csv", "banking77/categories.json")
    metadata = local_metadata(
        name="local:Banking77Clustering",
        files=files,
        description="Not an MTEB task. Banking77 test queries (3,080) clustered by intent (77 labels).",
        reference="https://arxiv.org/abs/2003.04807",
        date=("2019-01-01", "2019-12-31"),
        domains=["Written"],
        task_subtypes=["Thematic clustering"],
        license="cc-by-4.0",
        **_COMMON,
    )

    def read(self, data_dir: Path) -> DatasetDict:
        rows = read_banking77(data_dir / "banking77/test.csv")
        names = read_banking77_categories(data_dir / "banking77/categories.json")
        ids = {name: i for i, name in enumerate(names)}
        return DatasetDict(
            {
                "test": Dataset.from_dict(
                    {"sentences": [r["text"] for r in rows], "labels": [ids[r["label"]] for r in rows]}
                )
            }
        )


class LocalEmotionClustering(LocalLabelClustering):
    """Emotion test tweets clustered into their 6 emotions."""

    files = ("emotion/test.txt",)
    metadata = local_metadata(
        name="local:EmotionClustering",
        files=files,
        description="Not an MTEB task. Emotion test tweets (2,000) clustered by emotion (6 labels).",
        reference="https://www.aclweb.org/anthology/D18-1404",
        date=("2017-01-01", "2018-12-31"),
        domains=["Social", "Written"],
        task_subtypes=["Emotion Clustering"],
        license="not specified",
        **_COMMON,
    )

    def read(self, data_dir: Path) -> DatasetDict:
        rows = read_emotion(data_dir / "emotion/test.txt")
        return DatasetDict(
            {
                "test": Dataset.from_dict(
                    {"sentences": [r["text"] for r in rows], "labels": [r["label"] for r in rows]}
                )
            }
        )


CLUSTERING_TASKS = [LocalBanking77Clustering, LocalEmotionClustering]
