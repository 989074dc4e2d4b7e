"""Stored result records of a study, and their JSON files.

The study runner writes these files; the report layer reads only these files (never torch, mteb or
an Optuna storage), so a report rebuilds in seconds. Layout of one study folder::

    runs/<study>/
        manifest.json           StudyManifest   (written at start, rewritten after every trial)
        untrained/scores.json   ScoreTable      (the untrained student on the final suite; optional)
        trial-0000/trial.json   TrialRecord     (written when the trial starts, rewritten when it ends)
        trial-0000/scores.json  ScoreTable      (final-suite scores; COMPLETE trials only)
        trial-0000/run.json     RunRecord       (loss curve, mask diagnostics, timings; when training ran)
        declarations/0001.json  Declaration     (before the first trial; a new one on each change)
        looks/0001.json         Look            (each report rendered with contrasts from the folder)

Trial folders are found by ``*/trial.json``, so the folder name is free; :func:`trial_dirname` gives the
conventional one. ``scores.parquet`` (the tidy table of :class:`ScoreRow` columns) is read when
``scores.json`` is absent. Every write is atomic (temporary file + ``os.replace``), so a worker killed
mid-write leaves the previous version, never half a file.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SCHEMA_VERSION = 1
TrialState = Literal["COMPLETE", "RUNNING", "FAIL", "PRUNED", "WAITING"]
UNTRAINED_DIR = "untrained"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CodeProvenance(_Record):
    """The code and packages a trial (or a session of a study) ran with, taken when it started."""

    git_commit: str = ""
    """Commit of the harness checkout (empty outside git)."""
    dirty: bool = False
    """Whether tracked files had uncommitted changes."""
    diff_sha256: str = ""
    """sha256 of ``git diff HEAD`` (the uncommitted changes to tracked files); empty when clean."""
    harness_version: str = ""
    """``harness.__version__``."""
    package_versions: dict[str, str] = Field(default_factory=dict)
    """Versions of python, torch, transformers, sentence-transformers, mteb, optuna, ..."""
    started: datetime | None = None
    """When it was taken (UTC)."""
    command: str = ""
    """The command line of the process (sessions only)."""
    hardware: dict[str, str] = Field(default_factory=dict, exclude_if=lambda info: not info)
    """The machine it ran on (``harness.study.environment.hardware``: CPU model and count, memory, GPU);
    empty in records written before it was kept."""


class TrialRecord(_Record):
    """One Optuna trial: which arm and seed it ran, with what configuration, and how it ended."""

    study: str
    """Study name (the folder name under ``runs/``)."""
    number: int
    """Optuna trial number (0-based, unique within the study)."""
    state: TrialState
    """Optuna state name; RUNNING trials are shown as such in partial reports."""
    arm: str | None = None
    """Ablation arm name (e.g. ``"infonce"``, ``"gist"``); None for a plain search trial."""
    seed: int | None = None
    """Training seed of this trial."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Optuna parameters of the trial (sampled or enqueued), as in ``trial.params``."""
    config: dict[str, Any] = Field(default_factory=dict)
    """The full resolved training configuration (JSON-able snapshot of the experiment for this trial)."""
    guide: str | None = None
    """Guide name (``"all-mpnet-base"``, ``"bm25"``, ``"none"`` for InfoNCE, ...)."""
    strategy: str | None = None
    """Masking strategy name (``"none"`` for InfoNCE, ``"gist"``, ``"random"``, ...)."""
    value: float | None = None
    """Objective value reported to Optuna (None unless COMPLETE)."""
    started: datetime | None = None
    """Start time (UTC)."""
    finished: datetime | None = None
    """End time (UTC); None while RUNNING."""
    wall_seconds: float | None = None
    """Wall-clock seconds from start to end (training + scoring)."""
    in_domain_tasks: list[str] = Field(default_factory=list)
    """Tasks whose own train split overlaps this trial's training data (from the data layer's leakage check)."""
    error: str | None = None
    """One-line reason for FAIL or PRUNED trials."""
    provenance: CodeProvenance | None = None
    """Commit, dirty flag, diff hash and package versions of the process that ran this trial."""


