"""Offline, positive-aware hard-negative mining over a guide's vectors.

The selection follows sentence-transformers' ``util.mine_hard_negatives`` (6.3) step by step, so the
same vectors give the same negatives: queries are the unique anchors, the corpus is the given texts
plus every positive (de-duplicated, in first-seen order), each query's ``range_max + max_positives +
1`` nearest corpus texts by cosine form its window (``torch.topk``, ties resolved by ``topk`` on the
same score matrix as sentence-transformers builds), the query itself and its positives are
excluded, then the filters remove candidates in sentence-transformers' order: ``absolute_margin``
and ``relative_margin`` against the query's hardest (lowest-scoring) positive, ``max_score``,
``min_score``; ``range_min`` skips the best survivors and ``top`` / ``random`` picks
``num_negatives`` of the next ``range_max - range_min``. Positive-aware margins are NV-Retriever's
TopK-Abs / TopK-PercPos (Moreira et al. 2024, arXiv 2407.15831).

Two margins calibrated on the guide's own scores are added (after the relative margin): a raw
cosine margin removes very different shares of candidates under different guides, these do not.

* ``margin_quantile = q``: the absolute margin becomes the q-quantile of the gaps
  ``s(anchor, positive) - s(anchor, candidate)`` over every candidate left after the exclusions,
  so ``q = 0.05`` removes the 5% of candidates closest to (or above) their positive, whatever the
  guide's score scale.
* ``rank_margin = r``: a candidate is kept only if it ranks more than ``r`` places below the positive
  in its anchor's list (``r = 0``: candidates scored above the positive are removed, like
  ``absolute_margin = 0``).

Only torch is needed here: the caller hands in ``embed`` (a guide's, see ``harness.guides``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from harness.errors import UserError

SAMPLING_STRATEGIES = ("top", "random")
OUTPUT_FORMATS = ("triplet", "n-tuple", "labeled-pair")
FILTERS = ("absolute_margin", "relative_margin", "margin_quantile", "rank_margin", "max_score", "min_score")
"""The candidate filters, in the order they apply (a candidate is counted by the first that removes it)."""
QUERY_BATCH = 16384  # queries per similarity chunk: sentence-transformers' faiss_batch_size default


@dataclass(frozen=True)
class MiningOptions:
    """How negatives are chosen; the names and meanings of sentence-transformers' ``mine_hard_negatives``.

    Attributes:
        range_min: skip this many of each query's best remaining candidates.
        range_max: consider at most this many best remaining candidates (None: ``range_min +
            num_negatives + max_positives``, times 10 negatives when a score filter is set).
        max_score: remove candidates scored above this.
        min_score: remove candidates scored below this.
        absolute_margin: remove candidates with ``s_neg + margin > s_pos``.
        relative_margin: remove candidates with ``s_neg > s_pos - |s_pos| * margin``.
        margin_quantile: an absolute margin set to this quantile of the guide's gaps (module doc).
        rank_margin: remove candidates within this many ranks below the positive (module doc).
        num_negatives: negatives per query.
        sampling_strategy: ``top`` (the hardest) or ``random`` (uniform over the remaining window).
        output_format: ``triplet``, ``n-tuple`` or ``labeled-pair``.
        seed: seeds ``random`` sampling.
    """

    range_min: int = 0
    range_max: int | None = None
    max_score: float | None = None
    min_score: float | None = None
    absolute_margin: float | None = None
    relative_margin: float | None = None
    margin_quantile: float | None = None
    rank_margin: int | None = None
    num_negatives: int = 3
    sampling_strategy: str = "top"
    output_format: str = "triplet"
    seed: int = 0

    def filters_set(self) -> bool:
        """Whether any filter that can shrink a window is set (sentence-transformers widens it then)."""
        return any(getattr(self, name) is not None for name in FILTERS if name != "min_score")

    def window(self, max_positives: int) -> tuple[int, int]:
        """``(range_max, candidates per query)`` as sentence-transformers derives them."""
        range_max = self.range_max
        if range_max is None:
            per_negative = 10 if self.filters_set() else 1
            range_max = self.range_min + self.num_negatives * per_negative + max_positives
        return range_max, range_max + max_positives + 1

    def check(self, corpus_size: int) -> None:
        """One-line ``UserError`` naming the first bad value and what is valid."""
        if self.sampling_strategy not in SAMPLING_STRATEGIES:
            raise UserError(f"sampling_strategy {self.sampling_strategy!r}: expected one of top, random")
        if self.output_format not in OUTPUT_FORMATS:
            raise UserError(
                f"output_format {self.output_format!r}: expected one of {', '.join(OUTPUT_FORMATS)}"
            )
        if self.num_negatives < 1:
            raise UserError(f"num_negatives must be >= 1, got {self.num_negatives}")
        if self.range_min < 0:
            raise UserError(f"range_min must be >= 0, got {self.range_min}")
        if corpus_size == 0:
            raise UserError("the corpus is empty: no candidate negatives to mine")
        if self.range_min + self.num_negatives > corpus_size:
            raise UserError(
                f"range_min {self.range_min} + num_negatives {self.num_negatives} exceeds the corpus "
                f"({corpus_size} texts)"
            )
        if self.range_max is not None and self.range_max > corpus_size:
            raise UserError(f"range_max {self.range_max} exceeds the corpus ({corpus_size} texts)")
        if self.range_max is not None and self.range_max - self.range_min < self.num_negatives:
            raise UserError(
                f"range_max {self.range_max} leaves fewer than num_negatives {self.num_negatives} "
                f"candidates after range_min {self.range_min}"
            )
        if self.margin_quantile is not None and not 0 <= self.margin_quantile <= 1:
            raise UserError(f"margin_quantile must be in [0, 1], got {self.margin_quantile}")
        if self.rank_margin is not None and self.rank_margin < 0:
            raise UserError(f"rank_margin must be >= 0, got {self.rank_margin}")


@dataclass(frozen=True)
class MiningInput:
    """The de-duplicated queries and corpus, as sentence-transformers arranges them.

    Attributes:
        queries: the unique anchors, in first-seen order.
        positives: per query, the corpus indices of its unique positives.
        corpus: candidate texts, then any positive not among them (unique, first-seen order).
        query_in_corpus: per query, its own corpus index (excluded from its candidates), or -1.
    """

    queries: list[str]
    positives: list[list[int]]
    corpus: list[str]
    query_in_corpus: list[int]

    @property
    def max_positives(self) -> int:
        return max(len(p) for p in self.positives)


def arrange(
    anchors: Sequence[str], positives: Sequence[str], corpus: Sequence[str] | None = None
) -> MiningInput:
    """Queries, positives and corpus from (anchor, positive) rows; corpus None: the positives."""
    texts = list(dict.fromkeys([*(positives if corpus is None else corpus), *positives]))
    corpus_index = {text: i for i, text in enumerate(texts)}
    queries = list(dict.fromkeys(anchors))
    query_index = {query: i for i, query in enumerate(queries)}
    by_query: list[list[int]] = [[] for _ in queries]
    for anchor, positive in zip(anchors, positives, strict=True):
        row = by_query[query_index[anchor]]
        if corpus_index[positive] not in row:
            row.append(corpus_index[positive])
    return MiningInput(queries, by_query, texts, [corpus_index.get(q, -1) for q in queries])


@dataclass
class Window:
    """Each query's nearest corpus texts, best first, and its hardest positive's score.

    Attributes:
        scores: (Q, K) cosine, -inf where excluded or removed.
        indices: (Q, K) corpus index, -1 for padding (a corpus smaller than K).
        positive_scores: (P,) cosine of every (query, positive), in query order.
        hardest_positive: (Q,) the lowest positive score of each query.
    """

    scores: Tensor
    indices: Tensor
    positive_scores: Tensor
    hardest_positive: Tensor


def candidate_window(
    data: MiningInput, query_vectors: Tensor, corpus_vectors: Tensor, size: int, progress: bool = False
) -> Window:
    """The top-``size`` corpus texts of every query by cosine (``torch.topk``, as sentence-transformers)."""
    corpus_vectors = F.normalize(corpus_vectors, p=2, dim=-1)  # (C, D)
    query_vectors = F.normalize(query_vectors, p=2, dim=-1)  # (Q, D)
    k = min(size, len(data.corpus))
    scores, indices = [], []
    for start in tqdm(
        range(0, len(query_vectors), QUERY_BATCH), desc="mining", unit="chunk", disable=not progress
    ):
        chunk = query_vectors[start : start + QUERY_BATCH] @ corpus_vectors.T  # (q, C)
        top_scores, top_indices = torch.topk(chunk, k=k, dim=1)  # (q, k)
        scores.append(top_scores)
        indices.append(top_indices)
    score, index = torch.cat(scores), torch.cat(indices)  # (Q, k)
    if size > k:  # pad as sentence-transformers does, so later top-k calls see the same shapes
        score = torch.cat([score, score.new_full((len(score), size - k), -float("inf"))], dim=1)  # (Q, K)
        index = torch.cat([index, index.new_full((len(index), size - k), -1)], dim=1)  # (Q, K)
    owners = [q for q, row in enumerate(data.positives) for _ in row]
    flat = [i for row in data.positives for i in row]
    positive = (query_vectors[owners] * corpus_vectors[flat]).sum(dim=-1)  # (P,)
    hardest = torch.stack([part.min() for part in positive.split([len(p) for p in data.positives])])  # (Q,)
    return Window(score, index, positive, hardest)


def exclude(window: Window, data: MiningInput) -> dict[str, int]:
    """Sets padding, each query itself and its positives to -inf in place; counts each."""
    scores, indices = window.scores, window.indices
    padding = indices == -1  # (Q, K)
    itself = indices == torch.tensor(data.query_in_corpus).unsqueeze(1)  # (Q, K)
    itself &= ~padding
    positive = torch.zeros_like(padding)
    for q, row in enumerate(data.positives):
        positive[q] = torch.isin(indices[q], torch.tensor(row))
    scores[padding | itself | positive] = -float("inf")
    return {
        "padding": int(padding.sum()),
        "anchor itself": int(itself.sum()),
        "positives": int(positive.sum()),
    }


def filter_masks(window: Window, options: MiningOptions) -> tuple[dict[str, Tensor], float | None]:
    """Each set filter's (Q, K) mask of candidates it removes, judged alone on the window.

    Returns:
        The masks in ``FILTERS`` order, and the absolute margin ``margin_quantile`` resolved to.
    """
    scores = window.scores  # (Q, K), -inf where excluded
    valid = torch.isfinite(scores)  # (Q, K)
    positive = window.hardest_positive.unsqueeze(1)  # (Q, 1)
    masks: dict[str, Tensor] = {}
    if options.absolute_margin is not None:
        masks["absolute_margin"] = scores + options.absolute_margin > positive
    if options.relative_margin is not None:
        masks["relative_margin"] = scores > positive - positive.abs() * options.relative_margin
    resolved = None
    if options.margin_quantile is not None:
        gaps = (positive - scores)[valid].double().numpy()  # (V,)
        if gaps.size:
            resolved = float(np.quantile(gaps, options.margin_quantile))
            masks["margin_quantile"] = valid & (positive - scores < resolved)
    if options.rank_margin is not None:
        rank = valid.cumsum(dim=1) - 1  # (Q, K) rank among the remaining candidates, best 0
        above = (valid & (scores > positive)).sum(dim=1, keepdim=True)  # (Q, 1)
        masks["rank_margin"] = valid & (rank < above + options.rank_margin)
    if options.max_score is not None:
        masks["max_score"] = scores > options.max_score
    if options.min_score is not None:
        masks["min_score"] = valid & (scores < options.min_score)
    return {name: mask & valid for name, mask in masks.items()}, resolved


def apply_filters(window: Window, masks: Mapping[str, Tensor]) -> dict[str, int]:
    """Removes (-inf) the candidates of every mask in order; counts those each removed first."""
    removed, gone = {}, torch.zeros_like(window.scores, dtype=torch.bool)
    for name in FILTERS:
        if name in masks:
            removed[name] = int((masks[name] & ~gone).sum())
            gone |= masks[name]
    window.scores[gone] = -float("inf")
    return removed


def choose(window: Window, options: MiningOptions, range_max: int) -> tuple[Tensor, Tensor]:
    """``num_negatives`` per query from ranks ``[range_min, range_max)`` of the survivors.

    Returns:
        (Q, n) corpus indices and (Q, n) scores, best first; -inf scores mark a missing negative.
    """
    scores, local = torch.topk(window.scores, k=range_max, dim=1)  # (Q, range_max)
    rows = torch.arange(len(scores)).unsqueeze(-1)  # (Q, 1)
    indices = window.indices[rows, local][:, options.range_min :]  # (Q, range_max - range_min)
    scores = scores[:, options.range_min :]
    n = options.num_negatives
    if options.sampling_strategy == "top":
        return indices[:, :n], scores[:, :n]
    rng = random.Random(options.seed)
    options_left = (indices.size(1) - scores.isinf().sum(1)).clamp(min=n)  # (Q,) avoid -inf if possible
    sampled = [rng.sample(range(int(k)), k=n) for k in options_left]
    scores, indices = scores[rows, sampled], indices[rows, sampled]  # (Q, n)
    scores, order = scores.sort(dim=1, descending=True)
    return indices[rows, order], scores


def rows_out(
    data: MiningInput, indices: Tensor, scores: Tensor, output_format: str, labels: Mapping[str, str]
) -> list[dict[str, str]]:
    """The output rows, ordered as sentence-transformers orders them (query, then positive).

    ``triplet``: one (anchor, positive, negative) row per found negative; ``n-tuple``: (anchor,
    positive, negative_1..n) where all n were found; ``labeled-pair``: (anchor, document, label) with
    label "1" for positives and "0" for negatives. Triplets and n-tuples carry the anchor's class
    ``label`` where the source has one.
    """
    out: list[dict[str, str]] = []
    for q, query in enumerate(data.queries):
        found = [
            data.corpus[i]
            for i, s in zip(indices[q].tolist(), scores[q].tolist(), strict=True)
            if s != -float("inf")
        ]
        label = {"label": labels[query]} if query in labels else {}
        if output_format == "labeled-pair":
            out += [{"anchor": query, "document": data.corpus[p], "label": "1"} for p in data.positives[q]]
            out += [{"anchor": query, "document": text, "label": "0"} for text in found]
            continue
        for p in data.positives[q]:
            base = {"anchor": query, "positive": data.corpus[p]}
            if output_format == "triplet":
                out += [base | {"negative": text} | label for text in found]
            elif len(found) == indices.size(1):
                out.append(base | {f"negative_{i}": t for i, t in enumerate(found, start=1)} | label)
    return out


def same_label_share(
    data: MiningInput, indices: Tensor, scores: Tensor, labels: Mapping[str, str]
) -> float | None:
    """Share of mined negatives whose class label is the anchor's (mining-time false negatives)."""
    same = total = 0
    for q, query in enumerate(data.queries):
        if query not in labels:
            continue
        for i, s in zip(indices[q].tolist(), scores[q].tolist(), strict=True):
            if s != -float("inf") and data.corpus[i] in labels:
                total += 1
                same += labels[data.corpus[i]] == labels[query]
    return same / total if total else None


