"""Training curves in TensorBoard: ``[study] tensorboard = true`` writes one run per trial.

A real (tiny) study: a random static student trains a few steps per trial through ``RealPipeline``
and ``train()``; only the data and the scoring are stand-ins. The event files are read back with
TensorBoard's own ``EventAccumulator`` and must hold the loss curve the trial's ``run.json`` holds.
On two processes (gloo) only rank 0 writes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import optuna
import pytest
from datasets import Dataset
from ranks import launch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from test_study import FakePipeline, scores

from harness.config import Experiment
from harness.errors import UserError
from harness.results import load_study_dir
from harness.study import make_objective, run_study
from harness.study.pipeline import RealPipeline
from harness.study.rounds import fit_rounds
from harness.study.trial import tensorboard_run
from harness.train import training_arguments, training_texts


def experiment(tensorboard: bool | None = None) -> Experiment:
    study = {"name": "tb", "pruner": "none"}
    if tensorboard is not None:
        study["tensorboard"] = tensorboard
    return Experiment.model_validate(
        {
            "study": study,
            "model": {"student": "static-random-32", "guide": "none"},
            "data": {"mixture": "mini-medi"},
            "train": {"batch_size": 8, "max_steps": 4, "logging_steps": 1, "lr": 0.1, "warmup_ratio": 0.0},
            "objective": {"suite": "dev"},
            "ablation": {
                "seeds": [0],
                "arms": [
                    {"name": "infonce", "strategy": "none"},
                    {"name": "gist", "strategy": "gist", "guide": "tfidf"},
                ],
            },
        }
    )


class TinyPipeline(RealPipeline):
    """The real ``fit`` (student, guide, ``train()``) over a few pairs; a constant stands in for scoring."""

    def prepare(self) -> None:
        rows = [{"anchor": f"question {i}", "positive": f"answer {i}"} for i in range(64)]
        self.train_dataset = Dataset.from_list(rows)
        self.guides.corpus = sorted(training_texts(self.train_dataset))

    def load_student(self):
        from harness.models import load_model

        return load_model("static-random-32", device="cpu")

    def score(self, model, suite, *, progress=None):
        return scores(0.5, "dev")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GIST_HARNESS_CACHE", str(tmp_path / "cache"))


def scalars(run_dir: Path, tag: str) -> list[tuple[int, float]]:
    """A scalar's ``(step, value)`` points as TensorBoard reads them from a run folder."""
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return [(event.step, event.value) for event in events.Scalars(tag)]


def test_each_trial_writes_its_loss_curve_to_tensorboard(tmp_path, cache):
    exp = experiment(tensorboard=True)
    run_study(exp, TinyPipeline(exp, progress=False), runs_dir=tmp_path, progress=False)

    runs = tmp_path / "tb" / "tensorboard"
    assert sorted(p.name for p in runs.iterdir()) == ["0000-infonce-seed0", "0001-gist-seed0"]
    results = load_study_dir(tmp_path / "tb")
    for trial in results.trials:
        assert trial.trial.state == "COMPLETE" and trial.run is not None
        name = tensorboard_run(trial.trial.number, trial.trial.arm, trial.trial.seed)
        assert list((runs / name).glob("events.out.tfevents.*"))
        curve = scalars(runs / name, "train/loss")
        assert [step for step, _ in curve] == [step for step, _ in trial.run.loss_curve] == [1, 2, 3, 4]
        # TensorBoard keeps 32-bit floats
        assert [v for _, v in curve] == pytest.approx([v for _, v in trial.run.loss_curve], rel=1e-6)
        assert len(scalars(runs / name, "train/learning_rate")) == 4
        if trial.trial.arm == "gist":  # the loss's diagnostics reach TensorBoard too
            logged = scalars(runs / name, "train/gist_drop_rate")
            assert [step for step, _ in logged] == [d.step for d in trial.run.diagnostics] == [1, 2, 3, 4]
            assert [v for _, v in logged] == pytest.approx([d.drop_rate for d in trial.run.diagnostics])


