"""The report's tables as plain data (rows of text cells), rendered later by the Markdown and HTML templates.

Scores are shown ×100 (as on the MTEB leaderboard); ``mean ± h`` is the mean over seeds with the
half-width of its 95% t interval; Δ is the arm's mean minus the baseline's; p-values come from the
paired t-tests in :mod:`harness.report.stats`. The highest mean of a row (or column, in the summary
by arm) is marked best; the untrained student competes too, so a fine-tune that hurts is visible.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.report.load import ScoreIndex
from harness.report.stats import MeanCI, PairedTest, mean_ci, paired_by_key
from harness.results import StudyResults

IN_DOMAIN_MARK = "†"


@dataclass
class Cell:
    """One table cell: its text and whether it is the best of its row (or column)."""

    text: str
    best: bool = False
    numeric: bool = True
    kind: str = ""
    """Extra CSS class in HTML (e.g. ``state-FAIL``); Markdown ignores it."""


@dataclass
class Table:
    """A titled table of text cells with notes printed below it."""

    key: str
    title: str
    columns: list[str]
    rows: list[list[Cell]]
    notes: list[str] = field(default_factory=list)

    @property
    def aligns(self) -> list[str]:
        """``"left"`` for text columns, ``"right"`` for numbers (judged by the first row)."""
        if not self.rows:
            return ["left"] * len(self.columns)
        return ["right" if cell.numeric else "left" for cell in self.rows[0]]


def fmt_score(m: MeanCI | None) -> str:
    if m is None:
        return "—"
    if m.half_width is None:
        return f"{100 * m.mean:.2f}"
    return f"{100 * m.mean:.2f} ± {100 * m.half_width:.2f}"


def fmt_delta(diff: float | None) -> str:
    return "—" if diff is None else f"{100 * diff:+.2f}"


def fmt_p(test: PairedTest | None) -> str:
    if test is None or test.p is None:
        return "n/a"
    return "<0.001" if test.p < 0.001 else f"{test.p:.3f}"


def _category_by_seed(index: ScoreIndex, arm: str, tasks: list[str]) -> dict[int, float]:
    """Seed -> mean over ``tasks`` of that seed's scores (seeds that scored every task only)."""
    per_task = index.scores.get(arm, {})
    seeds = set.intersection(*(set(per_task.get(t, {})) for t in tasks)) if tasks else set()
    return {s: sum(per_task[t][s] for t in tasks) / len(tasks) for s in sorted(seeds)}


def _task_seed_means(index: ScoreIndex, arm: str, tasks: list[str]) -> dict[str, float]:
    per_task = index.scores.get(arm, {})
    return {t: sum(per_task[t].values()) / len(per_task[t]) for t in tasks if per_task.get(t)}


def _untrained_mean(index: ScoreIndex, tasks: list[str]) -> MeanCI | None:
    if not tasks or not all(t in index.untrained for t in tasks):
        return None
    return MeanCI(sum(index.untrained[t] for t in tasks) / len(tasks), None, 1)


def _mark_best(cells: list[Cell], means: list[float | None]) -> None:
    present = [m for m in means if m is not None]
    if not present:
        return
    top = max(present)
    for cell, m in zip(cells, means, strict=True):
        cell.best = m is not None and abs(m - top) < 1e-12


def _columns(index: ScoreIndex, baseline: str, p_columns: list[str]) -> list[str]:
    cols = []
    if index.untrained:
        cols.append("untrained (ref)")
    for arm in index.arms:
        cols.append(f"{arm} (baseline)" if arm == baseline else arm)
        if arm != baseline and baseline in index.arms:
            cols += ["Δ", *p_columns]
    return cols


def _row(index, baseline, label, by_seed, task_means=None, untrained=None) -> list[Cell]:
    """One row: untrained, then per arm mean±CI (+ Δ, p columns for non-baseline arms)."""
    cells, score_cells, means = [Cell(label, numeric=False)], [], []
    if index.untrained:
        cells.append(Cell(fmt_score(untrained)))
        score_cells.append(cells[-1])
        means.append(untrained.mean if untrained else None)
    base = by_seed.get(baseline, {})
    for arm in index.arms:
        values = by_seed.get(arm, {})
        m = mean_ci(list(values.values())) if values else None
        cells.append(Cell(fmt_score(m)))
        score_cells.append(cells[-1])
        means.append(m.mean if m else None)
        if arm == baseline or baseline not in index.arms:
            continue
        # Δ and p over the same pairs: the seeds both arms completed
        paired = paired_by_key(values, base) if base and values else None
        cells.append(Cell(fmt_delta(paired.mean_diff if paired and paired.n else None)))
        cells.append(Cell(fmt_p(paired)))
        if task_means is not None:
            cells.append(Cell(fmt_p(paired_by_key(task_means.get(arm, {}), task_means.get(baseline, {})))))
    _mark_best(score_cells, means)
    return cells


