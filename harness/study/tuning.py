"""The tuning stage of a ``[tuning]`` study: each tuned arm searched in turn, its best setting chosen.

``run_tuning`` runs (or resumes) every tuned arm's search as an Optuna study of its own
(``harness.config.tuning.tuning_experiment``: same data, the arm's space, ``trials`` trials at the
tuning seed, scored on the tuning suite only) in ``runs/<study>/tuning/`` and the study's storage.
It writes ``runs/<study>/tuning.json`` (a ``TuningRecord``) after each arm and returns it; the
confirmation (``harness.config.tuning.with_tuned``) then runs each arm's chosen setting on the
ablation's seeds. ``restore_tuning`` puts a report's tuning trials back into fresh studies, so a
study continued with ``--from-report`` chooses the same settings without training them again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from harness.config import Experiment
from harness.config.tuning import arm_space, tuned_arms, tuning_experiment
from harness.errors import UserError
from harness.results import (
    TUNING_FILE,
    StudyManifest,
    TunedArm,
    TuningRecord,
    TuningTrial,
    read_record,
    write_record,
)
from harness.study.artifacts import RunFolder
from harness.study.runner import Pipeline, manifest_fields, open_study, run_study
from harness.study.storage import make_storage, resolve_url
from harness.study.trial import param_distributions

TUNING_DIR = "tuning"
"""The folder of a study's tuning searches, ``runs/<study>/tuning/<study>.tune.<arm>/``."""
_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def run_tuning(
    experiment: Experiment,
    make_pipeline: Callable[[Experiment], Pipeline],
    *,
    runs_dir: Path,
    storage: str | None = None,
    progress: bool = True,
    manifest: StudyManifest | None = None,
    log: Callable[[str], None] | None = None,
    stop_on_failure: bool = False,
    after_trial: Callable[[], None] | None = None,
) -> TuningRecord:
    """Runs or resumes each tuned arm's search and returns the record with every arm's chosen setting.

    ``stop_on_failure`` (several processes: ``harness.study.ranks``) ends the run at a failed tuning trial
    instead of going on to the next; the same command resumes it. ``after_trial`` is called after every
    tuning trial, once ``tuning.json`` holds it (``run --interim``).

    Raises:
        UserError: an arm none of whose tuning trials completed (all pruned or failed).
    """
    folder = runs_dir / experiment.study.name
    arms: list[TunedArm] = []
    budget = experiment.tuning.trials if experiment.tuning else 0
    for arm in tuned_arms(experiment):
        sub = tuning_experiment(experiment, arm)
        base = (manifest or StudyManifest(study=sub.study.name)).model_copy(update={"study": sub.study.name})

        def record_trial(study: optuna.Study, _: FrozenTrial, arm: str = arm) -> None:
            # after every tuning trial: an interim record of a stopped study keeps the arm's trials so far
            trials = study.get_trials(deepcopy=False)
            now = tuned_arm(experiment, arm, trials)
            write_record(folder / TUNING_FILE, tuning_record(experiment, [*arms, now]))
            if after_trial is not None:
                after_trial()
            if sum(t.state == TrialState.FAIL for t in trials) >= budget:
                study.stop()  # failed trials do not count against the budget: without this, no end

        study = run_study(
            sub,
            make_pipeline(sub),
            runs_dir=folder / TUNING_DIR,
            storage=storage,
            progress=progress,
            manifest=base,
            log=log,
            stop_on_failure=stop_on_failure,
            callbacks=[record_trial],
        )
        arms.append(tuned_arm(experiment, arm, study.get_trials(deepcopy=False)))
        write_record(folder / TUNING_FILE, tuning_record(experiment, arms))
        _check_searched(arms[-1], budget)
    return tuning_record(experiment, arms)


def tune(
    experiment: Experiment,
    build: Callable[[Experiment], Pipeline],
    *,
    runs_dir: Path,
    storage: str | None = None,
    progress: bool = True,
    manifest: StudyManifest | None = None,
    after_trial: Callable[[], None] | None = None,
) -> Experiment:
    """``experiment`` at each tuned arm's chosen setting, its searches run (or resumed) first with
    pipelines from ``build``; the confirmation trials already run are checked against the choice.

    On several processes (rank 0; the other ranks follow, ``harness.study.ranks``) each tuning trial is
    broadcast to the other ranks, and a failed one ends the run, which the same command resumes.
    """
    from harness.config.tuning import with_tuned
    from harness.study import ranks

    def make_pipeline(sub: Experiment) -> Pipeline:
        pipeline = build(sub)
        return ranks.RankZeroPipeline(pipeline) if ranks.launched() else pipeline

    record = run_tuning(
        experiment,
        make_pipeline,
        runs_dir=runs_dir,
        storage=storage,
        progress=progress,
        manifest=manifest,
        stop_on_failure=ranks.launched(),
        after_trial=after_trial,
    )
    tuned = with_tuned(experiment, record.chosen)
    check_confirmation(tuned, runs_dir)
    return tuned


