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
rank logs its own anchors' rows (against every rank's candidates). ``same_label`` is None on a row
without a label (label -1: an unlabelled source such as SNLI beside labelled pairs), so a same-class
share counts the labelled rows only.

**Shadow strategy: which drops differ between two rules.** ``DropLog(shadow=Shadow("student_topk_at_rate"))``
also runs a second masking strategy on every row chunk, on exactly the ``Candidates`` the trained
strategy read (``RowScores.candidates``: the same batch, the same student at the same step, the same
guide vectors, labels, identical texts and blocks), and logs the union of the two drop sets, each pair
marked ``dropped_by`` = ``applied``, ``shadow`` or ``both``. The shadow is never applied: it reads
detached tensors and its result goes to the log only, so the loss, its gradients and the trained
strategy's random draws are those of a run without a log. A random shadow draws from a generator of
its own, seeded as the trained loss's would be (``seed + rank``), so with the trained strategy's own
name and seed it reproduces that strategy's draws exactly.

Why one run with a shadow rather than two runs compared afterwards: two arms trained with the same
seed do see the same batches (the train set depends on batching, negatives, batch size and sampler,
not on the strategy, and random strategies draw from the loss's own generator, not the sampler's;
``tests/test_drop_compare.py`` checks it with the real trainer),
but only the first step's student is shared; after it the students differ, so a student-dependent
rule (``student_topk_at_rate``) would pick from another student than the one GIST's run trained,
and any difference in drops mixes "the rules pick differently" with "the runs diverged". In one run
both rules answer the same question on the same matrix, cell by cell, so ``compare_drops`` needs no
matching of pairs across runs. What it does not show: what the other rule's drops would have done
to training (that is the arms' comparison in a study).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from harness.errors import UserError
from harness.loss import distributed
from harness.loss.blocks import Block, RowScores
from harness.masking import Candidates, drop_mask, needs, resolve_params

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
"""The columns every drops log has (logs written before shadows lack ``dropped_by``: all applied)."""
DROPPED_BY = ("applied", "shadow", "both")
"""``dropped_by``: the trained strategy only, the shadow only, or both (see the module doc)."""


class Shadow:
    """A masking strategy run beside the trained one on the same candidates, never applied.

    Args:
        strategy: a registered strategy name.
        params: its parameters over its defaults (checked: ``harness.masking.resolve_params``).
        seed: the seed of its own random generator (``seed + rank`` on rank ``rank``), as the
            trained loss seeds its strategy's.
    """

    def __init__(self, strategy: str, params: Mapping[str, Any] | None = None, seed: int = 0) -> None:
        self.strategy = strategy
        self.params = resolve_params(strategy, params)
        self.seed = seed
        self.needs_guide, self.needs_labels = needs(strategy, self.params)
        self._generator: torch.Generator | None = None
        self._rank = -1

    def __str__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.strategy}({settings})"

    def mask(self, candidates: Candidates) -> Tensor:
        """The shadow's ``(b, N)`` drop mask on the candidates the trained strategy read.

        Raises:
            UserError: the shadow reads a guide or labels the trained loss does not have.
        """
        if self.needs_guide and candidates.guide is None:
            raise UserError(
                f"shadow strategy {self.strategy!r} needs guide similarities, and the trained arm reads "
                "none (its strategy and objective use no guide)"
            )
        if self.needs_labels and candidates.same_label is None:
            raise UserError(
                f"shadow strategy {self.strategy!r} needs an integer 'label' column in the training data"
            )
        return drop_mask(self.strategy, replace(candidates, generator=self._rank_generator()), self.params)

    def _rank_generator(self) -> torch.Generator:
        """Its own generator, seeded ``seed + rank`` when first used on a rank (as the loss's is)."""
        if self._generator is None or self._rank != distributed.rank():
            self._rank = distributed.rank()
            self._generator = torch.Generator().manual_seed(distributed.rank_seed(self.seed))
        return self._generator


