"""The report's tuning section: each arm's search, the chosen settings, expected-maximum curves, the cost.

A ``[tuning]`` study (``harness.config.tuning``) searches every tuned arm with the same number of
trials on a validation suite disjoint from the final one, then confirms each arm's best setting on
the ablation's seeds. The section shows, per arm, the space, the budget, every tuning trial and the
chosen setting; the expected best validation score as a function of the number of trials (Dodge et
al. 2019, ``harness.report.stats.expected_max``), so a reader sees whether an arm's lead depends on
the budget; and what the tuning cost, against the confirmation alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.report.plots import Figure, arm_colors, new_figure, png_bytes
from harness.report.stats import ExpectedMax, expected_max
from harness.report.tables import Cell, Table
from harness.results import StudyResults, TunedArm, TuningRecord

COST_TARGET = 1.5
"""A tuned study should cost at most this many times the untuned one at the same confirmation seeds."""


@dataclass
class TuningSection:
    """What the templates show under "Tuning"."""

    text: list[str]
    tables: list[Table] = field(default_factory=list)
    figure: Figure | None = None


def tuning_section(results: StudyResults) -> TuningSection | None:
    """The tuning section of a study with a tuning record, else None."""
    record = results.tuning
    if record is None:
        return None
    cost, advice = _cost(results, record)
    text = [_setup(record), *advice]
    tables = [_arms_table(record), cost, _curve_table(record), _trials_table(record)]
    return TuningSection(text, tables, expected_max_figure(record))


def _setup(record: TuningRecord) -> str:
    steps = (
        f"{record.max_steps} optimizer steps each"
        if record.max_steps
        else "a confirmation trial's epochs on the rows the tuning's own leakage check keeps (against the "
        "tuning suite only, so its step count can exceed the confirmation's)"
    )
    every = (
        f", scored every {record.eval_every_steps} steps for the pruner" if record.eval_every_steps else ""
    )
    follow = "; ".join(f"`{a}` takes `{b}`'s setting" for a, b in record.followers.items())
    return (
        f"Each tuned arm was searched with the same budget, {record.budget} trials ({record.sampler} sampler, "
        f"{record.pruner} pruner; pruned trials count), on suite `{record.suite}`, which shares no task with the "
        f"final suite: settings were never chosen on final scores. Every tuning trial trained at seed "
        f"{record.seed}, not a confirmation seed, for {steps}{every}. The best COMPLETE trial of each arm is "
        "its chosen setting; the contrasts above are the confirmation of these settings on fresh seeds, and "
        "their intervals are conditional on them: the variance of the tuning itself (one tuning run, one "
        "seed) is not in them. An arm with more searched parameters had the same number of trials. Each "
        "arm's tuning score is the best of its trials, biased upward, and not an arm comparison."
        + (f" Followers: {follow}." if follow else "")
    )


def _scores(arm: TunedArm, *, complete_only: bool = False) -> list[float]:
    """An arm's tuning scores for the curves: COMPLETE trials' final scores and (unless
    ``complete_only``) pruned trials' last intermediate ones."""
    out = []
    for t in arm.trials:
        if t.state == "COMPLETE" and t.value is not None:
            out.append(t.value)
        elif t.state == "PRUNED" and t.last_value is not None and not complete_only:
            out.append(t.last_value)
    return out


def curves(record: TuningRecord, *, complete_only: bool = False) -> dict[str, list[ExpectedMax]]:
    """Arm -> its expected-maximum curve over its tuning scores (``_scores``)."""
    maximize = record.direction == "maximize"
    found = {a.arm: _scores(a, complete_only=complete_only) for a in record.arms}
    return {arm: expected_max(scores, maximize=maximize) for arm, scores in found.items() if scores}


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _setting(values: dict[str, Any] | None) -> str:
    return ", ".join(f"{k} = {_fmt(v)}" for k, v in (values or {}).items()) or "—"