def _check_searched(one: TunedArm, budget: int) -> None:
    """A one-line error for an arm whose search stopped on failures or chose nothing."""
    failed = [t for t in one.trials if t.state == "FAIL"]
    if len(failed) >= budget:
        raise UserError(
            f"[tuning] arm {one.arm!r}: {len(failed)} tuning trials failed (as many as the budget), e.g. "
            f"trial {failed[0].number}: {failed[0].error or 'see the log'}"
        )
    if one.chosen is None:
        raise UserError(
            f"[tuning] arm {one.arm!r}: none of its {len(one.trials)} tuning trials completed (pruned or "
            "failed); loosen tuning.pruner or tuning.pruner_params and run again"
        )


def start_study(experiment: Experiment, runs_dir: Path, storage: str | None, manifest: StudyManifest) -> None:
    """Before the first tuning trial: the study's ``manifest.json`` (no trials yet; its creation time is
    the tuning's start) and its declaration, so the study is a study from its first trial on (an
    interim record can be written during the tuning stage)."""
    folder = RunFolder(runs_dir / experiment.study.name, experiment.study.name)
    path = folder.path / "manifest.json"
    if not path.exists():
        url = resolve_url(storage or experiment.study.storage, folder.path)
        fields = {**manifest_fields(experiment, url), "created": datetime.now(timezone.utc)}
        write_record(path, manifest.model_copy(update=fields))
    folder.declare(experiment, manifest.experiment_toml)


def tuning_record(experiment: Experiment, arms: list[TunedArm]) -> TuningRecord:
    """The record of the tuning stage with the arms searched so far."""
    tuning = experiment.tuning
    assert tuning is not None, "tuning_record needs a [tuning] section"
    return TuningRecord(
        suite=tuning.label,
        budget=tuning.trials,
        seed=tuning.seed,
        sampler=tuning.sampler,
        pruner=_pruner_run(experiment),
        max_steps=tuning.max_steps,
        eval_every_steps=tuning.eval_every_steps,
        direction=experiment.study.direction,
        arms=arms,
        followers={a.name: a.follows for a in experiment.ablation.arms if a.follows is not None},
    )


def _pruner_run(experiment: Experiment) -> str:
    """The pruner the searches run (``tuning.pruner``, or none where the unnamed default is blind)."""
    assert experiment.tuning is not None
    pruners = sorted({tuning_experiment(experiment, arm).study.pruner for arm in tuned_arms(experiment)})
    return ", ".join(pruners) or experiment.tuning.pruner


def tuned_arm(experiment: Experiment, arm: str, trials: list[FrozenTrial]) -> TunedArm:
    """Arm ``arm``'s search from its Optuna trials: every finished trial and the best COMPLETE one."""
    rows = [_tuning_trial(t) for t in trials if t.state in _FINISHED]
    complete = [t for t in rows if t.state == "COMPLETE" and t.value is not None]
    sign = 1.0 if experiment.study.direction == "maximize" else -1.0
    best = max(complete, key=lambda t: (sign * (t.value or 0.0), -t.number), default=None)
    return TunedArm(
        arm=arm,
        study=tuning_experiment(experiment, arm).study.name,
        space={k: v.model_dump() for k, v in arm_space(experiment, arm).items()},
        fixed=experiment.arm_overrides(arm),
        trials=rows,
        chosen=dict(best.params) if best else None,
        chosen_trial=best.number if best else None,
        chosen_value=best.value if best else None,
    )


def _tuning_trial(t: FrozenTrial) -> TuningTrial:
    last_step = max(t.intermediate_values) if t.intermediate_values else None
    seconds = t.user_attrs.get("wall_seconds")
    if seconds is None and t.datetime_start and t.datetime_complete:
        seconds = (t.datetime_complete - t.datetime_start).total_seconds()
    return TuningTrial(
        number=int(t.user_attrs.get("restored_from", t.number)),
        state=t.state.name,
        params=dict(t.params),
        value=t.value if t.state == TrialState.COMPLETE else None,
        last_step=last_step,
        last_value=t.intermediate_values[last_step] if last_step is not None else None,
        intermediate={int(k): float(v) for k, v in t.intermediate_values.items()},
        seconds=seconds,
        error=str(t.user_attrs.get("error") or ""),
    )


def check_confirmation(experiment: Experiment, runs_dir: Path) -> None:
    """Refuses confirmation trials that trained at another setting than ``experiment`` (at its chosen
    settings) gives: the tuning changed (a larger budget, another space) after they ran.

    Raises:
        UserError: naming the trial, the field and both values.
    """
    from harness.results import load_study_dir
    from harness.study.restore import config_change

    name = experiment.study.name
    if not (runs_dir / name / "manifest.json").exists():
        return
    arms = {a.name for a in experiment.ablation.arms if not a.untrained}
    for result in load_study_dir(runs_dir / name).trials:
        record = result.trial
        if record.state != "COMPLETE" or record.arm not in arms:
            continue
        change = config_change(experiment, record)
        if change:
            raise UserError(
                f"study {name!r}: {change}: the tuning chose another setting after the confirmation ran; move "
                f"runs/{name}/ aside (or back the tuning change out) to confirm on a clean study"
            )