class DropLog:
    """Dropped (anchor, candidate) pairs of a training run (see the module doc)."""

    def __init__(self, shadow: Shadow | None = None) -> None:
        self.shadow = shadow
        """A second strategy whose drops are logged beside the trained one's, or None."""
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
        """Records the dropped candidates of loss rows ``rows`` (``scores`` from ``score_rows``):
        the trained strategy's and, with a shadow, the shadow's (``dropped_by``)."""
        real = scores.real  # (b, N) the real negatives
        applied = scores.drop & real  # (b, N)
        if self.shadow is not None:
            assert scores.candidates is not None, "score_rows hands over what the strategy read"
            shadow = self.shadow.mask(scores.candidates).to(real.device) & real  # (b, N)
        else:
            shadow = torch.zeros_like(applied)  # (b, N)
        row, col = (t.cpu() for t in (applied | shadow).nonzero(as_tuple=True))
        if not len(row):
            return
        candidate_ids = torch.cat([text_ids[b.col] for b in blocks]).cpu()  # (N,)
        block_of = np.repeat([b.name for b in blocks], scores.widths)  # (N,)
        anchors, positives = text_ids[0][rows].cpu(), text_ids[1][rows].cpu()  # (b,)
        student = scores.sims.detach().float().cpu() if scores.sims is not None else None  # (b, N)
        targets = scores.targets.cpu()
        guide = scores.guide.float().cpu() if scores.guide is not None else None
        nan = np.full(len(row), np.nan)
        by = applied.cpu()[row, col].numpy().astype(np.int8) + 2 * shadow.cpu()[row, col].numpy()  # 1, 2, 3
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
                "same_label": _same_label(scores, row, col, targets)
                if scores.same_label is not None
                else nan,
                "dropped_by": by - 1,  # index into DROPPED_BY
            }
        )

    def frame(self, texts: Mapping[int, str]) -> Any:
        """A ``pandas.DataFrame``: the logged columns (``source`` by name, ``""`` when unknown;
        ``dropped_by`` by name) plus the ``anchor``, ``positive`` and ``candidate`` texts (None where
        ``texts`` lacks the id)."""
        import pandas as pd

        columns = [*COLUMNS, "dropped_by"]
        if self._parts:
            data = {c: np.concatenate([p[c] for p in self._parts]) for c in columns}
        else:
            data = {c: np.array([], dtype=int if c == "dropped_by" else float) for c in columns}
        frame = pd.DataFrame(data, columns=columns)
        frame["same_label"] = frame["same_label"].map({1.0: True, 0.0: False})
        names = dict(enumerate(self.source_names))
        frame["source"] = [names.get(int(s), "") if s >= 0 else "" for s in frame["source"]]
        frame["dropped_by"] = [DROPPED_BY[int(i)] for i in frame["dropped_by"]]
        for column in ("anchor", "positive", "candidate"):
            frame[column] = [texts.get(int(i)) for i in frame[f"{column}_id"]]
        return frame


def _same_label(scores: RowScores, row: Tensor, col: Tensor, targets: Tensor) -> np.ndarray:
    """1.0 / 0.0 where the candidate shares / does not share the row's label; NaN on an unlabelled row.

    A row is labelled exactly when its own positive shares its label (``blocks._same_label``: a
    label -1 matches nothing), so the positive's cell tells labelled rows apart.
    """
    assert scores.same_label is not None
    same = scores.same_label.cpu()
    labelled = same[row, targets[row]].numpy()
    return np.where(labelled, same[row, col].numpy().astype(float), np.nan)


def compare_drops(frame: Any) -> Any:
    """Two drop sets side by side, per source and block and per source over all blocks (``all``).

    ``frame``: a drops log with a shadow (``dropped_by``). Per group: ``applied`` and ``shadow``,
    the size of each set; ``both``, ``only_applied``, ``only_shadow``; ``jaccard`` = both / union;
    ``same_label_*``: the share of each set (applied, shadow, only_applied, only_shadow) that shares
    the anchor's label, over the labelled rows (None where the group has none).
    """
    import pandas as pd

    by = frame.dropped_by
    marks = frame.assign(
        applied=by.isin(("applied", "both")),
        shadow=by.isin(("shadow", "both")),
        both=by.eq("both"),
        only_applied=by.eq("applied"),
        only_shadow=by.eq("shadow"),
    )
    sets = ("applied", "shadow", "only_applied", "only_shadow")
    groups = [marks.groupby(["source", "block"]), marks.assign(block="all").groupby(["source", "block"])]
    rows = []
    for grouped in groups:
        for (source, block), part in grouped:
            counts = {
                k: int(part[k].sum()) for k in ("applied", "shadow", "both", "only_applied", "only_shadow")
            }
            union = counts["applied"] + counts["shadow"] - counts["both"]
            row = {
                "source": source,
                "block": block,
                **counts,
                "jaccard": counts["both"] / union if union else None,
            }
            for name in sets:
                labelled = part.same_label[part[name]].dropna()
                row[f"same_label_{name}"] = float(labelled.astype(float).mean()) if len(labelled) else None
            rows.append(row)
    table = pd.DataFrame(rows).assign(_all=lambda t: t.block == "all")
    return table.sort_values(["source", "_all", "block"]).drop(columns="_all").reset_index(drop=True)


def texts_by_id(texts: Iterable[str]) -> dict[int, str]:
    """Each text under its collator text id (``harness.loss.collator.text_ids``)."""
    from harness.loss.collator import text_ids

    unique = list(dict.fromkeys(texts))
    return dict(zip(text_ids(unique).tolist(), unique, strict=True)) if unique else {}
