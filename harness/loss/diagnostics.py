"""Per-step diagnostics of the guided loss: what the masking strategy did to each batch.

Recorded once per training forward (gradients enabled), from the masks of ``blocks.score_rows``:

* ``drop_rate_<block>`` / ``drop_rate``: share of candidates the strategy dropped, per block and
  overall. The true positive and identical texts are not candidates and are not counted.
* ``negatives_kept_min`` / ``negatives_kept_mean``: negatives left per anchor (min / mean).
* ``anchors_without_negatives``: share of anchors left with none (their loss is 0).
* ``guide_seconds``: time spent producing the batch's guide vectors (cache lookup or online run).
* with labels, ``false_negative_precision`` / ``false_negative_recall``: precision and recall of
  the drop mask against the candidates that share the anchor's label (the true false negatives);
  a step where a ratio is undefined (nothing dropped, no label-sharing candidate) leaves it out.

``SourceTotals`` adds the same counts up over a whole run by the training source of each anchor
row (a mixed batch holds rows of several sources) and by block, so a reader sees where the guide
acts: ``gist-harness`` stores them in the run record as ``by_source``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import torch
from transformers import TrainerCallback

from harness.loss.blocks import Block, RowScores


class StepTally:
    """Counts summed over the row chunks of one forward pass."""

    def __init__(self, blocks: list[Block]) -> None:
        self.blocks = blocks
        self.eligible = torch.zeros(len(blocks), dtype=torch.long)
        self.dropped = torch.zeros(len(blocks), dtype=torch.long)
        self.kept_per_row: list[torch.Tensor] = []
        self.label_hits = self.label_drops = self.label_positives = 0
        self.has_labels = False
        self.guide_seconds = 0.0
        self.row_counts: list[tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor, bool]] = []
        """Per row chunk: row sources (b,), per block (b, 4) counts, kept negatives (b,), labelled."""

    def add(self, scores: RowScores, row_sources: torch.Tensor | None = None) -> None:
        eligible = scores.real  # (b, N)
        dropped = scores.drop & eligible  # (b, N)
        self._add_rows(scores, eligible, dropped, row_sources)
        for index, (e, d) in enumerate(
            zip(eligible.split(scores.widths, dim=1), dropped.split(scores.widths, dim=1), strict=True)
        ):
            self.eligible[index] += int(e.sum())
            self.dropped[index] += int(d.sum())
        self.kept_per_row.append((eligible & ~dropped).sum(dim=1).cpu())  # (b,)
        if scores.same_label is not None:
            self.has_labels = True
            same = scores.same_label & eligible  # (b, N)
            self.label_hits += int((dropped & same).sum())
            self.label_drops += int(dropped.sum())
            self.label_positives += int(same.sum())

    def _add_rows(
        self,
        scores: RowScores,
        eligible: torch.Tensor,
        dropped: torch.Tensor,
        row_sources: torch.Tensor | None,
    ) -> None:
        """Per-row counts by block: eligible, dropped, dropped sharing the label, sharing the label."""
        rows = eligible.shape[0]
        same = scores.same_label & eligible if scores.same_label is not None else None  # (b, N)
        zeros = torch.zeros(rows, dtype=torch.long, device=eligible.device)
        parts: dict[str, torch.Tensor] = {}
        begin = 0
        for block, width in zip(self.blocks, scores.widths, strict=True):
            cols = slice(begin, begin + width)
            begin += width
            e, d = eligible[:, cols], dropped[:, cols]  # (b, w)
            hits = (d & same[:, cols]).sum(1) if same is not None else zeros
            positives = same[:, cols].sum(1) if same is not None else zeros
            parts[block.name] = torch.stack([e.sum(1), d.sum(1), hits, positives], dim=1).cpu()  # (b, 4)
        sources = row_sources.cpu() if row_sources is not None else torch.full((rows,), -1, dtype=torch.long)
        kept = (eligible & ~dropped).sum(1).cpu()  # (b,)
        self.row_counts.append((sources, parts, kept, same is not None))

    def summary(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for block, e, d in zip(self.blocks, self.eligible.tolist(), self.dropped.tolist(), strict=True):
            out[f"drop_rate_{block.name}"] = d / e if e else 0.0
        total = int(self.eligible.sum())
        out["drop_rate"] = int(self.dropped.sum()) / total if total else 0.0
        kept = torch.cat(self.kept_per_row).float()  # (B,)
        out["negatives_kept_min"] = float(kept.min())
        out["negatives_kept_mean"] = float(kept.mean())
        out["anchors_without_negatives"] = float((kept == 0).float().mean())
        out["guide_seconds"] = self.guide_seconds
        if self.has_labels:
            if self.label_drops:
                out["false_negative_precision"] = self.label_hits / self.label_drops
            if self.label_positives:
                out["false_negative_recall"] = self.label_hits / self.label_positives
        return out


_COUNTS = ("eligible", "dropped", "fn_hits", "fn_positives")


class SourceTotals:
    """Counts of every training step added up by anchor source and block, over a whole run."""

    def __init__(self) -> None:
        self.blocks: dict[int, dict[str, torch.Tensor]] = {}  # source -> block -> (4,) counts
        self.kept: dict[int, int] = {}
        self.rows: dict[int, int] = {}
        self.labelled: set[int] = set()

    def add(self, tally: StepTally) -> None:
        for sources, parts, kept, labelled in tally.row_counts:
            for source in sources.unique().tolist():
                mine = sources == source  # (b,)
                per_block = self.blocks.setdefault(source, {})
                for name, counts in parts.items():
                    per_block[name] = per_block.get(name, torch.zeros(4, dtype=torch.long)) + counts[
                        mine
                    ].sum(0)
                self.kept[source] = self.kept.get(source, 0) + int(kept[mine].sum())
                self.rows[source] = self.rows.get(source, 0) + int(mine.sum())
                if labelled:
                    self.labelled.add(source)

    def summary(self, names: tuple[str, ...] | list[str] = ()) -> dict[str, dict[str, float]]:
        """Per source (by name; ``?`` unknown): anchor rows, mean negatives kept per anchor, drop
        rate overall and per block (``drop_rate_<block>``, with ``candidates_<block>`` counted), and
        with labels false-negative precision and recall overall and per block (where defined)."""
        out: dict[str, dict[str, float]] = {}
        for source in sorted(self.blocks):
            name = names[source] if 0 <= source < len(names) else "?"
            per_block = self.blocks[source]
            total = sum(per_block.values(), torch.zeros(4, dtype=torch.long)).tolist()
            row: dict[str, float] = {
                "rows": float(self.rows[source]),
                "negatives_kept_mean": self.kept[source] / self.rows[source] if self.rows[source] else 0.0,
            }
            for label, counts in (("", total), *((f"_{b}", c.tolist()) for b, c in per_block.items())):
                eligible, dropped, hits, positives = counts
                row[f"drop_rate{label}"] = dropped / eligible if eligible else 0.0
                if label:
                    row[f"candidates{label}"] = float(eligible)
                if source in self.labelled:
                    if dropped:
                        row[f"fn_precision{label}"] = hits / dropped
                    if positives:
                        row[f"fn_recall{label}"] = hits / positives
            out[name] = row
        return out


class DiagnosticsLog:
    """Per-step diagnostics: ``history`` keeps every step, ``pop()`` averages those since last call."""

    def __init__(self) -> None:
        self.history: list[dict[str, float]] = []
        self._since_pop = 0

    def record(self, step: dict[str, float]) -> None:
        self.history.append(step)
        self._since_pop += 1

    def pop(self) -> dict[str, float]:
        steps = self.history[len(self.history) - self._since_pop :] if self._since_pop else []
        self._since_pop = 0
        sums: dict[str, float] = defaultdict(float)
        counts: dict[str, int] = defaultdict(int)
        for step in steps:
            for key, value in step.items():
                if not math.isnan(value):
                    sums[key] += value
                    counts[key] += 1
        out = {key: sums[key] / counts[key] for key in sums}
        if "negatives_kept_min" in out:  # the min over the logging window, not the mean of minima
            out["negatives_kept_min"] = min(s["negatives_kept_min"] for s in steps)
        return out


class DiagnosticsCallback(TrainerCallback):
    """Adds ``loss.pop_diagnostics()`` (prefixed ``gist_``) to each training log of the Trainer.

    Args:
        loss: a ``GuidedInBatchLoss`` (anything with ``pop_diagnostics()``).
        prefix: key prefix in the logs.
    """

    def __init__(self, loss: Any, prefix: str = "gist_") -> None:
        self.loss = loss
        self.prefix = prefix

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001 - transformers' signature
        if logs is None or "loss" not in logs:
            return control
        extra = {f"{self.prefix}{k}": round(v, 6) for k, v in self.loss.pop_diagnostics().items()}
        logs.update(extra)
        # Trainer.log appended a copy of the logs to log_history before calling back: update it too.
        if state.log_history and state.log_history[-1].get("step") == state.global_step:
            state.log_history[-1].update(extra)
        return control
