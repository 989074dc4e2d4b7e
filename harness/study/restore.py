"""Starts a run folder from a committed report, so a study goes on where its ``runs/`` is gone.

A report folder keeps every input of its study (``inputs/manifest.json``, ``inputs/trials.jsonl``,
``results.csv``; see :mod:`harness.report.inputs`), but not ``runs/<study>/`` with its Optuna storage.
:func:`restore_study` writes that run folder back from the report and recreates the Optuna study with
every recorded trial (same numbers, states, values, parameters, intermediate values, times and user
attributes), so ``gist-harness run EXPERIMENT --from-report reports/<study>`` runs only what the
report lacks, e.g. the seeds added to the experiment since, and numbers the new trials after the old::

    restore_study(experiment, Path("reports/gist-vs-infonce"), Path("runs/gist-vs-infonce"), None,
                  data_checksums=...)

The old trials are only carried over when the experiment would train them exactly as recorded (the
same resolved training configuration for their arm and seed, the same objective and final suite, scored
at the same ``[final] max_seq_len``, the same data files); anything else is a one-line error and nothing is written. With ``rerun_changed``
(``--rerun-changed``) a trial the experiment would train or score differently (another configuration
for its arm and seed, another final suite or scoring length) comes back FAIL with the reason, so the run
trains its arm and seed again, and a changed final suite or length is a new declaration that says so (the
old declarations stay):
an amendment made before a look, e.g. a study shrunk to fit its time, is recorded, not hidden. Trained models are not
part of a report: restored trials have no ``model/`` folder. The report's declarations and looks
(:mod:`harness.report.looks`) come back too, so seeds added since are a new declaration and the next
report a new look.

An interim record (``gist-harness interim``, :mod:`harness.report.interim`) holds the same inputs and
restores the same way; it was no look, so the first report of the study that goes on from it is the
study's first look (or the one after the looks it carried).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from pydantic import TypeAdapter

from harness.config import Experiment
from harness.errors import UserError
from harness.report.inputs import REPORT_TOML, is_report_dir, load_report_dir
from harness.results import (
    DECLARATIONS_DIR,
    LOOKS_DIR,
    UNTRAINED_DIR,
    ScoreTable,
    StudyManifest,
    StudyResults,
    TrialRecord,
    numbered_path,
    save_trial,
    write_new_record,
    write_record,
)
from harness.study.artifacts import declaration_of
from harness.study.runner import study_identity
from harness.study.storage import make_storage, resolve_url
from harness.study.trial import param_distributions, trained_arms

RESTORED_FROM = "restored_from"
"""User attribute of a restored trial: the report folder it came from."""


def restore_study(
    experiment: Experiment,
    report_dir: Path,
    study_dir: Path,
    storage: str | None,
    *,
    data_checksums: dict[str, str] | None = None,
    rerun_changed: bool = False,
    experiment_toml: str = "",
) -> int:
    """Writes ``study_dir`` and its Optuna study from the report in ``report_dir``.

    Args:
        experiment: the experiment that goes on (its seeds or arms may have grown since the report).
        report_dir: a report folder with its own inputs, or an interim record.
        study_dir: ``runs/<study>/``; must not hold a study yet.
        storage: the Optuna storage URL (None: SQLite in ``study_dir``); the study must not exist there.
        data_checksums: sha256 of the data files this run reads; a file the report's run read with
            another checksum is an error.
        rerun_changed: re-queue (restore as FAIL) the trials the experiment would train or score
            differently, instead of refusing the restore.
        experiment_toml: the experiment file's text, for the declaration of a changed final suite.

    Returns:
        The number of trials restored.

    Raises:
        UserError: the report, run folder or storage do not allow a restore (the message says why);
            nothing is written then.
    """
    if not is_report_dir(report_dir):
        raise UserError(
            f"--from-report {report_dir}: not a report folder or interim record (no inputs/manifest.json "
            "and results.csv)"
        )
    inputs = load_report_dir(report_dir)
    results = _started_only(inputs.results)
    requeue = _check_report(experiment, report_dir, results, data_checksums or {}, rerun_changed)
    if (study_dir / "manifest.json").exists() or any(study_dir.glob("trial-*")):
        raise UserError(
            f"--from-report: {study_dir} already holds a study; resume it without --from-report, "
            "or move it away first"
        )
    frozen = _frozen_trials(experiment, report_dir, results, requeue)
    explicit = storage or experiment.study.storage
    if explicit and experiment.study.name in optuna.get_all_study_names(
        _storage(experiment, explicit, study_dir)
    ):
        raise UserError(
            f"--from-report {report_dir}: study {experiment.study.name!r} already exists in the storage; "
            "resume it without --from-report"
        )
    study_dir.parent.mkdir(parents=True, exist_ok=True)
    # The files (and the default SQLite file) go to a sibling folder that becomes study_dir only
    # once the storage holds every trial: a failed restore leaves nothing behind.
    staging = Path(tempfile.mkdtemp(prefix=f".{study_dir.name}.", dir=study_dir.parent))
    created = False
    try:
        _write_files(experiment, _requeued(experiment, results, requeue, experiment_toml), staging)
        if inputs.report_toml:  # contrasts or unrecorded looks declared beside the report go on too
            (staging / REPORT_TOML).write_text(inputs.report_toml, encoding="utf-8")
        optuna_storage = _storage(experiment, explicit or resolve_url(None, staging), staging)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(
            study_name=experiment.study.name, storage=optuna_storage, direction=experiment.study.direction
        )
        created = True
        study.add_trials(frozen)
        if study_dir.exists():
            for item in staging.iterdir():
                shutil.move(str(item), study_dir / item.name)
            staging.rmdir()
        else:
            staging.rename(study_dir)
    except BaseException:
        if created and explicit:
            optuna.delete_study(study_name=experiment.study.name, storage=optuna_storage)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return len(frozen)


def _storage(experiment: Experiment, url: str, study_dir: Path) -> Any:
    settings = experiment.study
    return make_storage(
        url,
        study_dir,
        heartbeat_interval=settings.heartbeat_interval_s,
        grace_period=settings.grace_period_s,
        max_retry=settings.max_retry,
    )


def _started_only(results: StudyResults) -> StudyResults:
    """``results`` without the last trials of the history that never started (WAITING, with no record).

    A study stopped or killed mid-run keeps its queued arms and seeds as WAITING trials; they hold
    nothing to restore, and the run enqueues their arms and seeds again.
    """
    recorded = {t.trial.number for t in results.trials}
    history = list(results.manifest.history)
    while history and history[-1].state == "WAITING" and history[-1].number not in recorded:
        history.pop()
    return replace(results, manifest=results.manifest.model_copy(update={"history": history}))


RERUN_HINT = " (--rerun-changed runs such trials again)"


def _check_report(
    experiment: Experiment,
    report_dir: Path,
    results: StudyResults,
    checksums: dict[str, str],
    rerun_changed: bool,
) -> dict[int, str]:
    """Refuses a report the experiment cannot go on from; returns the trials to re-queue and why."""
    manifest = results.manifest
    name = experiment.study.name
    if manifest.study != name:
        raise UserError(f"--from-report {report_dir}: a report of study {manifest.study!r}, not of {name!r}")
    rescore = _scoring_change(experiment, manifest)
    for field, want in study_identity(experiment).items():
        have = getattr(manifest, field)
        if have == want or (field == "final_suite" and rerun_changed):
            continue
        hint = RERUN_HINT if field == "final_suite" else ""
        raise UserError(
            f"--from-report {report_dir}: its {field} is {have!r}; the experiment's is {want!r}{hint}"
        )
    if rescore and not rerun_changed:
        raise UserError(f"--from-report {report_dir}: its trials were {rescore}{RERUN_HINT}")
    for path, digest in sorted(manifest.data_checksums.items()):
        if path in checksums and checksums[path] != digest:
            raise UserError(
                f"--from-report {report_dir}: data file {path} differs from the one its trials read "
                f"(sha256 {checksums[path][:12]}... here, {digest[:12]}... there)"
            )
    numbers = [h.number for h in manifest.history]
    if numbers != list(range(len(numbers))):
        raise UserError(f"--from-report {report_dir}: trial numbers {numbers} are not 0..{len(numbers) - 1}")
    records = {t.trial.number for t in results.trials}
    if records != set(numbers):
        missing = sorted(set(numbers) ^ records)
        raise UserError(
            f"--from-report {report_dir}: trials {missing} are in the history or the records, not both"
        )
    arms = trained_arms(experiment)
    requeue: dict[int, str] = {}
    for t in results.trials:
        record = t.trial
        if record.state != "COMPLETE":
            continue
        if arms and record.arm not in arms:
            raise UserError(
                f"--from-report {report_dir}: trial {record.number}'s arm {record.arm!r} is not an arm of "
                f"the experiment ({', '.join(arms)})"
            )
        if arms and record.seed not in experiment.ablation.seeds:
            raise UserError(
                f"--from-report {report_dir}: trial {record.number}'s seed {record.seed} is not in the "
                f"experiment's seeds {experiment.ablation.seeds}"
            )
        change = config_change(experiment, record) or rescore
        if change and not rerun_changed:
            raise UserError(f"--from-report {report_dir}: {change}{RERUN_HINT}")
        if change:
            requeue[record.number] = change
    return requeue


def _requeued(
    experiment: Experiment, results: StudyResults, requeue: dict[int, str], experiment_toml: str
) -> StudyResults:
    """``results`` with the re-queued trials FAIL and without their scores; a changed final suite also
    drops the untrained student's scores (scored again) and adds the declaration that records it."""
    manifest = results.manifest
    final_suite = study_identity(experiment)["final_suite"]
    rescored = _scoring_change(experiment, manifest)  # also with nothing COMPLETE to re-queue
    if not requeue and not rescored:
        return results
    trials = []
    for t in results.trials:
        if t.trial.number in requeue:
            error = f"{requeue[t.trial.number]}: re-queued (--rerun-changed)"
            record = t.trial.model_copy(update={"state": "FAIL", "value": None, "error": error})
            t = replace(t, trial=record, scores=None)
        trials.append(t)
    history = [
        h.model_copy(update={"state": "FAIL", "value": None}) if h.number in requeue else h
        for h in manifest.history
    ]
    declarations = list(results.declarations)
    if rescored and declarations:
        last = declarations[-1]
        last = last.model_copy(update={"final_suite": last.final_suite or manifest.final_suite})
        declaration = declaration_of(experiment, experiment_toml, last)
        lengths = _final_lengths(experiment, manifest)
        if lengths:  # not a declared field: the declaration says it in words
            change = f"[final] max_seq_len: {lengths[0]} -> {lengths[1]}"
            declaration = declaration.model_copy(update={"changed": [*declaration.changed, change]})
        declarations.append(declaration)
    return replace(
        results,
        trials=trials,
        untrained=None if rescored else results.untrained,
        declarations=declarations,
        manifest=manifest.model_copy(update={"history": history, "final_suite": final_suite}),
    )


