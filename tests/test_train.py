"""``train()`` over the sentence-transformers Trainer, with a tiny in-process static student.

The tiny student is a 16-dimensional ``StaticEmbedding`` over the all-MiniLM-L6-v2 tokenizer and the
guide a deterministic fake (random unit vectors per text), so these tests take seconds. A real
2-trial study (real data, real ``evaluate`` on BIOSSES, real report) closes the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import optuna
import pytest
import torch

from harness.config import Experiment, TrainConfig
from harness.train import train, training_texts


class FakeGuide:
    """Deterministic unit vectors per text (what ``harness.guides`` guides return, in miniature)."""

    fingerprint = "fake"

    def embed(self, texts: list[str]) -> torch.Tensor:
        rows = [torch.randn(8, generator=torch.Generator().manual_seed(sum(map(ord, t)))) for t in texts]
        return torch.nn.functional.normalize(torch.stack(rows), dim=-1)  # (N, 8)


def tiny_student():
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    from tokenizers import Tokenizer

    from harness.models import model_path

    torch.manual_seed(0)
    tokenizer = Tokenizer.from_file(str(model_path("all-minilm-l6", progress=False) / "tokenizer.json"))
    return SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_dim=16)], device="cpu")


def pairs(n: int = 48):
    from datasets import Dataset

    return Dataset.from_dict(
        {
            "anchor": [f"what is the colour of item number {i}" for i in range(n)],
            "positive": [f"item {i} is painted in colour {i % 7}" for i in range(n)],
            "source": ["toy"] * n,  # dropped: only anchor/positive/negative*/label reach the loss
        }
    )


def config(**overrides) -> TrainConfig:
    base = {
        "max_steps": 6,
        "batch_size": 8,
        "lr": 0.05,
        "logging_steps": 2,
        "guide": "fake",
        "warmup_ratio": 0,
    }
    return TrainConfig.model_validate({**base, **overrides})


def test_train_returns_the_model_and_what_it_measured(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    student = tiny_student()
    before = student.encode(["item 1"], convert_to_tensor=True).clone()
    reports: list[tuple[float, int]] = []
    model, run = train(
        config(eval_every_steps=3),
        student=student,
        guide=FakeGuide(),
        train_dataset=pairs(),
        eval_fn=lambda m: 0.5,
        report=lambda value, step: reports.append((value, step)),
        progress=False,
    )
    assert model is student and not torch.allclose(before, model.encode(["item 1"], convert_to_tensor=True))
    assert run.steps == 6 and [s for s, _ in run.loss_curve] == [2, 4, 6]
    assert reports == [(0.5, 3)]  # never at the last step: the caller scores the trained model there
    assert [d.step for d in run.diagnostics] == [2, 4, 6]
    assert all(0 <= d.drop_rate <= 1 and d.step_seconds > 0 for d in run.diagnostics)
    assert run.train_seconds > 0 and run.peak_memory_mb > 0
    assert list(tmp_path.iterdir()) == []  # wrote nothing


def test_infonce_needs_no_guide_and_evaluates_each_epoch():
    reports: list[tuple[float, int]] = []
    _, run = train(
        config(max_steps=None, epochs=2, strategy="none", guide="none"),
        student=tiny_student(),
        guide=None,
        train_dataset=pairs(32),
        eval_fn=lambda m: 0.25,
        report=lambda value, step: reports.append((value, step)),
        progress=False,
    )
    # 32 pairs / 8 per batch x 2 epochs; no report after the last epoch (the objective scores it)
    assert run.steps == 8 and reports == [(0.25, 4)]
    assert all(d.drop_rate == 0 for d in run.diagnostics)


def test_an_epoch_that_ends_short_of_max_steps_is_still_the_last_one_reported():
    """A batch sampler that yields fewer batches than its length (no_duplicates running out) ends the
    last epoch before the Trainer's max_steps: that epoch's score is the trial's value, never reported."""
    from types import SimpleNamespace

    from harness.train_record import RunRecorder

    reports: list[int] = []
    recorder = RunRecorder(
        eval_fn=lambda m: 0.5, report=lambda v, step: reports.append(step), eval_every_steps=None
    )
    args = SimpleNamespace(max_steps=-1, num_train_epochs=2)
    control = SimpleNamespace(should_training_stop=False)
    recorder.on_train_begin(args, None, control)
    for step in (3, 6):  # each epoch one step short of the 4 its length promised
        recorder.on_epoch_end(args, SimpleNamespace(global_step=step, max_steps=8), control, model=None)
    assert reports == [3]


def test_a_pruned_run_stops_the_trainer_and_raises_trial_pruned():
    steps: list[int] = []

    def report(value: float, step: int) -> None:
        steps.append(step)
        if step >= 2:
            raise optuna.TrialPruned(f"pruned at step {step}")

    with pytest.raises(optuna.TrialPruned, match="step 2"):
        train(
            config(max_steps=10, eval_every_steps=1),
            student=tiny_student(),
            guide=FakeGuide(),
            train_dataset=pairs(),
            eval_fn=lambda m: 0.1,
            report=report,
            progress=False,
        )
    assert steps == [1, 2]


def test_training_texts_cover_every_text_column():
    from datasets import Dataset

    data = Dataset.from_dict(
        {"anchor": ["a", "b"], "positive": ["c", "a"], "negative": ["d", "e"], "label": [0, 1]}
    )
    assert training_texts(data) == {"a", "b", "c", "d", "e"}


