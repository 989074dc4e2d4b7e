"""Cleaning training examples and turning them into the ``datasets.Dataset`` the trainer consumes.

An *example* is a dict with ``anchor``, ``positive``, zero or more ``negative*`` texts and an
optional ``label``. The trainer's collator treats every column except ``label`` as text, so the
dataset holds exactly those columns, in that order, with ``label`` as a ``ClassLabel`` (ints).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datasets import Dataset

Example = dict[str, Any]


def text_columns(example: Example) -> list[str]:
    """The text columns of an example in trainer order: anchor, positive, negative*."""
    negatives = sorted((c for c in example if c.startswith("negative")), key=lambda c: (len(c), c))
    return ["anchor", "positive", *negatives]


def example_key(example: Example, columns: Sequence[str]) -> tuple[str, ...]:
    """The exact-duplicate key of an example: its texts, in column order."""
    return tuple(example[c] for c in columns)


@dataclass(frozen=True)
class Cleaned:
    """Examples left after cleaning, and how many were removed for each reason.

    Attributes:
        examples: the kept examples, in input order.
        blank: removed because a text was empty or whitespace only.
        identical: removed because the positive is the anchor itself (nothing to learn).
        duplicates: removed as exact duplicates of an earlier example (all texts equal).
    """

    examples: list[Example]
    blank: int = 0
    identical: int = 0
    duplicates: int = 0


def clean(examples: Iterable[Example], seen: set[tuple[str, ...]] | None = None) -> Cleaned:
    """Drops blank, anchor==positive and exact-duplicate examples (first occurrence kept).

    Args:
        examples: examples to clean.
        seen: duplicate keys already used (shared across the sources of a mixture); updated.
    """
    seen = set() if seen is None else seen
    kept, blank, identical, duplicates = [], 0, 0, 0
    for example in examples:
        columns = text_columns(example)
        key = example_key(example, columns)
        if any(not text.strip() for text in key):
            blank += 1
        elif example["anchor"] == example["positive"]:
            identical += 1
        elif key in seen:
            duplicates += 1
        else:
            seen.add(key)
            kept.append(example)
    return Cleaned(kept, blank, identical, duplicates)


def to_dataset(
    examples: Sequence[Example],
    label_names: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
) -> Dataset:
    """Builds a ``datasets.Dataset`` with columns anchor, positive, negative*, [label].

    Args:
        examples: examples; a text column an example lacks holds None (a mixture's sources can
            differ in negative columns).
        label_names: class names for the ``label`` column (a ``ClassLabel``); labels of the
            examples are looked up in it, and a missing or None label becomes -1 ("no label").
            None: no label column, unless the examples carry labels (names then sorted).
        columns: the text columns (default: those of the first example; anchor, positive if none).

    Returns:
        The dataset (possibly with zero rows).
    """
    from datasets import ClassLabel, Dataset, Features, Value

    if columns is None:
        columns = text_columns(examples[0]) if examples else ["anchor", "positive"]
    if label_names is None and any(e.get("label") is not None for e in examples):
        label_names = sorted({str(e["label"]) for e in examples if e.get("label") is not None})
    features = {c: Value("string") for c in columns}
    data: dict[str, list[Any]] = {c: [e.get(c) for e in examples] for c in columns}  # None: absent
    if label_names is not None:
        index = {name: i for i, name in enumerate(label_names)}
        features["label"] = ClassLabel(names=list(label_names))
        data["label"] = [index[str(e["label"])] if e.get("label") is not None else -1 for e in examples]
    return Dataset.from_dict(data, features=Features(features))


def dataset_texts(dataset: Dataset) -> set[str]:
    """Every text of a dataset's text columns (for leakage checks)."""
    texts: set[str] = set()
    for column in dataset.column_names:
        if column != "label":
            texts.update(t for t in dataset[column] if t is not None)
    return texts
