"""Local pair-classification tasks that are *not* MTEB tasks: PIT-2015 and MSRP paraphrase detection.

Scored by mteb's ``AbsTaskPairClassification`` (main score: ``max_ap``, the best average precision of
the pair similarity over cosine, dot, Euclidean and Manhattan). MTEB's TwitterSemEval2015 uses 16,777
pairs; ``local:PIT2015`` is the official 972-pair PIT test set, so its scores are not comparable.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from datasets import Dataset, DatasetDict
from mteb.abstasks.pair_classification import AbsTaskPairClassification

from harness.files import Row, read_msrp, read_pit2015
from harness.tasks._local import LocalTask, Role, local_metadata


def _pairs(rows: list[Row]) -> Dataset:
    """The labelled pairs of ``rows`` in file order; debatable pairs (``label=None``) are dropped."""
    kept = [r for r in rows if r["label"] is not None]
    return Dataset.from_dict(
        {
            "sentence1": [r["sentence1"] for r in kept],
            "sentence2": [r["sentence2"] for r in kept],
            "labels": [r["label"] for r in kept],
        }
    )


class LocalPairClassification(LocalTask, AbsTaskPairClassification):
    """Base: ``read`` returns ``{split: Dataset(sentence1, sentence2, labels)}`` with 0/1 labels."""

    def split_texts(self, split: str) -> set[str]:
        data = self.dataset[split]
        return set(data["sentence1"]) | set(data["sentence2"])


class LocalPIT2015(LocalPairClassification):
    """PIT-2015 tweet paraphrases: test (972 pairs, 838 after dropping debatable) and dev as 'validation'."""

    files = ("pit2015/test.data", "pit2015/test.label", "pit2015/dev.data")
    splits_read: ClassVar[dict[str, Role]] = {"validation": "test", "test": "test"}
    metadata = local_metadata(
        name="local:PIT2015",
        files=files,
        description=(
            "Not an MTEB task. SemEval-2015 Task 1 (PIT) paraphrase identification in tweets: the official "
            "test set (expert labels) and dev set (crowd labels, 3+ of 5 = paraphrase), debatable pairs dropped."
        ),
        reference="https://aclanthology.org/S15-2001/",
        type="PairClassification",
        category="t2t",
        modalities=["text"],
        eval_splits=["test"],
        eval_langs=["eng-Latn"],
        main_score="max_ap",
        date=("2014-04-01", "2015-06-01"),
        domains=["Social", "Written"],
        task_subtypes=[],
        license="not specified",
        annotations_creators="human-annotated",
        dialect=[],
        sample_creation="found",
        bibtex_citation="",
    )

    def read(self, data_dir: Path) -> DatasetDict:
        test = read_pit2015(data_dir / "pit2015/test.data", data_dir / "pit2015/test.label")
        dev = read_pit2015(data_dir / "pit2015/dev.data")
        return DatasetDict({"validation": _pairs(dev), "test": _pairs(test)})


class LocalMSRP(LocalPairClassification):
    """Microsoft Research Paraphrase Corpus test set (1,725 news sentence pairs)."""

    files = ("msr-paraphrase/msr-para-test.tsv",)
    metadata = local_metadata(
        name="local:MSRP",
        files=files,
        description="Not an MTEB task. Microsoft Research Paraphrase Corpus, test split (1,725 pairs).",
        reference="https://aclanthology.org/I05-5002/",
        type="PairClassification",
        category="t2t",
        modalities=["text"],
        eval_splits=["test"],
        eval_langs=["eng-Latn"],
        main_score="max_ap",
        date=("2004-01-01", "2005-12-31"),
        domains=["News", "Written"],
        task_subtypes=[],
        license="msr-la-nc",
        annotations_creators="human-annotated",
        dialect=[],
        sample_creation="found",
        bibtex_citation="",
    )

    def read(self, data_dir: Path) -> DatasetDict:
        return DatasetDict({"test": _pairs(read_msrp(data_dir / self.files[0]))})


PAIR_CLASSIFICATION_TASKS = [LocalPIT2015, LocalMSRP]
