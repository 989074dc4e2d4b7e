"""``[model] guide_device``: the neural guide runs where it says, else on the student's device."""

from __future__ import annotations

import pytest
from test_config import GOOD

from harness.config import ConfigError, load_experiment
from harness.study.pipeline import RealPipeline


def _experiment(tmp_path, extra=""):
    text = GOOD.replace(
        'pair = "all-minilm-l6__all-mpnet-base"', 'pair = "all-minilm-l6__all-mpnet-base"' + extra
    )
    path = tmp_path / "exp.toml"
    path.write_text(text, encoding="utf-8")
    return load_experiment(path)


def test_the_guide_follows_the_student_unless_told(tmp_path):
    assert RealPipeline(_experiment(tmp_path), device="cuda:1").guide_device == "cuda:1"
    moved = _experiment(tmp_path, '\nguide_device = "cpu"')
    assert RealPipeline(moved, device="cuda:1").guide_device == "cpu"


def test_the_cached_guide_is_built_on_the_guide_device(tmp_path, monkeypatch):
    import harness.guides

    seen = {}

    def fake_build(name, **kwargs):
        seen.update(kwargs, name=name)
        return object()

    monkeypatch.setattr(harness.guides, "build_guide", fake_build)
    pipeline = RealPipeline(_experiment(tmp_path, '\nguide_device = "cpu"'), device="cuda")
    config = pipeline.experiment.trial_config({})
    pipeline.guide(config, student=None)
    assert seen["name"] == "all-mpnet-base" and seen["device"] == "cpu"


def test_a_bad_device_is_a_one_line_error(tmp_path):
    with pytest.raises(ConfigError, match=r"model.guide_device: String should match pattern"):
        _experiment(tmp_path, '\nguide_device = "gpu0"')
