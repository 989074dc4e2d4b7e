"""Declarations and looks: what a study declared before its data, and how often its data were looked at.

A study's run folder holds numbered :class:`~harness.results.Declaration` records (written by
``gist-harness run`` before the first trial, and again whenever seeds, arms or contrasts change) and
:class:`~harness.results.Look` records (one per report rendered with contrasts from the run folder; a
resume, or a re-render of a committed report from its own inputs, is not a look). Every look spends
alpha. The one spending rule is ``"split"``: alpha divided equally over the looks actually taken
(Bonferroni over looks; the rule ``reports/gist-vs-infonce`` applied by hand), so with K looks every
look's verdict, the current one included, is at alpha / K. Group-sequential boundaries (Pocock,
O'Brien–Fleming) need the number of looks or the maximum number of seeds fixed in advance, which a
declaration does not fix, and no established maintained PyPI library was found to compute them.

Pure: nothing here writes a file; the CLI stores the new look the report returns.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

from harness.report.contrast_tables import aggregates_named, contrast_label, fmt_pvalue
from harness.report.contrasts import AGGREGATE_LABELS, ContrastResults
from harness.report.settings import HEADLINE_AGGREGATE, Contrast, ReportSettings, arms_of, contrast_of
from harness.report.tables import Cell, Table
from harness.results import Declaration, Look, LookEstimate, StudyResults

SPENDING_RULES = ("split",)
AFTER_DATA = "declared after data"


def spent_alpha(alpha: float, rule: str, looks: int) -> float:
    """The alpha of each of ``looks`` looks under ``rule`` (``"split"``: alpha / looks)."""
    if rule not in SPENDING_RULES:
        raise ValueError(f"alpha_spending {rule!r}: choose one of {', '.join(SPENDING_RULES)}")
    return alpha / max(looks, 1)


def completed_seeds(results: StudyResults) -> dict[str, int]:
    """Arm -> how many distinct seeds it has COMPLETE."""
    seeds: dict[str, set[int | None]] = {}
    for t in results.trials:
        if t.trial.state == "COMPLETE" and t.trial.arm is not None:
            seeds.setdefault(t.trial.arm, set()).add(t.trial.seed)
    return {arm: len(s) for arm, s in sorted(seeds.items())}


def takes_a_look(results: StudyResults, settings: ReportSettings) -> bool:
    """Whether rendering now is a new look: the study has a declaration, the report has contrasts,
    and trials completed since the last look (the same data rendered again is the same look)."""
    if not results.declarations or not settings.primary:
        return False
    return not results.looks or results.looks[-1].seeds != completed_seeds(results)


def with_looks(settings: ReportSettings, results: StudyResults, looks: int) -> ReportSettings:
    """``settings`` with alpha spent over ``looks`` recorded looks plus its unrecorded ones, and the
    contrasts (and primary aggregates) declared after data marked."""
    late = frozenset(after_data(results))
    late_pairs = frozenset(primary_after_data(results))
    settings = replace(settings, after_data=late, primary_after_data=late_pairs)
    looks += settings.unrecorded_looks.count if settings.unrecorded_looks else 0
    if not looks:
        return settings
    alpha = spent_alpha(settings.alpha, settings.alpha_spending, looks)
    return replace(settings, alpha=alpha, declared_alpha=settings.alpha)


def new_look(results: StudyResults, contrasts: ContrastResults, time: datetime) -> Look:
    """The look that rendering ``contrasts`` at ``time`` takes: seeds per arm, the primary estimates (each
    primary contrast on each ``primary_on`` aggregate)."""
    estimates = [
        LookEstimate(
            contrast=arms_of(r.contrast),
            aggregate=r.aggregate.key,
            n=r.delta.n,
            delta=r.delta.mean if r.delta.n else None,
            p=r.delta.p,
            p_holm=r.p_holm,
        )
        for r in contrasts.rows
        if r.primary and r.aggregate.key in contrasts.settings.primary_on
    ]
    return Look(
        number=len(results.looks) + 1,
        time=time,
        declaration=results.declarations[-1].number if results.declarations else 0,
        seeds=completed_seeds(results),
        estimates=estimates,
    )


def _first_trial(results: StudyResults) -> datetime | None:
    starts = [_aware(t.trial.started) for t in results.trials if t.trial.started is not None]
    return min(starts) if starts and results.declarations else None


def after_data(results: StudyResults) -> dict[Contrast, Declaration]:
    """Contrasts whose first declaration was made after the study's first trial started."""
    first_trial = _first_trial(results)
    if first_trial is None:
        return {}
    first: dict[Contrast, Declaration] = {}
    for declaration in results.declarations:
        for arms in declaration.contrasts:
            first.setdefault(contrast_of(tuple(arms)), declaration)
    return {c: d for c, d in first.items() if _aware(d.declared) > first_trial}


