"""The declared contrasts of a report, computed: aggregates, seed-level tests, Holm, task-level evidence.

For each contrast ``arm − reference`` (see :mod:`harness.report.settings`) and each aggregate:

* seed level: the aggregate of each seed's scores, paired over the seeds both arms completed; mean
  Δ, its 95% t interval, d_z, the paired t-test p, and p adjusted by Holm over the family: the primary
  family is every (primary contrast, aggregate) pair of the declared ``primary_on`` aggregates (the mean
  over categories unless declared otherwise); on each other aggregate the primary contrasts are adjusted
  among themselves, and on each aggregate the secondary contrasts form a family of their own;
* task level: a two-level bootstrap (tasks within categories × seeds) of the aggregate Δ, the
  probability of improvement, and a sign test over tasks;
* per task: the paired Δ over seeds with its p-value and Benjamini–Hochberg q over the tasks.

Aggregates: the mean over categories (MTEB's aggregate and the headline), the mean over tasks, the
mean over the STS category's tasks (when the suite has STS and other tasks, or a primary is declared on
it) and, when some tasks are in domain (†, :mod:`harness.report.domain`) or a primary is declared on it,
the mean over categories of the out-of-domain tasks only.

A gain arm (one side of an interaction) is scored as its arms' difference, per task and seed; an
untrained arm taken as a reference is its one score repeated at every seed, so its per-seed Δ is the
arm's seed score minus that constant.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace

from harness.report.load import ScoreIndex
from harness.report.settings import Contrast, ReportSettings, gain_arms
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


STS_CATEGORY = "STS"
AGGREGATE_LABELS = {
    "category": "mean over categories",
    "task": "mean over tasks",
    "sts": "mean over the STS tasks",
    "out-of-domain": "out-of-domain mean over categories (no †)",
}
"""Aggregate key (as ``[report] primary_on`` names it) -> its label in the tables."""


def aggregates(index: ScoreIndex, declared: Collection[str] = ()) -> list[Aggregate]:
    """Mean over categories (headline), mean over tasks, the STS mean when the suite has STS and other
    tasks, and the out-of-domain category mean when † tasks exist; ``declared`` aggregates (``primary_on``)
    are kept even where they equal the category mean."""
    tasks = list(index.categories)
    out = [
        Aggregate("category", AGGREGATE_LABELS["category"], tasks, True),
        Aggregate("task", AGGREGATE_LABELS["task"], tasks, False),
    ]
    sts = [t for t in tasks if index.categories[t] == STS_CATEGORY]
    if sts and (len(sts) < len(tasks) or "sts" in declared):
        out.append(Aggregate("sts", AGGREGATE_LABELS["sts"], sts, True))
    outside = [t for t in tasks if t not in index.in_domain]
    if outside and (index.in_domain or "out-of-domain" in declared):
        out.append(Aggregate("out-of-domain", AGGREGATE_LABELS["out-of-domain"], outside, True))
    return out


def with_gain_arms(index: ScoreIndex, gains: dict[str, tuple[str, str]]) -> ScoreIndex:
    """The index plus one arm per gain ``a − b``: its per-task, per-seed scores are a's minus b's (the
    seeds both completed), so an interaction is an ordinary paired contrast of two gains. ``gains`` lists
    a gain's own gains before it (:func:`~harness.report.settings.gain_arms`), so a three-way
    interaction's gains are differences of two-way ones."""
    if not gains:
        return index
    scores = dict(index.scores)
    for name, (arm, ref) in gains.items():
        a, b = scores.get(arm, {}), scores.get(ref, {})
        scores[name] = {t: {s: a[t][s] - b[t][s] for s in set(a[t]) & set(b.get(t, {}))} for t in a if t in b}
    return replace(index, scores=scores)


def with_untrained_arms(index: ScoreIndex, names: Collection[str]) -> ScoreIndex:
    """The index plus each untrained arm of ``names``: the untrained student's one score per task,
    repeated at every seed any arm has, so ``arm − untrained`` pairs each of the arm's seeds with it."""
    if not names or not index.untrained:
        return index
    seeds = {s for tasks in index.scores.values() for by_seed in tasks.values() for s in by_seed}
    constant = {t: dict.fromkeys(sorted(seeds), value) for t, value in index.untrained.items()}
    return replace(index, scores={**index.scores, **dict.fromkeys(names, constant)})


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


def _families(settings: ReportSettings, keys: list[str]) -> list[list[tuple[Contrast, str]]]:
    """The Holm families, as (contrast, aggregate key) pairs: the primary family over every declared
    ``primary_on`` aggregate; the primary contrasts on each other aggregate; the secondary ones on each."""
    on = [k for k in settings.primary_on if k in keys]
    secondary = [c for c in settings.contrasts if c not in settings.primary]
    families = [[(c, k) for c in settings.primary for k in on]]
    families += [[(c, k) for c in settings.primary] for k in keys if k not in on]
    families += [[(c, k) for c in secondary] for k in keys]
    return [f for f in families if f]


def contrast_results(index: ScoreIndex, settings: ReportSettings) -> ContrastResults:
    """Every contrast × aggregate, Holm-adjusted within each family (see :func:`_families`)."""
    index = with_gain_arms(with_untrained_arms(index, settings.untrained), gain_arms(settings.contrasts))
    aggs = aggregates(index, settings.primary_on)
    found = {
        (c, a.key): _one(index, c, a, settings, c in settings.primary)
        for c in settings.contrasts
        for a in aggs
    }
    adjusted: dict[tuple[Contrast, str], float | None] = {}
    for family in _families(settings, [a.key for a in aggs]):
        adjusted.update(zip(family, holm([found[pair].delta.p for pair in family]), strict=True))
    rows = [replace(row, p_holm=adjusted[pair]) for pair, row in found.items()]
    return ContrastResults(
        settings=settings,
        aggregates=aggs,
        rows=rows,
        tasks={c: _task_contrasts(index, c) for c in settings.contrasts},
        max_seeds=max((r.delta.n for r in rows), default=0),
    )


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