def test_two_trial_study_with_the_real_trainer(tmp_path):
    """run_study + the real Trainer + artifacts + report, with tiny data and a model-derived score."""
    import pandas as pd
    from sentence_transformers import SentenceTransformer

    from harness.cli.run_cmd import write_report
    from harness.results import load_study_dir
    from harness.study import run_study
    from harness.study.pipeline import RealPipeline

    experiment = tiny_experiment(save_model=True)

    class ToyPipeline(RealPipeline):
        def prepare(self):
            self.train_dataset = pairs(32)

        def load_student(self):
            return tiny_student()

        def guide(self, config, student):
            return (FakeGuide(), 0.0) if config.guide not in (None, "none") else (None, None)

        def score(self, model, suite, *, progress=None):
            a, b = model.encode(["item 1 is red", "item 1 is painted red"], convert_to_tensor=True)
            value = float(torch.cosine_similarity(a, b, dim=0))
            row = {"model": "tiny", "task": "local:BIOSSES", "category": "STS", "split": "test", "subset": "default",
                   "metric": "cosine_spearman", "main_score": value, "mteb_version": "", "task_revision": "", "seconds": 0.0}  # fmt: skip
            return pd.DataFrame([row])

    study = run_study(
        experiment, ToyPipeline(experiment, progress=False), runs_dir=tmp_path, progress=False, log=print
    )
    assert [(t.state.name, t.params["arm"]) for t in study.trials] == [
        ("COMPLETE", "infonce"),
        ("COMPLETE", "gist"),
    ]
    results = load_study_dir(tmp_path / "tiny")
    assert results.untrained is not None and all(t.run.steps == 4 for t in results.trials)
    saved = SentenceTransformer(str(tmp_path / "tiny" / "trial-0001" / "model"), device="cpu")
    assert saved.encode(["item 1"]).shape == (1, 16)
    report = write_report(tmp_path / "tiny", tmp_path / "reports")
    assert "infonce" in (report / "README.md").read_text()


def tiny_experiment(**study) -> Experiment:
    return Experiment.model_validate(
        {
            "study": {"name": "tiny", "sampler": "random", "pruner": "median", **study},
            "model": {"pair": "all-minilm-l6__all-mpnet-base"},
            "data": {"mixture": "stsb-train", "max_examples": 64, "leakage": "drop"},
            "train": {"max_steps": 4, "batch_size": 8, "lr": 0.05, "logging_steps": 2, "eval_every_steps": 2},
            "objective": {"suite": "offline-sts", "tasks": ["local:BIOSSES"]},
            "final": {"suite": "offline-sts", "tasks": ["local:BIOSSES"]},
            "ablation": {
                "seeds": [0],
                "baseline": "infonce",
                "arms": [
                    {"name": "infonce", "strategy": "none", "guide": "none"},
                    {"name": "gist", "strategy": "gist"},
                    {"name": "untrained", "untrained": True},
                ],
            },
        }
    )


def test_real_two_trial_study_end_to_end(tmp_path, data_dir, monkeypatch):
    """Real data, real Trainer, real evaluate (BIOSSES) and the real report; tiny student and guide."""
    from harness.cli.run_cmd import write_report
    from harness.results import load_study_dir
    from harness.study import run_study
    from harness.study.pipeline import RealPipeline

    experiment = tiny_experiment()

    class TinyPipeline(RealPipeline):
        def load_student(self):
            return tiny_student()

        def guide(self, config, student):
            return (FakeGuide(), 0.0) if config.guide not in (None, "none") else (None, None)

    pipeline = TinyPipeline(experiment, data_dir=data_dir, progress=False)
    lines: list[str] = []
    study = run_study(experiment, pipeline, runs_dir=tmp_path / "runs", progress=False, log=lines.append)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    assert [t.params["arm"] for t in study.trials] == ["infonce", "gist"]
    # step 4 is the last: it is not reported (the trial's value is its final score, never a pruning point)
    assert all(sorted(t.intermediate_values) == [2] for t in study.trials)

    results = load_study_dir(tmp_path / "runs" / "tiny")
    assert results.untrained is not None and {r.task for r in results.untrained.rows} == {"local:BIOSSES"}
    for trial in results.trials:
        assert trial.run.steps == 4 and trial.scores.rows[0].task == "local:BIOSSES"
    assert results.trials[1].run.diagnostics and results.trials[1].trial.strategy == "gist"

    report = write_report(tmp_path / "runs" / "tiny", tmp_path / "reports" / "tiny")
    assert (report / "index.html").exists() and (report / "README.md").exists()
    assert os.path.exists(tmp_path / "runs" / "tiny" / "optuna.db")


@pytest.mark.slow
def test_quickstart_runs_end_to_end(tmp_path, data_dir):
    """The README's main command, for real (a few minutes on 2 CPU cores)."""
    from harness.cli import main

    repo = Path(__file__).resolve().parents[1]
    args = ["run", str(repo / "experiments" / "quickstart.toml"), "--runs-dir", str(tmp_path / "runs")]
    args += ["--reports-dir", str(tmp_path / "reports"), "--data-dir", str(data_dir), "--no-progress"]
    assert main(args) == 0
    assert (tmp_path / "reports" / "quickstart" / "index.html").exists()