def worker_tuning(experiment: Experiment, runs_dir: Path, storage: str | None) -> TuningRecord:
    """The finished tuning a worker joins the confirmation at: ``runs/<study>/tuning.json`` where this
    machine has it, else the tuning searches in the shared ``storage`` (a worker on another machine).

    Raises:
        UserError: neither holds the searches, or a search has not used its budget.
    """
    name = experiment.study.name
    path = runs_dir / name / TUNING_FILE
    record = read_record(path, TuningRecord) if path.exists() else None
    storage = storage or experiment.study.storage
    if record is None and storage is not None:
        record = _storage_tuning(experiment, storage, runs_dir / name)
    if record is None:
        raise UserError(
            f"study {name!r}: neither {path} nor the storage holds its tuning searches; a worker joins the "
            "confirmation once 'gist-harness run' has tuned the arms (share --storage with it)"
        )
    if set(record.chosen) != set(tuned_arms(experiment)):
        raise UserError(
            f"study {name!r}: the tuning is not finished ({record.progress()}); a worker joins the "
            "confirmation once every arm is tuned"
        )
    return record


def _storage_tuning(experiment: Experiment, storage: str, folder: Path) -> TuningRecord | None:
    """Every tuned arm's search as the shared storage holds it (an arm not searched yet: no trials);
    None where it holds none of them."""
    arms, found = [], False
    for arm in tuned_arms(experiment):
        try:
            study = optuna.load_study(
                study_name=tuning_experiment(experiment, arm).study.name,
                storage=make_storage(storage, folder),
            )
        except KeyError:
            arms.append(tuned_arm(experiment, arm, []))
            continue
        found = True
        arms.append(tuned_arm(experiment, arm, study.get_trials(deepcopy=False)))
    return tuning_record(experiment, arms) if found else None


def read_tuning(report_dir: Path) -> TuningRecord | None:
    """The tuning record a report (``inputs/tuning.json``) or run folder (``tuning.json``) holds."""
    for path in (report_dir / "inputs" / TUNING_FILE, report_dir / TUNING_FILE):
        if path.exists():
            return read_record(path, TuningRecord)
    return None


def restore_tuning(experiment: Experiment, record: TuningRecord, runs_dir: Path, storage: str | None) -> int:
    """Adds a report's finished tuning trials to each arm's search that has none yet; returns how many.

    Restored trials keep their parameters, state, last intermediate score and wall time, so the search
    counts them against its budget and the same setting is chosen.
    """
    added = 0
    for one in record.arms:
        if one.arm not in tuned_arms(experiment):
            raise UserError(
                f"--from-report: arm {one.arm!r} was tuned there and is not tuned by this experiment"
            )
        sub = tuning_experiment(experiment, one.arm)
        folder = runs_dir / experiment.study.name / TUNING_DIR / sub.study.name
        folder.mkdir(parents=True, exist_ok=True)
        study = open_study(sub, make_storage(storage or sub.study.storage, folder), create=True)
        if study.get_trials(deepcopy=False):
            continue
        distributions = param_distributions(sub)
        by_number = {t.number: t for t in one.trials}
        for number in range(max(by_number, default=-1) + 1):  # Optuna numbers them in order: keep them
            trial = by_number.get(number)
            study.add_trial(_frozen(trial, distributions) if trial else _gap(number))
            added += trial is not None
    return added


def _gap(number: int) -> FrozenTrial:
    """A FAIL stand-in for a trial the record does not hold (it never finished), keeping the numbering."""
    return optuna.trial.create_trial(
        state=TrialState.FAIL, user_attrs={"restored_from": number, "error": "not recorded"}
    )


def _frozen(trial: TuningTrial, distributions: dict[str, Any]) -> FrozenTrial:
    unknown = sorted(set(trial.params) - set(distributions))
    if unknown:
        raise UserError(
            f"--from-report: tuning trial {trial.number} searched {unknown}, not in this experiment's space"
        )
    intermediate = dict(trial.intermediate)
    if not intermediate and trial.last_step is not None and trial.last_value is not None:
        intermediate = {trial.last_step: trial.last_value}  # a record written before every step was kept
    attrs: dict[str, Any] = {"wall_seconds": trial.seconds, "restored_from": trial.number}
    if trial.error:
        attrs["error"] = trial.error
    return optuna.trial.create_trial(
        state=TrialState[trial.state],
        value=trial.value if trial.state == "COMPLETE" else None,
        params=trial.params,
        distributions={k: distributions[k] for k in trial.params},
        user_attrs=attrs,
        intermediate_values=intermediate,
    )