class ScoreRow(_Record):
    """One main score of one model on one task split/subset (the tidy row of ``evaluate()``)."""

    model: str
    """Model name or path that was scored."""
    task: str
    """Task name (``local:STSBenchmark``, ...)."""
    category: str
    """MTEB category (``STS``, ``Classification``, ``Retrieval``, ...)."""
    split: str
    """Evaluation split (``test``, ...)."""
    subset: str = "default"
    """Subset / language (``default`` when the task has none)."""
    metric: str
    """Name of the main metric (``cosine_spearman``, ``accuracy``, ``ndcg_at_10``, ...)."""
    main_score: float
    """Value of the main metric (higher is better, as in MTEB)."""
    mteb_version: str = ""
    """Version of mteb that computed the score."""
    task_revision: str = ""
    """Revision (or checksum) of the task data."""
    seconds: float | None = None
    """Seconds spent evaluating this task."""


class ScoreTable(_Record):
    """The content of ``scores.json``: the scores of one model on one suite."""

    suite: str = ""
    """Name of the suite that was run (usually the experiment's final suite)."""
    rows: list[ScoreRow] = Field(default_factory=list)
    """One row per task × split × subset."""


class DiagnosticsPoint(_Record):
    """Mask diagnostics of the guided loss, averaged over one logging interval."""

    step: int
    """Optimiser step at the end of the interval."""
    drop_rate: float
    """Share of in-batch candidates dropped by the strategy (0 for InfoNCE)."""
    kept_per_anchor_mean: float
    """Mean number of negatives kept per anchor."""
    kept_per_anchor_min: float
    """Smallest number of negatives kept by any anchor."""
    share_no_negatives: float
    """Share of anchors left with no negative at all."""
    fn_precision: float | None = None
    """Of the dropped candidates, the share that are true false negatives (None without labels)."""
    fn_recall: float | None = None
    """Of the true false negatives in the batch, the share that were dropped (None without labels)."""
    guide_seconds: float = 0.0
    """Seconds per step spent looking up or computing guide similarities."""
    step_seconds: float = 0.0
    """Seconds per optimiser step, guide included."""


class MinedSource(_Record):
    """What mining did to one training source of a trial with ``[train] mine`` (``harness.data.mined``)."""

    rows: int
    """Training rows of the source (all kept, mined or not)."""
    anchors: int
    """Unique anchors mined for."""
    corpus: int
    """Candidate texts: the source's own positives, de-duplicated."""
    negatives: int
    """Negatives mined, summed over the anchors (at most ``anchors x num_negatives``)."""
    short_anchors: int
    """Anchors left with fewer than ``num_negatives`` negatives by the filters."""
    short_rows: int
    """Rows holding the anchor placeholder (no negative) in at least one negative column."""
    candidates: int
    """Candidates in the windows left after the exclusions (padding, the anchor, its positives)."""
    removed: dict[str, int] = Field(default_factory=dict)
    """Per filter, the candidates it removed first (``harness.data.mining.FILTERS`` order)."""
    removed_share: float | None = None
    """Share of ``candidates`` the filters removed together (None: no candidate left to filter)."""
    resolved_margin: float | None = None
    """The absolute margin ``margin_quantile`` resolved to (None if unset)."""
    same_label_rate: float | None = None
    """Share of mined negatives with the anchor's class label (None: the source has no labels)."""
    same_label_rate_unfiltered: float | None = None
    """The same without the filters (same window and sampling)."""
    same_label_rate_random: float | None = None
    """The same for one uniformly drawn corpus text per anchor."""
    seconds: float | None = None
    """Seconds spent mining the source (guide lookups included)."""


