"""Similarity blocks of the guided in-batch loss, computed from embeddings (no model in sight).

Each loss row ``i`` is one anchor. Its logits are the student similarities to every in-batch
candidate, several blocks side by side (GISTEmbed, arXiv 2402.16829, Sec. 3):

* ``variant="st"`` (sentence-transformers 6 ``GISTEmbedLoss``): anchor-positive ``ap``, then
  anchor-anchor ``aa`` (``contrast_anchors``), positive-positive ``pp`` (``contrast_positives``;
  row ``i`` is positive ``i``), then anchor-negative ``an1`` .. ``ank``.
* ``variant="official"`` (the paper code, ``guided_in_batch_contrastive_loss``): ``ap`` (qp),
  ``an1`` .. (qn), ``aa`` (qq), ``pp`` (pp), always all four.
* ``variant="mnrl"`` (sentence-transformers' ``MultipleNegativesRankingLoss(directions=...)``, GTE's
  improved contrastive loss, Li et al. 2023, arXiv 2308.03281): ``query_to_doc`` is ``ap`` +
  ``an1`` ..; ``query_to_query`` is ``aa``; ``doc_to_query`` is ``pa`` (row ``i`` is positive ``i``,
  the candidates every anchor); ``doc_to_doc`` is ``pp`` + ``pn1`` .. (positive ``i`` against every
  document; its own pair's documents are removed, as MNRL does).

With ``doc_to_query`` the positive pair appears twice in a row: in ``ap`` (the target) and as the
``pa`` block's own column (``RowScores.pair``), which stays in the softmax's denominator exactly as
in GTE's Eq. and MNRL's ``joint`` partition: never dropped, never an identical text, never counted as
a negative. A guide's mask reads the ``pa`` block like any other: anchor ``j`` leaves positive ``i``'s
row when the guide's doc-side similarity ``g(p_i, a_j)`` passes the threshold set by the same
positive pair ``g(a_i, p_i)`` (for ``gist``: ``g(p_i, a_j) > g(a_i, p_i) - margin``).
``partition="per_direction"`` (``partitions``) splits each row into one softmax per direction.

The order of blocks does not change the cross-entropy, only the column of the target (always in
``ap``, first in both layouts). ``score_rows`` asks a masking strategy which candidates to drop,
then protects the true positive and drops identical texts (never each other's negatives), fills
dropped logits with ``-inf`` and divides by the temperature. The positive always survives, so the
loss stays finite even when a strategy drops every negative.

With ``harness.loss.objectives`` (what the loss makes of the scored rows: InfoNCE's cross-entropy by
default) this module is all of the loss's maths; ``guided`` and the modules beside it are glue.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from harness.masking import Candidates, drop_mask

VARIANTS = ("st", "official", "mnrl")
DIRECTIONS = ("query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc")
"""``variant="mnrl"``'s directions, sentence-transformers' names; ``query_to_doc`` is always one."""
PARTITIONS = ("joint", "per_direction")
"""One softmax over a row's directions, or one per direction averaged (MNRL's ``partition_mode``)."""
DUPLICATES = ("drop", "keep")
"""``score_rows(duplicates=...)``: remove candidates identical to the row's texts, or keep them (GISTEmbedLoss)."""
# Above this many multiply-adds per block, a matmul of unit vectors instead of the broadcast cosine.
# The broadcast materialises (R, C, D) tensors in the forward and again in the backward: at a static
# student's batch of 128 (384-d) and 768-d guide vectors that was ~0.3-1 s per step against < 2 ms
# for the matmul (issue 17). Small batches (the parity tests) keep the broadcast, which matches
# GISTEmbedLoss's ``sim_matrix`` to the last bit; above the limit the two differ by ~1e-7 per cosine.
_BROADCAST_LIMIT = 2**18


@dataclass(frozen=True)
class Block:
    """One similarity block: rows from input column ``row``, candidates from input column ``col``."""

    name: str
    row: int
    col: int


