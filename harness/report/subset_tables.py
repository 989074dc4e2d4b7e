"""The per-subset tables of a report (``[report] by_subset`` and ``guide_scores``; :mod:`harness.report.subsets`)."""

from __future__ import annotations

import re

from harness.report.contrast_tables import contrast_label, fmt_pvalue
from harness.report.contrasts import ContrastResults
from harness.report.load import ScoreIndex
from harness.report.subsets import PERMUTATIONS, GuideLink, SubsetResults, TaskSubsets
from harness.report.tables import IN_DOMAIN_MARK, Cell, Table, task_table
from harness.results import StudyResults

ALL_SUBSETS = "all subsets (the task's score)"
EXPLORATORY = "Secondary and exploratory (declared in `[report] by_subset`): no primary family includes it."


def _pts(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:+.2f}"


def _interval(low: float | None, high: float | None) -> str:
    return "—" if low is None or high is None else f"[{100 * low:+.2f}, {100 * high:+.2f}]"


def _key(prefix: str, task: str) -> str:
    """A table key (an HTML id) from a task name: ``local:STS17`` -> ``prefix-local-sts17``."""
    return f"{prefix}-" + re.sub(r"[^a-z0-9]+", "-", task.lower()).strip("-")


def _splits(view: TaskSubsets) -> str:
    return f"the mean over its split{'s' * (len(view.splits) != 1)} {', '.join(view.splits)}"


def subset_score_table(results: StudyResults, index: ScoreIndex, view: TaskSubsets) -> Table:
    """Each arm's mean ± CI per subset of the task (as the Per task table), then the task's own row."""
    table = task_table(results, view.index)
    whole = next((r for r in task_table(results, index).rows if r[0].text.split(" ")[0] == view.task), None)
    rows = table.rows + ([[Cell(ALL_SUBSETS, numeric=False), *whole[1:]]] if whole else [])
    notes = [
        f"{EXPLORATORY} A subset's score is {_splits(view)}; mean ± h over seeds as in the Per task table; "
        "Δ and p (raw, paired over seeds) against the baseline."
    ]
    if view.task in index.in_domain:
        notes.append(f"{IN_DOMAIN_MARK} The task is in domain for {', '.join(index.in_domain[view.task])}, and so "
                     "is each of its subsets (see the Per task table).")  # fmt: skip
    return Table(_key("subset-scores", view.task), f"Scores per subset: {view.task}", ["Subset", *table.columns[1:]],
                 rows, notes)  # fmt: skip


def subset_contrast_table(contrasts: ContrastResults, view: TaskSubsets) -> Table:
    """Per subset and declared contrast: Δ over seeds, its 95% CI, p and p after Holm over the subsets."""
    columns = ["Subset"]
    for c in view.contrasts:
        columns += [f"Δ {contrast_label(c)}", "95% CI", "p", "p (Holm, subsets)"]
    rows = []
    for i, subset in enumerate(view.subsets):
        row = [Cell(subset, numeric=False)]
        for found in view.contrasts.values():
            d = found[i].delta
            row += [Cell(_pts(d.mean if d.n else None)), Cell(_interval(d.low, d.high)), Cell(fmt_pvalue(d.p)),
                    Cell(fmt_pvalue(found[i].p_holm))]  # fmt: skip
        rows.append(row)
    total = [Cell(ALL_SUBSETS, numeric=False)]
    for c in view.contrasts:
        task = next((t for t in contrasts.tasks.get(c, []) if t.task == view.task), None)
        d = task.delta if task else None
        total += [Cell(_pts(d.mean if d and d.n else None)), Cell(_interval(d.low, d.high) if d else "—"),
                  Cell(fmt_pvalue(d.p if d else None)), Cell("—")]  # fmt: skip
    n = len(view.subsets)
    notes = [
        f"{EXPLORATORY} Per subset ({_splits(view)}): the paired Δ over the seeds both arms completed, its "
        "95% t interval and paired t-test p, as in the Per-task contrasts table.",
        f"p (Holm, subsets): Holm over the {n} subsets of this task, separately for each contrast (a family of "
        f"{n} tests per contrast); not adjusted across contrasts or tasks. n/a with one seed.",
        "The last row is the task's own score (the mean over its splits and subsets): its Δ, CI and p as in "
        "the Per-task contrasts table.",
    ]
    return Table(_key("subset-contrasts", view.task), f"Per-subset contrasts: {view.task} (exploratory)", columns,
                 [*rows, total] if view.contrasts else [], notes)  # fmt: skip


