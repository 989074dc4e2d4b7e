"""``batching`` and ``negatives``: validated, resolved per arm, reported by ``validate``."""

from __future__ import annotations

import pytest
from test_config import GOOD

from harness.cli import main
from harness.config import ConfigError, load_experiment


def write(tmp_path, text, name="exp.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_paper_regime_is_the_default_and_arms_override_it(tmp_path):
    text = GOOD.replace("max_examples = 64", 'max_examples = 64\nsource_order = "round_robin"')
    text += (
        '\n[[ablation.arms]]\nname = "gist_mixed"\nstrategy = "gist"\nbatching = "mixed"\nnegatives = false\n'
    )
    exp = load_experiment(write(tmp_path, text))
    default = exp.trial_config(exp.arm("gist").overrides())
    assert (default.batching, default.negatives) == ("per_source", None)
    mixed = exp.trial_config(exp.arm("gist_mixed").overrides())
    assert (mixed.batching, mixed.negatives) == ("mixed", False)
    assert exp.data.source_order == "round_robin"


def test_data_section_sets_the_study_default(tmp_path):
    text = GOOD.replace("max_examples = 64", 'max_examples = 64\nbatching = "mixed"\nnegatives = "keep"')
    exp = load_experiment(write(tmp_path, text))
    config = exp.trial_config({})
    assert (config.batching, config.negatives) == ("mixed", "keep")


def test_misspelt_settings_are_one_line_errors_with_the_valid_values(tmp_path):
    text = GOOD.replace("max_examples = 64", 'max_examples = 64\nbatching = "per-source"\nnegatives = "kept"')
    text = text.replace('name = "gist"\n', 'name = "gist"\nbatching = "mixd"\n')
    with pytest.raises(ConfigError) as info:
        load_experiment(write(tmp_path, text))
    message = str(info.value)
    assert "data.batching: Input should be 'per_source' or 'mixed' (got 'per-source')" in message
    assert (
        "data.negatives: Input should be True, False, 'keep', 'shared', 'drop' or 'require' (got 'kept')"
        in message
    )
    assert "ablation.arms.1.batching: Input should be 'per_source' or 'mixed' (got 'mixd')" in message
    assert all(line.lstrip().startswith(("line ", "error", str(tmp_path))) for line in message.splitlines())


def test_validate_reports_the_batching_of_every_arm(tmp_path, capsys):
    text = GOOD + '\n[[ablation.arms]]\nname = "gist_mixed"\nstrategy = "gist"\nbatching = "mixed"\n'
    path = write(tmp_path, text)
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "batching mixed, negatives shared | per_source (proportional), negatives keep" in out
