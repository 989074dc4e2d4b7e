"""The Contrasts tables that open every report: seed-level tests with Holm, task-level evidence, per task."""

from __future__ import annotations

import math

from harness.report.contrasts import AGGREGATE_LABELS, AggregateContrast, ContrastResults, verdict
from harness.report.load import ScoreIndex
from harness.report.settings import HEADLINE_AGGREGATE, ReportSettings
from harness.report.tables import IN_DOMAIN_MARK, Cell, Table


def _pts(value: float | None, sign: bool = True) -> str:
    if value is None:
        return "—"
    return f"{100 * value:+.2f}" if sign else f"{100 * value:.2f}"


def _interval(low: float | None, high: float | None) -> str:
    return "—" if low is None or high is None else f"[{100 * low:+.2f}, {100 * high:+.2f}]"


def fmt_pvalue(p: float | None) -> str:
    if p is None:
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _eq(p: float | None) -> str:
    text = fmt_pvalue(p)
    return text.replace("<", "< ") if text.startswith("<") else f"= {text}"


def contrast_label(contrast: tuple[str, str]) -> str:
    return f"{contrast[0]} − {contrast[1]}"


def aggregates_named(keys) -> str:
    """``["category", "sts"]`` as "the mean over categories and the mean over the STS tasks"."""
    labels = [f"the {AGGREGATE_LABELS[k]}" for k in keys]
    return " and ".join([", ".join(labels[:-1]), labels[-1]] if len(labels) > 1 else labels)


def _primary_family(results: ContrastResults) -> str:
    """Which tests the primary family holds: per aggregate (the default), or every declared pair at once."""
    s = results.settings
    primary = ", ".join(contrast_label(c) for c in s.primary) or "none"
    text = f"the {len(s.primary)} primary contrast{'s' * (len(s.primary) != 1)} ({primary})"
    if s.primary_on == (HEADLINE_AGGREGATE,):
        return text + ", adjusted separately for each aggregate"
    on = [k for k in s.primary_on if k in {a.key for a in results.aggregates}]
    tests = len(s.primary) * len(on)
    return (
        f"{text} on {aggregates_named(on)}, {tests} test{'s' * (tests != 1)} adjusted together; on each other "
        "aggregate the primary contrasts are adjusted among themselves"
    )


def _family_note(results: ContrastResults) -> str:
    s = results.settings
    secondary = [c for c in s.contrasts if c not in s.primary]
    text = f"Contrasts: {s.origin}. Holm family: {_primary_family(results)}"
    if secondary:
        text += f"; the {len(secondary)} secondary contrasts form a second family"
    if s.declared_alpha is not None and s.declared_alpha != s.alpha:
        return text + (
            f". Verdicts at alpha = {s.alpha:.3g}: what the {s.alpha_spending!r} spending rule leaves of the "
            f"declared {s.declared_alpha:g} for this look (see Looks)."
        )
    return text + f". Verdicts at alpha = {s.alpha:g}."


AFTER_DATA_MARK = " (declared after data)"


def declared_late(settings: ReportSettings, row: AggregateContrast) -> bool:
    """Whether the row's contrast, or its place in the primary family, was declared after data."""
    return (
        row.contrast in settings.after_data
        or (row.contrast, row.aggregate.key) in settings.primary_after_data
    )


def _seed_row(row: AggregateContrast, alpha: float, settings: ReportSettings) -> list[Cell]:
    d = row.delta
    label = contrast_label(row.contrast) + (" (primary)" if row.primary else "")
    label += AFTER_DATA_MARK if declared_late(settings, row) else ""
    return [
        Cell(label, numeric=False),
        Cell(row.aggregate.label, numeric=False),
        Cell(str(d.n)),
        Cell(_pts(row.arm_mean, sign=False)),
        Cell(_pts(row.reference_mean, sign=False)),
        Cell(_pts(d.mean if d.n else None)),
        Cell(_interval(d.low, d.high)),
        Cell("—" if d.d_z is None else f"{d.d_z:+.2f}"),
        Cell(fmt_pvalue(d.p)),
        Cell(fmt_pvalue(row.p_holm)),
        Cell(verdict(row, alpha), numeric=False, kind="verdict"),
        Cell(_pts(row.mde, sign=False)),
    ]