def random_same_label_share(data: MiningInput, labels: Mapping[str, str]) -> float | None:
    """The same share for one uniformly drawn corpus text per labelled anchor (not itself or a positive)."""
    corpus_labels = [labels.get(t) for t in data.corpus]
    counts: dict[str, int] = {}
    for label in corpus_labels:
        if label is not None:
            counts[label] = counts.get(label, 0) + 1
    n_labelled = sum(counts.values())
    shares = []
    for q, query in enumerate(data.queries):
        if query not in labels:
            continue
        excluded = set(data.positives[q]) | ({data.query_in_corpus[q]} - {-1})
        gone = [corpus_labels[i] for i in excluded if corpus_labels[i] is not None]
        pool = n_labelled - len(gone)
        if pool > 0:
            shares.append((counts.get(labels[query], 0) - gone.count(labels[query])) / pool)
    return sum(shares) / len(shares) if shares else None


@dataclass(frozen=True)
class MiningSummary:
    """What mining considered, removed and wrote.

    Attributes:
        queries: unique anchors.
        corpus: candidate texts (with the positives).
        window: candidates per query (``range_max + max_positives + 1``).
        considered: candidates in the windows (queries x window).
        excluded: padding, the anchor itself and its positives, which are never negatives.
        removed: per filter, candidates it removed first (in ``FILTERS`` order).
        removed_alone: per filter, candidates it would remove if it were the only filter.
        resolved_margin: the absolute margin ``margin_quantile`` resolved to (None if unset).
        negatives: negatives chosen (summed over queries).
        short: queries with fewer than ``num_negatives`` negatives.
        rows: rows written.
        false_negative_rate: share of mined negatives with the anchor's class label.
        false_negative_rate_unfiltered: the same without any filter (same window, range, sampling).
        false_negative_rate_random: the same for a uniformly drawn corpus text.
    """

    queries: int
    corpus: int
    window: int
    considered: int
    excluded: dict[str, int]
    removed: dict[str, int]
    removed_alone: dict[str, int]
    resolved_margin: float | None
    negatives: int
    short: int
    rows: int
    false_negative_rate: float | None = None
    false_negative_rate_unfiltered: float | None = None
    false_negative_rate_random: float | None = None
    options: dict[str, object] = field(default_factory=dict)