def _space(space: dict[str, dict[str, Any]]) -> str:
    parts = []
    for key, spec in space.items():
        if spec.get("type") == "categorical":
            parts.append(f"{key} ∈ {{{', '.join(map(_fmt, spec['choices']))}}}")
        else:
            scale = ", log" if spec.get("log") else ""
            parts.append(f"{key} ∈ [{_fmt(spec['low'])}, {_fmt(spec['high'])}{scale}]")
    return "; ".join(parts)


def _arms_table(record: TuningRecord) -> Table:
    rows = []
    for arm in record.arms:
        states = [t.state for t in arm.trials]
        seconds = sum(t.seconds or 0.0 for t in arm.trials)
        rows.append([
            Cell(arm.arm, numeric=False), Cell(_space(arm.space), numeric=False),
            Cell(f"{states.count('COMPLETE')} / {states.count('PRUNED')} / {states.count('FAIL')}"),
            Cell(_setting(arm.chosen), numeric=False),
            Cell("—" if arm.chosen_value is None else f"{100 * arm.chosen_value:.2f}"),
            Cell("—" if arm.chosen_trial is None else str(arm.chosen_trial)), Cell(f"{seconds:.0f}"),
        ])  # fmt: skip
    columns = ["Arm", "Search space", "Complete / pruned / failed", "Chosen setting",
               f"Tuning score ({record.suite})", "Chosen trial", "Tuning wall (s)"]  # fmt: skip
    notes = [
        "Tuning score: mean main score ×100 over the tuning suite's tasks at the end of the chosen trial. "
        "The arm's fixed settings (not searched) are in the Trials table's configuration and the experiment file."
    ]
    return Table("tuning-arms", "Tuning: spaces, budgets and chosen settings", columns, rows, notes)


def _curve_table(record: TuningRecord) -> Table:
    found, complete = curves(record), curves(record, complete_only=True)
    arms = list(found)
    longest = max((len(c) for c in found.values()), default=0)
    rows = []
    for n in range(1, longest + 1):
        row = [Cell(str(n))]
        for arm in arms:
            for curve in (found[arm], complete.get(arm, [])):
                point = curve[n - 1] if n <= len(curve) else None
                row.append(Cell("—" if point is None else f"{100 * point.mean:.2f} ± {100 * point.sd:.2f}"))
        rows.append(row)
    independent = (
        "The formula assumes independent, identically distributed draws. The random sampler draws settings "
        "independently, but a pruner does not keep the scores so: whether a trial enters with its final or its "
        "step-k score depends on the trials before it"
        if record.sampler == "random"
        else f"The formula assumes independent draws, which the {record.sampler} sampler does not give: read the "
        "curves as a description of these trials only"
    )
    notes = [
        "Expected best tuning score ×100 (± its standard deviation) of n trials drawn with replacement from an "
        "arm's tuning trials (Dodge et al. 2019, Eq. 1), with pruned trials at their last intermediate score "
        f"(all) and over the COMPLETE trials only. {independent}. One tuning run per arm: the gap between two "
        "curves is not tested."
    ]
    columns = ["Trials n"] + [f"{a}: {kind}" for a in arms for kind in ("E[best of n], all", "COMPLETE only")]
    return Table("tuning-curves", "Tuning: expected best score by budget", columns, rows, notes)


def _trials_table(record: TuningRecord) -> Table:
    rows = []
    for arm in record.arms:
        for t in arm.trials:
            chosen = t.number == arm.chosen_trial
            last = "—" if t.last_value is None else f"{100 * t.last_value:.2f} (step {t.last_step})"
            rows.append([
                Cell(arm.arm, numeric=False), Cell(str(t.number)),
                Cell(t.state, numeric=False, kind=f"state-{t.state}"), Cell(_setting(t.params), numeric=False),
                Cell("—" if t.value is None else f"{100 * t.value:.2f}", best=chosen), Cell(last),
                Cell("—" if t.seconds is None else f"{t.seconds:.0f}"), Cell(t.error, numeric=False),
            ])  # fmt: skip
    columns = ["Arm", "#", "State", "Setting", "Tuning score", "Last intermediate", "Wall (s)", "Note"]
    notes = ["Bold: each arm's chosen trial (its best COMPLETE tuning score)."]
    return Table("tuning-trials", "Tuning: every trial", columns, rows, notes)


