"""Loss objectives and the duplicate-text setting in experiment files: selectable per arm, validated."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.config import ConfigError, load_experiment

BASE = """\
[study]
name = "tiny"
sampler = "random"

[model]
pair = "all-minilm-l6__all-mpnet-base"

[data]
mixture = "mini-medi"

[train]
batch_size = 8
max_steps = 4

[objective]
suite = "dev"

[ablation]
seeds = [0]

[[ablation.arms]]
name = "gist"
strategy = "gist"
"""


def load(tmp_path: Path, text: str):
    path = tmp_path / "experiment.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_experiment(path)


def errors_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return "\n".join(info.value.errors)


def test_objectives_and_duplicates_are_selectable_per_arm(tmp_path):
    text = BASE + textwrap.dedent("""
        [[ablation.arms]]
        name = "kl"
        strategy = "none"
        objective = "distill_kl"
        objective_params = { weight = 0.25 }
        duplicates = "keep"
        """)
    experiment = load(tmp_path, text)
    kl = experiment.trial_config(experiment.arm("kl").overrides())
    assert (kl.objective, kl.objective_params, kl.duplicates) == ("distill_kl", {"weight": 0.25}, "keep")
    gist = experiment.trial_config(experiment.arm("gist").overrides())
    assert (gist.objective, gist.objective_params, gist.duplicates) == ("infonce", {}, "drop")


@pytest.mark.parametrize(
    "arm,expected",
    [
        (
            'objective = "hardness"\nobjective_params = { alpha = -1.0 }',
            "ablation.arms.0.objective_params: objective 'hardness': alpha must be in [0, 100], got -1.0",
        ),
        (
            'objective = "debiased"\nobjective_params = { tau_plus = 1.0 }',
            "ablation.arms.0.objective_params: objective 'debiased': tau_plus must be in [0, 1), got 1.0",
        ),
        ('objective = "distil_kl"', "ablation.arms.0.objective: unknown objective 'distil_kl'. Did you mean"),
        ('duplicates = "merge"', "ablation.arms.0.duplicates: Input should be 'drop' or 'keep'"),
    ],
)
def test_bad_objectives_are_one_line_errors_with_file_field_and_range(tmp_path, arm, expected, capsys):
    from harness.cli import main

    path = tmp_path / "experiment.toml"
    path.write_text(BASE.replace('strategy = "gist"\n', f'strategy = "gist"\n{arm}\n'), encoding="utf-8")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"error: {path}: 1 error" in err
    assert any(line.strip().startswith("line ") and expected in line for line in err.splitlines()), err


def test_margin_mse_needs_training_data_with_negatives(tmp_path):
    pairs_only = BASE.replace('mixture = "mini-medi"', 'sources = ["stsb-train"]')
    pairs_only = pairs_only.replace('strategy = "gist"\n', 'strategy = "gist"\nobjective = "margin_mse"\n')
    text = errors_of(tmp_path, pairs_only)
    assert (
        "ablation.arms.0.objective: objective 'margin_mse' needs a negative column, but the sources" in text
    )
    dropped = BASE.replace('mixture = "mini-medi"', 'mixture = "mini-medi"\nnegatives = false')
    dropped = dropped.replace('strategy = "gist"\n', 'strategy = "gist"\nobjective = "margin_mse"\n')
    assert "needs a negative column, but negatives = False drops them" in errors_of(tmp_path, dropped)
    ok = BASE.replace('strategy = "gist"\n', 'strategy = "gist"\nobjective = "margin_mse"\n')
    assert load(tmp_path, ok).arm("gist").objective == "margin_mse"  # mini-medi has SNLI triplets


def test_guide_uses_studies_declare_their_contrasts_against_gist():
    root = Path(__file__).resolve().parents[1] / "experiments"
    for name in ("guide_uses_static.toml", "guide_uses.toml"):
        experiment = load_experiment(root / name)
        arms = {a.name: a for a in experiment.ablation.arms}
        assert {"infonce", "infonce_blocks", "gist", "hardness", "debiased", "distill_kl", "gist_kl"} <= set(
            arms
        )
        assert len(experiment.ablation.seeds) >= 5
        assert experiment.report is not None and experiment.report.primary
        assert all(reference == "gist" for _, reference in experiment.report.primary)
        gist_kl = experiment.trial_config(arms["gist_kl"].overrides())
        assert (gist_kl.strategy, gist_kl.objective) == ("gist", "distill_kl")


def test_objective_params_can_be_searched(tmp_path):
    search = BASE.split("[ablation]")[0].replace('name = "tiny"', 'name = "tiny"\nn_trials = 4')
    search = search.replace("max_steps = 4", 'max_steps = 4\nobjective = "hardness"')
    ok = search + '\n[search_space."objective_params.alpha"]\ntype = "float"\nlow = 1.0\nhigh = 20.0\n'
    experiment = load(tmp_path, ok)
    config = experiment.trial_config({"objective_params.alpha": 4.0})
    assert (config.objective, config.objective_params) == ("hardness", {"alpha": 4.0})
    bad = search + '\n[search_space."objective_params.alpha"]\ntype = "float"\nlow = 1.0\nhigh = 200.0\n'
    assert "objective 'hardness': alpha must be in [0, 100], got 200.0" in errors_of(tmp_path, bad)