def mine(
    anchors: Sequence[str],
    positives: Sequence[str],
    embed: Callable[[list[str]], Tensor],
    options: MiningOptions,
    *,
    corpus: Sequence[str] | None = None,
    labels: Mapping[str, str] | None = None,
    progress: bool = False,
) -> tuple[list[dict[str, str]], MiningSummary]:
    """Mines hard negatives for (anchor, positive) rows with a guide's ``embed``.

    Args:
        anchors: anchor texts, one per row.
        positives: the positive of each row.
        embed: texts -> (N, D) vectors (a guide's ``embed``; normalised here again).
        options: how negatives are chosen.
        corpus: candidate texts (None: the positives, as sentence-transformers defaults).
        labels: class label of each text, where known (for the false-negative rates).
        progress: show a progress bar over the similarity chunks.

    Returns:
        The output rows and the summary.

    Raises:
        UserError: no rows, an empty corpus or a bad option (one line naming the value).
    """
    if not anchors:
        raise UserError("no (anchor, positive) rows to mine for")
    if corpus is not None and not corpus:
        raise UserError("the corpus is empty: no candidate negatives to mine")
    data = arrange(anchors, positives, corpus)
    options.check(len(data.corpus))
    range_max, size = options.window(data.max_positives)
    window = candidate_window(data, embed(data.queries), embed(data.corpus), size, progress)
    excluded = exclude(window, data)
    labels = labels or {}
    unfiltered = Window(
        window.scores.clone(), window.indices, window.positive_scores, window.hardest_positive
    )
    masks, resolved = filter_masks(window, options)
    removed = apply_filters(window, masks)
    indices, scores = choose(window, options, range_max)
    rows = rows_out(data, indices, scores, options.output_format, labels)
    found = torch.isfinite(scores).sum(dim=1)  # (Q,)
    summary = MiningSummary(
        queries=len(data.queries), corpus=len(data.corpus), window=size, considered=window.scores.numel(),
        excluded=excluded, removed=removed, removed_alone={k: int(m.sum()) for k, m in masks.items()},
        resolved_margin=resolved, negatives=int(found.sum()), short=int((found < options.num_negatives).sum()),
        rows=len(rows), options=dict(options.__dict__) | {"range_max": range_max},
    )  # fmt: skip
    if any(t in labels for t in data.queries):
        control = choose(unfiltered, options, range_max)
        summary = MiningSummary(**{
            **summary.__dict__,
            "false_negative_rate": same_label_share(data, indices, scores, labels),
            "false_negative_rate_unfiltered": same_label_share(data, *control, labels),
            "false_negative_rate_random": random_same_label_share(data, labels),
        })  # fmt: skip
    return rows, summary