def contrast_table(results: ContrastResults) -> Table:
    """Seed-level contrasts: Δ over shared seeds, 95% CI, d_z, raw and Holm-adjusted p, verdict, MDE."""
    alpha = results.settings.alpha
    columns = ["Contrast", "Aggregate", "Seeds", "arm", "reference", "Δ", "95% CI of Δ (seeds)", "d_z",
               "p", "p (Holm)", "Verdict", "MDE (80%)"]  # fmt: skip
    rows = [_seed_row(r, alpha, results.settings) for r in results.rows]
    notes = [
        _family_note(results),
        "Headline: the mean over categories (MTEB's aggregate: each category weighs the same, however many "
        "tasks it has); the mean over tasks lets the largest category decide.",
        "Seed level: each seed's aggregate score, paired over the seeds both arms completed (Seeds); Δ = arm "
        "− reference (points ×100); 95% CI: Student t interval of the mean paired difference; d_z: mean / sd "
        "of the paired differences; p: paired two-sided t-test (scipy); p (Holm): statsmodels multipletests. "
        "This interval and test cover training variance (seeds), not the choice of tasks.",
        "MDE (80%): the smallest true Δ a paired t-test over these seeds would detect with 80% power at "
        "alpha, given the observed sd of the paired differences (statsmodels TTestPower).",
    ]
    if results.max_seeds < 2 and rows:
        notes.append(
            "One seed: no seed-level p-value exists. The task-level figures below (bootstrap over tasks, sign "
            "test) treat the tasks as the sample and ignore training variance: a second seed can reverse them."
        )
    notes += _untrained_note(results)
    notes += [f"Left out: {p}." for p in results.settings.problems]
    missing = [k for k in results.settings.primary_on if k not in {a.key for a in results.aggregates}]
    notes += [
        f"Left out: the primary contrasts on the {AGGREGATE_LABELS[k]}: no such task was scored."
        for k in missing
    ]
    return Table("contrasts", "Contrasts", columns, rows, notes)


def _untrained_note(results: ContrastResults) -> list[str]:
    names = sorted(results.settings.untrained)
    if not names:
        return []
    return [
        f"{', '.join(names)}: the untrained student, scored once (no seeds). Against it, each seed's Δ is the "
        "arm's aggregate at that seed minus the untrained student's one score, a constant: the interval, "
        "p-value and MDE cover only the trained arm's seed variance."
    ]


def task_level_table(results: ContrastResults) -> Table:
    """Task-level evidence per contrast and aggregate: bootstrap CI, P(arm > reference), sign test."""
    columns = ["Contrast", "Aggregate", "Δ", "Bootstrap 95% CI (tasks × seeds)", "Resamples with Δ > 0",
               "P(arm > reference)", "Tasks won / tied / lost", "Sign test p"]  # fmt: skip
    rows = []
    for r in results.rows:
        b = r.bootstrap
        rows.append([
            Cell(contrast_label(r.contrast), numeric=False), Cell(r.aggregate.label, numeric=False),
            Cell(_pts(b.estimate if b else None)), Cell(_interval(b.low, b.high) if b else "—"),
            Cell("—" if b is None else f"{100 * b.share_positive:.1f}%"),
            Cell("—" if r.improvement is None else f"{r.improvement:.2f}"),
            Cell(f"{r.signs.wins} / {r.signs.ties} / {r.signs.losses}"), Cell(fmt_pvalue(r.signs.p)),
        ])  # fmt: skip
    notes = [
        _bootstrap_note(results),
        "P(arm > reference): probability of improvement (Agarwal et al. 2021): per task, the share of (arm "
        "seed, reference seed) pairs the arm wins, ties one half, then aggregated like the scores.",
        "Sign test: exact two-sided binomial test (scipy binomtest) on the tasks won and lost (seed-mean Δ), "
        "ties dropped; it takes tasks as the unit and ignores training variance.",
    ]
    return Table("contrasts-tasks", "Contrasts with tasks as the unit", columns, rows, notes)


