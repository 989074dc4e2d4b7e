"""The study layer with fakes: the objective through FixedTrial, storages, a whole study, resume."""

from __future__ import annotations

from pathlib import Path

import optuna
import pandas as pd
import pytest

from harness.config import Experiment
from harness.results import RunRecord, load_study_dir
from harness.study import enqueue_arms, make_objective, make_storage, run_study
from harness.study.progress import summary_line
from harness.study.runner import make_pruner, make_sampler

ARMS = [
    {"name": "infonce", "strategy": "none"},
    {"name": "gist", "strategy": "gist"},
    {"name": "untrained", "untrained": True},
]


def experiment(name: str = "fake", **sections) -> Experiment:
    data = {
        "study": {"name": name, "heartbeat_interval_s": 1, "grace_period_s": 3},
        "model": {"pair": "all-minilm-l6__all-mpnet-base"},
        "data": {"mixture": "mini-medi"},
        "train": {"batch_size": 4, "max_steps": 3, "eval_every_steps": 1},
        "objective": {"suite": "dev"},
        "final": {"suite": "offline-sts"},
        "ablation": {"seeds": [0, 1], "baseline": "infonce", "arms": ARMS},
    }
    data.update(sections)
    return Experiment.model_validate(data)


def scores(value: float, suite: str) -> pd.DataFrame:
    """A tidy table shaped like ``harness.evaluate.evaluate``'s."""
    rows = [("local:STSBenchmark", value), ("local:SICK-R", value - 0.1)]
    return pd.DataFrame(
        [
            {
                "model": "m",
                "task": t,
                "category": "STS",
                "split": "test",
                "subset": "default",
                "metric": "cosine_spearman",
                "main_score": v,
                "mteb_version": "2",
                "task_revision": "x",
                "seconds": 0.1,
            }
            for t, v in rows
        ]
    )


class FakePipeline:
    """Trains nothing: the 'model' is a number derived from the config, reported at every step."""

    def __init__(self, sleep_s: float = 0.0) -> None:
        self.in_domain_tasks = ["local:Banking77Classification"]
        self.fits: list[dict] = []
        self.sleep_s = sleep_s

    def prepare(self) -> None:
        pass

    def fit(self, config, report):
        import time

        self.fits.append(config.model_dump())
        quality = 0.5 + 0.1 * (config.strategy == "gist") + 0.01 * config.seed + config.lr
        for step in range(1, (config.max_steps or 1) + 1):
            time.sleep(self.sleep_s)
            report(quality * step / (config.max_steps or 1), step)
        return quality, RunRecord(loss_curve=[(1, 2.0), (2, 1.5)], steps=config.max_steps, train_seconds=0.01)

    def score(self, model, suite):
        return scores(0.3 if model == "student" else model, suite)

    def load_student(self):
        return "student"


def test_objective_with_fixed_trial():
    exp = experiment()
    pipeline = FakePipeline()
    objective = make_objective(exp, fit=pipeline.fit, score=pipeline.score)
    value = objective(optuna.trial.FixedTrial({"arm": "gist", "seed": 1}))
    # quality 0.5 + 0.1 (gist) + 0.01 (seed 1) + lr 2e-5; objective = mean of (q, q - 0.1)
    assert value == pytest.approx(0.61002 - 0.05)
    assert pipeline.fits[0]["strategy"] == "gist" and pipeline.fits[0]["seed"] == 1
    assert pipeline.fits[0]["guide"] == "all-mpnet-base"  # filled from the pair


def test_objective_search_space_samples_every_field():
    exp = experiment(
        ablation={"seeds": [7]},
        search_space={
            "lr": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True},
            "batch_size": {"type": "int", "low": 4, "high": 16, "step": 4},
            "strategy": {"type": "categorical", "choices": ["none", "gist"]},
            "strategy_params.k": {"type": "int", "low": 1, "high": 3},
        },
        study={"name": "search", "n_trials": 2},
    )
    pipeline = FakePipeline()
    objective = make_objective(exp, fit=pipeline.fit, score=pipeline.score)
    params = {"lr": 1e-4, "batch_size": 8, "strategy": "none", "strategy_params.k": 2}
    objective(optuna.trial.FixedTrial(params))
    fitted = pipeline.fits[0]
    assert (fitted["lr"], fitted["batch_size"], fitted["strategy"], fitted["seed"]) == (1e-4, 8, "none", 7)
    assert fitted["strategy_params"] == {"k": 2}