class RunRecord(_Record):
    """What one training run measured (returned by ``train()``, stored as ``run.json``)."""

    loss_curve: list[tuple[int, float]] = Field(default_factory=list)
    """Training loss as (step, loss) at each logging step."""
    diagnostics: list[DiagnosticsPoint] = Field(default_factory=list)
    """Mask diagnostics per logging step."""
    steps: int | None = None
    """Optimiser steps run."""
    train_seconds: float | None = None
    """Wall-clock seconds of training (scoring excluded)."""
    peak_memory_mb: float | None = None
    """Peak memory in MiB (CUDA max allocated on GPU, max RSS on CPU)."""
    guide_cache_seconds: float | None = None
    """Seconds to build the guide embedding cache (0 when it was already on disk, None without a guide)."""
    by_source: dict[str, dict[str, float]] = Field(default_factory=dict)
    """Mask diagnostics over the whole run by the training source of each anchor row: ``rows``,
    ``negatives_kept_mean``, ``drop_rate`` overall and ``drop_rate_<block>`` / ``candidates_<block>``
    per block (ap = qp, aa = qq, pp, an1 = qn), and with labels ``fn_precision``/``fn_recall``
    overall and per block (``harness.loss.diagnostics.SourceTotals``)."""
    mining: dict[str, MinedSource] = Field(default_factory=dict)
    """Per training source, what mining did when the trial set ``[train] mine`` (empty otherwise)."""


class HistoryTrial(_Record):
    """One trial as Optuna stored it, enough to redraw Optuna's plots without a storage."""

    number: int
    """Optuna trial number."""
    state: TrialState
    """Optuna state name."""
    value: float | None = None
    """Objective value (COMPLETE trials)."""
    params: dict[str, Any] = Field(default_factory=dict)
    """``trial.params``."""
    intermediate_values: dict[int, float] = Field(default_factory=dict)
    """Values reported with ``trial.report(value, step)``, by step."""
    started: datetime | None = None
    """``trial.datetime_start``."""
    finished: datetime | None = None
    """``trial.datetime_complete``."""


class StudyManifest(_Record):
    """Everything needed to reproduce a study and redraw its Optuna plots (``manifest.json``)."""

    schema_version: int = SCHEMA_VERSION
    """Version of this file layout."""
    study: str
    """Study name."""
    direction: Literal["maximize", "minimize"] = "maximize"
    """Optimisation direction of the objective."""
    objective: str = ""
    """What the objective measures, e.g. ``"sts-quick: mean main_score"``."""
    baseline_arm: str = "infonce"
    """Arm every other arm is compared against."""
    student: str = ""
    """Student model name."""
    final_suite: str = ""
    """Suite the arms are scored on in the report."""
    experiment_path: str = ""
    """Path of the experiment TOML as given on the command line."""
    experiment_toml: str = ""
    """Full text of the experiment TOML."""
    command: str = ""
    """The exact command line that started the study."""
    harness_version: str = ""
    """``harness.__version__``."""
    package_versions: dict[str, str] = Field(default_factory=dict)
    """Versions of python, torch, transformers, sentence-transformers, mteb, optuna, ..."""
    hardware: dict[str, str] = Field(default_factory=dict)
    """Platform, CPU, cores, memory, GPU name and driver."""
    git_commit: str = ""
    """Commit of the harness checkout (with ``-dirty`` when it had local changes)."""
    data_checksums: dict[str, str] = Field(default_factory=dict)
    """sha256 of every data file the study read, by path relative to the data folder."""
    storage_url: str = ""
    """Optuna storage URL (a password in it is hidden in reports)."""
    created: datetime | None = None
    """When the study was created (UTC)."""
    history: list[HistoryTrial] = Field(default_factory=list)
    """Optuna's view of every trial (values, params, intermediate values)."""
    sessions: list[CodeProvenance] = Field(default_factory=list)
    """One entry per run, resume or worker process that wrote this manifest, oldest first (appended,
    never rewritten: a study run across commits keeps every commit)."""

    def experiment_table(self, name: str) -> dict[str, Any] | None:
        """The table ``[name]`` of the experiment text the last session ran (``experiment_toml``); None
        when there is no text, no such table, or the text does not parse."""
        return experiment_table(self.experiment_toml, name)


def experiment_table(experiment_toml: str, name: str) -> dict[str, Any] | None:
    """The table ``[name]`` of an experiment text a record kept; None when the text is empty, does not
    parse, or has no such table."""
    try:
        table = tomllib.loads(experiment_toml).get(name) if experiment_toml else None
    except tomllib.TOMLDecodeError:
        return None
    return table if isinstance(table, dict) else None


