"""One trial as Optuna runs it: the objective, a thin closure over an injected ``fit`` and ``score``.

``fit(cfg, report) -> (model, RunRecord)`` trains one configuration (``report(value, step)`` is
called with intermediate objective values and raises ``optuna.TrialPruned`` when the pruner says
so); ``score(model, suite_ref) -> DataFrame`` runs ``harness.evaluate.evaluate`` on a ``SuiteRef``
(the objective or final section: a suite, optionally some of its tasks) and returns its tidy rows. Both are injected, so the objective is tested with
``optuna.trial.FixedTrial`` and fakes::

    objective = make_objective(experiment, fit=fake_fit, score=fake_score)
    value = objective(optuna.trial.FixedTrial({"arm": "gist", "seed": 0}))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from harness.config import CategoricalParam, Experiment, FloatParam, ObjectiveConfig, SuiteRef, TrainConfig
from harness.results import RunRecord

Report = Callable[[float, int], None]
Fit = Callable[..., tuple[Any, RunRecord]]
"""``fit(config, report)``; ``fit(config, report, logging_dir=PATH)`` when the study logs to TensorBoard."""
Score = Callable[[Any, SuiteRef], Any]


@dataclass
class TrialOutcome:
    """What one finished trial produced (handed to ``on_finish`` before the value returns)."""

    arm: str | None
    seed: int
    config: TrainConfig
    run: RunRecord
    value: float
    objective_scores: Any
    """The objective suite's tidy table."""
    final_scores: Any | None
    """The final suite's tidy table (None without a ``[final]`` section)."""


@dataclass
class TrialHooks:
    """Callbacks of the runner: write the trial's records and artifacts."""

    on_start: Callable[[Any, str | None, int, TrainConfig], None] | None = None
    on_finish: Callable[[Any, TrialOutcome, Any], None] | None = None


def trained_arms(experiment: Experiment) -> list[str]:
    return [arm.name for arm in experiment.ablation.arms if not arm.untrained]


def suggest(trial: optuna.trial.BaseTrial, experiment: Experiment) -> tuple[str | None, int, dict[str, Any]]:
    """The trial's arm, seed and training overrides (an enqueued arm, or a sample of the space)."""
    arms = trained_arms(experiment)
    if arms:
        arm = trial.suggest_categorical("arm", arms)
        seed = trial.suggest_categorical("seed", experiment.ablation.seeds)
        return arm, seed, {**experiment.arm_overrides(arm), "seed": seed}
    overrides: dict[str, Any] = {}
    for name, spec in experiment.search_space.items():
        if isinstance(spec, CategoricalParam):
            overrides[name] = trial.suggest_categorical(name, spec.choices)
        elif isinstance(spec, FloatParam):
            overrides[name] = trial.suggest_float(name, spec.low, spec.high, log=spec.log, step=spec.step)
        else:
            step = 1 if spec.log else spec.step
            overrides[name] = trial.suggest_int(name, spec.low, spec.high, log=spec.log, step=step)
    seed = experiment.ablation.seeds[0]
    return None, seed, {**overrides, "seed": seed}


def param_distributions(experiment: Experiment) -> dict[str, BaseDistribution]:
    """The distribution :func:`suggest` draws each Optuna parameter from (the same choices and ranges)."""
    arms = trained_arms(experiment)
    if arms:
        return {
            "arm": CategoricalDistribution(arms),
            "seed": CategoricalDistribution(experiment.ablation.seeds),
        }
    out: dict[str, BaseDistribution] = {}
    for name, spec in experiment.search_space.items():
        if isinstance(spec, CategoricalParam):
            out[name] = CategoricalDistribution(spec.choices)
        elif isinstance(spec, FloatParam):
            out[name] = FloatDistribution(spec.low, spec.high, log=spec.log, step=spec.step)
        else:
            out[name] = IntDistribution(spec.low, spec.high, log=spec.log, step=1 if spec.log else spec.step)
    return out


def objective_value(scores: Any, objective: ObjectiveConfig) -> float:
    """Mean of the objective metric over the suite's rows (only ``objective.tasks`` when set)."""
    rows = scores if objective.tasks is None else scores[scores["task"].isin(objective.tasks)]
    if len(rows) == 0:
        raise ValueError(f"objective suite {objective.suite!r} returned no scores for {objective.tasks}")
    return float(rows[objective.metric].mean())


def tensorboard_run(number: int, arm: str | None, seed: int) -> str:
    """A trial's TensorBoard run (folder) name: ``0003-gist-seed0``; a sampled trial's ``0003-seed0``."""
    return "-".join([f"{number:04d}", *([arm] if arm else []), f"seed{seed}"])


def make_objective(
    experiment: Experiment,
    *,
    fit: Fit,
    score: Score,
    hooks: TrialHooks | None = None,
    tensorboard_dir: Path | None = None,
) -> Callable[[optuna.trial.BaseTrial], float]:
    """The objective of ``study.optimize``: suggest, train, score, hand the outcome to the runner.

    With ``tensorboard_dir``, ``fit`` also gets the trial's own ``logging_dir`` below it
    (``tensorboard_run``); without it, ``fit(config, report)`` only.
    """
    hooks = hooks or TrialHooks()

    def objective(trial: optuna.trial.BaseTrial) -> float:
        arm, seed, overrides = suggest(trial, experiment)
        config = experiment.trial_config(overrides)
        trial.set_user_attr("arm", arm)
        trial.set_user_attr("seed", seed)
        if hooks.on_start:
            hooks.on_start(trial, arm, seed, config)

        def report(value: float, step: int) -> None:
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at step {step} (objective {value:.4f})")

        logs: dict[str, Path] = {}
        if tensorboard_dir is not None:
            logs["logging_dir"] = tensorboard_dir / tensorboard_run(trial.number, arm, seed)
        model, run = fit(config, report, **logs)
        objective_scores = score(model, experiment.objective)
        value = objective_value(objective_scores, experiment.objective)
        final = experiment.final
        final_scores = None
        if final is not None:
            same = (final.suite, final.tasks) == (experiment.objective.suite, experiment.objective.tasks)
            same = same and not final.max_seq_len  # a final length limit scores the model again
            final_scores = objective_scores if same else score(model, final)
        if hooks.on_finish:
            outcome = TrialOutcome(arm, seed, config, run, value, objective_scores, final_scores)
            hooks.on_finish(trial, outcome, model)
        return value

    return objective
