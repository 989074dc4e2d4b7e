"""Creating, resuming and joining a study; running its trials; one summary line per trial.

``run_study`` is what ``gist-harness run`` and ``gist-harness worker`` call. The heavy lifting
(loading models and data, training, scoring) is behind a ``Pipeline`` that is passed in, so the
whole runner is tested with a fake pipeline on every storage backend.
"""

from __future__ import annotations

import inspect
import time
import warnings
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import optuna
from optuna.distributions import check_distribution_compatibility
from optuna.trial import FrozenTrial, TrialState

from harness import __version__
from harness.config import (
    PRUNERS,
    SAMPLERS,
    CategoricalParam,
    Experiment,
    SuiteRef,
    TrainConfig,
    optuna_class,
)
from harness.errors import UserError
from harness.results import RunRecord, StudyManifest
from harness.study import environment
from harness.study.artifacts import SPARE, RunFolder
from harness.study.progress import TrialProgress
from harness.study.storage import fail_stale_trials, heartbeat_enabled, make_storage, redact, resolve_url
from harness.study.trial import (
    TrialHooks,
    TrialOutcome,
    make_objective,
    param_distributions,
    trained_arms,
)

_UNFINISHED = (TrialState.WAITING, TrialState.RUNNING)


class TrialFailedError(UserError):
    """A trial failed in a run that stops at the first failure (``run_study(stop_on_failure=True)``)."""


class Pipeline(Protocol):
    """What the runner needs from the heavy layers (see ``harness.study.pipeline``).

    ``fit`` also takes a ``logging_dir`` keyword (the trial's TensorBoard folder) in a study with
    ``[study] tensorboard``; it is not passed otherwise.
    """

    in_domain_tasks: list[str]

    def prepare(self) -> None: ...
    def fit(self, config: TrainConfig, report: Callable[[float, int], None]) -> tuple[Any, RunRecord]: ...
    def score(self, model: Any, suite: SuiteRef) -> Any: ...
    def load_student(self) -> Any: ...


class TrialSeededRandomSampler(optuna.samplers.RandomSampler):
    """Optuna's random sampler with trial ``n``'s draws a function of ``(seed, n)`` only.

    Optuna's own seeds one generator per process, so a study resumed in a new process draws its first
    trials' values again; here a resumed study draws new ones and stays reproducible, and two studies
    with the same seed and space (tuned arms) draw the same values at each trial number.
    """

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(seed)
        self._seed = seed

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if self._seed is not None:
            self._rng.rng.seed(int(np.random.SeedSequence([self._seed, trial.number]).generate_state(1)[0]))


def make_sampler(experiment: Experiment) -> optuna.samplers.BaseSampler:
    study = experiment.study
    params = dict(study.sampler_params)
    if study.sampler == "grid":
        grid: dict[str, list[Any]] = {}
        for k, v in experiment.search_space.items():
            assert isinstance(v, CategoricalParam), "config checks: grid needs categorical entries"
            grid[k] = list(v.choices)
        params["search_space"] = grid
    cls = TrialSeededRandomSampler if study.sampler == "random" else optuna_class(SAMPLERS[study.sampler])
    if "seed" in inspect.signature(cls).parameters:
        params.setdefault("seed", study.seed)
    return cls(**params)


def make_pruner(experiment: Experiment) -> optuna.pruners.BasePruner:
    """The study's pruner; none in an ablation, whose every arm x seed runs to the end (pruning would drop
    the seeds of weaker arms from the comparison), nor where the default one could only act at a
    trial's last step (``harness.config.pruning``)."""
    from harness.config.pruning import effective_pruner

    study = experiment.study
    if experiment.ablation.arms:
        return optuna.pruners.NopPruner()
    named = bool({"pruner", "pruner_params"} & study.model_fields_set)
    name = effective_pruner(study.pruner, named, study.pruner_params, experiment.trial_config({}))
    params = study.pruner_params if name == study.pruner else {}
    return optuna_class(PRUNERS[name])(**params)


def arm_seeds(experiment: Experiment) -> list[dict[str, Any]]:
    """The fixed trials of an ablation: every trained arm x seed, as Optuna params."""
    return [{"arm": a, "seed": s} for a in trained_arms(experiment) for s in experiment.ablation.seeds]


def enqueue_arms(study: optuna.Study, experiment: Experiment) -> int:
    """Enqueues every arm x seed not already queued, running or finished (a failed one is re-queued)."""
    taken = set()
    for trial in study.get_trials(deepcopy=False):
        params = trial.system_attrs.get("fixed_params", trial.params)
        if trial.state != TrialState.FAIL and "arm" in params:
            taken.add((params["arm"], params.get("seed")))
    added = 0
    for params in arm_seeds(experiment):
        if (params["arm"], params["seed"]) not in taken:
            study.enqueue_trial(params)
            added += 1
    return added