# --- the [report] section of the stored experiment text ------------------------------------------

GAIN = " − "
DEFAULT_ALPHA = 0.05
AlphaSpending = Literal["split"]


AggregateKey = Literal["category", "task", "sts", "out-of-domain"]
HEADLINE_AGGREGATE: AggregateKey = "category"


class GuideScores(BaseModel):
    """One GIST arm's guide scored on its own (``[report] guide_scores``), and the arm its gain is over."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reference: str
    """The arm the gain is measured against, per subset (e.g. ``"infonce"``; an untrained arm too)."""
    scores: str
    """The JSON file ``gist-harness eval GUIDE --suite SUITE --json FILE`` wrote (its rows; a
    ``scores.json`` of a trial reads too), relative to the working directory. Read when the report is
    built (a missing file is an error then, naming this field) and copied into the report's
    ``inputs/guide_scores/ARM.json``, from which a committed report re-renders."""


class ReportConfig(BaseModel):
    """What the report tests, declared before the study runs (``[report]``).

    Example::

        [report]
        contrasts = [["gist", "infonce"], ["gist", "random_at_gist_rate"], ["gist", "untrained"]]
        interactions = [["gist_t01", "infonce_t01", "gist_t05", "infonce_t05"]]
        primary = [["gist", "infonce"]]
        primary_on = ["category", "sts"]
        alpha = 0.05
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    contrasts: list[tuple[str, str]] | None = None
    """Pairs ``[arm, reference]`` (Δ = arm − reference); unset: every trained arm against the baseline.
    The reference may be an untrained arm (``["gist", "untrained"]``, never on the left): the untrained
    student is scored once, so each seed's Δ is the arm's score at that seed minus that one score, and
    the interval covers only the trained arm's seed variance."""
    interactions: list[tuple[str, ...]] | None = None
    """``[a, b, c, d]``: does a factor change a gain? Δ = (a − b) − (c − d), paired by seed (e.g.
    GIST's gain over InfoNCE with per-source batches minus the same gain with mixed batches).
    ``[a, b, c, d, e, f, g, h]``: a three-way interaction of a 2×2×2 factorial, each of its 8 arms named
    once: Δ = ((a − b) − (c − d)) − ((e − f) − (g − h)), paired by seed (does a third factor change a
    two-way interaction?). Trained arms only."""
    primary: list[tuple[str, ...]] | None = None
    """The contrasts the study exists to test: their Holm family heads the report; unset: all of them.
    An interaction is named by its four (or eight) arms."""
    primary_on: list[AggregateKey] = Field(default_factory=lambda: [HEADLINE_AGGREGATE])
    """The aggregates every primary contrast is tested on: ``"category"`` (the mean over categories,
    the headline), ``"task"`` (the mean over tasks), ``"sts"`` (the mean over the STS category's tasks),
    ``"out-of-domain"`` (the mean over categories of the tasks no training source shares a dataset
    with). Holm runs once over every (primary contrast, aggregate) pair: 3 primary contrasts on
    ``["category", "sts"]`` are a family of 6 tests."""
    alpha: float = DEFAULT_ALPHA
    """Significance level of the report's verdicts, in (0, 1)."""
    alpha_spending: AlphaSpending = "split"
    """How alpha is spent over the looks at the data (reports rendered with contrasts): ``"split"``
    divides it equally over the looks actually taken (Bonferroni over looks), so with two looks each
    verdict is at alpha / 2."""
    by_subset: list[str] | None = None
    """Tasks of the final suite to break down by subset (MTEB's ``hf_subset``: a language, or a
    language pair), e.g. ``["local:STSBenchmarkMultilingualSTS", "local:STSBenchmarkCrossLingual"]``:
    for each, every arm's score per subset and each declared contrast per subset (Δ over seeds, 95% CI,
    p, Holm over the task's subsets). Secondary and exploratory: no primary family includes them. A
    task scored as one subset is left out, with a note."""
    guide_scores: dict[str, GuideScores] | None = None
    """``{ ARM = { reference = REF, scores = FILE } }`` for GIST arms: per ``by_subset`` task, the rank
    correlation (Spearman) over its subsets between the arm's guide's own score on a subset (from FILE)
    and the arm's gain over REF there. Descriptive, not part of any test family. Needs ``by_subset``."""

    def name_errors(
        self, trained: list[str], untrained: list[str], final_tasks: list[str] | None
    ) -> list[tuple[tuple, str, Any]]:
        """``(location, message, value)`` for each ``by_subset`` / ``guide_scores`` entry naming what the
        experiment lacks: an arm of ``[ablation]``, a task of the final suite (``final_tasks``; None:
        not checked). The ``guide_scores`` files are read when the report is built, not here: they may
        be written after the study has run."""
        tasks = list(self.by_subset or [])
        errors: list[tuple[tuple, str, Any]] = [
            (("by_subset", i), f"not a task of the final suite: {', '.join(final_tasks)}", task)
            for i, task in enumerate(tasks)
            if final_tasks is not None and task not in final_tasks
        ]
        if self.by_subset == [] or len(set(tasks)) < len(tasks):
            errors.append((("by_subset",), "name each task once, or leave by_subset unset", tasks))
        if self.guide_scores and not tasks:
            errors.append(
                (("guide_scores",), "needs by_subset: the tasks whose subsets it correlates over", [])
            )
        for arm, entry in (self.guide_scores or {}).items():
            others = ", ".join(a for a in trained + untrained if a != arm) or "none"
            if arm not in trained:
                errors.append(
                    (("guide_scores", arm), f"not a trained arm; trained arms: {', '.join(trained)}", arm)
                )
            if entry.reference not in trained + untrained or entry.reference == arm:
                errors.append(
                    (("guide_scores", arm, "reference"), f"name another arm: {others}", entry.reference)
                )
            if not entry.scores.endswith(".json"):
                errors.append((("guide_scores", arm, "scores"), GUIDE_SCORES_HINT, entry.scores))
        return errors


