"""When an Optuna pruner can act: the intermediate scores a trial reports before its last step.

A trial reports its objective score every ``eval_every_steps`` steps, or at each epoch end when that
is unset, never at its last step (``harness.train_record``: the trained model is scored as the trial's
value, and a pruner told of that step could merely mark a fully trained trial pruned). A pruner that
sees no score before a trial's last step therefore sees none and can stop nothing. A search that names such a pruner would spend
its whole budget believing it prunes; ``blind_pruner`` says so before the run: the checks in
``harness.config.checks`` refuse such a pruner where the experiment names it, and ``effective_pruner``
leaves the default (median) out there. Trained in ``rounds``, a trial also reports at each round's end
with its own step count: the config alone does not decide, so it is never called blind.
"""

from __future__ import annotations

from typing import Any

from harness.config.schema import TrainConfig


def last_early_step(train: TrainConfig) -> int | None:
    """The last step before the end at which a trial surely reports a score; None where none is sure.

    Only what the config alone decides: with ``eval_every_steps`` and ``max_steps`` both set, the
    largest multiple below ``max_steps``; without ``eval_every_steps`` and with ``epochs`` > 1, the end
    of the first epoch (its step count depends on the data, so it is returned as 1: some step).
    """
    every, steps = train.eval_every_steps, train.max_steps
    if train.rounds > 1:
        return 1  # each round's end reports too (``harness.study.rounds``): some step before the end
    if every is not None and steps is not None:
        return (steps - 1) // every * every or None
    if every is not None:
        return every  # the run length depends on the data; a score every N steps is there when it runs longer
    if steps is None and train.epochs > 1:
        return 1
    return None


def effective_pruner(pruner: str, named: bool, params: dict[str, Any], train: TrainConfig) -> str:
    """The pruner a search runs: ``pruner``, or ``"none"`` where it is the unnamed default and blind."""
    return pruner if named or blind_pruner(pruner, params, train) is None else "none"


def blind_pruner(pruner: str, params: dict[str, Any], train: TrainConfig) -> str | None:
    """Why ``pruner`` can never stop a trial trained with ``train`` early, or None when it can."""
    if pruner == "none":
        return None
    every, steps = train.eval_every_steps, train.max_steps
    last = last_early_step(train)
    if last is None:
        if every is None and steps is None:
            return (
                f"the {pruner!r} pruner sees no score before a {train.epochs:g}-epoch trial ends "
                "and can stop nothing: set eval_every_steps (or pruner = 'none')"
            )
        if every is not None and steps is not None:
            return (
                f"the {pruner!r} pruner sees no score before the last step (eval_every_steps {every} >= "
                f"max_steps {steps}): set eval_every_steps below {steps} (or pruner = 'none')"
            )
        return None  # max_steps without eval_every_steps: epoch ends may fall before it (data-dependent)
    warmup = params.get("n_warmup_steps", 0)
    exact = every is not None and steps is not None and train.rounds == 1
    if exact and isinstance(warmup, int) and warmup > last:
        return (
            f"the {pruner!r} pruner's n_warmup_steps {warmup} is past the last score before the end "
            f"(step {last} of {steps}): it can stop nothing; lower n_warmup_steps to at most {last}"
        )
    return None