def task_table(results: StudyResults, index: ScoreIndex) -> Table:
    """Per task: each arm's mean ± CI over seeds, Δ vs the baseline and the paired p across seeds."""
    baseline = results.manifest.baseline_arm
    rows = []
    for task in index.categories:
        label = f"{task} {IN_DOMAIN_MARK}" if task in index.in_domain else task
        by_seed = {arm: index.scores.get(arm, {}).get(task, {}) for arm in index.arms}
        untrained = MeanCI(index.untrained[task], None, 1) if task in index.untrained else None
        rows.append(_row(index, baseline, label, by_seed, untrained=untrained))
    return Table("tasks", "Per task", ["Task", *_columns(index, baseline, ["p"])], rows)


def category_table(results: StudyResults, index: ScoreIndex) -> Table:
    """Per MTEB category and over all tasks: mean ± CI of per-seed category means, Δ, p across seeds and tasks."""
    baseline = results.manifest.baseline_arm
    groups: dict[str, list[str]] = {}
    for task, category in index.categories.items():
        groups.setdefault(category, []).append(task)
    groups_with_all = [(f"{c} ({len(t)} task{'s' * (len(t) > 1)})", t) for c, t in groups.items()]
    if index.categories:
        groups_with_all.append((f"All tasks ({len(index.categories)})", list(index.categories)))
    rows = []
    for label, tasks in groups_with_all:
        by_seed = {arm: _category_by_seed(index, arm, tasks) for arm in index.arms}
        task_means = {arm: _task_seed_means(index, arm, tasks) for arm in index.arms}
        rows.append(_row(index, baseline, label, by_seed, task_means, _untrained_mean(index, tasks)))
    columns = ["Category", *_columns(index, baseline, ["p (seeds)", "p (tasks)"])]
    return Table("categories", "Per MTEB category", columns, rows)


def arm_table(results: StudyResults, index: ScoreIndex) -> Table:
    """One row per arm (the untrained student as a reference row): category means, overall Δ and p."""
    baseline = results.manifest.baseline_arm
    groups: dict[str, list[str]] = {}
    for task, category in index.categories.items():
        groups.setdefault(category, []).append(task)
    groups["All tasks"] = list(index.categories)
    columns = ["Arm", "seeds", *groups, "Δ all vs baseline", "p (seeds)"]
    base_all = _category_by_seed(index, baseline, groups["All tasks"])
    base_mean = sum(base_all.values()) / len(base_all) if base_all else None
    rows: list[list[Cell]] = []
    means_by_col: list[list[float | None]] = [[] for _ in groups]
    if index.untrained:
        row = [Cell("untrained (reference)", numeric=False), Cell("—")]
        for k, tasks in enumerate(groups.values()):
            m = _untrained_mean(index, tasks)
            row.append(Cell(fmt_score(m)))
            means_by_col[k].append(m.mean if m else None)
        m_all = _untrained_mean(index, groups["All tasks"])
        delta = m_all.mean - base_mean if m_all and base_mean is not None else None
        rows.append([*row, Cell(fmt_delta(delta)), Cell("n/a")])
    for arm in index.arms:
        seeds = _category_by_seed(index, arm, groups["All tasks"])
        row = [Cell(f"{arm} (baseline)" if arm == baseline else arm, numeric=False), Cell(str(len(seeds)))]
        for k, tasks in enumerate(groups.values()):
            values = list(_category_by_seed(index, arm, tasks).values())
            m = mean_ci(values) if values else None
            row.append(Cell(fmt_score(m)))
            means_by_col[k].append(m.mean if m else None)
        delta = None
        if arm != baseline and base_all and seeds:
            shared = paired_by_key(seeds, base_all)
            delta = shared.mean_diff if shared.n else None
        p = (
            Cell("—")
            if arm == baseline
            else Cell(fmt_p(paired_by_key(seeds, base_all) if base_all else None))
        )
        rows.append([*row, Cell(fmt_delta(delta)), p])
    for k, means in enumerate(means_by_col):
        _mark_best([r[2 + k] for r in rows], means)
    return Table("arms", "Summary by arm", columns, rows)
