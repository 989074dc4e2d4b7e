"""The guide-quality table: how much each arm's strategy masks, how well, and at what cost.

Per arm, over its COMPLETE trials that stored a run record: rates and counts are the mean over logging
steps, then over seeds; the minimum of negatives kept is the minimum over every step and seed; the
cache build time is the largest over seeds (the first seed builds the guide cache, later ones reuse it);
the step overhead compares mean seconds per step with the baseline arm's.
"""

from __future__ import annotations

from collections import defaultdict

from harness.report.by_source import fn_lift, label_counts, with_interval
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
    """Whether a trial's loss objective reads guide similarities (``harness.loss.objectives``), or its
    guide mined its negatives (``[train] mine``)."""
    objective = config.get("objective", "infonce")
    params = config.get("objective_params") or {}
    return (
        objective in ("distill_kl", "margin_mse")
        or (objective == "hardness" and params.get("sims") == "guide")
        or bool(config.get("mine"))
    )


def run_fn_lift(run: RunRecord) -> float | None:
    """FN lift of one run over its labelled sources (``by_source``): hits over the hits random drops at
    each source's own rate would expect; None without labelled sources or per-source records."""
    by_source = getattr(run, "by_source", None) or {}
    labelled = [v for v in by_source.values() if "fn_precision" in v or "fn_recall" in v]
    return fn_lift([label_counts(v) for v in labelled])


def guide_table(results: StudyResults) -> Table:
    """Guide, strategy, drop rate, negatives kept, false-negative precision and lift, and costs per arm."""
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
               "Anchors w/o negatives", "FN precision", "FN lift", "Cache build (s)", "Guide ms/step",
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
            Cell(with_interval([v for v in map(run_fn_lift, arm_runs) if v is not None])),
            Cell(_num(max(caches)) if caches else "—"),
            Cell(_num(None if guide_s is None else 1000 * guide_s)),
            Cell(overhead),
            Cell(_num(max(memory), 0) if memory else "—"),
        ])  # fmt: skip
    notes = [
        _RATES_NOTE,
        "FN precision: share of dropped candidates that share the anchor's label, the mean over logging "
        "steps, then seeds. FN lift: over the run's labelled sources, the same-class drops over the number "
        "random drops at each source's own rate would expect: 1 for random drops, above 1 where the guide "
        "finds same-class candidates; mean ± 95% t half-width over seeds; it needs the per-source records "
        "(next table, whose note says why FN recall is no longer shown). '—' without labels or drops.",
        _CACHE_NOTE,
    ]
    return Table("guide", "Guide quality", columns, rows, notes)


_RATES_NOTE = (
    "Rates are means over logging steps, then over seeds; 'min' is the minimum over all steps and seeds."
)
_CACHE_NOTE = (
    "Cache build: the largest over seeds (the first seed builds the guide cache, later seeds reuse it)."
)


def recovered_notes(columns: list[str]) -> list[str]:
    """The notes of a guide table an older report kept only as rendered, for the columns it has."""
    if "FN recall" not in columns:
        return [_RATES_NOTE, _CACHE_NOTE]
    fn = (
        "FN precision: share of dropped candidates that share the anchor's label; FN recall (this older "
        "table's column): share of the same-class candidates dropped. FN recall cannot rank guides: the "
        "positive is itself a random same-class text, so a guide that tells classes apart drops about half "
        "the same-class candidates however good it is otherwise, and random drops' recall is their drop "
        "rate. Reports now show FN lift instead, which needs the per-source records these runs did not keep."
    )
    return [_RATES_NOTE, fn, _CACHE_NOTE]
