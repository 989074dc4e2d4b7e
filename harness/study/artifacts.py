"""The run folder ``runs/<study>/``: trial records, scores, run records, models and the manifest.

Files follow ``harness.results`` exactly (the report layer reads only them) and every write is
atomic. ``trial.json`` is written RUNNING when a trial starts and rewritten from Optuna's own state
once Optuna has recorded the end, so a ``trial.json`` that says COMPLETE always means Optuna has it.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from harness.config import Experiment, TrainConfig
from harness.report.settings import arms_of, report_settings
from harness.results import (
    DECLARATIONS_DIR,
    UNTRAINED_DIR,
    CodeProvenance,
    Declaration,
    HistoryTrial,
    StudyManifest,
    TrialRecord,
    numbered_path,
    read_numbered,
    read_record,
    save_trial,
    score_table,
    trial_dirname,
    write_new_record,
    write_record,
)
from harness.study.trial import TrialOutcome, trained_arms

SPARE = "spare"
"""User attribute of a trial that found no arm left to run (another worker took it); not recorded."""


class RunFolder:
    """Writes one study's artifacts under ``runs/<study>/``.

    Args:
        path: the study folder.
        study_name: the Optuna study name.
        save_model: also save each trained model under ``<trial>/model/``.
        in_domain_tasks: tasks whose own train split the training data uses (from the leakage check).
    """

    def __init__(self, path: Path, study_name: str, *, save_model: bool = False) -> None:
        self.path = path
        self.study_name = study_name
        self.save_model = save_model
        self.in_domain_tasks: list[str] = []
        self.objective_label = self.final_label = ""
        self._code: CodeProvenance | None = None
        self._session: CodeProvenance | None = None

    def trial_dir(self, number: int) -> Path:
        return self.path / trial_dirname(number)

    def on_start(self, trial: Any, arm: str | None, seed: int, config: TrainConfig) -> None:
        """Records the configuration in Optuna (for the final record) and writes a RUNNING trial.json."""
        started = datetime.now(timezone.utc)
        code = self.code_provenance()
        trial.set_user_attr("config", config.model_dump(mode="json"))
        trial.set_user_attr("in_domain_tasks", self.in_domain_tasks)
        trial.set_user_attr("provenance", code.model_dump(mode="json"))
        record = TrialRecord(
            study=self.study_name,
            number=trial.number,
            state="RUNNING",
            arm=arm,
            seed=seed,
            params=dict(trial.params),
            config=config.model_dump(mode="json"),
            guide=config.guide,
            strategy=config.strategy,
            started=started,
            in_domain_tasks=self.in_domain_tasks,
            provenance=code,
        )
        save_trial(self.path, record)

    def on_finish(self, trial: Any, outcome: TrialOutcome, model: Any) -> None:
        """Writes run.json, the objective and final scores and (optionally) the model."""
        folder = self.trial_dir(trial.number)
        write_record(folder / "run.json", outcome.run)
        write_record(
            folder / "objective_scores.json", score_table(outcome.objective_scores, self.objective_label)
        )
        if outcome.final_scores is not None:
            write_record(folder / "scores.json", score_table(outcome.final_scores, self.final_label))
        if self.save_model and model is not None:
            save_model_atomically(model, folder / "model")

    def on_end(self, frozen: FrozenTrial) -> TrialRecord | None:
        """Rewrites trial.json from Optuna's record of a finished trial; returns the record."""
        if frozen.user_attrs.get(SPARE):
            return None
        record = trial_record(self.study_name, frozen)
        save_trial(self.path, record)
        return record

    def sync(self, study: optuna.Study) -> None:
        """Brings every trial.json in line with Optuna (e.g. a killed worker's trial failed as stale)."""
        for frozen in study.get_trials(deepcopy=False):
            path = self.trial_dir(frozen.number) / "trial.json"
            stale = frozen.state.is_finished() and path.exists()
            if stale and read_record(path, TrialRecord).state != frozen.state.name:
                self.on_end(frozen)

    def write_untrained(self, scores: Any, suite: str) -> None:
        write_record(self.path / UNTRAINED_DIR / "scores.json", score_table(scores, suite=suite))

    def has_untrained(self) -> bool:
        return (self.path / UNTRAINED_DIR / "scores.json").exists()

    def first_run(self) -> dict[str, Any]:
        """``created`` and ``command`` of the manifest already there (resumes and workers keep them)."""
        path = self.path / "manifest.json"
        if not path.exists():
            return {}
        manifest = read_record(path, StudyManifest)
        return {"created": manifest.created, "command": manifest.command}

    def code_provenance(self) -> CodeProvenance:
        """This process's commit, dirty flag, diff hash and package versions (taken once per process)."""
        if self._code is None:
            from harness.study.environment import code_provenance

            self._code = code_provenance()
        return self._code

    def write_manifest(self, study: optuna.Study, base: StudyManifest) -> None:
        """Writes manifest.json: ``base`` (reproducibility fields) plus Optuna's history of every trial.

        A resume or a worker appends its session (commit, dirty flag, diff hash, package versions) to
        the sessions already recorded, once per process; earlier sessions are never rewritten.
        """
        history = [history_trial(t) for t in study.get_trials(deepcopy=False) if not t.user_attrs.get(SPARE)]
        path = self.path / "manifest.json"
        sessions = list(read_record(path, StudyManifest).sessions) if path.exists() else []
        if self._session is None:
            command = shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else ""
            self._session = self.code_provenance().model_copy(update={"command": command})
            sessions.append(self._session)
        manifest = base.model_copy(update={"history": history, "sessions": sessions})
        write_record(path, manifest)

    def declare(self, experiment: Experiment, experiment_toml: str) -> Declaration | None:
        """Writes ``declarations/NNNN.json`` when nothing is declared yet or the declaration changed.

        A plain resume of an unchanged experiment writes nothing. Returns the new declaration, or None.
        """
        folder = self.path / DECLARATIONS_DIR
        previous = read_numbered(folder, Declaration)
        last = previous[-1] if previous else None
        declaration = declaration_of(experiment, experiment_toml, last)
        if last is not None and not declaration.changed:
            return None
        try:
            write_new_record(numbered_path(folder, declaration.number), declaration)
        except FileExistsError:  # another process declared this number first: never overwrite it
            return None
        return declaration