def primary_after_data(results: StudyResults) -> dict[tuple[Contrast, str], Declaration]:
    """(primary contrast, aggregate) pairs first declared primary after the first trial started, for
    contrasts that were themselves declared before it (a contrast declared late is marked as a whole)."""
    first_trial = _first_trial(results)
    if first_trial is None:
        return {}
    first: dict[tuple[Contrast, str], Declaration] = {}
    for declaration in results.declarations:
        for arms in declaration.primary:
            for key in declaration.primary_on:
                first.setdefault((contrast_of(tuple(arms)), key), declaration)
    late = after_data(results)
    return {p: d for p, d in first.items() if _aware(d.declared) > first_trial and p[0] not in late}


def _aware(moment: datetime) -> datetime:
    # Records carry UTC; a record converted from an Optuna storage may carry Optuna's naive time.
    return moment if moment.tzinfo is not None else moment.astimezone(timezone.utc)


def looks_table(results: StudyResults, settings: ReportSettings) -> Table | None:
    """The "Looks" section: each look's time, seeds and verdicts at the alpha it spent (None: no records)."""
    if not results.declarations and not results.looks and settings.unrecorded_looks is None:
        return None
    rows = [row for look in results.looks for row in _look_rows(look, settings.alpha)]
    columns = ["look", "time (UTC)", "COMPLETE seeds per arm", "contrast", "n", "Δ", "p", "Holm p", "verdict"]
    return Table("looks", "Looks", columns, rows, _notes(results, settings))


def _look_rows(look: Look, alpha: float) -> list[list[Cell]]:
    seeds = ", ".join(f"{arm} {n}" for arm, n in look.seeds.items())
    rows = []
    for e in look.estimates:
        if e.n < 2 or e.p_holm is None:
            verdict = "no seed-level test"
        else:
            verdict = f"{'significant' if e.p_holm < alpha else 'not significant'} at {alpha:.3g} after Holm"
        rows.append([
            Cell(str(look.number)), Cell(f"{look.time:%Y-%m-%d %H:%M}", numeric=False),
            Cell(seeds, numeric=False), Cell(_estimate_label(e), numeric=False),
            Cell(str(e.n)), Cell("—" if e.delta is None else f"{100 * e.delta:+.2f}"), Cell(fmt_pvalue(e.p)),
            Cell(fmt_pvalue(e.p_holm)), Cell(verdict, numeric=False, kind="verdict"),
        ])  # fmt: skip
    return rows


def _estimate_label(estimate: LookEstimate) -> str:
    label = contrast_label(contrast_of(tuple(estimate.contrast)))
    if estimate.aggregate == HEADLINE_AGGREGATE:
        return label
    return f"{label} on the {AGGREGATE_LABELS.get(estimate.aggregate, estimate.aggregate)}"


def _notes(results: StudyResults, settings: ReportSettings) -> list[str]:
    declared = settings.declared_alpha or settings.alpha
    unrecorded = settings.unrecorded_looks
    k = len(results.looks) + (unrecorded.count if unrecorded else 0)
    notes = [
        f"Every report rendered with contrasts from the run folder is a look (a resume is not; neither is "
        f"re-rendering a report from its own inputs). alpha spending rule {settings.alpha_spending!r}: alpha = "
        f"{declared:g} divided equally over the {k} look{'s' * (k != 1)} taken, {settings.alpha:.3g} each; "
        f"the verdicts above (Contrasts) use it. Δ and p: the primary contrasts on {aggregates_named(settings.primary_on)}."
    ]
    if unrecorded:
        n = unrecorded.count
        notes.append(
            f"{n} look{'s' * (n != 1)} taken before looks were recorded, so no record holds their estimates "
            f"(declared beside the report, inputs/report.toml [unrecorded_looks]): {unrecorded.evidence}."
        )
    for d in results.declarations:
        what = "; ".join(d.changed) if d.changed else (
            f"seeds {d.seeds}, contrasts {', '.join(contrast_label(contrast_of(tuple(c))) for c in d.contrasts) or 'none'}, "
            f"alpha {d.alpha:g}, spending {d.alpha_spending!r}"
        )  # fmt: skip
        notes.append(
            f"Declaration {d.number} ({d.declared:%Y-%m-%d %H:%M} UTC, experiment sha256 "
            f"{d.experiment_sha256[:12]}): {what}."
        )
    late = [f"{contrast_label(c)} (declaration {d.number})" for c, d in after_data(results).items()]
    late += [
        f"{contrast_label(c)} as a primary contrast on the {AGGREGATE_LABELS.get(k, k)} (declaration {d.number})"
        for (c, k), d in primary_after_data(results).items()
    ]
    if late:
        notes.append(f"{AFTER_DATA.capitalize()}, after the first trial had started: {', '.join(late)}.")
    return notes
