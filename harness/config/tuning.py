"""Per-arm tuning as experiments: each tuned arm's search, the confirmation at its best setting, followers.

``[tuning]`` (``TuningConfig``) turns one experiment into several Optuna studies, run in turn by
``harness.study.tuning``: for each tuned arm a search over the arm's space on the tuning suite,
``trials`` trials at ``tuning.seed`` (``tuning_experiment``); then the ablation itself with each tuned
arm fixed at its best setting and each follower at its leader's (``with_tuned``)::

    [tuning]
    trials = 12
    max_steps = 20
    eval_every_steps = 5

    [tuning.space.lr]
    type = "float"
    low = 1e-3
    high = 1e-1
    log = true
"""

from __future__ import annotations

from typing import Any

from harness.config.pruning import effective_pruner
from harness.config.schema import (
    AblationConfig,
    ArmConfig,
    Experiment,
    ObjectiveConfig,
    ParamSpec,
    Scalar,
    given_entries,
)


def tuned_arms(experiment: Experiment) -> list[str]:
    """The arms ``[tuning]`` searches: ``tuning.arms``, else every trained arm that follows no other."""
    if experiment.tuning is None:
        return []
    if experiment.tuning.arms is not None:
        return list(experiment.tuning.arms)
    return [a.name for a in experiment.ablation.arms if not a.untrained and a.follows is None]


def arm_space(experiment: Experiment, arm: str) -> dict[str, ParamSpec]:
    """The search space of tuned arm ``arm``: the shared ``space``, then its own ``arm_space`` entries."""
    tuning = experiment.tuning
    assert tuning is not None, "arm_space needs a [tuning] section"
    return {**tuning.space, **tuning.arm_space.get(arm, {})}


def tuning_study_name(experiment: Experiment, arm: str) -> str:
    """The Optuna study (and folder ``runs/<study>/tuning/<name>/``) of one arm's search."""
    return f"{experiment.study.name}.tune.{arm}"


def tuning_experiment(experiment: Experiment, arm: str) -> Experiment:
    """Arm ``arm``'s search as an experiment of its own: the arm's fixed settings as ``[train]``, its
    space as ``[search_space]``, the tuning suite as objective, no final suite (never scored there)."""
    tuning = experiment.tuning
    assert tuning is not None, "tuning_experiment needs a [tuning] section"
    fixed: dict[str, Any] = {**experiment.arm_overrides(arm), "seed": tuning.seed}
    if tuning.max_steps is not None:
        fixed["max_steps"] = tuning.max_steps
    if tuning.eval_every_steps is not None:
        fixed["eval_every_steps"] = tuning.eval_every_steps
    train = experiment.trial_config(fixed)
    named = bool({"pruner", "pruner_params"} & tuning.model_fields_set)
    pruner = effective_pruner(tuning.pruner, named, tuning.pruner_params, train)
    study = experiment.study.model_copy(
        update={
            "name": tuning_study_name(experiment, arm),
            "sampler": tuning.sampler,
            "sampler_params": {},
            "pruner": pruner,
            "pruner_params": dict(tuning.pruner_params),
            "n_trials": tuning.trials,
            "timeout_s": None,
            "save_model": False,
            "report": False,
        }
    )
    return experiment.model_copy(
        update={
            "study": study,
            # every field given: a static student's presets (``trial_config``) are already applied
            "train": type(train).model_validate(train.model_dump()),
            "search_space": arm_space(experiment, arm),
            "ablation": AblationConfig(seeds=[tuning.seed]),
            "objective": ObjectiveConfig(suite=tuning.suite, tasks=tuning.tasks),
            "final": None,
            "report": None,
            "tuning": None,
        }
    )


def with_tuned(experiment: Experiment, chosen: dict[str, dict[str, Scalar]]) -> Experiment:
    """``experiment`` with each tuned arm fixed at its chosen setting (``{arm: {key: value}}``, keys as in
    the search space); followers then take it through ``Experiment.arm_overrides``."""
    arms = [
        _set(arm, chosen[arm.name], experiment) if arm.name in chosen else arm
        for arm in experiment.ablation.arms
    ]
    ablation = experiment.ablation.model_copy(update={"arms": arms})
    return experiment.model_copy(update={"ablation": ablation})


def _set(arm: ArmConfig, values: dict[str, Scalar], experiment: Experiment) -> ArmConfig:
    """``arm`` with ``values`` set; a dotted key sets one entry of the table the arm trains with (its
    own, else ``[train]``'s), keeping the others."""
    update: dict[str, Any] = {}
    for key, value in values.items():
        field, _, name = key.partition(".")
        if name:
            table = update.get(field) or getattr(arm, field) or getattr(experiment.train, field)
            update[field] = {**given_entries(table), name: value}
        else:
            update[field] = value
    return arm.model_copy(update=update)