def guide_link_table(links: list[GuideLink]) -> Table:
    """Per GIST arm and task: Spearman's ρ over the subsets between the guide's score and the arm's gain."""
    columns = ["Arm", "Guide scores of", "Gain over", "Task", "n (subsets)", "Spearman ρ", "p"]
    rows = [
        [Cell(k.arm, numeric=False), Cell(k.guide_model or "—", numeric=False),
         Cell(k.reference, numeric=False), Cell(k.task, numeric=False), Cell(str(len(k.subsets))),
         Cell("n/a" if k.rho is None else f"{k.rho:+.2f}"), Cell(fmt_pvalue(k.p))]
        for k in links
    ]  # fmt: skip
    sizes = ", ".join(str(n) for n in sorted({len(k.subsets) for k in links}))
    notes = [
        f"Descriptive, with small n (n = {sizes} subsets): each ρ describes these languages of one task; it "
        "is not a test of whether a better guide helps more in general, and no multiplicity correction is "
        "applied. With n = 10 only |ρ| above about 0.65 gets p < 0.05, and even then its interval is wide.",
        "ρ: Spearman's rank correlation (scipy.stats.spearmanr) between the guide's own main score on a subset "
        "(its `gist-harness eval --json` file, copied into inputs/guide_scores/; mean over the splits there) "
        "and the arm's gain on that subset (the mean paired Δ arm − reference over seeds, as in the Per-subset "
        "contrasts and the table below). p: two-sided permutation test of the ranks (scipy PermutationMethod: "
        f"every pairing for n ≤ 7, else {PERMUTATIONS:,} random ones, seed 0). The gains carry seed noise, "
        "which pulls ρ towards 0. n/a: a constant input.",
    ]
    return Table("guide-link", "Guide quality and GIST's gain per subset (descriptive)", columns, rows, notes)


def guide_detail_table(links: list[GuideLink]) -> Table:
    """The numbers under each ρ: per task and subset, each guide's score and its arm's gain."""
    pairs = list(dict.fromkeys((k.arm, k.reference) for k in links))
    columns = ["Task", "Subset"]
    for arm, ref in pairs:
        columns += [f"{arm}: guide's score", f"Δ {arm} − {ref}"]
    rows = []
    for task in dict.fromkeys(k.task for k in links):
        found = {(k.arm, k.reference): k for k in links if k.task == task}
        for subset in dict.fromkeys(s for k in found.values() for s in k.subsets):
            row = [Cell(task, numeric=False), Cell(subset, numeric=False)]
            for pair in pairs:
                k = found.get(pair)
                i = k.subsets.index(subset) if k and subset in k.subsets else None
                row += [Cell("—" if i is None else f"{100 * k.guide[i]:.2f}"),
                        Cell("—" if i is None else _pts(k.gain[i]))]  # fmt: skip
            rows.append(row)
    notes = [
        "Scores ×100. Δ: mean paired difference over the seeds both arms completed (seed noise included)."
    ]
    return Table("guide-link-subsets", "Guide's score and gain per subset", columns, rows, notes)


def subset_tables(
    results: StudyResults, index: ScoreIndex, contrasts: ContrastResults, found: SubsetResults
) -> list[Table]:
    """Every per-subset table: per task its scores and contrasts, then the guide-quality link."""
    tables: list[Table] = []
    for view in found.tasks:
        tables.append(subset_score_table(results, index, view))
        if view.contrasts:
            tables.append(subset_contrast_table(contrasts, view))
    if found.links:
        tables += [
            guide_link_table(found.links),
            guide_detail_table(found.links),
        ]
    return tables