def layout(
    variant: str,
    n_columns: int,
    contrast_anchors: bool = True,
    contrast_positives: bool = True,
    directions: Sequence[str] = ("query_to_doc",),
) -> list[Block]:
    """The blocks of one loss row for ``n_columns`` input columns (anchor, positive, negatives...).

    ``contrast_*`` choose the blocks of ``variant="st"``, ``directions`` those of ``"mnrl"``.
    """
    negatives = [Block(f"an{k - 1}", 0, k) for k in range(2, n_columns)]
    if variant == "official":
        return [Block("ap", 0, 1), *negatives, Block("aa", 0, 0), Block("pp", 1, 1)]
    if variant == "mnrl":
        return _direction_blocks(n_columns, directions)
    blocks = [Block("ap", 0, 1)]
    if contrast_anchors:
        blocks.append(Block("aa", 0, 0))
    if contrast_positives:
        blocks.append(Block("pp", 1, 1))
    return blocks + negatives


def _direction_blocks(n_columns: int, directions: Sequence[str]) -> list[Block]:
    """MNRL's directions as blocks, in its order: query_to_doc, query_to_query, doc_to_query, doc_to_doc."""
    blocks = [Block("ap", 0, 1), *(Block(f"an{k - 1}", 0, k) for k in range(2, n_columns))]
    if "query_to_query" in directions:
        blocks.append(Block("aa", 0, 0))
    if "doc_to_query" in directions:
        blocks.append(Block("pa", 1, 0))
    if "doc_to_doc" in directions:
        blocks += [Block("pp", 1, 1), *(Block(f"pn{k - 1}", 1, k) for k in range(2, n_columns))]
    return blocks


def direction(block: Block) -> str:
    """The direction of ``block`` in MNRL's terms: rows from the anchor (query) or positive (doc) column."""
    if block.row == 0:
        return "query_to_query" if block.col == 0 else "query_to_doc"
    return "doc_to_query" if block.col == 0 else "doc_to_doc"


def cosine_matrix(x: Tensor, y: Tensor) -> Tensor:
    """Cosine similarity of every row of ``x`` (R, D) to every row of ``y`` (C, D): (R, C).

    Computed exactly like sentence-transformers' ``GISTEmbedLoss.sim_matrix`` (broadcast
    ``cosine_similarity``) so that parity holds to the last bit; very wide inputs (lexical guides)
    use a matmul of unit vectors instead.
    """
    if x.shape[0] * y.shape[0] * x.shape[-1] <= _BROADCAST_LIMIT:
        return F.cosine_similarity(x.unsqueeze(1), y.unsqueeze(0), dim=-1)  # (R, C)
    return F.normalize(x, dim=-1) @ F.normalize(y, dim=-1).T  # (R, C)


@dataclass
class RowScores:
    """Logits and masks of a slice of loss rows (``b`` rows, ``N`` candidates).

    Attributes:
        logits: student similarities / temperature, dropped candidates at ``-inf``, (b, N).
        targets: column of each row's true positive, (b,).
        drop: candidates the strategy dropped (positive excluded), (b, N).
        identical: candidates with the same text as the row's anchor or positive, (b, N).
        positive: the true positive of each row, (b, N).
        same_label: candidates sharing the anchor's label, or None without labels, (b, N).
        widths: number of columns of each block, in layout order.
        sims: student cosines before masking, with gradients, (b, N) (``harness.loss.objectives``).
        guide: guide cosines, (b, N), or None when the loss runs without guide vectors.
        hard_negative: the row's own explicit negatives (its column in each ``an`` block), (b, N).
        candidates: what the strategy read (``harness.masking.Candidates``), or None: a drop log
            runs a second, "shadow" strategy on exactly these (``harness.loss.drop_log``).
        pair: the positive pair's second copy (the ``pa`` block's own column), in the softmax but no
            negative, (b, N), or None without a ``pa`` block.
    """

    logits: Tensor
    targets: Tensor
    drop: Tensor
    identical: Tensor
    positive: Tensor
    same_label: Tensor | None
    widths: list[int]
    sims: Tensor | None = None
    guide: Tensor | None = None
    hard_negative: Tensor | None = None
    candidates: Candidates | None = None
    pair: Tensor | None = None

    @property
    def real(self) -> Tensor:
        """(b, N) the real negatives before the strategy: not the positive, its pair, an identical text."""
        out = ~(self.positive | self.identical)  # (b, N)
        return out & ~self.pair if self.pair is not None else out

    def columns(self, keep: Tensor, widths: list[int]) -> RowScores:
        """These rows on the candidate columns ``keep`` ((N,) bool) only: blocks of ``widths``."""
        return RowScores(
            self.logits[:, keep],
            self.positive[:, keep].long().argmax(dim=1),  # (b,), the positive sits in the kept columns
            self.drop[:, keep],
            self.identical[:, keep],
            self.positive[:, keep],
            self.same_label[:, keep] if self.same_label is not None else None,
            widths,
            self.sims[:, keep] if self.sims is not None else None,
            self.guide[:, keep] if self.guide is not None else None,
            self.hard_negative[:, keep] if self.hard_negative is not None else None,
        )