def _scoring_change(experiment: Experiment, manifest: StudyManifest) -> str | None:
    """How the report's trials were scored differently from what ``experiment`` scores (another final
    suite, another ``[final] max_seq_len``), or None."""
    have, want = manifest.final_suite, study_identity(experiment)["final_suite"]
    changes = [f"scored on {have}; the experiment now scores {want}"] if have != want else []
    lengths = _final_lengths(experiment, manifest)
    if lengths:
        changes.append(f"scored at [final] max_seq_len {lengths[0]}; the experiment now gives {lengths[1]}")
    return "; ".join(changes) or None


def _final_lengths(experiment: Experiment, manifest: StudyManifest) -> tuple[str, str] | None:
    """The report's and the experiment's ``[final] max_seq_len`` when they differ; None when equal or
    unknown. The length is in no trial's record: the experiment text the report's last session ran
    (``manifest.experiment_toml``) is the witness, and without it (or when it no longer parses) the
    length is unknown."""
    if manifest.experiment_table("study") is None:  # no text, or text that no longer parses
        return None
    final = manifest.experiment_table("final")
    have = final.get("max_seq_len") if final else None
    want = experiment.final.max_seq_len if experiment.final is not None else None
    if have == want:
        return None
    return _length(have), _length(want)


def _length(value: object) -> str:
    return "each model's own" if value is None else str(value)