def test_off_by_default_nothing_is_written(tmp_path, cache):
    exp = experiment()
    assert exp.study.tensorboard is False
    run_study(exp, TinyPipeline(exp, progress=False), runs_dir=tmp_path, progress=False)

    assert not (tmp_path / "tb" / "tensorboard").exists()
    assert not list(tmp_path.rglob("events.out.tfevents.*"))
    args = training_arguments(
        exp.trial_config({}), str(tmp_path), progress=False, source_order="proportional"
    )
    assert args.report_to == []


def test_a_pipeline_without_tensorboard_is_called_as_before(tmp_path):
    """A study that does not ask for TensorBoard never hands ``fit`` a ``logging_dir``."""
    pipeline = FakePipeline()  # fit(config, report): no logging_dir keyword
    exp = experiment(tensorboard=False)
    run_study(exp, pipeline, runs_dir=tmp_path, progress=False)
    assert len(pipeline.fits) == 2


def test_on_several_processes_only_rank_0_writes(tmp_path):
    done = launch("distributed_tensorboard_worker.py", str(tmp_path))
    assert done.returncode == 0, done.stderr[-4000:]
    assert len(list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))) == 1
    rank0, _ = json.loads((tmp_path / "curves.json").read_text())
    curve = scalars(tmp_path / "tensorboard", "train/loss")
    assert [step for step, _ in curve] == [step for step, _ in rank0] == [1, 2, 3, 4]
    assert [v for _, v in curve] == pytest.approx([v for _, v in rank0], rel=1e-6)


def test_missing_tensorboard_is_a_one_line_error_before_anything_runs(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # find_spec: not installed
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    pipeline = FakePipeline()
    with pytest.raises(UserError, match=r"pip install gist-harness\[tensorboard\]") as error:
        run_study(experiment(tensorboard=True), pipeline, runs_dir=tmp_path, progress=False)
    assert "\n" not in str(error.value) and "[study] tensorboard" in str(error.value)
    assert not pipeline.fits and not (tmp_path / "tb").exists()
    run_study(experiment(tensorboard=False), pipeline, runs_dir=tmp_path, progress=False)  # not needed
    assert len(pipeline.fits) == 2


def test_the_objective_names_the_run_by_trial_arm_and_seed(tmp_path):
    exp = experiment(tensorboard=True)
    folders = []

    def fit(config, report, logging_dir=None):
        folders.append(logging_dir)
        return 0.5, FakePipeline().fit(config, report)[1]

    objective = make_objective(
        exp, fit=fit, score=lambda model, suite: scores(0.5, "dev"), tensorboard_dir=tmp_path
    )
    objective(optuna.trial.FixedTrial({"arm": "gist", "seed": 0}, number=7))
    assert folders == [tmp_path / "0007-gist-seed0"]
    assert tensorboard_run(12, None, 3) == "0012-seed3"  # a sampled trial has no arm


@pytest.mark.parametrize("logging_dir", [None, Path("tb/0003-gist-seed0")])
def test_rounds_are_sub_runs_of_the_trial(logging_dir):
    exp = experiment()
    config = exp.trial_config({"rounds": 2})
    calls = []

    def train_run(round_config, model, guide, eval_fn=None, report=None, **logs):
        calls.append((model, logs.get("logging_dir")))
        return model, FakePipeline().fit(round_config, lambda value, step: None)[1]

    fit_rounds(
        config,
        "student",
        partner="partner",
        guide_for=lambda config, model, other: (None, None),
        train_run=train_run,
        eval_fn=lambda model: 0.5,
        report=lambda value, step: None,
        logging_dir=logging_dir,
    )
    if logging_dir is None:
        assert calls == [("student", None), ("partner", None)] * 2
    else:
        names = ["round0", "partner-round0", "round1", "partner-round1"]
        assert calls == [(m, logging_dir / n) for (m, _), n in zip(calls, names, strict=True)]
        assert [m for m, _ in calls] == ["student", "partner"] * 2
