"""Assembles a :class:`Report` (tables, figures, provenance) from stored study results; pure, writes nothing."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from harness.report.load import ScoreIndex, results_frame, score_index
from harness.report.plots import Figure, all_figures
from harness.report.provenance import Reproducibility, reproducibility, status_line, trials_table
from harness.report.quality import guide_table
from harness.report.tables import IN_DOMAIN_MARK, Table, arm_table, category_table, task_table
from harness.results import StudyResults

METHOD_NOTES = [
    "Scores are MTEB main scores ×100 (mean over a task's splits and subsets).",
    "`mean ± h`: mean over seeds and the half-width of its two-sided 95% Student-t interval (n−1 degrees "
    "of freedom); a single value has no interval.",
    "Δ: arm mean minus baseline mean. p (seeds): paired two-sided t-test on the per-seed differences, over "
    "the seeds both arms completed. p (tasks): paired t-test on the per-task seed means of the category. "
    "n/a: fewer than 2 pairs (or identical differences).",
    "Bold: the best mean of the row (of the column in the summary by arm); the untrained student competes too.",
]


@dataclass
class Report:
    """Everything the Markdown and HTML templates show."""

    study: str
    baseline: str
    status: str | None
    summary: str
    notes: list[str]
    headline: list[Table]
    guide: Table
    trials: Table
    figures: list[Figure]
    repro: Reproducibility
    csv: pd.DataFrame
    findings: list[Block]
    """What a person concluded from the numbers (``FINDINGS.md`` beside the report), as blocks."""


@dataclass
class Block:
    """A paragraph (``items`` empty) or a bullet list of the findings text."""

    text: str
    items: list[str]


FINDINGS_FILE = "FINDINGS.md"


def parse_findings(text: str) -> list[Block]:
    """Paragraphs and ``- `` bullet lists of a findings text; a bullet's indented lines join it."""
    blocks: list[Block] = []
    for chunk in re.split(r"\n\s*\n", text.strip()):
        lines = [line.rstrip() for line in chunk.splitlines() if line.strip()]
        if not lines:
            continue
        if lines[0].startswith("- "):
            items: list[str] = []
            for line in lines:
                if line.startswith("- "):
                    items.append(line[2:].strip())
                else:
                    items[-1] += " " + line.strip()
            blocks.append(Block("", items))
        else:
            blocks.append(Block(" ".join(line.strip() for line in lines), []))
    return blocks


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'s' * (count != 1)}"


def _summary(results: StudyResults, index: ScoreIndex) -> str:
    m = results.manifest
    seeds = sorted({s for arm in index.scores.values() for task in arm.values() for s in task})
    against = (
        f"compared with the baseline arm `{m.baseline_arm}`"
        if m.baseline_arm in index.arms
        else f"no COMPLETE trial of the baseline arm `{m.baseline_arm}`, so no Δ or p"
    )
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
        f"{IN_DOMAIN_MARK} in-domain: the training data overlaps the task's own train split, so its "
        f"scores are not zero-shot: {parts}."
    ]


def build_report(results: StudyResults, findings: str = "") -> Report:
    """Computes every table and figure of the report of ``results``; ``findings`` is a person's text."""
    index = score_index(results)
    baseline = results.manifest.baseline_arm
    notes = list(METHOD_NOTES)
    tasks = task_table(results, index)
    tasks.notes = _in_domain_note(index)
    return Report(
        study=results.manifest.study,
        baseline=baseline,
        status=status_line(results),
        summary=_summary(results, index),
        notes=notes,
        headline=[arm_table(results, index), category_table(results, index), tasks],
        guide=guide_table(results),
        trials=trials_table(results),
        figures=all_figures(results, index),
        repro=reproducibility(results),
        csv=results_frame(results),
        findings=parse_findings(findings),
    )