def check_space(study: optuna.Study, experiment: Experiment) -> None:
    """Refuses to go on with a study whose trials drew a parameter from other choices than the experiment's.

    Optuna cannot change a categorical parameter's choices within a study, so seeds or arms added to
    the experiment would fail every new trial; the error says how to continue instead.
    """
    space = param_distributions(experiment)
    for trial in study.get_trials(deepcopy=False):
        for name, recorded in trial.distributions.items():
            if name not in space:
                continue
            try:
                check_distribution_compatibility(recorded, space[name])
            except ValueError:
                old = getattr(recorded, "choices", recorded)
                new = getattr(space[name], "choices", space[name])
                raise UserError(
                    f"study {study.study_name!r}: its trials drew {name} from {list(old)}, the experiment now "
                    f"from {list(new)}, and an Optuna study cannot change that; move runs/{study.study_name}/ "
                    f"aside and run again with --from-report reports/{study.study_name} (its finished "
                    "trials are kept)"
                ) from None


def open_study(experiment: Experiment, storage: Any, *, create: bool, wait_s: float = 0) -> optuna.Study:
    """Creates (or loads) the study; a worker waits up to ``wait_s`` for it to be created."""
    name = experiment.study.name
    sampler, pruner = make_sampler(experiment), make_pruner(experiment)
    if create:
        return optuna.create_study(
            study_name=name,
            storage=storage,
            sampler=sampler,
            pruner=pruner,
            direction=experiment.study.direction,
            load_if_exists=True,
        )
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
        except KeyError:
            if time.monotonic() >= deadline:
                raise UserError(
                    f"study {name!r} does not exist in this storage; start it with 'gist-harness run'"
                ) from None
            time.sleep(1.0)


def run_study(
    experiment: Experiment,
    pipeline: Pipeline,
    *,
    runs_dir: Path,
    storage: str | None = None,
    worker: bool = False,
    progress: bool = True,
    wait_s: float = 60.0,
    poll_s: float = 5.0,
    manifest: StudyManifest | None = None,
    log: Callable[[str], None] | None = None,
    stop_on_failure: bool = False,
    callbacks: list[Callable[[optuna.Study, FrozenTrial], None]] | None = None,
) -> optuna.Study:
    """Creates or resumes the study (or joins it as a worker) and runs trials until none is left.

    Args:
        experiment: the validated experiment.
        pipeline: builds data, trains and scores (injected; see ``harness.study.pipeline``).
        runs_dir: parent of the study folder ``<runs_dir>/<study>/``.
        storage: storage URL (overrides the experiment's); None: SQLite in the study folder.
        worker: join an existing study: do not create it, enqueue arms or score the untrained student.
        progress: show a progress bar over trials.
        wait_s: how long a worker waits for the study to be created.
        poll_s: how often to look again while other workers still run the last trials.
        manifest: reproducibility fields for ``manifest.json`` (command, experiment text, ...).
        log: where summary lines go (default: stderr, above the progress bar).
        stop_on_failure: raise ``TrialFailedError`` once a failed trial is recorded, instead of
            going on (rank 0 of a multi-process run: the other ranks may be stuck mid-trial).
        callbacks: also called after each trial, after its records are written (Optuna's signature).
    """
    settings = experiment.study
    check_tensorboard(experiment)
    # The data (folder, sources, the suites' texts for the leakage check) is read before anything is
    # created: a missing data folder must not leave runs/<study>/ with WAITING trials behind.
    pipeline.prepare()
    folder = RunFolder(runs_dir / settings.name, settings.name, save_model=settings.save_model)
    folder.objective_label = experiment.objective.label
    folder.final_label = (experiment.final or experiment.objective).label
    url = storage or settings.storage
    study = _open(experiment, url, folder, worker=worker, wait_s=wait_s)
    base = (manifest or StudyManifest(study=settings.name)).model_copy(
        update={**manifest_fields(experiment, resolve_url(url, folder.path)), **folder.first_run()}
    )
    folder.write_manifest(study, base)
    folder.in_domain_tasks = list(pipeline.in_domain_tasks)
    if not worker:
        folder.declare(experiment, base.experiment_toml)  # before the first trial; none if unchanged
        _score_untrained(experiment, pipeline, folder)

    bar = TrialProgress(
        len(arm_seeds(experiment)) or experiment.study.n_trials, study, enabled=progress, log=log
    )
    objective = _guarded(
        make_objective(
            experiment,
            fit=pipeline.fit,
            score=pipeline.score,
            hooks=_hooks(folder),
            tensorboard_dir=folder.path / TENSORBOARD_DIR if settings.tensorboard else None,
        )
    )
    on_trial_end = _trial_end(folder, base, bar, stop_on_failure=stop_on_failure)
    try:
        _optimize(experiment, study, objective, [on_trial_end, *(callbacks or [])], poll_s=poll_s)
    finally:
        bar.close()
    folder.sync(study)
    folder.write_manifest(study, base)
    return study