def config_change(experiment: Experiment, record: TrialRecord) -> str | None:
    """How trial ``record`` trained differently from what ``experiment`` gives its arm and seed, or None."""
    overrides = (
        {**experiment.arm_overrides(record.arm), "seed": record.seed}
        if record.arm
        else {**record.params, "seed": record.seed}
    )
    trial_config = experiment.trial_config(overrides)
    config = trial_config.model_dump(mode="json")
    # A field added to [train] after the trial ran is absent from its record: at its default it trains as
    # before (a new field's default keeps the old behaviour), so only a non-default value is a change.
    added = {
        k: TypeAdapter(field.annotation).dump_python(
            field.get_default(call_default_factory=True), mode="json"
        )
        for k, field in type(trial_config).model_fields.items()
        if k not in record.config and not field.is_required()
    }
    recorded = {**added, **record.config}
    changed = sorted(k for k in set(config) | set(recorded) if config.get(k) != recorded.get(k))
    if not changed:
        return None
    k = changed[0]
    return (
        f"trial {record.number} ({record.arm}, seed {record.seed}) trained with {k} = {recorded.get(k)!r}; "
        f"the experiment now gives {config.get(k)!r}"
    )


def _frozen_trials(
    experiment: Experiment, report_dir: Path, results: StudyResults, requeue: dict[int, str]
) -> list[FrozenTrial]:
    """Optuna's trials as the report recorded them, with the experiment's distributions.

    A trial the report shows unfinished (RUNNING, WAITING), or one in ``requeue``, comes back FAIL, so
    the run queues its arm and seed again.
    """
    space = param_distributions(experiment)
    records: dict[int, TrialRecord] = {t.trial.number: t.trial for t in results.trials}
    out = []
    for history in results.manifest.history:
        record = records[history.number]
        state = TrialState[history.state]
        attrs: dict[str, Any] = {
            "arm": record.arm,
            "seed": record.seed,
            "config": record.config,
            "in_domain_tasks": list(record.in_domain_tasks),
            RESTORED_FROM: str(report_dir),
        }
        if record.provenance is not None:
            attrs["provenance"] = record.provenance.model_dump(mode="json")
        if not state.is_finished():
            state = TrialState.FAIL
            attrs["error"] = f"still {record.state} in {report_dir}; re-queued"
        elif history.number in requeue:
            state = TrialState.FAIL
            attrs["error"] = f"{requeue[history.number]}: re-queued (--rerun-changed)"
        elif record.error is not None:
            attrs["error"] = record.error
        params = dict(history.params)
        unknown = sorted(set(params) - set(space))
        if unknown:
            raise UserError(
                f"--from-report {report_dir}: trial {history.number} has parameters {unknown} the "
                "experiment does not suggest"
            )
        for name, value in params.items():
            if not _contains(space[name], value):
                raise UserError(
                    f"--from-report {report_dir}: trial {history.number} ({history.state}) has {name} = "
                    f"{value!r}, outside the experiment's {name} choices or range"
                )
        # A trial that started after the history was last written has its start in its record only; one
        # left unfinished ends, failed, where it is known to have been alive last (its start).
        started = _naive_local(history.started or record.started)
        finished = _naive_local(history.finished) or started
        out.append(
            FrozenTrial(
                number=history.number,
                state=state,
                value=history.value if state == TrialState.COMPLETE else None,
                values=None,
                datetime_start=started,
                datetime_complete=finished,
                params=params,
                distributions={k: space[k] for k in params},
                user_attrs=attrs,
                system_attrs={},
                intermediate_values={int(k): v for k, v in history.intermediate_values.items()},
                trial_id=history.number,
            )
        )
    return out