class UnrecordedLooks(BaseModel):
    """Looks at a study's data that no look record holds (``[unrecorded_looks]`` in a committed report's
    ``inputs/report.toml``), for a study looked at before looks were recorded. They count in the alpha
    spending like recorded looks, and the report's Looks section names them with their evidence.

    Example::

        [unrecorded_looks]
        count = 2
        evidence = "a 3-seed version of this report (commit d7cf84d) and this 5-seed one"
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int = Field(ge=1, strict=True)
    """How many looks were taken without a record (the report being rebuilt counts if it was one)."""
    evidence: str = Field(min_length=1, strict=True)
    """Where each look can be seen (commits, report versions), said in the report."""


GUIDE_SCORES_HINT = "a .json file written by gist-harness eval GUIDE --suite SUITE --json FILE"


class Gain(str):
    """One side of an interaction: the gain of ``arm`` over ``reference``, paired by seed.

    It is named ``"(arm − reference)"`` wherever an arm is named (score index, tables, plots), and
    carries its two arms, so nothing parses the name back.
    """

    arm: str
    reference: str

    def __new__(cls, arm: str, reference: str) -> Gain:
        gain = super().__new__(cls, f"({arm}{GAIN}{reference})")
        gain.arm, gain.reference = arm, reference
        return gain

    def __getnewargs__(self) -> tuple[str, str]:  # type: ignore[override]
        return self.arm, self.reference


class Contrast(NamedTuple):
    """``arm − reference``: Δ is arm minus reference. An interaction ``[a, b, c, d]`` is the contrast of
    two gains, ``Contrast(Gain(a, b), Gain(c, d))``: Δ = (a − b) − (c − d), paired by seed; a three-way
    interaction ``[a, ..., h]`` the contrast of two interactions, ``Contrast(Gain(Gain(a, b), Gain(c, d)),
    Gain(Gain(e, f), Gain(g, h)))``."""

    arm: str
    reference: str


# --- declarations and looks (``declarations/0001.json``, ``looks/0001.json``) -----------------------

DECLARATIONS_DIR = "declarations"
LOOKS_DIR = "looks"


class Declaration(_Record):
    """What a study declared it would test, written before its first trial (and again on a change).

    Never overwritten: a change of seeds, arms, contrasts, primary family, alpha, spending rule or final
    suite is a new, numbered declaration that says what changed.
    """

    number: int
    """1, 2, ... in the order they were made."""
    declared: datetime
    """When it was written (UTC)."""
    seeds: list[int] = Field(default_factory=list)
    """The experiment's seeds."""
    arms: list[str] = Field(default_factory=list)
    """The experiment's trained arms, the baseline first (as the report orders them)."""
    contrasts: list[list[str]] = Field(default_factory=list)
    """Every contrast ``[arm, reference]`` or interaction ``[a, b, c, d]`` (``[a, ..., h]``), primary first."""
    primary: list[list[str]] = Field(default_factory=list)
    """The primary contrasts of the report."""
    primary_on: list[str] = Field(
        default_factory=lambda: [HEADLINE_AGGREGATE], exclude_if=lambda keys: keys == [HEADLINE_AGGREGATE]
    )
    """The aggregates the primary contrasts are tested on (the Holm family is every pair of both; see
    :class:`ReportConfig`). Left out of the file when it is the headline alone, so a record reads and
    writes as it did before the field existed."""
    alpha: float = DEFAULT_ALPHA
    """Significance level."""
    alpha_spending: AlphaSpending = "split"
    """How alpha is spent over looks (see :class:`ReportConfig`)."""
    final_suite: str = Field(default="", exclude_if=lambda suite: suite == "")
    """The suite the trials are scored on for the report (``[final]``, else the objective), as the
    manifest names it; empty (and left out of the file) in records written before the field existed."""
    experiment_sha256: str = ""
    """sha256 of the experiment file's text."""
    experiment_toml: str = ""
    """The experiment file's text as it was when declared."""
    changed: list[str] = Field(default_factory=list)
    """What differs from the previous declaration (empty for the first)."""


