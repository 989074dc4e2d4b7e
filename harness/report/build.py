"""Assembles a :class:`Report` (tables, figures, provenance) from stored study results; pure, writes nothing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

import pandas as pd

from harness.report.by_source import source_table
from harness.report.contrast_tables import (
    contrast_table,
    headline_sentences,
    per_task_contrast_table,
    task_level_table,
)
from harness.report.contrasts import ContrastResults, contrast_results
from harness.report.inputs import INPUTS_DIR, REPORT_TOML, Recovered, guide_score_path, input_files
from harness.report.load import UNTRAINED_ARM, ScoreIndex, results_frame, score_index
from harness.report.looks import looks_table, new_look, takes_a_look, with_looks
from harness.report.mined_table import mined_table
from harness.report.plots import Figure, all_figures
from harness.report.provenance import Reproducibility, reproducibility, status_line, trials_table
from harness.report.quality import guide_table, recovered_notes
from harness.report.settings import declared_section, report_settings, unrecorded_looks, untrained_arm_names
from harness.report.subset_tables import subset_tables
from harness.report.subsets import SubsetResults, subset_results
from harness.report.tables import IN_DOMAIN_MARK, Cell, Table, arm_table, category_table, task_table
from harness.report.tuning import TuningSection, tuning_section
from harness.results import Look, StudyResults

METHOD_NOTES = [
    "Scores are MTEB main scores ×100 (mean over a task's splits and subsets).",
    "`mean ± h`: mean over seeds and the half-width of its two-sided 95% Student-t interval (n−1 degrees "
    "of freedom); a single value has no interval.",
    "Δ: mean paired difference arm − baseline over the seeds both arms completed. p (seeds): paired "
    "two-sided t-test on those per-seed differences. p (tasks): paired t-test on the per-task seed means of "
    "the category (tasks as the unit; it ignores training variance). Both raw, not adjusted for the number "
    "of comparisons: the Contrasts table gives the adjusted ones. n/a: fewer than 2 pairs (or identical "
    "differences).",
    "Bold: the best mean of the row (of the column in the summary by arm); the untrained student competes too.",
]


@dataclass
class Report:
    """Everything the Markdown and HTML templates show."""

    study: str
    baseline: str
    title: str
    status: str | None
    summary: str
    notes: list[str]
    contrasts: list[Table]
    """The Contrasts tables that open the report (seed level, task level, per task)."""
    headline_text: list[str]
    """One sentence per primary contrast and ``primary_on`` aggregate (by default the mean over categories)."""
    headline: list[Table]
    guide: Table
    trials: Table
    figures: list[Figure]
    repro: Reproducibility
    csv: pd.DataFrame
    findings: str
    """What a person concluded from the numbers (``FINDINGS.md`` beside the report), as Markdown text."""
    inputs_note: str = ""
    """Where the report's inputs come from, when some were recovered from an earlier rendering."""
    inputs: dict[str, bytes] = field(default_factory=dict)
    """The input files written beside the report (``inputs/``), so it rebuilds from the repository."""
    by_source: Table | None = None
    """Guide quality by training source and block (runs that recorded ``by_source``), else None."""
    mined: Table | None = None
    """What mining did by arm and source (trials with ``[train] mine``), else None."""
    looks: Table | None = None
    """The declarations and looks of the study (:mod:`harness.report.looks`); None without records."""
    new_look: Look | None = None
    """The look this rendering takes (for the caller to store in the run folder), else None."""
    tuning: TuningSection | None = None
    """The tuning stage of a ``[tuning]`` study (:mod:`harness.report.tuning`), else None."""
    subsets: list[Table] = field(default_factory=list)
    """The per-subset tables of ``[report] by_subset`` and ``guide_scores`` (:mod:`harness.report.subsets`)."""
    subsets_text: list[str] = field(default_factory=list)
    """What the per-subset section is, and what it left out (one line each)."""


FINDINGS_FILE = "FINDINGS.md"


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'s' * (count != 1)}"