def _contains(distribution: Any, value: Any) -> bool:
    try:
        return bool(distribution._contains(distribution.to_internal_repr(value)))
    except (ValueError, TypeError):
        return False


def _naive_local(moment: datetime | None) -> datetime | None:
    # Optuna stores naive local times (see artifacts._utc, which reads them back).
    return moment.astimezone().replace(tzinfo=None) if moment is not None else None


def _write_files(experiment: Experiment, results: StudyResults, folder: Path) -> None:
    """manifest.json, each trial's trial.json / run.json / scores.json, the untrained scores, and the
    declarations and looks (a later change of seeds or contrasts is then a new declaration)."""
    label = (experiment.final or experiment.objective).label
    for t in results.trials:
        scores = ScoreTable(suite=label, rows=t.scores.rows) if t.scores is not None else None
        save_trial(folder, t.trial, scores=scores, run=t.run)
    if results.untrained is not None:
        write_record(
            folder / UNTRAINED_DIR / "scores.json", ScoreTable(suite=label, rows=results.untrained.rows)
        )
    for sub, records in ((DECLARATIONS_DIR, results.declarations), (LOOKS_DIR, results.looks)):
        for record in records:  # the report's declarations and looks go on with the study
            write_new_record(numbered_path(folder / sub, record.number), record)
    write_record(folder / "manifest.json", results.manifest)
