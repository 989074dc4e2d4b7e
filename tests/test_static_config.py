"""Static students get their own training defaults and a ready search space in experiments."""

from __future__ import annotations

import pytest

from harness.config import ConfigError, validate_experiment
from harness.config.static_preset import STATIC_DEFAULTS, STATIC_SEARCH_SPACE


def _experiment(student: str, train: dict | None = None, **extra) -> dict:
    return {
        "study": {"name": "s", "n_trials": 2} if "search_preset" in extra else {"name": "s"},
        "model": {"student": student, "guide": "all-mpnet-base"},
        "data": {"mixture": "mini-medi"},
        "train": train or {},
        "objective": {"suite": "dev"},
        **({} if "search_preset" in extra else {"ablation": {"arms": [{"name": "gist"}]}}),
        **extra,
    }


def test_static_student_takes_static_defaults_where_train_leaves_them_unset():
    cfg = validate_experiment(_experiment("static-minilm", {"batch_size": 32})).trial_config({})
    assert cfg.lr == STATIC_DEFAULTS["lr"] and cfg.max_seq_len == STATIC_DEFAULTS["max_seq_len"]
    assert cfg.batch_size == 32  # set explicitly: kept
    assert validate_experiment(_experiment("static-minilm")).trial_config({"lr": 0.2}).lr == 0.2  # arms win


def test_transformer_student_keeps_the_transformer_defaults():
    cfg = validate_experiment(_experiment("all-minilm-l6")).trial_config({})
    assert cfg.lr == 2e-5 and cfg.max_seq_len is None


def test_static_search_preset_expands_and_explicit_entries_win():
    exp = validate_experiment(
        _experiment(
            "static-minilm",
            search_preset="static",
            search_space={"lr": {"type": "float", "low": 0.01, "high": 0.1}},
        )
    )
    assert set(exp.search_space) == set(STATIC_SEARCH_SPACE)
    assert exp.search_space["lr"].high == 0.1 and exp.search_space["batch_size"].choices == [32, 64, 128, 256]


def test_unknown_search_preset_is_named():
    with pytest.raises(ConfigError, match="unknown search preset 'statik'; valid: static"):
        validate_experiment(_experiment("static-minilm", search_preset="statik"))