def _open(
    experiment: Experiment, url: str | None, folder: RunFolder, *, worker: bool, wait_s: float
) -> optuna.Study:
    """The study in its storage: created with its arms enqueued, or joined as a worker."""
    settings = experiment.study
    optuna_storage = make_storage(
        url,
        folder.path,
        heartbeat_interval=settings.heartbeat_interval_s,
        grace_period=settings.grace_period_s,
        max_retry=settings.max_retry,
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(experiment, optuna_storage, create=not worker, wait_s=wait_s)
    check_space(study, experiment)
    if not worker:
        enqueue_arms(study, experiment)
    return study


def _trial_end(
    folder: RunFolder, base: StudyManifest, bar: TrialProgress, *, stop_on_failure: bool
) -> Callable[[optuna.Study, FrozenTrial], None]:
    """The callback after each trial: its record and the manifest written, the bar moved on."""

    def on_trial_end(study: optuna.Study, frozen: FrozenTrial) -> None:
        record = folder.on_end(frozen)
        folder.sync(study)
        folder.write_manifest(study, base)
        if record is not None:
            bar.finished(frozen)
        if stop_on_failure and frozen.state == TrialState.FAIL and not frozen.user_attrs.get(SPARE):
            reason = frozen.user_attrs.get("error", "see the log above")
            raise TrialFailedError(f"trial {frozen.number} failed ({reason}); the same command resumes")

    return on_trial_end


def _hooks(folder: RunFolder) -> TrialHooks:
    def on_finish(trial: Any, outcome: TrialOutcome, model: Any) -> None:
        folder.on_finish(trial, outcome, model)
        if outcome.final_scores is not None:
            trial.set_user_attr("final_mean", float(outcome.final_scores["main_score"].mean()))
        trial.set_user_attr("train_seconds", outcome.run.train_seconds)
        trial.set_user_attr("steps", outcome.run.steps)

    return TrialHooks(on_start=folder.on_start, on_finish=on_finish)


def _guarded(objective: Callable[[Any], float]) -> Callable[[Any], float]:
    """Skips trials that are not enqueued arms (ablations) and keeps a one-line reason on failure."""

    def guarded(trial: optuna.Trial) -> float:
        if trial.study.user_attrs.get("ablation") and not _enqueued(trial):
            trial.set_user_attr(SPARE, True)  # another worker took the last arm between our look and ask()
            raise optuna.TrialPruned("no arm left to run")
        try:
            return objective(trial)
        except optuna.TrialPruned as exc:
            trial.set_user_attr("error", str(exc) or "pruned")
            raise
        except Exception as exc:
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}".splitlines()[0][:500])
            raise

    return guarded


def _enqueued(trial: optuna.Trial) -> bool:
    frozen = next(t for t in trial.study.get_trials(deepcopy=False) if t.number == trial.number)
    return "fixed_params" in frozen.system_attrs


def _optimize(
    experiment: Experiment, study: optuna.Study, objective: Any, callbacks: list, poll_s: float
) -> None:
    settings = experiment.study
    deadline = time.monotonic() + settings.timeout_s if settings.timeout_s else None
    if trained_arms(experiment):
        study.set_user_attr("ablation", True)
        while deadline is None or time.monotonic() < deadline:
            if heartbeat_enabled(study):
                fail_stale_trials(study)
            if study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
                study.optimize(objective, n_trials=1, callbacks=callbacks, catch=(Exception,))
            elif heartbeat_enabled(study) and study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                time.sleep(poll_s)  # another worker's trial: it ends, or goes stale and is re-queued
            else:
                return
        return
    n_trials = settings.n_trials
    counted = (TrialState.COMPLETE, TrialState.PRUNED)
    if n_trials is not None:
        if len(study.get_trials(deepcopy=False, states=counted)) >= n_trials:
            return
        callbacks = [*callbacks, optuna.study.MaxTrialsCallback(n_trials, states=counted)]
    remaining = None if deadline is None else max(1.0, deadline - time.monotonic())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.optimize(objective, timeout=remaining, callbacks=callbacks, catch=(Exception,))