def _fewest_seeds(results: ContrastResults) -> int:
    """The fewest seeds any contrast pairs (0: none has a COMPLETE pair)."""
    return min((r.delta.n for r in results.rows if r.delta.n), default=0)


def _bootstrap_note(results: ContrastResults) -> str:
    """What the bootstrap resamples, and what it cannot cover with the seeds this study has."""
    s = results.settings
    text = (
        f"Bootstrap: {s.resamples:,} resamples (numpy default_rng seed {s.seed}); each draws tasks with "
        "replacement within their category and seeds with replacement (one draw shared by all tasks); "
        "percentile interval. It resamples only the tasks and seeds observed: it shows how much Δ depends "
        "on which of these tasks are counted, and covers training variance only as far as the observed seeds "
        "show it. A one-task category contributes no task variance."
    )
    seeds = _fewest_seeds(results)
    if seeds == 1:
        return text + " With 1 seed only tasks vary: the interval ignores training variance."
    if 1 < seeds < 5:
        return text + (
            f" With {seeds} seeds a seed draw takes one of only {math.comb(2 * seeds - 1, seeds)} distinct "
            "compositions and the bootstrap variance of a mean over n seeds is (n − 1)/n of s²/n, so this "
            "interval understates the seed variance; the seed-level 95% CI (Contrasts table) states it."
        )
    return text


def per_task_contrast_table(results: ContrastResults, index: ScoreIndex) -> Table:
    """Per task and contrast: paired Δ over seeds, 95% CI, p and Benjamini–Hochberg q over the tasks."""
    contrasts = results.settings.contrasts
    columns = ["Task"]
    for c in contrasts:
        columns += [f"Δ {contrast_label(c)}", "95% CI", "p", "q (BH)"]
    rows = []
    for task in index.categories:
        label = f"{task} {IN_DOMAIN_MARK}" if task in index.in_domain else task
        row = [Cell(label, numeric=False)]
        for c in contrasts:
            found = next((t for t in results.tasks[c] if t.task == task), None)
            if found is None:
                row += [Cell("—"), Cell("—"), Cell("n/a"), Cell("n/a")]
                continue
            d = found.delta
            row += [Cell(_pts(d.mean)), Cell(_interval(d.low, d.high)), Cell(fmt_pvalue(d.p)),
                    Cell(fmt_pvalue(found.q))]  # fmt: skip
        rows.append(row)
    notes = [
        "Per task: paired Δ over the seeds both arms completed, its 95% t interval and paired t-test p; q: "
        "Benjamini–Hochberg over the tasks of each contrast (statsmodels fdr_bh). n/a with one seed."
    ]
    return Table("contrasts-per-task", "Per-task contrasts", columns, rows if contrasts else [], notes)


def headline_sentences(results: ContrastResults) -> list[str]:
    """One sentence per primary contrast and ``primary_on`` aggregate (by default the mean over categories)."""
    out = []
    for r in results.rows:
        if not r.primary or r.aggregate.key not in results.settings.primary_on or not r.delta.n:
            continue
        d = r.delta
        ci = f", 95% CI {_interval(d.low, d.high)}" if d.low is not None else ""
        test = (
            f"p {_eq(d.p)}, Holm p {_eq(r.p_holm)}: {verdict(r, results.settings.alpha)}"
            if d.n >= 2
            else verdict(r, results.settings.alpha)
        )
        late = AFTER_DATA_MARK if declared_late(results.settings, r) else ""
        out.append(
            f"{contrast_label(r.contrast)}{late} on the {r.aggregate.label}: {_pts(d.mean)} points over "
            f"{d.n} seed{'s' * (d.n != 1)}{ci} ({test})."
        )
    return out