def test_objective_prunes_through_report():
    class PruneAtOnce(optuna.trial.FixedTrial):
        def should_prune(self) -> bool:
            return True

    pipeline = FakePipeline()
    objective = make_objective(experiment(), fit=pipeline.fit, score=pipeline.score)
    with pytest.raises(optuna.TrialPruned, match="step 1"):
        objective(PruneAtOnce({"arm": "gist", "seed": 0}))


def test_samplers_and_pruners_are_optunas_own():
    study = {"name": "s", "sampler": "random", "pruner": "hyperband", "pruner_params": {"min_resource": 2}}
    search = experiment(
        study=study,
        ablation={"seeds": [0]},
        search_space={"lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True}},
    )
    assert isinstance(make_sampler(search), optuna.samplers.RandomSampler)
    assert isinstance(make_pruner(search), optuna.pruners.HyperbandPruner)
    assert isinstance(make_pruner(experiment(study=study)), optuna.pruners.NopPruner)  # an ablation: never


@pytest.mark.parametrize("kind", ["sqlite", "journal", "memory"])
def test_whole_ablation_study(tmp_path: Path, kind: str):
    url = {"sqlite": None, "journal": f"journal:{tmp_path / 'study.journal'}", "memory": "memory"}[kind]
    pipeline = FakePipeline()
    lines: list[str] = []
    study = run_study(
        experiment(), pipeline, runs_dir=tmp_path / "runs", storage=url, progress=False, log=lines.append
    )

    # 2 trained arms x 2 seeds, each run once; the untrained student scored once, not as a trial.
    done = [(t.params["arm"], t.params["seed"]) for t in study.trials if t.state.name == "COMPLETE"]
    assert sorted(done) == [("gist", 0), ("gist", 1), ("infonce", 0), ("infonce", 1)]
    assert len(study.trials) == 4 and len(lines) == 4
    assert lines[0].startswith("trial 0 infonce seed=0: COMPLETE objective=")

    results = load_study_dir(tmp_path / "runs" / "fake")
    assert results.manifest.baseline_arm == "infonce" and len(results.manifest.history) == 4
    assert results.untrained is not None and results.untrained.suite == "offline-sts"
    for trial in results.trials:
        assert trial.trial.state == "COMPLETE" and trial.scores is not None and trial.run is not None
        assert trial.trial.in_domain_tasks == ["local:Banking77Classification"]
        assert trial.trial.config["strategy"] == trial.trial.strategy
    assert results.manifest.history[0].intermediate_values == {
        1: pytest.approx(0.5 / 3 + 2e-5 / 3),
        2: pytest.approx((0.5 + 2e-5) * 2 / 3),
        3: pytest.approx(0.5 + 2e-5),
    }
    if kind == "sqlite":
        assert (tmp_path / "runs" / "fake" / "optuna.db").exists()


def test_rerun_continues_without_repeating(tmp_path: Path):
    from harness.results import StudyManifest

    runs = tmp_path / "runs"
    first = StudyManifest(study="fake", command="gist-harness run fake.toml")
    run_study(experiment(), FakePipeline(), runs_dir=runs, progress=False, log=lambda _: None, manifest=first)
    created = load_study_dir(runs / "fake").manifest.created
    again = FakePipeline()
    later = StudyManifest(study="fake", command="gist-harness worker fake.toml")
    study = run_study(experiment(), again, runs_dir=runs, progress=False, log=lambda _: None, manifest=later)
    assert again.fits == [] and len(study.trials) == 4
    manifest = load_study_dir(runs / "fake").manifest
    assert (manifest.created, manifest.command) == (created, "gist-harness run fake.toml")


def test_failed_arm_is_requeued_on_rerun(tmp_path: Path):
    class FailGist(FakePipeline):
        def fit(self, config, report):
            if config.strategy == "gist":
                raise RuntimeError("boom\nsecond line")
            return super().fit(config, report)

    runs = tmp_path / "runs"
    study = run_study(experiment(), FailGist(), runs_dir=runs, progress=False, log=lambda _: None)
    assert sorted(t.state.name for t in study.trials) == ["COMPLETE", "COMPLETE", "FAIL", "FAIL"]
    failed = [t for t in load_study_dir(runs / "fake").trials if t.trial.state == "FAIL"]
    assert failed[0].trial.error == "RuntimeError: boom"

    study = run_study(experiment(), FakePipeline(), runs_dir=runs, progress=False, log=lambda _: None)
    states = [t.state.name for t in study.trials]
    assert states.count("COMPLETE") == 4 and states.count("FAIL") == 2


def test_search_study_stops_at_n_trials(tmp_path: Path):
    exp = experiment(
        study={"name": "search", "n_trials": 3, "sampler": "random", "seed": 1, "pruner": "none"},
        ablation={"seeds": [0]},
        search_space={"lr": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True}},
    )
    study = run_study(exp, FakePipeline(), runs_dir=tmp_path, progress=False, log=lambda _: None)
    assert len(study.trials) == 3 and all(t.user_attrs["arm"] is None for t in study.trials)
    assert len(load_study_dir(tmp_path / "search").trials) == 3