def source_rows(
    name: str,
    data_dir: str | None = None,
    *,
    anchor_column: str = "anchor",
    positive_column: str = "positive",
    options: Mapping[str, object] | None = None,
) -> tuple[list[str], list[str], dict[str, str]]:
    """The (anchor, positive) rows of a source, cleaned, and the class label of each labelled text.

    Args:
        name: a registered source (``gist-harness ls datasets``) or ``file:PATH``.
        data_dir: the data folder (default ``$GIST_HARNESS_DATA``).
        anchor_column: the column holding anchors (for a ``file:`` source, the file's column).
        positive_column: the column holding positives.
        options: the source's options (``gist-harness ls datasets``).

    Raises:
        UserError: unknown source or option, a column the source lacks, no rows left.
    """
    from harness.data.examples import clean
    from harness.data.sources import source_examples

    if name.startswith("file:"):
        examples = _file_examples(Path(name[len("file:") :]), anchor_column, positive_column)
        anchor_column, positive_column = "anchor", "positive"
    else:
        examples = source_examples(name, data_dir, **dict(options or {}))
    if not examples:
        raise UserError(f"dataset {name!r} has no rows")
    for column in (anchor_column, positive_column):
        lacking = next((e for e in examples if not isinstance(e.get(column), str)), None)
        if lacking is not None:
            raise UserError(
                f"dataset {name!r} has no text column {column!r} in every row; columns: {', '.join(lacking)}"
            )
    pairs = [
        {"anchor": e[anchor_column], "positive": e[positive_column]}
        | ({"label": str(e["label"])} if e.get("label") is not None else {})
        for e in examples
    ]
    kept = clean(pairs).examples
    if not kept:
        raise UserError(
            f"dataset {name!r}: no (anchor, positive) rows left after removing blank and duplicates"
        )
    labels: dict[str, str] = {}
    for e in kept:
        if "label" in e:
            labels.setdefault(e["anchor"], e["label"])
            labels.setdefault(e["positive"], e["label"])
    return [e["anchor"] for e in kept], [e["positive"] for e in kept], labels


def _file_examples(path: Path, anchor_column: str, positive_column: str) -> list[dict[str, str]]:
    """A user file's rows with its own anchor and positive columns (and ``label`` if it has one)."""
    from harness.data.userfiles import read_records, to_examples

    found, records = read_records(path)
    if not records:
        raise UserError(f"dataset 'file:{path}' has no rows")
    columns = {"anchor": anchor_column, "positive": positive_column} | (
        {"label": "label"} if "label" in found else {}
    )
    return to_examples(path, found, records, columns)
