"""Mined hard negatives as a trial's training data (``[train] mine``).

``mine_mixture`` takes a built mixture and, for each of its sources, mines ``num_negatives``
negatives per anchor with ``harness.data.mining.mine`` (sentence-transformers' ``mine_hard_negatives``
semantics) over that source's own training rows: the anchors and positives are the source's rows, the
candidates the source's own positives (sentence-transformers' default corpus). The mixture comes back
with the mined negatives in columns ``negative_1 .. negative_n`` instead of every source's own negative
columns, so every source trains with exactly ``n`` of them; rows, their order and their sources are
unchanged, so a trial's batches are drawn as they would be without mining.

An anchor the filters leave short of ``n`` negatives keeps its row: each missing column holds the row's
own anchor text, the placeholder the loss reads as "no negative here" (``harness.data.batching.ABSENT``),
so the row trains on its in-batch negatives alone. Dropping such rows (sentence-transformers' n-tuple
output) would train a filtered arm on fewer, different rows than its unfiltered control (on
banking77-pairs the margin-0 filter leaves 75% of anchors short of 3), confounding the filter with the
data; filling them from the unfiltered ranking would put back the very candidates the filter removed.
The counts are recorded per source (``harness.results.MinedSource``).

The loss treats an explicit negative as never sharing its row's label (``harness.loss.blocks``), so the
label-based diagnostics of a trial do not see mined false negatives; the record's ``same_label_rate``
(mining-time, with and without the filters) does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from torch import Tensor

from harness.data.mining import FILTERS, MiningOptions, MiningSummary, mine
from harness.data.mixtures import Mixture
from harness.errors import UserError
from harness.results import MinedSource

log = logging.getLogger(__name__)


def mined_columns(num_negatives: int) -> list[str]:
    """The negative columns of a mined mixture: ``negative_1 .. negative_n`` (sentence-transformers' n-tuple)."""
    return [f"negative_{i}" for i in range(1, num_negatives + 1)]


def mine_mixture(
    mixture: Mixture,
    embed: Callable[[list[str]], Tensor],
    options: MiningOptions,
    *,
    count_only: bool = False,
) -> tuple[Mixture, dict[str, MinedSource]]:
    """The mixture with negatives mined per source, and what mining did to each source.

    Args:
        mixture: a built mixture (its own negative columns, if any, are replaced).
        embed: texts -> (N, D) vectors: the trial's guide (``Guide.embed``, read through its cache).
        options: how negatives are chosen (``output_format`` is ignored: every row is kept).
        count_only: the filters set only how many negatives each anchor gets (as many as they would
            leave it); the negatives are picked with the filters ignored, from the same window
            (``[train] mine`` with ``filters = "count"``: a filtered arm's control).

    Raises:
        UserError: a source too small for the options (naming the source and the value).
    """
    train = mixture.train
    anchors, positives = list(train["anchor"]), list(train["positive"])
    labels = _row_labels(train)
    by_source: dict[str, list[int]] = {}
    for index, source in enumerate(mixture.train_sources):
        by_source.setdefault(source, []).append(index)
    columns = mined_columns(options.num_negatives)
    mined: dict[str, list[str | None]] = {c: [None] * len(train) for c in columns}
    records: dict[str, MinedSource] = {}
    for source, rows in by_source.items():
        start = time.perf_counter()
        found, summary = _mine_source(source, rows, anchors, positives, labels, embed, options)
        if count_only:
            found, summary = _unfiltered_at_counts(
                source, rows, anchors, positives, labels, embed, options, found, summary
            )
        short_rows = 0
        for i in rows:
            texts = found.get(anchors[i], [])
            short_rows += len(texts) < len(columns)
            filled = [*texts, *[anchors[i]] * (len(columns) - len(texts))]  # the placeholder: no negative
            for column, text in zip(columns, filled, strict=True):
                mined[column][i] = text
        records[source] = _record(summary, len(rows), short_rows, time.perf_counter() - start)
        log.info("mined %s: %s", source, _line(records[source]))
    return replace(mixture, train=_with_negatives(train, mined)), records


def _mine_source(
    source: str,
    rows: list[int],
    anchors: Sequence[str],
    positives: Sequence[str],
    labels: Sequence[str | None],
    embed: Callable[[list[str]], Tensor],
    options: MiningOptions,
) -> tuple[dict[str, list[str]], MiningSummary]:
    """Each anchor's mined negatives (best first) over one source's rows, and mining's summary."""
    text_labels = _text_labels(rows, anchors, positives, labels)
    try:
        out, summary = mine(
            [anchors[i] for i in rows],
            [positives[i] for i in rows],
            embed,
            replace(options, output_format="labeled-pair"),  # each anchor's negatives once, best first
            labels=text_labels,
        )
    except UserError as exc:
        raise UserError(f"[train] mine, source {source!r}: {exc}") from None
    found: dict[str, list[str]] = {}
    for row in out:
        if row["label"] == "0":
            found.setdefault(row["anchor"], []).append(row["document"])
    return found, summary


def _unfiltered_at_counts(
    source: str,
    rows: list[int],
    anchors: Sequence[str],
    positives: Sequence[str],
    labels: Sequence[str | None],
    embed: Callable[[list[str]], Tensor],
    options: MiningOptions,
    filtered: dict[str, list[str]],
    summary: MiningSummary,
) -> tuple[dict[str, list[str]], MiningSummary]:
    """Each anchor's first ``len(filtered[anchor])`` negatives mined without the filters, over the
    filtered run's window (its ``range_max``), and the filtered summary with the chosen negatives'
    same-label share (the filters' removals stay recorded: they set the counts)."""
    unfiltered_options = replace(
        options,
        range_max=int(summary.options["range_max"]),  # type: ignore[call-overload]
        **dict.fromkeys(FILTERS, None),
    )
    chosen, _ = _mine_source(source, rows, anchors, positives, labels, embed, unfiltered_options)
    found = {a: chosen.get(a, [])[: len(texts)] for a, texts in filtered.items() if texts}
    text_labels = _text_labels(rows, anchors, positives, labels)
    pairs = [(a, t) for a, texts in found.items() for t in texts if a in text_labels and t in text_labels]
    same = sum(text_labels[a] == text_labels[t] for a, t in pairs)
    return found, replace(summary, false_negative_rate=same / len(pairs) if pairs else None)


def _text_labels(
    rows: list[int], anchors: Sequence[str], positives: Sequence[str], labels: Sequence[str | None]
) -> dict[str, str]:
    """Each anchor's and positive's class label over one source's rows (its row's), where known."""
    text_labels: dict[str, str] = {}
    for i in rows:
        if labels[i] is not None:
            text_labels.setdefault(anchors[i], labels[i])
            text_labels.setdefault(positives[i], labels[i])
    return text_labels


def _row_labels(train: Any) -> list[str | None]:
    """Each row's class label id as text (its anchor's and positive's), None where it has none."""
    if "label" not in train.column_names:
        return [None] * len(train)
    return [None if label is None or label < 0 else str(label) for label in train["label"]]


def _with_negatives(train: Any, mined: dict[str, list[str | None]]) -> Any:
    """``train`` with its negative columns replaced by ``mined``, placed right after ``positive``."""
    from datasets import Dataset, Features, Value

    names: list[str] = []
    for name in train.column_names:
        if not name.startswith("negative"):
            names.append(name)
        if name == "positive":
            names += list(mined)
    features = {n: Value("string") if n in mined else train.features[n] for n in names}
    data = {n: mined[n] if n in mined else list(train[n]) for n in names}
    return Dataset.from_dict(data, features=Features(features))


def _record(summary: MiningSummary, rows: int, short_rows: int, seconds: float) -> MinedSource:
    left = summary.considered - sum(summary.excluded.values())
    return MinedSource(
        rows=rows, anchors=summary.queries, corpus=summary.corpus, negatives=summary.negatives,
        short_anchors=summary.short, short_rows=short_rows, candidates=left, removed=dict(summary.removed),
        removed_share=sum(summary.removed.values()) / left if left else None,
        resolved_margin=summary.resolved_margin, same_label_rate=summary.false_negative_rate,
        same_label_rate_unfiltered=summary.false_negative_rate_unfiltered,
        same_label_rate_random=summary.false_negative_rate_random, seconds=round(seconds, 3),
    )  # fmt: skip


def _line(record: MinedSource) -> str:
    """One log line: negatives, short rows, the filters' share, the same-label rates."""
    share = "" if record.removed_share is None else f", filters removed {record.removed_share:.1%}"
    rates = ""
    if record.same_label_rate is not None:
        unfiltered = record.same_label_rate_unfiltered or 0.0
        rates = f", same label {record.same_label_rate:.1%} ({unfiltered:.1%} unfiltered)"
    return (
        f"{record.negatives} negatives for {record.anchors} anchors, {record.short_rows} of {record.rows} "
        f"rows short{share}{rates}"
    )
