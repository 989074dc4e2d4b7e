"""Is a lite suite a valid proxy for its full suite? Rank agreement over many models, and contrast agreement.

The input is one tidy table of scores: one row per model, suite, task, split and subset (``evaluate()``'s
rows plus ``suite`` and ``stands_for``, the full task a lite task was cut from; a whole task stands for
itself). From it:

* per full task, Spearman's ρ between the full task's and its lite stand-in's scores over the models;
* the same for the mean over categories (MTEB's headline: the mean of each category's task mean) and
  the mean over tasks, with the share of model pairs the two suites order the same way;
* per declared contrast of a study (``contrast_agreement``): Δ on each suite and whether the winner and
  the verdict agree, from the report layer's own contrast statistics run once on each suite's scores;
  a declared primary contrast that cannot be computed (an arm with no model scored on both suites) is
  listed with the reason, and the verdict counts it among the declared ones, as not met.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd
from scipy.stats import spearmanr

from harness.report.contrasts import contrast_results, verdict
from harness.report.load import score_index
from harness.report.settings import contrast_of, report_section, report_settings
from harness.results import ScoreTable, StudyResults, score_table

SCORE_COLUMNS = [
    "model",
    "suite",
    "task",
    "stands_for",
    "category",
    "split",
    "subset",
    "main_score",
    "seconds",
]
"""Columns of the tidy score table (``scores.csv`` of ``gist-harness bench lite``)."""


def task_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per model, suite and task: the main score averaged over splits and subsets (as MTEB)."""
    keys = ["model", "suite", "task", "stands_for", "category"]
    return scores.groupby(keys, as_index=False, sort=False)["main_score"].mean()