def _summary(results: StudyResults, index: ScoreIndex) -> str:
    m = results.manifest
    seeds = sorted({s for arm in index.scores.values() for task in arm.values() for s in task})
    if m.baseline_arm in index.arms:
        against = f"compared with the baseline arm `{m.baseline_arm}`"
    elif not m.baseline_arm:
        against = "a search: each COMPLETE trial is an arm named by its number (#n), with no baseline"
    else:
        against = f"no COMPLETE trial of the baseline arm `{m.baseline_arm}`, so no Δ or p"
    return (
        f"{_n(len(index.arms), 'arm')} × {_n(len(seeds), 'seed')}, student `{m.student or '?'}`, "
        f"{_n(len(index.categories), 'task')} in {_n(len(set(index.categories.values())), 'category')} "
        f"(suite `{m.final_suite or '?'}`); {against}."
    ).replace("categorys", "categories")


def _in_domain_note(index: ScoreIndex) -> list[str]:
    if not index.in_domain:
        return []
    parts = "; ".join(f"{t} (arms: {', '.join(a)})" for t, a in index.in_domain.items())
    return [
        f"{IN_DOMAIN_MARK} in domain: the task shares a dataset with a training source, or the training data "
        f"overlaps its own train split, so its scores are not out-of-domain: {parts}."
    ]


def _title(results: StudyResults, index: ScoreIndex) -> str:
    baseline = results.manifest.baseline_arm
    if baseline and baseline in index.arms:
        return f"Study `{results.manifest.study}`: arms against `{baseline}`"
    return f"Study `{results.manifest.study}`"


def build_report(
    results: StudyResults,
    findings: str = "",
    report_toml: str = "",
    recovered: Recovered | None = None,
    *,
    look_time: datetime | None = None,
    guide_files: Mapping[str, bytes] | None = None,
) -> Report:
    """Computes every table and figure of the report of ``results``; ``findings`` is a person's text.

    ``report_toml``: a ``[report]`` section declared beside the report after the study ran (used only
    when the experiment file declares none).
    ``recovered``: tables and figures an older report kept only as rendered output (see
    :mod:`harness.report.inputs`), used where the stored results cannot recompute them.
    ``look_time``: this rendering is a look at the run folder's data, taken now (see
    :mod:`harness.report.looks`); the report then includes it and returns it as ``new_look``. None:
    re-rendering from stored inputs, not a look.
    ``guide_files``: arm -> its ``[report] guide_scores`` file
    (:func:`~harness.report.inputs.guide_score_files`), kept in the report's ``inputs/``.
    """
    index = score_index(results)
    baseline = results.manifest.baseline_arm
    notes = list(METHOD_NOTES)
    tasks = task_table(results, index)
    tasks.notes = _in_domain_note(index)
    contrasts, look = _contrasts(results, index, report_toml, look_time)
    if look is not None:
        results = replace(results, looks=[*results.looks, look])
    per_task = per_task_contrast_table(contrasts, index)
    per_task.notes += _in_domain_note(index)
    tuning = tuning_section(results)
    subsets = _subsets(results, index, contrasts, report_toml, guide_files or {})
    figures = _with_recovered(all_figures(results, index, contrasts), recovered)
    if tuning is not None and tuning.figure is not None:
        figures.append(tuning.figure)
    return Report(
        study=results.manifest.study,
        baseline=baseline,
        title=_title(results, index),
        status=status_line(results),
        summary=_summary(results, index),
        notes=notes,
        contrasts=[contrast_table(contrasts), task_level_table(contrasts), per_task]
        if contrasts.rows
        else [],
        headline_text=headline_sentences(contrasts) or _no_contrasts(contrasts),
        headline=[arm_table(results, index), category_table(results, index), tasks],
        guide=_guide(results, recovered),
        by_source=source_table(results),
        mined=mined_table(results),
        trials=trials_table(results),
        figures=figures,
        repro=reproducibility(results),
        csv=results_frame(results),
        findings=findings.strip(),
        inputs_note=recovered.note if recovered else "",
        inputs={
            **input_files(results),
            **(recovered.files() if recovered else {}),
            **{guide_score_path(arm): data for arm, data in (guide_files or {}).items()},
            **({f"{INPUTS_DIR}/{REPORT_TOML}": report_toml.encode("utf-8")} if report_toml else {}),
        },
        looks=looks_table(results, contrasts.settings),
        new_look=look,
        tuning=tuning,
        subsets=subset_tables(results, index, contrasts, subsets) if subsets else [],
        subsets_text=_subsets_text(subsets),
    )