def _score_untrained(experiment: Experiment, pipeline: Pipeline, folder: RunFolder) -> None:
    """Scores the student as loaded on the final suite once (the report's reference row)."""
    if not any(arm.untrained for arm in experiment.ablation.arms) or folder.has_untrained():
        return
    suite = experiment.final or experiment.objective
    scores = pipeline.score(pipeline.load_student(), suite)
    folder.write_untrained(scores, suite.label)


TENSORBOARD_DIR = "tensorboard"
"""The folder of a study's TensorBoard runs, ``runs/<study>/tensorboard/`` (``[study] tensorboard``)."""


def check_tensorboard(experiment: Experiment) -> None:
    """Raises a one-line ``UserError`` when the study logs to TensorBoard and no writer is installed.

    transformers' TensorBoard callback writes with ``torch.utils.tensorboard`` (the ``tensorboard``
    package) or else ``tensorboardX``.
    """
    from importlib.util import find_spec

    if not experiment.study.tensorboard or find_spec("tensorboard") or find_spec("tensorboardX"):
        return
    raise UserError(
        f"study {experiment.study.name!r}: [study] tensorboard = true needs the tensorboard package: "
        "pip install gist-harness[tensorboard]"
    )


def model_names(experiment: Experiment) -> list[str]:
    """Every model a study loads: the student, neural guides of every arm, the cotraining partner."""
    from harness.guides import GUIDES

    names = {experiment.student}
    arms = [experiment.arm_overrides(a) for a in trained_arms(experiment)] or [{}]
    for overrides in arms:
        guide = experiment.trial_config(overrides).guide
        if guide and guide not in GUIDES:
            names.add(guide)
    if experiment.cotraining is not None:
        names.add(experiment.cotraining.partner)
    return sorted(names)


def check_models(experiment: Experiment) -> None:
    """Raises a one-line ``UserError`` for a model that cannot be loaded here, before a study exists.

    Offline models are located (a split archive is assembled now, as its first load would);
    hub models must be in the local Hub cache when ``HF_HUB_OFFLINE`` is set; folders must hold a
    sentence-transformers model. Static students are built (once, into the cache) now.
    """
    import os

    from harness import models

    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in {"", "0", "false", "False"}
    for name in model_names(experiment):
        if models.is_hub_ref(name):  # resolved now: malformed, or offline and not cached, stops here
            models.model_fingerprint(name)
            continue
        if not models.is_model_name(name):
            path = Path(name)
            if not (path / "modules.json").exists() and not (path / "config.json").exists():
                raise UserError(f"model {name!r}: {path} is not a sentence-transformers model folder")
            continue
        spec = models.get_spec(name)
        if spec.source in ("package", "split_zip", "local"):
            models.model_path(name, progress=False)
        elif spec.source == "static":  # built once into the cache from its checked base
            models.load_model(name, device="cpu")
        elif spec.source == "hub" and offline and not _in_hub_cache(spec.hub_id or "", spec.revision):
            raise UserError(
                f"model {name!r} ({spec.hub_id}): HF_HUB_OFFLINE is set and it is not in the local Hub cache"
            )


def _in_hub_cache(repo_id: str, revision: str | None) -> bool:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "modules.json", revision=revision)
    found = found or try_to_load_from_cache(repo_id, "config.json", revision=revision)
    return isinstance(found, str)


def study_identity(experiment: Experiment) -> dict[str, str]:
    """The manifest fields that say what a study's trials measure (a restore requires them equal)."""
    objective = experiment.objective
    what = f"{objective.suite}: mean {objective.metric}" + (
        f" over {', '.join(objective.tasks)}" if objective.tasks else ""
    )
    return {
        "direction": experiment.study.direction,
        "objective": what,
        "student": _pinned(experiment.student),
        "final_suite": (experiment.final or objective).label,
    }


def _pinned(name: str) -> str:
    """A hub id with the commit it resolves to (``hub:org/name@<commit>``); any other name as given."""
    from harness import models

    if not models.is_hub_ref(name):
        return name
    return models.model_fingerprint(name)


def manifest_fields(experiment: Experiment, url: str) -> dict[str, Any]:
    """The reproducibility fields of a study's ``manifest.json`` (student, versions, hardware, commit...)."""
    return {
        "study": experiment.study.name,
        **study_identity(experiment),
        "baseline_arm": experiment.ablation.baseline or "",
        "harness_version": __version__,
        "package_versions": environment.package_versions(),
        "hardware": environment.hardware(),
        "git_commit": environment.git_commit(),
        "storage_url": redact(url),
        "created": datetime.now(timezone.utc),
    }
