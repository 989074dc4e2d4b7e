"""The per-subset view of a report: declared tasks by subset, and the guide-quality link.

Secondary and exploratory analyses, declared in ``[report]`` (:class:`~harness.results.ReportConfig`):

* ``by_subset``: for each named task, each subset (MTEB's ``hf_subset``: a language or a language pair;
  its main score is the mean over the subset's splits) stands where a task stands in
  :mod:`harness.report.contrasts`, and every declared contrast gets the paired Δ over seeds, its 95% t
  interval and paired t-test p (:func:`~harness.report.stats.paired_delta`), then Holm over the
  task's subsets, separately for each contrast (:func:`~harness.report.stats.holm`). No primary
  family includes them.
* ``guide_scores``: per GIST arm and ``by_subset`` task, Spearman's rank correlation over the subsets
  between the arm's guide's own score on a subset (a ``gist-harness eval --json`` file) and the arm's
  gain over its declared reference there (the mean paired Δ over seeds), with a permutation p-value
  (:func:`spearman`). Descriptive: over ~10 languages, with no multiplicity correction.

The scores come from the trials' score rows, as ``results.csv`` stores them, so a committed report
recomputes this view from its own files.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from harness.errors import UserError
from harness.report.contrasts import with_gain_arms, with_untrained_arms
from harness.report.load import ScoreIndex, subset_index
from harness.report.settings import Contrast, ReportConfig, ReportSettings, gain_arms
from harness.report.stats import PairedDelta, holm, paired_delta
from harness.results import ScoreRow, ScoreTable, StudyResults

MIN_CORRELATION_SUBSETS = 3
"""Fewest subsets a rank correlation is computed over (with 2 it is always ±1)."""


@dataclass(frozen=True)
class SubsetContrast:
    """One contrast on one subset: the paired Δ over seeds, and its p after Holm over the task's subsets."""

    subset: str
    delta: PairedDelta
    p_holm: float | None


@dataclass(frozen=True)
class TaskSubsets:
    """One ``by_subset`` task: its subsets' scores (gain and untrained arms added) and contrasts."""

    task: str
    splits: list[str]
    """The splits a subset's score is the mean over."""
    index: ScoreIndex
    contrasts: dict[Contrast, list[SubsetContrast]]

    @property
    def subsets(self) -> list[str]:
        return list(self.index.categories)


@dataclass(frozen=True)
class GuideLink:
    """Spearman's ρ over one task's subsets between a guide's own score and its GIST arm's gain."""

    arm: str
    reference: str
    task: str
    guide_model: str
    """The model named in the guide's score file."""
    subsets: list[str]
    guide: list[float]
    """The guide's own score per subset (mean over the splits its file holds)."""
    gain: list[float]
    """Mean paired Δ arm − reference over seeds, per subset."""
    rho: float | None
    p: float | None


@dataclass(frozen=True)
class SubsetResults:
    tasks: list[TaskSubsets]
    links: list[GuideLink]
    left_out: list[str]
    """One line per declared task or link that could not be computed, saying why."""


def subset_results(
    results: StudyResults,
    section: ReportConfig,
    settings: ReportSettings,
    untrained: list[str],
    guide_files: Mapping[str, bytes],
) -> SubsetResults:
    """The ``by_subset`` tasks and ``guide_scores`` links of ``section``.

    ``untrained``: the experiment's untrained arm names (a reference may be one); ``guide_files``: arm
    -> the bytes of its declared guide-score file (:func:`~harness.report.inputs.guide_score_files`).
    """
    views = [task_subsets(results, task, settings, untrained) for task in section.by_subset or []]
    links: list[GuideLink | str] = []
    for arm, entry in (section.guide_scores or {}).items():
        if arm not in guide_files:
            links.append(f"guide_scores {arm}: its score file was not read ({entry.scores})")
            continue
        rows = guide_rows(guide_files[arm], arm)
        links += [guide_link(v, arm, entry.reference, rows) for v in views if isinstance(v, TaskSubsets)]
    return SubsetResults(
        tasks=[v for v in views if isinstance(v, TaskSubsets)],
        links=[k for k in links if isinstance(k, GuideLink)],
        left_out=[why for why in (*views, *links) if isinstance(why, str)],
    )