def _own_columns(blocks: Sequence[Block], widths: Sequence[int], targets: Tensor, which: str) -> Tensor:
    """(b, N) True at each row's own column (``targets``) of the blocks ``which`` selects.

    "self": blocks comparing a column with itself (aa, pp): the row's own anchor/positive instance;
    and the positive's own pair's negatives (pn1, ...), never negatives of that positive (MNRL).
    "negatives": the explicit negative blocks of the anchor (an1, an2, ...): its own hard negatives.
    "pair": the doc_to_query block (pa): the positive pair seen from the positive.
    """
    mask = torch.zeros(len(targets), sum(widths), dtype=torch.bool, device=targets.device)  # (b, N)
    rows = torch.arange(len(targets), device=targets.device)
    offset = 0
    for block, width in zip(blocks, widths, strict=True):
        if _is_own(block, which):
            mask[rows, offset + targets] = True
        offset += width
    return mask


def _is_own(block: Block, which: str) -> bool:
    if which == "self":
        return block.row == block.col or (block.row == 1 and block.col >= 2)
    if which == "negatives":
        return block.row == 0 and block.col >= 2
    return (block.row, block.col) == (1, 0)  # "pair"


def _cat_blocks(columns: Sequence[Tensor], blocks: Sequence[Block], rows: slice) -> Tensor:
    return torch.cat([cosine_matrix(columns[b.row][rows], columns[b.col]) for b in blocks], dim=1)  # (b, N)


def _same_label(labels: Tensor, blocks: Sequence[Block], rows: slice) -> Tensor:
    # A label belongs to an (anchor, positive) pair; an explicit negative is never of its pair's label.
    # Rows without a label (-1, e.g. STS pairs mixed with classification pairs) share no label.
    row_labels = labels[rows].unsqueeze(1)  # (b, 1)
    col_labels = labels.unsqueeze(0)  # (1, B)
    parts = []
    for b in blocks:
        same = (row_labels == col_labels) & (row_labels >= 0) & (col_labels >= 0)  # (b, B)
        parts.append(same if b.col < 2 else torch.zeros_like(same))
    return torch.cat(parts, dim=1)  # (b, N)


def score_rows(
    student: Sequence[Tensor],
    guide: Sequence[Tensor] | None,
    text_ids: Sequence[Tensor],
    blocks: Sequence[Block],
    rows: slice,
    *,
    strategy: str,
    strategy_params: Mapping[str, Any],
    temperature: float,
    labels: Tensor | None = None,
    generator: torch.Generator | None = None,
    present: Sequence[Tensor | None] | None = None,
    duplicates: str = "drop",
) -> RowScores:
    """Logits of loss rows ``rows`` with the strategy's drop mask applied.

    Args:
        student: one (B, D) student embedding per input column (anchor, positive, negatives...).
        guide: one (B, D_guide) guide embedding per column, or None (strategy needs no guide).
        text_ids: one (B,) int64 text id per column; equal ids mean identical texts.
        blocks: the layout (see ``layout``).
        rows: which anchors (loss rows) to score; GradCache scores a batch in row chunks.
        strategy: registered masking strategy name; ``strategy_params`` its resolved parameters.
        temperature: logits are cosine / temperature.
        labels: (B,) integer labels of the pairs, for the oracle strategy and diagnostics.
        generator: seeded CPU generator for random strategies.
        present: per column, (B,) bool False where a row has no text of its own in that column
            (a mixed batch whose sources differ in negatives), or None (all present). Absent
            candidates are removed like identical texts: never negatives, never counted.
        duplicates: "drop" removes every candidate with the text of the row's anchor or positive;
            "keep" removes only the row's own anchor/positive instance (the self column of the aa
            and pp blocks) and leaves exact duplicates to the strategy, as ``GISTEmbedLoss`` does
            (a duplicate of the positive has the positive's guide similarity: a negative at margin 0).
    """
    sims = _cat_blocks(student, blocks, rows)  # (b, N)
    widths = [student[b.col].shape[0] for b in blocks]
    # ap is the first block in every layout: positive i sits in column i
    targets = torch.arange(student[0].shape[0], device=student[0].device)[rows]  # (b,)
    positive = torch.zeros_like(sims, dtype=torch.bool)  # (b, N)
    positive[torch.arange(len(targets)), targets] = True
    guide_sims = _cat_blocks(guide, blocks, rows) if guide is not None else None  # (b, N)
    same_label = _same_label(labels, blocks, rows) if labels is not None else None  # (b, N)
    pair = _own_columns(blocks, widths, targets, "pair")  # (b, N), the pair's copy in pa
    identical = _identical(text_ids, blocks, widths, targets, rows, duplicates, present)  # (b, N)
    identical = identical & ~positive & ~pair  # (b, N)
    candidates = Candidates(
        student=sims.detach(),
        student_pos=sims.detach().gather(1, targets.unsqueeze(1)),  # (b, 1)
        positive=positive,
        guide=guide_sims,
        guide_pos=guide_sims.gather(1, targets.unsqueeze(1)) if guide_sims is not None else None,  # (b, 1)
        same_label=same_label,
        generator=generator,
        identical=identical | pair,  # the pair is no candidate for the strategy either
        block=tuple(b.name for b, width in zip(blocks, widths, strict=True) for _ in range(width)),
    )
    drop = drop_mask(strategy, candidates, strategy_params) & ~(positive | pair)  # (b, N), both protected
    logits = sims.masked_fill(drop | identical, -torch.inf) / temperature  # (b, N)
    hard_negative = _own_columns(blocks, widths, targets, "negatives")  # (b, N)
    return RowScores(
        logits,
        targets,
        drop,
        identical,
        positive,
        same_label,
        widths,
        sims,
        guide_sims,
        hard_negative,
        candidates,
        pair if any(_is_own(b, "pair") for b in blocks) else None,
    )