DECLARED_FIELDS = (
    "seeds", "arms", "contrasts", "primary", "primary_on", "alpha", "alpha_spending", "final_suite"
)  # fmt: skip
"""The fields whose change makes a new declaration (the experiment's hash alone does not). A declaration
written before ``final_suite`` existed has none to compare: it does not count as changed there."""


def declaration_of(experiment: Experiment, experiment_toml: str, last: Declaration | None) -> Declaration:
    """What ``experiment`` declares now, numbered after ``last`` and saying what changed since it.

    Contrasts resolve as the report resolves them (``[report]``, else every arm against the baseline).
    """
    section = experiment.report
    baseline = experiment.ablation.baseline or ""
    trained = trained_arms(experiment)  # baseline first, as the report orders them
    arms = [a for a in trained if a == baseline] + [a for a in trained if a != baseline]
    untrained = [a.name for a in experiment.ablation.arms if a.untrained]
    settings = report_settings(section, arms, baseline, untrained=untrained)
    fields: dict[str, Any] = {
        "seeds": list(experiment.ablation.seeds),
        "arms": arms,
        "contrasts": [arms_of(c) for c in settings.contrasts],
        "primary": [arms_of(c) for c in settings.primary],
        "primary_on": list(settings.primary_on),
        "alpha": settings.alpha,
        "alpha_spending": section.alpha_spending if section is not None else "split",
        "final_suite": (experiment.final or experiment.objective).label,
    }
    changed = []
    if last is not None:
        changed = [
            f"{k}: {getattr(last, k)} -> {fields[k]}"
            for k in DECLARED_FIELDS
            if getattr(last, k) != fields[k] and (k != "final_suite" or last.final_suite)
        ]
    return Declaration(
        number=(last.number if last else 0) + 1,
        declared=datetime.now(timezone.utc),
        experiment_sha256=hashlib.sha256(experiment_toml.encode("utf-8")).hexdigest(),
        experiment_toml=experiment_toml,
        changed=changed,
        **fields,
    )


def trial_record(study_name: str, frozen: FrozenTrial) -> TrialRecord:
    """The TrialRecord of an Optuna trial (arm, seed and config come from its user attributes)."""
    attrs = frozen.user_attrs
    config = attrs.get("config", {})
    started, finished = frozen.datetime_start, frozen.datetime_complete
    state = frozen.state.name
    error = attrs.get("error")
    if frozen.state == TrialState.FAIL and error is None:
        error = "worker stopped without finishing the trial (no heartbeat); re-queued"
    return TrialRecord(
        study=study_name,
        number=frozen.number,
        state=state,  # type: ignore[arg-type]
        arm=attrs.get("arm"),
        seed=attrs.get("seed"),
        params=dict(frozen.params),
        config=config,
        guide=config.get("guide"),
        strategy=config.get("strategy"),
        value=frozen.value if frozen.state == TrialState.COMPLETE else None,
        started=_utc(started),
        finished=_utc(finished),
        wall_seconds=(finished - started).total_seconds() if started and finished else None,
        in_domain_tasks=attrs.get("in_domain_tasks", []),
        error=error,
        provenance=CodeProvenance.model_validate(attrs["provenance"]) if attrs.get("provenance") else None,
    )


def history_trial(frozen: FrozenTrial) -> HistoryTrial:
    return HistoryTrial(
        number=frozen.number,
        state=frozen.state.name,  # type: ignore[arg-type]
        value=frozen.value if frozen.state == TrialState.COMPLETE else None,
        params=dict(frozen.params),
        intermediate_values=dict(frozen.intermediate_values),
        started=_utc(frozen.datetime_start),
        finished=_utc(frozen.datetime_complete),
    )


def _utc(moment: datetime | None) -> datetime | None:
    # Optuna stores naive local times; records carry UTC.
    return moment.astimezone(timezone.utc) if moment is not None else None


def save_model_atomically(model: Any, target: Path) -> None:
    """Saves a sentence-transformers model into a temporary sibling folder, then renames it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model.save(str(tmp))
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