def aggregate_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Per model and suite: ``category_mean`` (mean of the categories' task means) and ``task_mean``."""
    per_task = task_scores(scores)
    per_category = per_task.groupby(["model", "suite", "category"], as_index=False)["main_score"].mean()
    category_mean = per_category.groupby(["model", "suite"])["main_score"].mean().rename("category_mean")
    task_mean = per_task.groupby(["model", "suite"])["main_score"].mean().rename("task_mean")
    return pd.concat([category_mean, task_mean], axis=1).reset_index()


def _rho(full: pd.Series, lite: pd.Series) -> float | None:
    """Spearman's ρ of two aligned series; ``None`` for fewer than 3 models or a constant series."""
    if len(full) < 3 or full.nunique() < 2 or lite.nunique() < 2:
        return None
    return float(spearmanr(full, lite).statistic)


def pair_agreement(full: pd.Series, lite: pd.Series) -> float | None:
    """Share of model pairs that both series order the same way (pairs tied on either are left out)."""
    pairs = [
        (full.iloc[i] - full.iloc[j]) * (lite.iloc[i] - lite.iloc[j])
        for i, j in itertools.combinations(range(len(full)), 2)
    ]
    untied = [p for p in pairs if p != 0]
    return sum(p > 0 for p in untied) / len(untied) if untied else None


@dataclass(frozen=True)
class Validity:
    """Lite-vs-full agreement over the models scored on both suites.

    Attributes:
        models: the models scored on both suites, in table order.
        per_task: one row per full task: its lite stand-in, ρ, and the largest |lite − full| score.
        aggregates: one row per aggregate (mean over categories, mean over tasks): ρ and pair agreement.
        scores: per model, the two aggregates on each suite (the points behind ``aggregates``).
    """

    models: list[str]
    per_task: pd.DataFrame
    aggregates: pd.DataFrame
    scores: pd.DataFrame


def validity(scores: pd.DataFrame, full_suite: str, lite_suite: str) -> Validity:
    """Compares ``lite_suite`` with ``full_suite`` over the models scored completely on both."""
    per_task = task_scores(scores)
    tasks = {s: set(per_task.loc[per_task.suite == s, "stands_for"]) for s in (full_suite, lite_suite)}
    complete = [m for m in dict.fromkeys(per_task.model) if _complete(per_task, m, tasks)]
    per_task = per_task[per_task.model.isin(complete)]
    shared = tasks[full_suite] & tasks[lite_suite]
    rows = _per_task_rows(per_task, complete, shared, full_suite, lite_suite)
    wide = (
        aggregate_scores(per_task)
        .pivot(index="model", columns="suite", values=["category_mean", "task_mean"])
        .reindex(complete)
    )
    aggregates = pd.DataFrame(
        [
            {
                "aggregate": label,
                "models": len(complete),
                "rho": _rho(wide[(column, full_suite)], wide[(column, lite_suite)]),
                "pair_agreement": pair_agreement(wide[(column, full_suite)], wide[(column, lite_suite)]),
            }
            for column, label in (("category_mean", "mean over categories"), ("task_mean", "mean over tasks"))
        ]
    )
    wide.columns = [f"{column} ({suite})" for column, suite in wide.columns]
    return Validity(complete, pd.DataFrame(rows), aggregates, wide.reset_index())


def _complete(per_task: pd.DataFrame, model: str, tasks: dict[str, set[str]]) -> bool:
    """Whether ``model`` has a score for every task of each suite (``tasks``: suite -> stands-for names)."""
    return all(
        set(per_task.loc[(per_task.model == model) & (per_task.suite == s), "stands_for"]) == names
        for s, names in tasks.items()
    )


def _per_task_rows(
    per_task: pd.DataFrame, complete: list[str], shared: set[str], full_suite: str, lite_suite: str
) -> list[dict[str, Any]]:
    """One row per full task in ``shared`` (both suites hold it), by category then name: ρ, pair
    agreement, and the largest |lite − full| score over the ``complete`` models."""
    full = per_task[per_task.suite == full_suite].set_index(["model", "stands_for"])
    lite = per_task[per_task.suite == lite_suite].set_index(["model", "stands_for"])
    rows = []
    for task in sorted(shared, key=lambda t: (_category(full, t), t)):
        f = full.xs(task, level="stands_for").main_score.reindex(complete)
        li = lite.xs(task, level="stands_for").main_score.reindex(complete)
        rows.append(
            {
                "category": _category(full, task),
                "task": task,
                "lite_task": lite.xs(task, level="stands_for").task.iloc[0] if len(li) else "",
                "models": len(complete),
                "rho": _rho(f, li),
                "pair_agreement": pair_agreement(f, li),
                "max_abs_diff": float((li - f).abs().max()) if len(f) else math.nan,
            }
        )
    return rows


def _category(frame: pd.DataFrame, task: str) -> str:
    return str(frame.xs(task, level="stands_for").category.iloc[0])


def with_scores(
    results: StudyResults,
    tables: dict[int, ScoreTable],
    untrained: ScoreTable | None,
    renamed: dict[str, str] | None = None,
) -> StudyResults:
    """The study with every trial's final scores replaced by ``tables[trial number]`` (others dropped).

    ``renamed`` maps a full task to its lite stand-in, so the in-domain tasks (†) follow the new names.
    """
    renamed = renamed or {}
    trials = [
        replace(
            t,
            scores=tables[t.trial.number],
            trial=t.trial.model_copy(
                update={"in_domain_tasks": [renamed.get(x, x) for x in t.trial.in_domain_tasks]}
            ),
        )
        for t in results.trials
        if t.trial.number in tables
    ]
    return replace(results, trials=trials, untrained=untrained)


def table_of(rows: pd.DataFrame) -> ScoreTable:
    """A :class:`ScoreTable` of one model's tidy rows (``SCORE_COLUMNS``; scores.csv keeps no metric)."""
    return score_table(rows.assign(metric=""))


def contrast_agreement(full: StudyResults, lite: StudyResults) -> pd.DataFrame:
    """Each declared contrast of the study on both suites: Δ, p (Holm), verdict, and whether they agree.

    ``full`` and ``lite`` are the same study with its final scores from each suite (``with_scores``);
    the contrasts are the study's ``[report]`` section, computed by the report layer itself.
    """
    results = {}
    for name, study in (("full", full), ("lite", lite)):
        index = score_index(study)
        section = report_section(study.manifest.experiment_toml)
        settings = report_settings(section, index.arms, study.manifest.baseline_arm)
        results[name] = contrast_results(index, settings)
    primary = set(results["full"].settings.primary)
    lite_rows = {(r.contrast, r.aggregate.key): r for r in results["lite"].rows}
    rows = _not_computed(full, results)
    for f in results["full"].rows:
        li = lite_rows.get((f.contrast, f.aggregate.key))
        if li is None:
            continue
        rows.append(
            {
                "contrast": f"{f.contrast[0]} − {f.contrast[1]}",
                "primary": f.contrast in primary,
                "summary": f.aggregate.label,
                "seeds": f.delta.n,
                "delta_full": f.delta.mean,
                "delta_lite": li.delta.mean,
                "p_holm_full": f.p_holm,
                "p_holm_lite": li.p_holm,
                "verdict_full": verdict(f, results["full"].settings.alpha),
                "verdict_lite": verdict(li, results["lite"].settings.alpha),
                "same_winner": _sign(f.delta.mean) == _sign(li.delta.mean),
                "same_conclusion": _same_conclusion(f, li, results["full"].settings.alpha),
                "not_computed": None,
            }
        )
    return pd.DataFrame(rows)


def _not_computed(study: StudyResults, results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per declared primary contrast that either suite could not compute, with the reason.

    The report layer leaves out a contrast whose arm has no COMPLETE trial among the models scored
    (``ReportSettings.problems``); a verdict that counted only the computed ones would hide it.
    """
    section = report_section(study.manifest.experiment_toml)
    if section is None:  # every arm against the baseline: only arms with trials are known
        return []
    declared = section.primary or (section.contrasts or []) + (section.interactions or [])
    rows = []
    for c in map(contrast_of, declared):
        if all(c in r.settings.contrasts for r in results.values()):
            continue
        label = f"{c[0]} − {c[1]}"
        problems = [p for r in results.values() for p in r.settings.problems if p.startswith(f"{label}: ")]
        reason = problems[0].split(": ", 1)[1] if problems else "not computed by the report layer"
        reason += " among the models scored on both suites"
        rows.append({"contrast": label, "primary": True, "summary": "—", "seeds": 0, "not_computed": reason})
    return rows


def _conclusion(row: Any, alpha: float) -> int | None:
    """+1 or -1: the seed-level test finds that sign after Holm; 0: it finds no difference; None: no test."""
    if row.delta.n < 2 or row.p_holm is None:
        return None
    return _sign(row.delta.mean) if row.p_holm < alpha else 0


def _same_conclusion(full: Any, lite: Any, alpha: float) -> bool | None:
    """Whether a reader draws the same conclusion from both suites: both find the same winner after
    Holm, or neither finds a difference. ``None`` where either suite has no seed-level test."""
    a, b = _conclusion(full, alpha), _conclusion(lite, alpha)
    return None if a is None or b is None else a == b


def _conclusion_line(primary_rows: pd.DataFrame) -> str:
    """The verdict line on conclusions: only contrasts with a seed-level test on both suites count."""
    tested = primary_rows["same_conclusion"].dropna() if "same_conclusion" in primary_rows else []
    if not len(tested):
        return "- Same conclusion on both suites: no primary contrast has a seed-level test on both."
    return (
        "- Declared primary contrasts with the same conclusion on both suites (mean over categories; the "
        "same winner significant after Holm, or no significant difference on either): "
        f"**{int(tested.astype(bool).sum())} of {len(tested)}** with a seed-level test."
    )


def _yes_no(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return "yes" if value else "**no**"


def _sign(value: float | None) -> int:
    return 0 if value is None or value == 0 else (1 if value > 0 else -1)


def _num(value: Any, digits: int = 3, sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _share(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.0%}"


def _table(header: list[str], rows: list[list[str]], align: str) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(":---" if a == "l" else "---:" for a in align) + "|",
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


def _median(frame: pd.DataFrame, column: str) -> float:
    values = pd.to_numeric(frame[column], errors="coerce").dropna()
    return float(values.median()) if len(values) else math.nan


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b and not (math.isnan(a) or math.isnan(b)) else "–"


def _timing_rows(timings: pd.DataFrame, full: str, lite: str) -> list[list[str]]:
    rows = []
    for kind, group in timings.groupby("kind", sort=False):
        f, li = group[group.suite == full], group[group.suite == lite]
        task = {s: _median(g, "task_seconds") for s, g in ((full, f), (lite, li))}
        wall = {s: _median(g, "wall_seconds") for s, g in ((full, f), (lite, li))}
        rows.append(
            [
                f"`{kind}`",
                f"{len(f)} / {len(li)}",
                _num(task[full], 1),
                _num(task[lite], 1),
                _ratio(task[full], task[lite]),
                _num(wall[full], 1),
                _num(wall[lite], 1),
                _ratio(wall[full], wall[lite]),
            ]
        )
    return rows


def markdown(result: Validity, agreements: dict[str, pd.DataFrame], timings: pd.DataFrame, meta: dict) -> str:
    """The README of a ``gist-harness bench lite`` folder: every number comes from the tables beside it."""
    full, lite = meta["full"], meta["lite"]
    lines = [
        f"# Is `{lite}` a valid proxy for `{full}`?",
        "",
        f"Written by `{meta['command']}` ({meta['written']}). {len(result.models)} models scored on both "
        "suites; `scores.csv` and `timings.csv` beside this file hold every number below.",
        "",
        *_verdict_lines(result, agreements, meta),
        "",
        *_rank_lines(result),
        "",
        *_contrast_lines(agreements, full, lite),
        "",
        *_timing_lines(timings, full, lite),
        "",
    ]
    return "\n".join(lines)


def _verdict_lines(result: Validity, agreements: dict[str, pd.DataFrame], meta: dict) -> list[str]:
    """The verdict against the targets: ρ of the mean over categories, primary contrasts' winners."""
    full, lite, target = meta["full"], meta["lite"], meta["target_rho"]
    cat = result.aggregates.set_index("aggregate").loc["mean over categories"]
    primary = [a[a.primary & (a.summary == "mean over categories")] for a in agreements.values() if len(a)]
    primary_rows = pd.concat(primary) if primary else pd.DataFrame(columns=["same_winner"])
    missing = [(study, r) for study, a in agreements.items() if len(a) for r in _missing_rows(a)]
    met_rho = cat.rho is not None and not math.isnan(cat.rho) and cat.rho >= target
    return [
        "## Verdict against the targets",
        "",
        f"- Spearman's ρ of the mean over categories, {lite} against {full}: **{_num(cat.rho)}** "
        f"(target ≥ {target}: {'met' if met_rho else 'not met'}); {_share(cat.pair_agreement)} of model "
        "pairs are ordered the same way.",
        f"- Declared primary contrasts with the same winner on both suites (mean over categories): "
        f"**{int(primary_rows.same_winner.astype(bool).sum())} of {len(primary_rows) + len(missing)}** "
        f"(target: all){_missing_text(missing)}.",
        _conclusion_line(primary_rows),
    ]


def _missing_rows(frame: pd.DataFrame) -> list[Any]:
    """The rows of declared primary contrasts that could not be computed (``not_computed`` set)."""
    if "not_computed" not in frame:
        return []
    return [r for r in frame.itertuples() if isinstance(r.not_computed, str)]


def _missing_text(missing: list[tuple[str, Any]]) -> str:
    if not missing:
        return ""
    named = "; ".join(f"`{study}` {r.contrast} ({r.not_computed})" for study, r in missing)
    return f"; {len(missing)} could not be computed, counted as not met: {named}"


def _rank_lines(result: Validity) -> list[str]:
    """Rank agreement over the models: per aggregate, then per task."""
    aggregates = [
        [r.aggregate, str(r.models), _num(r.rho), _share(r.pair_agreement)]
        for r in result.aggregates.itertuples()
    ]
    tasks = [
        [
            r.category,
            r.task,
            r.lite_task if r.lite_task != r.task else "(whole)",
            _num(r.rho),
            _share(r.pair_agreement),
            _num(r.max_abs_diff, 4),
        ]
        for r in result.per_task.itertuples()
    ]
    return [
        "## Rank agreement over the models",
        "",
        *_table(["aggregate", "models", "ρ (Spearman)", "pairs ordered the same"], aggregates, "lrrr"),
        "",
        "Per task (a whole task is its own stand-in, so its ρ is 1 by construction):",
        "",
        *_table(
            ["category", "task", "lite stand-in", "ρ", "pairs ordered the same", "max abs(lite − full)"],
            tasks,
            "lllrrr",
        ),
    ]


def _contrast_lines(agreements: dict[str, pd.DataFrame], full: str, lite: str) -> list[str]:
    """Contrast agreement: one table per study of its declared contrasts on both suites."""
    lines = [
        "## Contrast agreement",
        "",
        "Each study's declared contrasts, computed by the report code on each suite's scores of the same "
        "trained models (Δ in points of the aggregate; p after Holm within the study's families).",
    ]
    for study, frame in agreements.items():
        lines += ["", f"### `{study}`", ""]
        if not len(frame):
            lines.append("No declared contrast has trials scored on both suites.")
            continue
        lines += _contrast_table(frame, full, lite)
    return lines


def _contrast_table(frame: pd.DataFrame, full: str, lite: str) -> list[str]:
    return _table(
        ["contrast", "aggregate", "seeds", f"Δ {full}", f"Δ {lite}", f"Holm p {full}", f"Holm p {lite}",
         "same winner", "same conclusion", f"verdict {full}", f"verdict {lite}"],
        [_contrast_cells(r) for r in frame.itertuples()],
        "llrrrrrllll",
    )  # fmt: skip


def _contrast_cells(r: Any) -> list[str]:
    label = r.contrast + (" (primary)" if r.primary else "")
    if isinstance(getattr(r, "not_computed", None), str):
        return [label, "—", "0", "–", "–", "–", "–", "–", "–", f"not computed: {r.not_computed}", "–"]
    return [label, r.summary, str(r.seeds), _num(100 * r.delta_full, 2, True), _num(100 * r.delta_lite, 2, True),
            _num(r.p_holm_full), _num(r.p_holm_lite), _yes_no(r.same_winner), _yes_no(r.same_conclusion),
            r.verdict_full, r.verdict_lite]  # fmt: skip


def _timing_lines(timings: pd.DataFrame, full: str, lite: str) -> list[str]:
    """Time per model: median task and wall seconds on each suite, per student."""
    header = [
        "student",
        f"models ({full} / {lite})",
        f"task s {full}",
        f"task s {lite}",
        "speed-up",
        f"wall s {full}",
        f"wall s {lite}",
        "speed-up",
    ]
    return [
        "## Time per model",
        "",
        "Median seconds per model. Task seconds: the sum of the tasks' own scoring time (embedding that "
        "a task needed beyond the suite's shared warm-up, and mteb's scoring), for every model but those "
        "whose full suite was scored on its cut tasks only (`--whole-from-lite`). "
        "Wall seconds: the whole `evaluate()` call (data loading, the shared warm-up embedding of all the "
        "suite's texts, every task), only for models scored here on that suite (`–` where the study's "
        "own scores were read instead, or where only the cut tasks were scored: `--whole-from-lite`). "
        "Timings taken beside other work are upper bounds.",
        "",
        *_table(header, _timing_rows(timings, full, lite), "lrrrrrrr"),
    ]
