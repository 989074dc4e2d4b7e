"""Batch composition: every batch drawn from one source (the paper's regime) or sources mixed.

GISTEmbed (arXiv 2402.16829) trains on MEDI, whose batches each come from one task (as in
INSTRUCTOR), with hard negatives where a task has them. sentence-transformers reaches the same
regime with a ``DatasetDict`` train set and a multi-dataset batch sampler: ``proportional``
(batches drawn from each source in proportion to its size, all rows used) or ``round_robin``
(one batch per source in turn, until the smallest is exhausted). ``training_sets`` returns that
``DatasetDict`` for ``batching="per_source"`` (each source keeping its own columns, so SNLI
trains with its hard negatives while pair sources train as pairs), or one shuffled ``Dataset`` for
``batching="mixed"``.

A mixed batch can hold rows of a source with a negative column and rows of one without: such a
row holds its own anchor text there as a placeholder (``ABSENT``), which the loss's collator turns
into a "no candidate" mask. A placeholder never repeats across rows, so the no-duplicates sampler
keeps working (a shared ``None`` would have made every such row a duplicate of the others).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.data.mixtures import Mixture, negative_policy, select_negatives
from harness.errors import UserError

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict

BATCHING = ("per_source", "mixed")
SOURCE_ORDERS = ("proportional", "round_robin")
ABSENT = "the row's own anchor text"
"""What a mixed row without a negative of its own holds in that column (see the module doc)."""


def negative_columns(mixture: Mixture) -> dict[str, list[str]]:
    """The negative columns each source of the mixture has (its training rows hold a text there)."""
    columns = [c for c in mixture.train.column_names if c.startswith("negative")]
    first: dict[str, int] = {}
    for index, source in enumerate(mixture.train_sources):
        first.setdefault(source, index)
    has: dict[str, list[str]] = {s: [] for s in mixture.counts}
    for column in columns:
        values = mixture.train[column]
        for source, index in first.items():
            if values[index] is not None:
                has[source].append(column)
    return has


def kept_negatives(mixture: Mixture, policy: str) -> list[str]:
    """The negative columns a training view keeps under ``policy`` (``harness.data.NEGATIVE_POLICIES``).

    Raises:
        UserError: ``require`` while a source has no negative column (naming the sources).
    """
    has = negative_columns(mixture)
    return select_negatives({s: cols for s, cols in has.items() if mixture.counts.get(s)}, policy)


def training_sets(
    mixture: Mixture,
    *,
    batching: str,
    negatives: bool | str | None,
    batch_size: int,
    no_duplicates: bool = False,
) -> Dataset | DatasetDict:
    """The trainer's train set for a batch composition and a negatives policy.

    Args:
        mixture: a built mixture (build it with ``negatives="keep"`` so every source's negatives
            are there to keep or drop; rows and their order do not depend on the policy).
        batching: "per_source" (a ``DatasetDict``, one ``Dataset`` per source with its own
            columns) or "mixed" (one ``Dataset``, sources shuffled together).
        negatives: the policy (``True``/``False``/None or a ``NEGATIVE_POLICIES`` name; None:
            "keep" per source, "shared" mixed).
        batch_size: rows per batch; per source, every source must fill one.
        no_duplicates: the trainer draws batches without a repeated text (sentence-transformers'
            ``NoDuplicatesBatchSampler``): per source, every source must fill one such batch. A
            source whose rows repeat their anchors (TrecQA: several answers per question) may
            not, and the sampler would then silently draw nothing from it.

    Raises:
        UserError: an unknown batching, a ``require`` policy a source cannot meet, or a source with
            fewer training rows (or duplicate-free rows) than a batch under per-source batching.
    """
    from datasets import DatasetDict

    if batching not in BATCHING:
        raise UserError(f"batching must be one of {', '.join(BATCHING)}; got {batching!r}")
    policy = negative_policy(negatives, batching)
    kept = kept_negatives(mixture, policy)
    dropped = [c for c in mixture.train.column_names if c.startswith("negative") and c not in kept]
    train = mixture.train.remove_columns(dropped) if dropped else mixture.train
    if batching == "mixed":
        return _fill_absent(train, kept)
    has = negative_columns(mixture)
    by_source: dict[str, list[int]] = {s: [] for s in mixture.counts}
    for index, source in enumerate(mixture.train_sources):
        by_source[source].append(index)
    small = [f"{s!r} ({len(rows)} rows)" for s, rows in by_source.items() if 0 < len(rows) < batch_size]
    if small:
        raise UserError(
            f'batching = "per_source": source(s) {", ".join(small)} have fewer training rows than '
            f'batch_size {batch_size}; lower batch_size, cap or drop the source, or use batching = "mixed"'
        )
    sets: dict[str, Any] = {}
    for source, rows in by_source.items():
        if not rows:
            continue
        subset = train.select(rows)
        absent = [c for c in kept if c not in has[source]]
        sets[source] = subset.remove_columns(absent) if absent else subset
    if no_duplicates:
        short = [f"{s!r} ({len(d)} rows)" for s, d in sets.items() if not _fills_a_batch(d, batch_size)]
        if short:
            raise UserError(
                f'batching = "per_source": source(s) {", ".join(short)} cannot fill one batch of {batch_size} '
                "without repeating a text (the no_duplicates sampler would draw nothing from them); lower "
                'batch_size, drop the source, use batch_sampler = "batch_sampler", or batching = "mixed"'
            )
    return DatasetDict(sets)


def _fills_a_batch(dataset: Dataset, batch_size: int) -> bool:
    """Whether one pass over the rows finds ``batch_size`` rows that share no text (greedy)."""
    columns = [c for c in dataset.column_names if c != "label"]
    seen: set[str] = set()
    taken = 0
    for row in zip(*(dataset[c] for c in columns), strict=True):
        texts = set(row)
        if texts.isdisjoint(seen):
            seen |= texts
            taken += 1
            if taken == batch_size:
                return True
    return False


def _fill_absent(train: Dataset, negatives: list[str]) -> Dataset:
    """Rows without a text in a negative column get their own anchor there (see ``ABSENT``)."""
    holes = [c for c in negatives if None in train.unique(c)]
    if not holes:
        return train

    def fill(row: dict[str, Any]) -> dict[str, Any]:
        return {c: row[c] if row[c] is not None else row["anchor"] for c in holes}

    return train.map(fill, desc="placeholders for absent negatives", load_from_cache_file=False)
