"""Which in-batch candidates a masking strategy dropped, one row per dropped (anchor, candidate) pair.

The loss's diagnostics count drops by block and source; a ``DropLog`` attached to the loss
(``loss.drop_log = DropLog()``) also records *which* texts were dropped, so a study can read what its
guide took for false negatives. Every training step (a forward pass with gradients) adds, for each
dropped candidate: the step, the row's anchor and positive text ids, the candidate's text id, its
block (``ap``, ``aa``, ``pp``, ``an1``...), the guide's and the student's cosine to the anchor (and of
the anchor to its own positive), whether the candidate shares the row's label, and the row's source.
Identical texts and the true positive are never drops (the loss removes them for every strategy), so
they are not logged.

Text ids are the collator's content hashes (``harness.loss.collator.text_ids``); ``frame`` turns them
back into texts with a map built from the training set (``texts_by_id``). With several processes each
rank logs its own anchors' rows (against every rank's candidates).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from harness.loss.blocks import Block, RowScores

COLUMNS = (
    "step",
    "source",
    "block",
    "anchor_id",
    "positive_id",
    "candidate_id",
    "guide_sim",
    "guide_pos",
    "student_sim",
    "student_pos",
    "same_label",
)


class DropLog:
    """Dropped (anchor, candidate) pairs of a training run (see the module doc)."""

    def __init__(self) -> None:
        self.step = -1
        self.source_names: tuple[str, ...] = ()
        """Names of the source indices (``train()`` sets them from the training set)."""
        self._parts: list[dict[str, np.ndarray]] = []

    def __len__(self) -> int:
        return sum(len(p["step"]) for p in self._parts)

    def next_step(self) -> None:
        """Called by the loss at the start of each training forward pass."""
        self.step += 1

    def add(
        self,
        scores: RowScores,
        blocks: Sequence[Block],
        text_ids: Sequence[torch.Tensor],
        rows: slice,
        row_sources: torch.Tensor | None = None,
    ) -> None:
        """Records the dropped candidates of loss rows ``rows`` (``scores`` from ``score_rows``)."""
        dropped = scores.drop & ~(scores.positive | scores.identical)  # (b, N)
        row, col = (t.cpu() for t in dropped.nonzero(as_tuple=True))
        if not len(row):
            return
        candidate_ids = torch.cat([text_ids[b.col] for b in blocks]).cpu()  # (N,)
        block_of = np.repeat([b.name for b in blocks], scores.widths)  # (N,)
        anchors, positives = text_ids[0][rows].cpu(), text_ids[1][rows].cpu()  # (b,)
        student = scores.sims.detach().float().cpu() if scores.sims is not None else None  # (b, N)
        targets = scores.targets.cpu()
        guide = scores.guide.float().cpu() if scores.guide is not None else None
        nan = np.full(len(row), np.nan)
        self._parts.append(
            {
                "step": np.full(len(row), self.step),
                "source": (
                    row_sources.cpu()[row].numpy() if row_sources is not None else np.full(len(row), -1)
                ),
                "block": block_of[col.numpy()],
                "anchor_id": anchors[row].numpy(),
                "positive_id": positives[row].numpy(),
                "candidate_id": candidate_ids[col].numpy(),
                "guide_sim": guide[row, col].numpy() if guide is not None else nan,
                "guide_pos": guide[row, targets[row]].numpy() if guide is not None else nan,
                "student_sim": student[row, col].numpy() if student is not None else nan,
                "student_pos": student[row, targets[row]].numpy() if student is not None else nan,
                "same_label": (
                    scores.same_label.cpu()[row, col].numpy().astype(float)
                    if scores.same_label is not None
                    else nan
                ),
            }
        )

    def frame(self, texts: Mapping[int, str]) -> Any:
        """A ``pandas.DataFrame``: the logged columns (``source`` by name, ``""`` when unknown) plus
        the ``anchor``, ``positive`` and ``candidate`` texts (None where ``texts`` lacks the id)."""
        import pandas as pd

        if self._parts:
            data = {c: np.concatenate([p[c] for p in self._parts]) for c in COLUMNS}
        else:
            data = {c: np.array([]) for c in COLUMNS}
        frame = pd.DataFrame(data, columns=list(COLUMNS))
        frame["same_label"] = frame["same_label"].map({1.0: True, 0.0: False})
        names = dict(enumerate(self.source_names))
        frame["source"] = [names.get(int(s), "") if s >= 0 else "" for s in frame["source"]]
        for column in ("anchor", "positive", "candidate"):
            frame[column] = [texts.get(int(i)) for i in frame[f"{column}_id"]]
        return frame


def texts_by_id(texts: Iterable[str]) -> dict[int, str]:
    """Each text under its collator text id (``harness.loss.collator.text_ids``)."""
    from harness.loss.collator import text_ids

    unique = list(dict.fromkeys(texts))
    return dict(zip(text_ids(unique).tolist(), unique, strict=True)) if unique else {}
