"""The guide-quality table: how much each arm's strategy masks, how well, and at what cost.

Per arm, over its COMPLETE trials that stored a run record: rates and counts are the mean over logging
steps, then over seeds; the minimum of negatives kept is the minimum over every step and seed; the
cache build time is the largest over seeds (the first seed builds the guide cache, later ones reuse it);
the step overhead compares mean seconds per step with the baseline arm's.
"""

from __future__ import annotations

from collections import defaultdict

from harness.report.load import arm_of
from harness.report.tables import Cell, Table
from harness.results import RunRecord, StudyResults


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _run_means(run: RunRecord, name: str) -> float | None:
    return _mean([getattr(d, name) for d in run.diagnostics if getattr(d, name) is not None])


def _over_seeds(runs: list[RunRecord], name: str) -> float | None:
    return _mean([v for v in (_run_means(r, name) for r in runs) if v is not None])


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f}%"


def _num(v: float | None, digits: int = 1) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def _reads_guide(config: dict) -> bool:
    """Whether a trial's loss objective reads guide similarities (``harness.loss.objectives``)."""
    objective = config.get("objective", "infonce")
    params = config.get("objective_params") or {}
    return objective in ("distill_kl", "margin_mse") or (
        objective == "hardness" and params.get("sims") == "guide"
    )


def guide_table(results: StudyResults) -> Table:
    """Guide, strategy, drop rate, negatives kept, false-negative precision/recall and costs per arm."""
    runs: dict[str, list[RunRecord]] = defaultdict(list)
    names: dict[str, tuple[str, str]] = {}
    for r in results.trials:
        if r.trial.state == "COMPLETE" and r.run is not None:
            runs[arm_of(r)].append(r.run)
            guide = r.trial.guide or "—"
            objective = str(r.trial.config.get("objective", "infonce"))
            if r.trial.strategy == "none" and guide not in ("—", "none") and not _reads_guide(r.trial.config):
                guide += " (unused)"  # InfoNCE masks nothing, whatever guide the pair names
            strategy = (r.trial.strategy or "—") + (f" + {objective}" if objective != "infonce" else "")
            names.setdefault(arm_of(r), (guide, strategy))
    baseline = results.manifest.baseline_arm
    base_step = _over_seeds(runs.get(baseline, []), "step_seconds")
    columns = ["Arm", "Guide", "Strategy", "Drop rate", "Kept/anchor (mean)", "Kept/anchor (min)",
               "Anchors w/o negatives", "FN precision", "FN recall", "Cache build (s)", "Guide ms/step",
               "Step overhead vs baseline", "Peak memory (MB)"]  # fmt: skip
    rows = []
    for arm, arm_runs in runs.items():
        mins = [d.kept_per_anchor_min for r in arm_runs for d in r.diagnostics]
        caches = [r.guide_cache_seconds for r in arm_runs if r.guide_cache_seconds is not None]
        memory = [r.peak_memory_mb for r in arm_runs if r.peak_memory_mb is not None]
        step = _over_seeds(arm_runs, "step_seconds")
        guide_s = _over_seeds(arm_runs, "guide_seconds")
        if arm == baseline or step is None or not base_step:
            overhead = "—"
        else:
            overhead = f"{1000 * (step - base_step):+.0f} ms ({100 * (step / base_step - 1):+.1f}%)"
        rows.append([
            Cell(arm, numeric=False), Cell(names[arm][0], numeric=False), Cell(names[arm][1], numeric=False),
            Cell(_pct(_over_seeds(arm_runs, "drop_rate"))),
            Cell(_num(_over_seeds(arm_runs, "kept_per_anchor_mean"))),
            Cell(_num(min(mins), 0) if mins else "—"),
            Cell(_pct(_over_seeds(arm_runs, "share_no_negatives"))),
            Cell(_num(_over_seeds(arm_runs, "fn_precision"), 2)),
            Cell(_num(_over_seeds(arm_runs, "fn_recall"), 2)),
            Cell(_num(max(caches)) if caches else "—"),
            Cell(_num(None if guide_s is None else 1000 * guide_s)),
            Cell(overhead),
            Cell(_num(max(memory), 0) if memory else "—"),
        ])  # fmt: skip
    notes = [
        "Rates are means over logging steps, then over seeds; 'min' is the minimum over all steps and seeds.",
        "FN precision: share of dropped candidates that are true false negatives; FN recall: share of true "
        "false negatives dropped; '—' where the training data has no labels or nothing was dropped.",
        "Cache build: the largest over seeds (the first seed builds the guide cache, later seeds reuse it).",
    ]
    return Table("guide", "Guide quality", columns, rows, notes)