def task_subsets(
    results: StudyResults, task: str, settings: ReportSettings, untrained: list[str]
) -> TaskSubsets | str:
    """The subset view of ``task``, or why there is none (not scored, or scored as one subset)."""
    index = subset_index(results, task)
    if not index.categories:
        return f"by_subset {task}: no COMPLETE trial scored it"
    if len(index.categories) < 2:
        only = next(iter(index.categories))
        return f"by_subset {task}: scored as one subset ({only!r}), so it has no per-subset view"
    names = sorted(set(settings.untrained) | set(untrained))
    index = with_gain_arms(with_untrained_arms(index, names), gain_arms(settings.contrasts))
    splits = sorted({s.split for r in results.trials if r.scores for s in r.scores.rows if s.task == task})
    return TaskSubsets(task, splits, index, {c: _contrast(index, c) for c in settings.contrasts})


def _contrast(index: ScoreIndex, contrast: Contrast) -> list[SubsetContrast]:
    arm, ref = (index.scores.get(a, {}) for a in contrast)
    deltas = [paired_delta(arm.get(s, {}), ref.get(s, {})) for s in index.categories]
    adjusted = holm([d.p for d in deltas])
    return [SubsetContrast(s, d, p) for s, d, p in zip(index.categories, deltas, adjusted, strict=True)]


def guide_rows(data: bytes, arm: str) -> list[ScoreRow]:
    """The score rows of a guide-score file: the JSON list ``gist-harness eval --json`` writes, or a
    :class:`~harness.results.ScoreTable` (``scores.json``). Raises a one-line :class:`UserError` naming
    the ``[report]`` field otherwise."""
    field = f"[report] guide_scores.{arm}.scores"
    try:
        loaded = json.loads(data)
        return ScoreTable.model_validate({"rows": loaded} if isinstance(loaded, list) else loaded).rows
    except (ValueError, ValidationError) as exc:  # json's errors are ValueErrors too
        reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        raise UserError(f"{field}: not a score file of gist-harness eval --json ({reason})") from None


def guide_link(view: TaskSubsets, arm: str, reference: str, rows: list[ScoreRow]) -> GuideLink | str:
    """Spearman's ρ (:func:`spearman`) between the guide's score and the arm's gain over the task's
    subsets both cover, or why there is none."""
    own: dict[str, list[float]] = {}
    for s in rows:
        if s.task == view.task:
            own.setdefault(s.subset, []).append(s.main_score)
    arm_scores, ref_scores = (view.index.scores.get(a, {}) for a in (arm, reference))
    gains = {s: paired_delta(arm_scores.get(s, {}), ref_scores.get(s, {})) for s in view.subsets}
    subsets = [s for s in view.subsets if s in own and gains[s].n]
    where = f"guide_scores {arm} on {view.task}"
    missing = [a for a in (arm, reference) if a not in view.index.scores]
    if missing:
        return f"{where}: no COMPLETE trial of {', '.join(missing)}"
    if len(subsets) < MIN_CORRELATION_SUBSETS:
        return (
            f"{where}: {len(subsets)} subset(s) with both the guide's score and a gain over {reference} "
            f"(a rank correlation needs {MIN_CORRELATION_SUBSETS})"
        )
    guide = [sum(own[s]) / len(own[s]) for s in subsets]
    gain = [gains[s].mean for s in subsets]
    rho, p = spearman(guide, gain)
    model = next((s.model for s in rows if s.task == view.task), "")
    return GuideLink(arm, reference, view.task, model, subsets, guide, gain, rho, p)


PERMUTATIONS = 9_999
"""Random pairings behind a rank correlation's p-value when there are more than n! of them (n > 7)."""


def spearman(x: list[float], y: list[float]) -> tuple[float | None, float | None]:
    """Spearman's ρ (scipy ``spearmanr``) and its two-sided permutation p-value: Pearson's r of the
    ranks under every pairing of the ranks when n! <= 9,999 (n <= 7: exact), else under 9,999 random
    pairings (scipy ``PermutationMethod``, seed 0: deterministic). Unlike ``spearmanr``'s own
    t approximation it holds at n = 3 (where ρ = 1 gives p = 1/3, not 0). None: a constant input."""
    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a constant input: ρ is undefined (nan)
        rho = float(stats.spearmanr(x, y).statistic)
        if math.isnan(rho):
            return None, None
        method = stats.PermutationMethod(n_resamples=PERMUTATIONS, random_state=0)
        p = float(stats.pearsonr(stats.rankdata(x), stats.rankdata(y), method=method).pvalue)
    return rho, p
