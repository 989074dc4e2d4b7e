"""Nothing half-written: ``run`` checks data, models and storage before a study exists; ``eval`` of
a folder that is not a model says so in one line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from test_study import FakePipeline, experiment

from harness.cli import main
from harness.errors import UserError
from harness.study import run_study
from harness.study.runner import check_models, model_names

TINY = """
[study]
name = "preflight"
sampler = "random"
pruner = "none"

[model]
student = "static-random"
guide = "tfidf"

[data]
mixture = "mini-medi"
max_examples = 64

[train]
max_steps = 2
batch_size = 8

[objective]
suite = "dev"
tasks = ["local:STSBenchmark"]

[ablation]
seeds = [0]

[[ablation.arms]]
name = "infonce"
strategy = "none"
guide = "none"
"""


class NoData(FakePipeline):
    def prepare(self) -> None:
        raise UserError("no data folder: pass data_dir (experiment field or --data-dir)")


def test_a_missing_data_folder_leaves_no_study_behind(tmp_path):
    with pytest.raises(UserError, match="no data folder"):
        run_study(experiment("nodata"), NoData(), runs_dir=tmp_path, progress=False)
    assert not (tmp_path / "nodata").exists()


def test_run_with_a_missing_data_dir_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.toml").write_text(TINY)
    status = main(["run", "tiny.toml", "--data-dir", str(tmp_path / "nowhere"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and err[0].startswith("error: ")
    assert not (tmp_path / "runs").exists() and not (tmp_path / "reports").exists()


def test_model_names_cover_student_guides_and_partner():
    exp = experiment("names")  # pair all-minilm-l6__all-mpnet-base, arms infonce and gist
    assert model_names(exp) == ["all-minilm-l6", "all-mpnet-base"]


def test_a_folder_that_is_not_a_model_is_an_error_before_the_study(tmp_path):
    exp = experiment("folder", model={"student": str(tmp_path), "guide": "tfidf"})
    with pytest.raises(UserError, match="not a sentence-transformers model folder"):
        check_models(exp)


def test_eval_of_a_folder_that_is_not_a_model_is_one_line(tmp_path, capsys):
    (tmp_path / "config.json").write_text("{}")  # looks like a model, is not one
    status = main(["eval", str(tmp_path / "missing"), "--suite", "dev"])
    first = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(first) == 1
    status = main(["eval", str(Path(sys.prefix)), "--suite", "dev"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and err == [
        f"error: {Path(sys.prefix)} is not a model folder (no modules.json or config.json)"
    ]