def headline(results: StudyResults, report_toml: str = "") -> list[str]:
    """The report's sentences on its primary contrasts (each ``primary_on`` aggregate), without the rest of it."""
    contrasts, _ = _contrasts(results, score_index(results), report_toml, None)
    return headline_sentences(contrasts) or _no_contrasts(contrasts)


def _no_contrasts(contrasts: ContrastResults) -> list[str]:
    if contrasts.rows:
        return []
    return [
        "No contrasts: no two arms with COMPLETE trials to compare (a search has no baseline arm); declare "
        "`[report] contrasts` between arms to test them.",
        *(f"Left out: {p}." for p in contrasts.settings.problems),
    ]


def _subsets(
    results: StudyResults,
    index: ScoreIndex,
    contrasts: ContrastResults,
    report_toml: str,
    guide_files: Mapping[str, bytes],
) -> SubsetResults | None:
    """The ``[report] by_subset`` view and ``guide_scores`` links, or None when none is declared."""
    section, _ = declared_section(results.manifest.experiment_toml, report_toml)
    if section is None or not section.by_subset:
        return None
    untrained = untrained_arm_names(results.manifest.experiment_toml) if index.untrained else []
    return subset_results(results, section, contrasts.settings, untrained, guide_files)


def _subsets_text(found: SubsetResults | None) -> list[str]:
    if found is None:
        return []
    tasks = ", ".join(v.task for v in found.tasks) or "none"
    return [
        f"Tasks broken down by subset (language or language pair): {tasks}. Secondary and exploratory: "
        "declared in `[report] by_subset`, outside every primary family; each contrast's p-values are "
        "Holm-adjusted over one task's subsets only.",
        *(f"Left out: {line}." for line in found.left_out),
    ]


def _guide(results: StudyResults, recovered: Recovered | None) -> Table:
    table = guide_table(results)
    if table.rows or recovered is None or not recovered.guide_rows:
        return table
    rows = [[Cell(text, numeric=i > 2 or text.replace(".", "").isdigit()) for i, text in enumerate(row)]
            for row in recovered.guide_rows]  # fmt: skip
    note = ("Recovered as rendered by the original report (per-step diagnostics were not committed, so this "
            "table cannot be recomputed).")  # fmt: skip
    return Table(
        table.key,
        table.title,
        recovered.guide_columns,
        rows,
        [note, *recovered_notes(recovered.guide_columns)],
    )


def _with_recovered(figures: list[Figure], recovered: Recovered | None) -> list[Figure]:
    if recovered is None:
        return figures
    have = {f.name for f in figures}
    kept = [
        Figure(f["name"], f["title"], f"{f['caption']} (Image kept from the original report: its per-step "
               "data were not committed, so it is not redrawn.)", recovered.images[f["name"]])
        for f in recovered.figures
        if f["name"] not in have
    ]  # fmt: skip
    return figures + kept


def _contrasts(
    results: StudyResults, index: ScoreIndex, report_toml: str, look_time: datetime | None
) -> tuple[ContrastResults, Look | None]:
    """The report's contrasts at the alpha left for this look, and the look rendering them takes (or None)."""
    section, own = declared_section(results.manifest.experiment_toml, report_toml)
    origin = (
        "declared in the experiment file before the study ran"
        if own
        else "declared beside the report (inputs/report.toml) after the study ran"
    )
    # The untrained arms as the experiment names them; results.csv names the untrained student "untrained".
    named = untrained_arm_names(results.manifest.experiment_toml) or [UNTRAINED_ARM]
    untrained = named if index.untrained else []
    settings = replace(
        report_settings(
            section, index.arms, results.manifest.baseline_arm, origin=origin, untrained=untrained
        ),
        unrecorded_looks=unrecorded_looks(report_toml),
    )
    looking = look_time is not None and takes_a_look(results, settings)
    settings = with_looks(settings, results, len(results.looks) + looking)
    contrasts = contrast_results(index, settings)
    return contrasts, new_look(results, contrasts, look_time) if looking and look_time else None
