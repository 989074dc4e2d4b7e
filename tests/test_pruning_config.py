"""``harness.config.pruning``: when a pruner can see a score before a trial's last step."""

from __future__ import annotations

import pytest

from harness.config.pruning import blind_pruner, effective_pruner, last_early_step
from harness.config.schema import TrainConfig


@pytest.mark.parametrize(
    "train,last",
    [
        ({"max_steps": 40, "eval_every_steps": 20}, 20),
        ({"max_steps": 41, "eval_every_steps": 20}, 40),
        ({"max_steps": 20, "eval_every_steps": 20}, None),  # the only score is the last step's
        ({"max_steps": 10, "eval_every_steps": 20}, None),
        ({"epochs": 1}, None),  # the last epoch's end is not reported
        ({"epochs": 3}, 1),  # an earlier epoch end: some step, how many depends on the data
        ({"rounds": 2, "max_steps": 4, "eval_every_steps": 4}, 1),  # each round's end reports
    ],
)
def test_the_last_score_before_the_end(train, last):
    assert last_early_step(TrainConfig(**train)) == last


def test_blind_pruners_and_the_default_left_out():
    one_epoch = TrainConfig(epochs=1)
    assert "sees no score before a 1-epoch trial ends" in blind_pruner("median", {}, one_epoch)
    assert blind_pruner("none", {}, one_epoch) is None
    assert effective_pruner("median", False, {}, one_epoch) == "none"  # the unnamed default: left out
    assert effective_pruner("median", True, {}, one_epoch) == "median"  # named: the checks refuse it
    early = TrainConfig(max_steps=40, eval_every_steps=20)
    assert blind_pruner("median", {"n_warmup_steps": 20}, early) is None  # Optuna prunes at step >= warmup
    assert "n_warmup_steps 21" in blind_pruner("median", {"n_warmup_steps": 21}, early)
    assert effective_pruner("median", False, {}, early) == "median"