class LookEstimate(_Record):
    """One primary contrast at a look, on one aggregate of the primary family."""

    contrast: list[str]
    """``[arm, reference]``, ``[a, b, c, d]`` or ``[a, ..., h]``."""
    aggregate: str = Field(default=HEADLINE_AGGREGATE, exclude_if=lambda key: key == HEADLINE_AGGREGATE)
    """The aggregate (a ``primary_on`` key); left out of the file for the headline, the mean over
    categories, as records written before the field existed have it."""
    n: int = 0
    """Seeds paired."""
    delta: float | None = None
    """Mean paired difference (score units, not ×100)."""
    p: float | None = None
    """Paired t-test p over seeds."""
    p_holm: float | None = None
    """p adjusted by Holm over the primary family (every primary contrast × ``primary_on`` aggregate)."""


class Look(_Record):
    """A rendered report with contrasts: one look at the data, which spends alpha."""

    number: int
    """1, 2, ... in the order they were taken."""
    time: datetime
    """When the report was rendered (UTC)."""
    declaration: int = 0
    """The number of the declaration in force (0: none)."""
    seeds: dict[str, int] = Field(default_factory=dict)
    """COMPLETE seeds per trained arm at this look."""
    estimates: list[LookEstimate] = Field(default_factory=list)
    """The primary contrasts' estimates and p values."""


R = TypeVar("R", bound=BaseModel)


class TuningTrial(_Record):
    """One trial of an arm's tuning search (``[tuning]``)."""

    number: int
    state: str
    params: dict[str, Any]
    """The searched values (keys as in the space: ``lr``, ``strategy_params.margin``...)."""
    value: float | None = None
    """The tuning suite's mean main score after training (COMPLETE trials only)."""
    last_step: int | None = None
    """The step of the last intermediate score (the one a pruned trial stopped at)."""
    last_value: float | None = None
    """The last intermediate score."""
    intermediate: dict[int, float] = {}
    """Every intermediate score by step (a restore gives them back to the pruner)."""
    seconds: float | None = None
    """Wall time of the trial: training, intermediate and final scoring."""
    error: str = ""