def test_enqueue_skips_queued_and_finished(tmp_path: Path):
    study = optuna.create_study(storage=make_storage("memory", tmp_path))
    exp = experiment()
    assert enqueue_arms(study, exp) == 4
    assert enqueue_arms(study, exp) == 0


def test_summary_line_names_arm_and_values():
    trial = optuna.trial.create_trial(
        params={"arm": "gist", "seed": 1},
        distributions={
            "arm": optuna.distributions.CategoricalDistribution(["gist"]),
            "seed": optuna.distributions.CategoricalDistribution([1]),
        },
        value=0.81234,
        user_attrs={"arm": "gist", "seed": 1, "final_mean": 0.8, "steps": 12, "train_seconds": 3.2},
    )
    assert (
        summary_line(trial)
        == f"trial {trial.number} gist seed=1: COMPLETE objective=0.8123 final=0.8000 (12 steps, train 3s)"
    )


def test_storage_url_errors_are_user_errors(tmp_path: Path):
    from harness.errors import UserError

    with pytest.raises(UserError, match="expected an SQLAlchemy URL"):
        make_storage("not a url", tmp_path)
    with pytest.raises(UserError, match=r"postgresql\+psycopg://u:\*\*\*@"):
        make_storage("postgresql+psycopg://u:secret@127.0.0.1:1/x", tmp_path)


def test_worker_command_needs_an_existing_study(tmp_path, capsys):
    from harness.cli import main

    path = Path(__file__).resolve().parents[1] / "experiments" / "quickstart.toml"
    storage = f"sqlite:///{tmp_path / 'empty.db'}"
    code = main(["worker", str(path), "--storage", storage, "--wait", "0", "--runs-dir", str(tmp_path)])
    assert code == 2
    assert "study 'quickstart' does not exist in this storage" in capsys.readouterr().err


def test_run_command_rejects_an_invalid_experiment(tmp_path, capsys):
    from harness.cli import main

    bad = tmp_path / "bad.toml"
    bad.write_text('[study]\nname = "x"\n', encoding="utf-8")
    assert main(["run", str(bad), "--runs-dir", str(tmp_path)]) == 2
    assert "model: Field required" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_final_length_limit_scores_the_final_suite_again():
    """``[final] max_seq_len`` re-scores even when the final suite equals the objective's."""
    calls = []
    pipeline = FakePipeline()

    def score(model, suite):
        calls.append((suite.suite, getattr(suite, "max_seq_len", None)))
        return scores(0.5, suite)

    same = {"suite": "dev"}
    objective = make_objective(experiment(final=same), fit=pipeline.fit, score=score)
    objective(optuna.trial.FixedTrial({"arm": "gist", "seed": 0}))
    assert calls == [("dev", None)]  # the objective's scores are reused
    calls.clear()
    limited = experiment(final={**same, "max_seq_len": 64})
    objective = make_objective(limited, fit=pipeline.fit, score=score)
    objective(optuna.trial.FixedTrial({"arm": "gist", "seed": 0}))
    assert calls == [("dev", None), ("dev", 64)]


def test_the_pipeline_truncates_before_scoring_a_limited_final_suite(monkeypatch, tmp_path):
    import harness.evaluate
    import harness.models
    from harness.study.pipeline import RealPipeline

    seen = []
    monkeypatch.setattr(harness.models, "truncate", lambda model, n: seen.append(("limit", n)))
    monkeypatch.setattr(
        harness.evaluate, "evaluate", lambda model, suite, **_: seen.append(("score", suite.name))
    )
    exp = experiment(final={"suite": "offline-sts", "max_seq_len": 128})
    pipeline = RealPipeline(exp, data_dir=tmp_path, progress=False)  # loads nothing until fit()
    pipeline.score("model", exp.final)
    pipeline.score("model", exp.objective)
    assert seen == [("limit", 128), ("score", "offline-sts"), ("score", "dev")]
