"""Every experiment file shipped in experiments/ validates."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config import load_experiment

EXPERIMENTS = sorted((Path(__file__).resolve().parents[1] / "experiments").glob("*.toml"))


def test_there_are_experiments():
    assert any(p.name == "quickstart.toml" for p in EXPERIMENTS)


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.name)
def test_experiment_validates(path: Path):
    experiment = load_experiment(path)  # raises ConfigError listing every problem
    assert experiment.ablation.arms or experiment.search_space
