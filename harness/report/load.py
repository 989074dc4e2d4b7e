"""Tidy tables over loaded study results: the rows of ``results.csv`` and per-arm score lookups."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import pandas as pd

from harness.report.domain import shared_dataset_tasks
from harness.results import ScoreRow, StudyResults, TrialResult

UNTRAINED_ARM = "untrained"
CSV_COLUMNS = [
    "study", "trial", "arm", "seed", "state", "model", "task", "category", "split", "subset",
    "metric", "main_score", "in_domain", "mteb_version", "task_revision", "seconds",
]  # fmt: skip


def arm_of(result: TrialResult) -> str:
    """The arm name of a trial; plain search trials without an arm are named by their number."""
    return result.trial.arm or f"#{result.trial.number}"


def results_frame(results: StudyResults) -> pd.DataFrame:
    """One row per trial × task × split × subset (``results.csv``), in trial order.

    Trials without scores (running, failed, pruned) get one row per task known from the other trials,
    with an empty ``main_score``, so a partial study shows what is missing. The untrained student's
    scores come first with arm ``untrained`` and no trial number.
    """
    study = results.manifest.study
    rows: list[dict] = []
    if results.untrained is not None:
        for s in results.untrained.rows:
            rows.append({"study": study, "trial": None, "arm": UNTRAINED_ARM, "seed": None, "state": "COMPLETE",
                         **s.model_dump(), "in_domain": False})  # fmt: skip
    known: dict[tuple[str, str, str], ScoreRow] = {}
    for r in results.trials:
        for s in r.scores.rows if r.scores else []:
            known.setdefault((s.task, s.split, s.subset), s)
    shared = set(shared_dataset_tasks(results.manifest.experiment_toml, {k[0] for k in known}))
    for r in results.trials:
        t = r.trial
        base = {"study": study, "trial": t.number, "arm": arm_of(r), "seed": t.seed, "state": t.state}
        in_domain = shared | set(t.in_domain_tasks)
        if r.scores and r.scores.rows:
            for s in r.scores.rows:
                rows.append({**base, **s.model_dump(), "in_domain": s.task in in_domain})
            continue
        for s in known.values():
            rows.append({**base, "model": "", "task": s.task, "category": s.category, "split": s.split,
                         "subset": s.subset, "metric": s.metric, "main_score": None,
                         "in_domain": s.task in in_domain})  # fmt: skip
    frame = pd.DataFrame(rows, columns=CSV_COLUMNS)
    return frame.astype({"trial": "Int64", "seed": "Int64"})


@dataclass
class ScoreIndex:
    """Completed scores, indexed for the statistics.

    Attributes:
        scores: arm -> task -> seed -> main score (mean over the task's splits and subsets, as MTEB
            averages subsets). A seed completed twice keeps the later trial.
        untrained: task -> main score of the untrained student.
        categories: task -> MTEB category, ordered by category then task.
        arms: trained arms in first-trial order, the baseline first when present.
        in_domain: task -> arms trained in its domain: on a source of the task's dataset, or on texts of
            the task's own train split (see :mod:`harness.report.domain`).
    """

    scores: dict[str, dict[str, dict[int, float]]]
    untrained: dict[str, float]
    categories: dict[str, str]
    arms: list[str]
    in_domain: dict[str, list[str]]


def score_index(results: StudyResults) -> ScoreIndex:
    """Builds the :class:`ScoreIndex` of the COMPLETE trials and the untrained student."""
    return _index(results, None)


def subset_index(results: StudyResults, task: str) -> ScoreIndex:
    """The :class:`ScoreIndex` of one task's subsets: each subset of ``task`` (its main score, mean over
    the subset's splits) stands where a task stands, in the task's category, so the contrast helpers
    (:mod:`harness.report.contrasts`) run per subset unchanged. ``in_domain`` is left empty: a subset is
    in domain when its task is (see :func:`score_index`)."""
    return _index(results, task)


def _index(results: StudyResults, subsets_of: str | None) -> ScoreIndex:
    scores: dict[str, dict[str, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    categories: dict[str, str] = {}
    in_domain: dict[str, set[str]] = defaultdict(set)
    arms: list[str] = []
    for r in results.trials:
        if arm_of(r) not in arms:
            arms.append(arm_of(r))
        if r.trial.state != "COMPLETE" or not r.scores:
            continue
        seed = r.trial.seed if r.trial.seed is not None else 0
        for key, (category, value) in _means(r.scores.rows, subsets_of).items():
            categories[key] = category
            scores[arm_of(r)][key][seed] = value
        for task in r.trial.in_domain_tasks if subsets_of is None else []:
            in_domain[task].add(arm_of(r))
    untrained = {}
    if results.untrained is not None:
        for key, (category, value) in _means(results.untrained.rows, subsets_of).items():
            categories.setdefault(key, category)
            untrained[key] = value
    baseline = results.manifest.baseline_arm
    arms = [a for a in arms if a in scores]
    shared = shared_dataset_tasks(results.manifest.experiment_toml, categories) if subsets_of is None else []
    for task in shared:
        in_domain[task].update(arms)
    if baseline in arms:
        arms = [baseline] + [a for a in arms if a != baseline]
    ordered = dict(sorted(categories.items(), key=lambda kv: (kv[1], kv[0])))
    return ScoreIndex(
        scores={a: dict(t) for a, t in scores.items()},
        untrained=untrained,
        categories=ordered,
        arms=arms,
        in_domain={t: sorted(in_domain[t]) for t in ordered if t in in_domain},
    )


def _means(rows, subsets_of: str | None) -> dict[str, tuple[str, float]]:
    """Task -> (category, mean over its splits and subsets); with ``subsets_of``, subset -> (category,
    mean over its splits) for that task's rows only."""
    grouped: dict[str, list] = defaultdict(list)
    for s in rows:
        if subsets_of is None:
            grouped[s.task].append(s)
        elif s.task == subsets_of:
            grouped[s.subset].append(s)
    return {k: (g[0].category, sum(s.main_score for s in g) / len(g)) for k, g in grouped.items()}
