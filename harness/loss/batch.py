"""One forward pass of the guided loss, besides the student's embeddings: ids, guide vectors, labels.

``split_features`` takes the collator's extra keys (``harness.loss.collator``) off the features the
student embeds. ``Batch`` carries what the scoring of every row chunk reads; across processes,
``gathered`` replaces it by every rank's rows (``harness.loss.distributed``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor

from harness.loss import distributed
from harness.loss.blocks import Block, RowScores
from harness.loss.collator import GUIDE_EMBEDDING, GUIDE_SECONDS, PRESENT, SOURCE, TEXT_ID
from harness.loss.diagnostics import StepTally
from harness.loss.drop_log import DropLog


@dataclass(frozen=True)
class Collated:
    """A batch as the collator hands it over, its extra keys taken off the features.

    Attributes:
        features: one feature dict per column (anchor, positive, negatives...), for the student.
        text_ids: one (B,) text id per column, or None without the collator.
        guide: one (B, D_guide) cached guide vector per column, or None.
        guide_seconds: seconds the collator spent looking the guide vectors up.
        present: one (B,) bool mask (or None) per column, or None when every row has every column.
        sources: the (B,) training source of each row, or None.
    """

    features: list[dict[str, Tensor]]
    text_ids: list[Tensor] | None
    guide: list[Tensor] | None
    guide_seconds: float
    present: list[Tensor | None] | None
    sources: Tensor | None


def split_features(sentence_features: Iterable[dict[str, Tensor]]) -> Collated:
    """Pops the collator's keys (see ``collator``) off shallow copies of the features."""
    features, ids, guide, present = [], [], [], []
    sources: Tensor | None = None
    seconds = 0.0
    for feature in sentence_features:
        feature = dict(feature)
        ids.append(feature.pop(TEXT_ID, None))
        guide.append(feature.pop(GUIDE_EMBEDDING, None))
        present.append(feature.pop(PRESENT, None))
        found = feature.pop(SOURCE, None)
        sources = found if found is not None else sources
        spent = feature.pop(GUIDE_SECONDS, None)
        seconds += float(spent.sum()) if spent is not None else 0.0
        features.append(feature)
    return Collated(
        features=features,
        text_ids=cast("list[Tensor]", ids) if all(i is not None for i in ids) else None,
        guide=cast("list[Tensor]", guide) if all(g is not None for g in guide) else None,
        guide_seconds=seconds,
        present=present if any(p is not None for p in present) else None,
        sources=sources,
    )


def class_labels(labels: Tensor | None) -> Tensor | None:
    """Integer class labels, or None: float or multi-dimensional labels are scores (e.g. STS)."""
    if labels is not None and (labels.is_floating_point() or labels.ndim != 1):
        return None  # scores, not class labels: nothing to compare
    return labels


def token_ids(features: list[dict[str, Tensor]]) -> list[Tensor]:
    """Without the collator's text ids, identical token sequences count as identical texts."""
    maybe_ids = [f.get("input_ids") for f in features]
    if not all(isinstance(t, Tensor) and t.ndim == 2 for t in maybe_ids):
        sizes = [
            len(f["offsets"]) if "offsets" in f else len(next(v for v in f.values() if isinstance(v, Tensor)))
            for f in features
        ]
        return list(torch.arange(sum(sizes)).split(sizes))  # every text distinct
    input_ids = cast("list[Tensor]", maybe_ids)
    width = max(t.shape[1] for t in input_ids)
    rows = torch.cat(
        [
            F.pad(t * f.get("attention_mask", torch.ones_like(t)), (0, width - t.shape[1]))
            for t, f in zip(input_ids, features, strict=True)
        ]
    )  # (columns * B, L)
    _, inverse = torch.unique(rows, dim=0, return_inverse=True)
    return list(inverse.split([t.shape[0] for t in input_ids]))


@dataclass(frozen=True)
class Batch:
    """What scoring a forward pass's rows reads besides the student's embeddings.

    Attributes:
        text_ids: one (B,) text id per column; equal ids mean identical texts.
        guide: one (B, D_guide) guide vector per column, or None when nothing reads the guide.
        labels: (B,) integer class labels, or None.
        present: per column, a (B,) bool mask of rows with a text there (or None), or None.
        sources: the (B,) training source of each row, or None.
        blocks: the similarity blocks of a loss row (``blocks.layout``).
        tally: the step's diagnostics counts, added to by every row chunk.
        drop_log: the run's log of dropped candidates, on a training step where one is kept.
        gather: whether the rows are every rank's (``gathered``); then B is the whole batch.
        offset: the first of this rank's own rows (its anchors) among them.
    """

    text_ids: list[Tensor]
    guide: list[Tensor] | None
    labels: Tensor | None
    present: list[Tensor | None] | None
    sources: Tensor | None
    blocks: list[Block]
    tally: StepTally
    drop_log: DropLog | None = None
    gather: bool = False
    offset: int = 0

    def on(self, device: torch.device, labels: Tensor | None) -> Batch:
        """The batch with its guide vectors, text ids and ``labels`` on ``device`` (the student's)."""
        return replace(
            self,
            guide=[g.to(device) for g in self.guide] if self.guide is not None else None,
            text_ids=[i.to(device) for i in self.text_ids],
            labels=labels.to(device) if labels is not None else None,
        )

    def record(self, scores: RowScores, rows: slice) -> None:
        """Adds one row chunk's masks to the step's diagnostics and, where kept, the drop log."""
        sources = self.sources[rows] if self.sources is not None else None
        self.tally.add(scores, sources)
        if self.drop_log is not None:
            self.drop_log.add(scores, self.blocks, self.text_ids, rows, sources)


def gathered(batch: Batch, columns: int) -> Batch:
    """Every rank's rows of ``batch``, in rank order, so that masks and logits span the whole batch.

    Raises:
        ValueError: on every rank, when the ranks' batches differ in shape or optional inputs.
    """
    local_rows = int(batch.text_ids[0].shape[0])
    extra: dict[str, Any] = {"present": batch.present, "sources": batch.sources}
    distributed.check_same_layout(
        local_rows, columns, batch.text_ids[0].device, labels=batch.labels, guide=batch.guide, **extra
    )
    text_ids = [distributed.gather(i) for i in batch.text_ids]
    guide = distributed.gather_optional(batch.guide)
    labels = distributed.gather(batch.labels) if batch.labels is not None else None
    extra = distributed.gather_extra(extra)
    return replace(
        batch,
        text_ids=text_ids,
        guide=guide,
        labels=labels,
        present=extra["present"],
        sources=extra["sources"],
        gather=True,
        offset=distributed.rank() * local_rows,
    )