def _cost(results: StudyResults, record: TuningRecord) -> tuple[Table, list[str]]:
    """The cost table (tuning and confirmation wall time, their ratio to the confirmation alone, for every
    confirmed arm and for the tuned arms only) and, above ``COST_TARGET``, what would bring it down."""
    tuned = {a.arm for a in record.arms}
    tuning = [t.seconds or 0.0 for a in record.arms for t in a.trials]
    done = [r.trial for r in results.trials if r.trial.state == "COMPLETE" and r.trial.wall_seconds]
    confirmation = [t.wall_seconds or 0.0 for t in done]
    of_tuned = [t.wall_seconds or 0.0 for t in done if t.arm in tuned]
    ratio = cost_ratio(tuning, confirmation)
    rows = [
        _cost_row("tuning", tuning),
        _cost_row("confirmation, every trained arm", confirmation, ratio),
        _cost_row("confirmation, tuned arms only", of_tuned, cost_ratio(tuning, of_tuned)),
    ]
    notes = [
        "Wall time of each trial (training and scoring, one process). An untuned study with the same "
        "confirmation seeds runs the confirmation trials only: Ratio = (tuning + confirmation) / confirmation, "
        "over every trained arm (followers and controls included, as that study would run them) and over the "
        f"tuned arms only. Target: ≤ {COST_TARGET}×."
    ]
    table = Table("tuning-cost", "Tuning: cost", ["Stage", "Trials", "Wall (s)", "Mean per trial (s)", "Ratio"],
                  rows, notes)  # fmt: skip
    if ratio is None or ratio <= COST_TARGET:
        return table, []
    per_trial = sum(tuning) / len(tuning)
    within = int((COST_TARGET - 1) * sum(confirmation) / per_trial) if per_trial else 0
    advice = (
        f"Cost above {COST_TARGET}×: at {per_trial:.0f} s per tuning trial, {within} tuning trials in all "
        f"({within // max(len(record.arms), 1)} per arm) would fit the target. Fewer steps per tuning trial "
        "(`[tuning] max_steps`), a smaller tuning suite (`[tuning] tasks`), fewer intermediate scores "
        "(`eval_every_steps`) or fewer trials lower the price."
    )
    return table, [advice]


def cost_ratio(tuning: list[float], confirmation: list[float]) -> float | None:
    """(tuning + confirmation) / confirmation seconds; None without confirmation trials."""
    return (sum(tuning) + sum(confirmation)) / sum(confirmation) if sum(confirmation) else None


def _cost_row(stage: str, seconds: list[float], ratio: float | None = None) -> list[Cell]:
    total = sum(seconds)
    mean = f"{total / len(seconds):.0f}" if seconds else "—"
    shown = "—" if ratio is None else f"{ratio:.2f}×"
    return [
        Cell(stage, numeric=False),
        Cell(str(len(seconds))),
        Cell(f"{total:.0f}"),
        Cell(mean),
        Cell(shown),
    ]


def expected_max_figure(record: TuningRecord) -> Figure | None:
    """Lines: each arm's expected best tuning score by budget, with a ±1 sd band."""
    found = curves(record)
    if not found:
        return None
    fig, ax = new_figure()
    colors = arm_colors(list(found))
    for arm, curve in found.items():
        n = [p.n for p in curve]
        mean = [100 * p.mean for p in curve]
        ax.plot(n, mean, marker="o", color=colors[arm], label=arm)
        low = [100 * (p.mean - p.sd) for p in curve]
        high = [100 * (p.mean + p.sd) for p in curve]
        ax.fill_between(n, low, high, color=colors[arm], alpha=0.15, linewidth=0)
    ax.set_xlabel("tuning trials n")
    ax.set_ylabel(f"expected best score ×100 ({record.suite})")
    ax.legend(loc="lower right")
    caption = (
        "Expected best tuning score of n trials per arm (Dodge et al. 2019), band ±1 sd; pruned trials at "
        "their last intermediate score; one tuning run per arm, the gap is not tested."
    )
    return Figure("tuning_expected_max", "Tuning: expected best score by budget", caption, png_bytes(fig))
