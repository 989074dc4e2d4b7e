"""Local classification tasks: Banking77, Emotion, AmazonCounterfactual (en).

Scored by mteb's ``AbsTaskClassification`` with each hub task's own settings: a logistic-regression
probe (``max_iter=100``, ``random_state=seed``) fitted on ``samples_per_label`` training rows per label
(8, 16 and 32 here), drawn by mteb's seeded shuffle of the *train* split, over ``n_experiments=10``
experiments; the main score is the mean test accuracy. The train split is read in file order (which
is the hub's order), so the same rows are drawn as on the hub.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from datasets import Dataset, DatasetDict
from mteb.abstasks.classification import AbsTaskClassification
from mteb.tasks import (
    AmazonCounterfactualClassification,
    Banking77Classification,
    EmotionClassification,
)

from harness.files import (
    EMOTION_LABELS,
    Row,
    read_amazon_counterfactual,
    read_banking77,
    read_banking77_categories,
    read_emotion,
)
from harness.tasks._local import LocalTask, Role, local_metadata

# Emotion's integer labels on the hub (checked against MTEB's per-label counts, MANIFEST.md).
EMOTION_IDS = {name: i for i, name in enumerate(EMOTION_LABELS)}


def _split(rows: list[Row], ids: dict[str, int] | None = None) -> Dataset:
    """``Dataset(text, label)`` in file order; ``ids`` maps label names to the integer labels."""
    labels = [r["label"] if ids is None else ids[r["label"]] for r in rows]
    return Dataset.from_dict({"text": [r["text"] for r in rows], "label": labels})


class ListLabels:
    """A ``Dataset`` whose label column reads as a list, for mteb's probe.

    Since datasets 4, ``dataset["label"]`` is a lazy ``Column`` that formats one row per index, so
    mteb's per-experiment draw (``labels[i]`` for every training row) and sklearn's metrics (which
    iterate ``y_test``) spent most of a classification task's time in ``datasets``. Reading the
    column once as a list gives the same labels, draws and scores.
    """

    def __init__(self, dataset: Dataset, column: str) -> None:
        self.dataset = dataset
        self.column = column
        self.labels = dataset[column][:]

    def __getitem__(self, key: Any) -> Any:
        return self.labels if key == self.column else self.dataset[key]

    def __len__(self) -> int:
        return len(self.dataset)

    def select(self, indices: Any) -> Dataset:
        return self.dataset.select(indices)


class LocalClassification(LocalTask, AbsTaskClassification):
    """Base: ``read`` returns ``{"train": Dataset(text, label), "test": ...}`` (per subset if multilingual)."""

    splits_read: ClassVar[dict[str, Role]] = {"train": "train", "test": "test"}

    def _undersample_data(
        self, dataset: Dataset, experiment_num: int, idxs: list[int] | None = None
    ) -> tuple[Dataset, list[int], list[int]]:
        """mteb's seeded draw of ``samples_per_label`` rows per label, over labels read once."""
        return super()._undersample_data(ListLabels(dataset, self.label_column_name), experiment_num, idxs)  # type: ignore[arg-type]

    def _run_experiment(self, train_split: Dataset, eval_split: Dataset, *args: Any, **kwargs: Any) -> Any:
        """mteb's probe fit and scores, with both label columns read once (``ListLabels``)."""
        column = self.label_column_name
        return super()._run_experiment(
            ListLabels(train_split, column),  # type: ignore[arg-type]
            ListLabels(eval_split, column),  # type: ignore[arg-type]
            *args,
            **kwargs,
        )

    def _splits(self) -> DatasetDict:
        return self.dataset if "test" in self.dataset else next(iter(self.dataset.values()))

    def split_texts(self, split: str) -> set[str]:
        return set(self._splits()[split]["text"])

    def embedded_texts(self) -> set[str]:
        """Test texts plus the training rows mteb's probe draws (its own sampler, same seed)."""
        return super().embedded_texts() | self.drawn_texts(self._splits()[self.train_split])

    def drawn_texts(self, train: Dataset) -> set[str]:
        """The rows of ``train`` mteb's probe draws over all experiments (its own sampler, same seed)."""
        order: list[int] | None = None
        drawn: set[int] = set()
        for experiment in range(self.n_experiments):
            _, order, chosen = self._undersample_data(train, experiment, order)
            drawn.update(chosen)
        return set(train.select(sorted(drawn))["text"])


class LocalBanking77(LocalClassification):
    """Banking77 intents: 77 labels, 8 training examples per label per experiment."""

    files = ("banking77/train.csv", "banking77/test.csv", "banking77/categories.json")
    hub_name = "Banking77Classification"
    samples_per_label = Banking77Classification.samples_per_label
    metadata = local_metadata(
        name="local:Banking77Classification",
        files=files,
        hub=Banking77Classification,
        description="Local copy of MTEB Banking77Classification (PolyAI's train/test csv files).",
    )

    def read(self, data_dir: Path) -> DatasetDict:
        # Label ids follow categories.json; the probe only needs them consistent across splits.
        names = read_banking77_categories(data_dir / "banking77/categories.json")
        ids = {name: i for i, name in enumerate(names)}
        return DatasetDict(
            {
                split: _split(read_banking77(data_dir / f"banking77/{split}.csv"), ids)
                for split in ("train", "test")
            }
        )


class LocalEmotion(LocalClassification):
    """Emotion in tweets: 6 labels, 16 training examples per label per experiment."""

    files = ("emotion/train.txt", "emotion/test.txt")
    hub_name = "EmotionClassification"
    samples_per_label = EmotionClassification.samples_per_label
    metadata = local_metadata(
        name="local:EmotionClassification",
        files=files,
        hub=EmotionClassification,
        description="Local copy of MTEB EmotionClassification (dair-ai emotion train/test).",
    )

    def read(self, data_dir: Path) -> DatasetDict:
        return DatasetDict(
            {
                split: _split(read_emotion(data_dir / f"emotion/{split}.txt"), EMOTION_IDS)
                for split in ("train", "test")
            }
        )


class LocalAmazonCounterfactual(LocalClassification):
    """Amazon counterfactual reviews, English subset ``en``: 2 labels, 32 examples per label."""

    files = ("amazon-counterfactual/EN_train.tsv", "amazon-counterfactual/EN_test.tsv")
    hub_name = "AmazonCounterfactualClassification"
    samples_per_label = AmazonCounterfactualClassification.samples_per_label
    metadata = local_metadata(
        name="local:AmazonCounterfactualClassification",
        files=files,
        hub=AmazonCounterfactualClassification,
        description=(
            "Local copy of MTEB AmazonCounterfactualClassification, subset 'en' only, test split "
            "(the English score MTEB(eng) reports)."
        ),
        eval_langs={"en": ["eng-Latn"]},
        eval_splits=["test"],
    )

    def read(self, data_dir: Path) -> dict[str, DatasetDict]:
        splits = {
            split: _split(read_amazon_counterfactual(data_dir / f"amazon-counterfactual/EN_{split}.tsv"))
            for split in ("train", "test")
        }
        return {"en": DatasetDict(splits)}


CLASSIFICATION_TASKS = [LocalBanking77, LocalEmotion, LocalAmazonCounterfactual]