class TunedArm(_Record):
    """One arm's tuning search and the setting it chose."""

    arm: str
    study: str
    """The Optuna study of the search (``<study>.tune.<arm>``)."""
    space: dict[str, dict[str, Any]]
    """The search space, as written in the experiment."""
    fixed: dict[str, Any] = {}
    """The arm's own settings, fixed while the space is searched."""
    trials: list[TuningTrial] = []
    chosen: dict[str, Any] | None = None
    """The best COMPLETE trial's parameters: the setting the confirmation runs (None: none complete)."""
    chosen_trial: int | None = None
    chosen_value: float | None = None


class TuningRecord(_Record):
    """The tuning stage of a study (``runs/<study>/tuning.json``; a report's ``inputs/tuning.json``)."""

    suite: str
    """The tuning suite (never the final one)."""
    budget: int
    """Tuning trials per arm (COMPLETE and PRUNED count)."""
    seed: int
    sampler: str
    pruner: str
    max_steps: int | None = None
    eval_every_steps: int | None = None
    direction: str = "maximize"
    arms: list[TunedArm] = []
    followers: dict[str, str] = {}
    """Arm -> the tuned arm whose setting it takes (``follows``)."""

    @property
    def chosen(self) -> dict[str, dict[str, Any]]:
        """Arm -> its chosen setting, for every arm whose search is finished (``budget`` trials COMPLETE
        or PRUNED) and has one; a search still running has only a best-so-far, never a choice."""
        return {a.arm: a.chosen for a in self.arms if a.chosen is not None and self.finished(a)}

    @staticmethod
    def counted(arm: TunedArm) -> int:
        """The trials of ``arm``'s search that count against the budget (COMPLETE and PRUNED)."""
        return sum(t.state in ("COMPLETE", "PRUNED") for t in arm.trials)

    def finished(self, arm: TunedArm) -> bool:
        """Whether ``arm``'s search has used its budget."""
        return self.counted(arm) >= self.budget

    def progress(self) -> str:
        """``infonce 12 of 12, gist 3 of 12``: how far each arm's search got."""
        return ", ".join(f"{a.arm} {self.counted(a)} of {self.budget}" for a in self.arms)


TUNING_FILE = "tuning.json"
"""A study's tuning record, beside its ``manifest.json``."""


def write_record(path: str | Path, record: BaseModel) -> Path:
    """Writes ``record`` as indented JSON to ``path`` atomically (temporary file + ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = record.model_dump_json(indent=2)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_new_record(path: str | Path, record: BaseModel) -> Path:
    """Writes ``record`` to ``path`` atomically, never over an existing file.

    Raises:
        FileExistsError: ``path`` exists (another process wrote it first).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(record.model_dump_json(indent=2) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)  # fails if path exists: unlike os.replace, never overwrites
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def numbered_path(folder: Path, number: int) -> Path:
    """``folder/0001.json``: the file of declaration or look ``number``."""
    return folder / f"{number:04d}.json"


def read_numbered(folder: Path, cls: type[R]) -> list[R]:
    """Every ``NNNN.json`` record in ``folder``, in number order (none when the folder is absent)."""
    return [read_record(p, cls) for p in sorted(folder.glob("[0-9][0-9][0-9][0-9].json"))]


