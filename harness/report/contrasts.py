"""The declared contrasts of a report, computed: aggregates, seed-level tests, Holm, task-level evidence.

For each contrast ``arm − reference`` (see :mod:`harness.report.settings`) and each aggregate:

* seed level: the aggregate of each seed's scores, paired over the seeds both arms completed; mean
  Δ, its 95% t interval, d_z, the paired t-test p, and p adjusted by Holm over the family (the primary
  contrasts, separately for each aggregate; the secondary contrasts form a second family);
* task level: a two-level bootstrap (tasks within categories × seeds) of the aggregate Δ, the
  probability of improvement, and a sign test over tasks;
* per task: the paired Δ over seeds with its p-value and Benjamini–Hochberg q over the tasks.

Aggregates: the mean over categories (MTEB's aggregate and the headline), the mean over tasks, and,
when some tasks are in domain (†, :mod:`harness.report.domain`), the mean over categories of the
out-of-domain tasks only.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.report.load import ScoreIndex
from harness.report.settings import Contrast, ReportSettings
from harness.report.stats import (
    Bootstrap,
    PairedDelta,
    SignTest,
    aggregate,
    benjamini_hochberg,
    bootstrap_aggregate,
    holm,
    min_detectable_effect,
    paired_delta,
    probability_of_improvement,
    sign_test,
)


@dataclass(frozen=True)
class Aggregate:
    """A summary over tasks: its key, label, the tasks in it, and whether categories weigh equally."""

    key: str
    label: str
    tasks: list[str]
    by_category: bool


def aggregates(index: ScoreIndex) -> list[Aggregate]:
    """Mean over categories (headline), mean over tasks, and the out-of-domain category mean when † tasks exist."""
    tasks = list(index.categories)
    out = [
        Aggregate("category", "mean over categories", tasks, True),
        Aggregate("task", "mean over tasks", tasks, False),
    ]
    outside = [t for t in tasks if t not in index.in_domain]
    if index.in_domain and outside:
        out.append(Aggregate("out-of-domain", "out-of-domain mean over categories (no †)", outside, True))
    return out


def per_seed(index: ScoreIndex, arm: str, agg: Aggregate) -> dict[int, float]:
    """Seed -> the aggregate of that seed's task scores (seeds that scored every task of ``agg`` only)."""
    per_task = index.scores.get(arm, {})
    if not agg.tasks:
        return {}
    seeds = set.intersection(*(set(per_task.get(t, {})) for t in agg.tasks))
    strata = [index.categories[t] for t in agg.tasks]
    return {s: aggregate([per_task[t][s] for t in agg.tasks], strata, agg.by_category) for s in sorted(seeds)}


@dataclass(frozen=True)
class AggregateContrast:
    """One contrast on one aggregate: seed-level test and task-level evidence."""

    contrast: Contrast
    aggregate: Aggregate
    primary: bool
    arm_mean: float | None
    reference_mean: float | None
    delta: PairedDelta
    p_holm: float | None
    mde: float | None
    bootstrap: Bootstrap | None
    improvement: float | None
    signs: SignTest


@dataclass(frozen=True)
class TaskContrast:
    """The paired Δ of one contrast on one task, and its Benjamini–Hochberg q over the tasks."""

    task: str
    delta: PairedDelta
    q: float | None


@dataclass(frozen=True)
class ContrastResults:
    """Every contrast on every aggregate (primary first), and per task, for one study."""

    settings: ReportSettings
    aggregates: list[Aggregate]
    rows: list[AggregateContrast]
    tasks: dict[Contrast, list[TaskContrast]]
    max_seeds: int
    """The most seeds any contrast pairs (1: no seed-level test anywhere)."""


def _mean_over(by_seed: dict[int, float], seeds: list[int]) -> float | None:
    return sum(by_seed[s] for s in seeds) / len(seeds) if seeds else None