def partitions(scores: RowScores, blocks: Sequence[Block]) -> list[RowScores]:
    """``partition="per_direction"``: one ``RowScores`` per direction of the row, each with its positive.

    query_to_doc keeps ``ap`` and ``an*`` (the target in ``ap``); doc_to_query keeps ``pa`` (the target
    is the pair's own column). The strategy has masked the whole row first. MNRL refuses
    query_to_query and doc_to_doc here (their pools hold no positive), so these two are the only ones.
    """
    names = [direction(b) for b, width in zip(blocks, scores.widths, strict=True) for _ in range(width)]
    parts = []
    for name in dict.fromkeys(names):
        keep = torch.tensor([n == name for n in names], device=scores.logits.device)  # (N,)
        widths = [w for b, w in zip(blocks, scores.widths, strict=True) if direction(b) == name]
        part = scores.columns(keep, widths)
        if name == "doc_to_query":
            assert scores.pair is not None, "a pa block has its pair column"
            part.positive = scores.pair[:, keep]
            part.targets = part.positive.long().argmax(dim=1)  # (b,)
            part.identical = part.identical & ~part.positive
        parts.append(part)
    return parts


def _identical(
    text_ids: Sequence[Tensor],
    blocks: Sequence[Block],
    widths: Sequence[int],
    targets: Tensor,
    rows: slice,
    duplicates: str,
    present: Sequence[Tensor | None] | None,
) -> Tensor:
    """(b, N) True at candidates that are no negatives of their row: its own texts (with "drop", any
    candidate with the text of its anchor or positive; always its own columns of aa, pp and pn*), or
    absent ones.

    The row's own positive may be marked too; ``score_rows`` unmarks it.
    """
    if duplicates == "keep":
        identical = _own_columns(blocks, widths, targets, "self")  # (b, N)
    else:
        candidate_ids = torch.cat([text_ids[b.col] for b in blocks])  # (N,)
        identical = (candidate_ids == text_ids[0][rows].unsqueeze(1)) | (
            candidate_ids == text_ids[1][rows].unsqueeze(1)
        )  # (b, N)
        identical |= _own_columns(blocks, widths, targets, "self")  # pn*: the pair's own negatives
    if present is not None and any(p is not None for p in present):
        columns = [
            p if p is not None else torch.ones_like(i, dtype=torch.bool)
            for p, i in zip(present, text_ids, strict=True)
        ]
        candidate_present = torch.cat([columns[b.col] for b in blocks])  # (N,)
        identical |= ~candidate_present.to(identical.device).unsqueeze(0)
    return identical