def read_record(path: str | Path, cls: type[R]) -> R:
    """Reads one record; corrupt or invalid JSON raises a one-line :class:`UserError` naming the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise UserError(
            f"{path}: not a valid {cls.__name__}: field {where}: {first['msg']} ({exc.error_count()} error(s))"
        ) from None


def trial_dirname(number: int) -> str:
    """Conventional folder name of a trial: ``trial-0007``."""
    return f"trial-{number:04d}"


def save_trial(
    study_dir: str | Path,
    trial: TrialRecord,
    scores: ScoreTable | None = None,
    run: RunRecord | None = None,
) -> Path:
    """Writes ``trial.json`` (and ``scores.json`` / ``run.json`` when given); returns the trial folder."""
    folder = Path(study_dir) / trial_dirname(trial.number)
    if run is not None:
        write_record(folder / "run.json", run)
    if scores is not None:
        write_record(folder / "scores.json", scores)
    write_record(folder / "trial.json", trial)  # last: a trial.json saying COMPLETE means the rest is there
    return folder


@dataclass
class TrialResult:
    """A trial with its optional scores and run record, as loaded from its folder."""

    trial: TrialRecord
    scores: ScoreTable | None = None
    run: RunRecord | None = None
    folder: Path | None = None


@dataclass
class StudyResults:
    """Everything stored for one study."""

    manifest: StudyManifest
    trials: list[TrialResult] = field(default_factory=list)
    untrained: ScoreTable | None = None
    folder: Path | None = None
    declarations: list[Declaration] = field(default_factory=list)
    looks: list[Look] = field(default_factory=list)
    tuning: TuningRecord | None = None
    """The tuning stage (``[tuning]``), else None."""


def _read_scores(folder: Path) -> ScoreTable | None:
    if (folder / "scores.json").exists():
        return read_record(folder / "scores.json", ScoreTable)
    parquet = folder / "scores.parquet"
    if not parquet.exists():
        return None
    import pandas as pd

    try:
        frame = pd.read_parquet(parquet)
        rows = [ScoreRow.model_validate(r) for r in frame.to_dict(orient="records")]
    except (ValidationError, OSError, ValueError) as exc:
        raise UserError(f"{parquet}: not a valid score table ({type(exc).__name__})") from None
    return ScoreTable(rows=rows)


def load_trial_dir(folder: str | Path) -> TrialResult:
    """Loads one trial folder (``trial.json`` + optional ``scores.json``/``scores.parquet``/``run.json``)."""
    folder = Path(folder)
    trial = read_record(folder / "trial.json", TrialRecord)
    run = read_record(folder / "run.json", RunRecord) if (folder / "run.json").exists() else None
    return TrialResult(trial=trial, scores=_read_scores(folder), run=run, folder=folder)


def load_study_dir(path: str | Path) -> StudyResults:
    """Loads a study folder, or a single trial folder inside one (then only that trial is kept).

    Raises:
        UserError: when ``path`` holds no study (no ``manifest.json`` or ``trial.json``), or a file is
            corrupt; the message names the file.
    """
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"{path}: no such folder (expected runs/<study>/ with a manifest.json)")
    only: int | None = None
    if not (path / "manifest.json").exists() and (path / "trial.json").exists():
        only = load_trial_dir(path).trial.number
        path = path.parent
    if not (path / "manifest.json").exists():
        nested = sorted(p.parent.name for p in path.glob("*/manifest.json"))
        hint = f"; studies inside: {', '.join(nested)}" if nested else ""
        raise UserError(f"{path}: no study here (no manifest.json or trial.json){hint}")
    manifest = read_record(path / "manifest.json", StudyManifest)
    trials = [load_trial_dir(p.parent) for p in sorted(path.glob("*/trial.json"))]
    trials = [t for t in trials if only is None or t.trial.number == only]
    trials.sort(key=lambda t: t.trial.number)
    untrained = path / UNTRAINED_DIR
    return StudyResults(
        manifest=manifest,
        trials=trials,
        untrained=_read_scores(untrained) if untrained.is_dir() else None,
        folder=path,
        declarations=read_numbered(path / DECLARATIONS_DIR, Declaration),
        looks=read_numbered(path / LOOKS_DIR, Look),
        tuning=read_record(path / TUNING_FILE, TuningRecord) if (path / TUNING_FILE).exists() else None,
    )


def score_table(frame: Any, suite: str = "") -> ScoreTable:
    """Turns the tidy DataFrame returned by ``evaluate()`` into a :class:`ScoreTable` for ``scores.json``."""
    fields = set(ScoreRow.model_fields)
    rows = [
        ScoreRow.model_validate({k: v for k, v in r.items() if k in fields})
        for r in frame.to_dict(orient="records")
    ]
    return ScoreTable(suite=suite, rows=rows)