def _task_matrix(index: ScoreIndex, contrast: Contrast, tasks: list[str], seeds: list[int]):
    arm, ref = (index.scores[a] for a in contrast)
    return [[arm[t][s] - ref[t][s] for s in seeds] for t in tasks]


def _one(index: ScoreIndex, contrast: Contrast, agg: Aggregate, settings: ReportSettings, primary: bool):
    arm_seeds, ref_seeds = per_seed(index, contrast[0], agg), per_seed(index, contrast[1], agg)
    delta = paired_delta(arm_seeds, ref_seeds)
    shared = sorted(set(arm_seeds) & set(ref_seeds))
    strata = [index.categories[t] for t in agg.tasks]
    boot = improvement = None
    task_deltas: list[float] = []
    if shared:
        matrix = _task_matrix(index, contrast, agg.tasks, shared)
        boot = bootstrap_aggregate(
            matrix, strata, by_stratum=agg.by_category, resamples=settings.resamples, seed=settings.seed
        )
        arm, ref = (index.scores[a] for a in contrast)
        shares = [probability_of_improvement([[arm[t][s] for s in shared]], [[ref[t][s] for s in shared]])
                  for t in agg.tasks]  # fmt: skip
        improvement = aggregate(shares, strata, agg.by_category)
        task_deltas = [sum(row) / len(row) for row in matrix]
    return AggregateContrast(
        contrast=contrast,
        aggregate=agg,
        primary=primary,
        arm_mean=_mean_over(arm_seeds, shared),
        reference_mean=_mean_over(ref_seeds, shared),
        delta=delta,
        p_holm=None,
        mde=min_detectable_effect(delta.n, delta.sd, settings.alpha),
        bootstrap=boot,
        improvement=improvement,
        signs=sign_test(task_deltas),
    )


def _task_contrasts(index: ScoreIndex, contrast: Contrast) -> list[TaskContrast]:
    arm, ref = (index.scores[a] for a in contrast)
    deltas = [(t, paired_delta(arm.get(t, {}), ref.get(t, {}))) for t in index.categories]
    deltas = [(t, d) for t, d in deltas if d.n]
    qs = benjamini_hochberg([d.p for _, d in deltas])
    return [TaskContrast(t, d, q) for (t, d), q in zip(deltas, qs, strict=True)]


def contrast_results(index: ScoreIndex, settings: ReportSettings) -> ContrastResults:
    """Every contrast × aggregate, Holm-adjusted within each family and aggregate."""
    aggs = aggregates(index)
    rows: list[AggregateContrast] = []
    for agg in aggs:
        for family in (settings.primary, [c for c in settings.contrasts if c not in settings.primary]):
            found = [_one(index, c, agg, settings, c in settings.primary) for c in family]
            adjusted = holm([r.delta.p for r in found])
            rows += [_with(r, p_holm=q) for r, q in zip(found, adjusted, strict=True)]
    order = {c: i for i, c in enumerate(settings.contrasts)}
    rows.sort(key=lambda r: (order[r.contrast], [a.key for a in aggs].index(r.aggregate.key)))
    return ContrastResults(
        settings=settings,
        aggregates=aggs,
        rows=rows,
        tasks={c: _task_contrasts(index, c) for c in settings.contrasts},
        max_seeds=max((r.delta.n for r in rows), default=0),
    )


def _with(row: AggregateContrast, **changes) -> AggregateContrast:
    from dataclasses import replace

    return replace(row, **changes)


def verdict(row: AggregateContrast, alpha: float) -> str:
    """Plain words for the seed-level test after Holm."""
    if row.delta.n < 2:
        return f"no seed-level test ({row.delta.n} seed{'s' * (row.delta.n != 1)})"
    if row.p_holm is None:
        return "no test (identical differences)"
    if row.p_holm < alpha:
        return f"significant at {alpha:g} after Holm"
    if row.delta.p is not None and row.delta.p < alpha:
        return f"not significant after Holm (raw p < {alpha:g})"
    return "not significant"
