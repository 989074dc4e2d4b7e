"""Optuna studies over experiments: the trial objective, storages, the runner, the run folder.

* ``trial``: the Optuna objective ``make_objective(experiment, fit=..., score=...)``, a thin closure over an injected
  ``fit`` and ``score`` (tested with ``optuna.trial.FixedTrial``).
* ``storage``: ``make_storage(url, study_dir)``: SQLite in the run folder (default), any SQLAlchemy
  URL, an Optuna journal file; heartbeats and retry of stale trials on RDB storages.
* ``runner``: ``run_study(experiment, pipeline, runs_dir=...)`` creates, resumes or joins a study.
* ``ranks``: the same on N processes (``run --nproc N``): rank 0 runs the study, every rank trains.
* ``artifacts``: the ``runs/<study>/`` files, in the ``harness.results`` schema, written atomically.
* ``pipeline``: the real ``Pipeline`` (models, data, guides, ``train``, ``evaluate``), imported lazily.
* ``rounds``: training in rounds and co-training (``rounds > 1``, ``guide = "partner"``) for the pipeline.
"""

from harness.study.runner import Pipeline, arm_seeds, enqueue_arms, make_pruner, make_sampler, run_study
from harness.study.storage import make_storage
from harness.study.trial import TrialHooks, TrialOutcome, make_objective, objective_value, suggest

__all__ = [
    "Pipeline",
    "TrialHooks",
    "TrialOutcome",
    "arm_seeds",
    "enqueue_arms",
    "make_objective",
    "make_pruner",
    "make_sampler",
    "make_storage",
    "objective_value",
    "run_study",
    "suggest",
]
