"""Per-arm tuning (``[tuning]``): the configs it builds, its checks, a whole tuned study with fakes, the report."""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime, timezone
from pathlib import Path

import optuna
import pytest
import torch
from test_study import ARMS, scores

from harness.config import Experiment, validate_experiment
from harness.config.load import ConfigError
from harness.config.tuning import tuned_arms, tuning_experiment, with_tuned
from harness.masking import STRATEGIES
from harness.masking.controls import gist_counts
from harness.masking.strategy import Candidates, eligible
from harness.report import build_report, load_study_dir, render_files
from harness.report.inputs import load_report_dir
from harness.report.stats import expected_max
from harness.results import RunRecord
from harness.study import run_study
from harness.study.tuning import read_tuning, restore_tuning, run_tuning

LR = {"type": "float", "low": 1e-4, "high": 1e-1, "log": True}


def document(**sections) -> dict:
    data = {
        "study": {"name": "tuned", "pruner": "none", "heartbeat_interval_s": 1, "grace_period_s": 3},
        "model": {"pair": "all-minilm-l6__all-mpnet-base"},
        "data": {"mixture": "mini-medi"},
        "train": {"batch_size": 4, "max_steps": 4, "eval_every_steps": 1},
        "objective": {"suite": "dev"},
        "final": {"suite": "offline-sts"},
        "ablation": {
            "seeds": [0, 1],
            "baseline": "infonce",
            "arms": [
                *ARMS,
                {
                    "name": "random",
                    "strategy": "random",
                    "strategy_params": {"match": "gist"},
                    "follows": "gist",
                },
            ],
        },
        "tuning": {"trials": 6, "max_steps": 2, "space": {"lr": LR}},
    }
    data.update(sections)
    return data


def experiment(**sections) -> Experiment:
    return validate_experiment(document(**sections))


class PeakedPipeline:
    """Trains nothing: quality peaks at lr = 1e-2 (gist a little higher); it records the suites scored."""

    def __init__(self) -> None:
        self.in_domain_tasks: list[str] = []
        self.fits: list[dict] = []
        self.suites: list[str] = []

    def prepare(self) -> None:
        pass

    def fit(self, config, report):
        self.fits.append(config.model_dump())
        quality = 0.6 + 0.05 * (config.strategy == "gist") - 0.02 * (math.log10(config.lr) + 2) ** 2
        for step in range(1, (config.max_steps or 1) + 1):
            report(quality * step / (config.max_steps or 1), step)
        return quality, RunRecord(steps=config.max_steps, train_seconds=0.01)

    def score(self, model, suite):
        self.suites.append(suite.suite)
        return scores(0.3 if model == "student" else model, suite)

    def load_student(self):
        return "student"


def tune_and_confirm(exp: Experiment, runs: Path, pipelines: list[PeakedPipeline]):
    def make(sub):
        pipelines.append(PeakedPipeline())
        return pipelines[-1]

    record = run_tuning(exp, make, runs_dir=runs, progress=False)
    confirmed = with_tuned(exp, record.chosen)
    pipelines.append(PeakedPipeline())
    run_study(confirmed, pipelines[-1], runs_dir=runs, progress=False)
    return record, confirmed


def test_tuning_experiment_searches_one_arm_at_the_tuning_seed_without_a_final_suite():
    exp = experiment()
    assert tuned_arms(exp) == ["infonce", "gist"]  # the follower and the untrained arm are not tuned
    sub = tuning_experiment(exp, "gist")
    assert sub.study.name == "tuned.tune.gist" and sub.study.n_trials == 6 and sub.study.sampler == "random"
    assert sub.final is None and sub.objective.suite == "dev" and not sub.ablation.arms
    assert list(sub.search_space) == ["lr"] and sub.ablation.seeds == [1000]
    assert (sub.train.strategy, sub.train.max_steps, sub.train.seed) == ("gist", 2, 1000)


def test_a_follower_takes_its_leaders_tuned_setting_and_margin_but_keeps_its_strategy():
    exp = experiment(
        tuning={
            "trials": 2,
            "space": {"lr": LR},
            "arm_space": {"gist": {"margin": {"type": "float", "low": 0, "high": 0.2}}},
        }
    )
    tuned = with_tuned(exp, {"gist": {"lr": 0.003, "margin": 0.1}, "infonce": {"lr": 0.02}})
    follower = tuned.trial_config(tuned.arm_overrides("random"))
    assert follower.strategy == "random" and follower.lr == 0.003
    assert dict(follower.strategy_params) == {"match": "gist", "margin": 0.1, "margin_strategy": "absolute"}
    assert tuned.trial_config(tuned.arm_overrides("infonce")).lr == 0.02
    untuned = exp.trial_config(exp.arm_overrides("random"))
    assert untuned.lr == exp.train.lr and dict(untuned.strategy_params)["margin"] == 0.0  # gist's default


def test_gist_in_one_block_follows_gists_tuned_margin_and_keeps_its_block():
    """The mechanism study's one-block arms: the leader's own strategy with other parameters."""
    doc = document(
        tuning={
            "trials": 2,
            "space": {"lr": LR},
            "arm_space": {"gist": {"margin": {"type": "float", "low": 0, "high": 0.2}}},
        }
    )
    doc["ablation"]["arms"].append(
        {"name": "gist_aa", "strategy": "gist", "strategy_params": {"blocks": "aa"}, "follows": "gist"}
    )
    tuned = with_tuned(
        validate_experiment(doc), {"gist": {"lr": 0.003, "margin": 0.1}, "infonce": {"lr": 0.02}}
    )
    follower = tuned.trial_config(tuned.arm_overrides("gist_aa"))
    assert (follower.strategy, follower.lr) == ("gist", 0.003)
    assert dict(follower.strategy_params) == {"margin": 0.1, "margin_strategy": "absolute", "blocks": "aa"}


def test_random_matched_to_gist_drops_at_the_margin_it_is_given():
    torch.manual_seed(0)
    b, n = 16, 48
    guide = torch.rand(b, n)
    candidates = Candidates(
        student=torch.rand(b, n),
        student_pos=torch.rand(b, 1),
        guide=guide,
        guide_pos=guide[:, :1],
        positive=torch.zeros(b, n, dtype=torch.bool),
        generator=torch.Generator().manual_seed(1),
    )
    candidates.positive[:, 0] = True
    rates = []
    for margin in (0.0, 0.3):
        gist = int(gist_counts(candidates, margin=margin).sum()) / int(eligible(candidates).sum())
        fresh = dataclasses.replace(candidates, generator=torch.Generator().manual_seed(1))
        mask = STRATEGIES.get("random").fn(fresh, rate=0.1, match="gist", margin=margin, margin_strategy=None)
        rates.append((gist, int(mask.sum()) / int(eligible(candidates).sum())))
    assert rates[1][0] > rates[0][0] + 0.1  # the margin changes GIST's rate, and the control follows it
    for gist, random in rates:
        assert random == pytest.approx(gist, abs=0.05)


@pytest.mark.parametrize(
    ("change", "where", "says"),
    [
        ({"tuning": {"trials": 0, "space": {"lr": LR}}}, "tuning.trials", "greater than or equal to 1"),
        (
            {"tuning": {"trials": 3, "space": {"strategy_params.margin": LR}}},
            "tuning.space.strategy_params.margin",
            "arm 'infonce': strategy 'none' has no parameter 'margin'",
        ),
        (
            {"tuning": {"trials": 3, "suite": "offline-sts", "space": {"lr": LR}}},
            "tuning.suite",
            "overlaps the final suite 'offline-sts'",
        ),
        (
            {"tuning": {"trials": 3, "suite": "offline-all", "tasks": ["local:STS12"], "space": {"lr": LR}}},
            "tuning.suite",
            "local:STS12",
        ),
        (
            {"tuning": {"trials": 3, "seed": 1, "space": {"lr": LR}}},
            "tuning.seed",
            "also a confirmation seed",
        ),
        ({"tuning": {"trials": 3}}, "tuning.space", "has nothing to tune"),
        (
            {"tuning": {"trials": 3, "suite": "mteb-eng-sts", "space": {"lr": LR}}},
            "tuning.suite",
            "overlaps the final suite",
        ),
        (
            {
                "tuning": {
                    "trials": 3,
                    "space": {"lr": LR, "strategy": {"type": "categorical", "choices": ["none", "gist"]}},
                }
            },
            "tuning.space.strategy",
            "defines an arm",
        ),
        (
            {"tuning": {"trials": 3, "arms": [], "space": {"lr": LR}}},
            "tuning.arms",
            "list each tuned arm once",
        ),
        (
            {"tuning": {"trials": 3, "arms": ["gist", "gist"], "space": {"lr": LR}}},
            "tuning.arms",
            "list each tuned arm once",
        ),
        (
            {"tuning": {"trials": 3, "arms": ["random"], "space": {"lr": LR}}},
            "tuning.arms.0",
            "not a trained arm that follows none",
        ),
        (
            {
                "tuning": {
                    "trials": 3,
                    "max_steps": 2,
                    "eval_every_steps": 2,
                    "pruner": "median",
                    "space": {"lr": LR},
                }
            },
            "tuning.pruner",
            "sees no score before the last step (eval_every_steps 2 >= max_steps 2)",
        ),
        (
            {
                "train": {"batch_size": 4, "epochs": 1},
                "tuning": {"trials": 3, "pruner": "percentile", "space": {"lr": LR}},
            },
            "tuning.pruner",
            "the 'percentile' pruner sees no score before a 1-epoch trial ends",
        ),
        (
            {
                "tuning": {
                    "trials": 3,
                    "max_steps": 40,
                    "eval_every_steps": 20,
                    "pruner_params": {"n_warmup_steps": 25},
                    "space": {"lr": LR},
                }
            },
            "tuning.pruner",
            "n_warmup_steps 25 is past the last score before the end (step 20 of 40)",
        ),
    ],
)
def test_bad_tuning_sections_get_one_line_errors(change, where, says):
    with pytest.raises(ConfigError) as caught:
        validate_experiment(document(**change), source="tuned.toml")
    lines = [line for line in str(caught.value).splitlines() if where in line]
    assert lines and says in lines[0], str(caught.value)


def test_a_tuning_pruner_that_sees_scores_before_the_end_is_accepted():
    for tuning in (
        {"max_steps": 40, "eval_every_steps": 20, "pruner_params": {"n_warmup_steps": 20}},
        {"max_steps": 2, "pruner": "none"},
    ):
        validate_experiment(document(tuning={"trials": 3, "space": {"lr": LR}, **tuning}))
    three_epochs = {"batch_size": 4, "epochs": 3}
    validate_experiment(document(train=three_epochs, tuning={"trials": 3, "space": {"lr": LR}}))


def test_the_default_pruner_is_left_out_where_it_could_only_act_at_the_last_step():
    """Unnamed, the median pruner would mark below-median trials pruned at their last step (their scores
    lost to the search); there the searches run without one, and the tuning record says so."""
    from harness.config.tuning import tuning_experiment
    from harness.study.runner import make_pruner
    from harness.study.tuning import tuning_record

    one_epoch = document(train={"batch_size": 4, "epochs": 1}, tuning={"trials": 3, "space": {"lr": LR}})
    exp = validate_experiment(one_epoch)
    assert tuning_experiment(exp, "gist").study.pruner == "none"
    assert isinstance(make_pruner(tuning_experiment(exp, "gist")), optuna.pruners.NopPruner)
    assert tuning_record(exp, []).pruner == "none"
    scored_early = validate_experiment(document())  # eval_every_steps 1 of max_steps 2
    assert tuning_experiment(scored_early, "gist").study.pruner == "median"
    assert isinstance(make_pruner(tuning_experiment(scored_early, "gist")), optuna.pruners.MedianPruner)
    search = {"study": {"name": "s", "n_trials": 2}, "ablation": {"seeds": [0]}, "search_space": {"lr": LR}}
    blind = validate_experiment({**one_epoch, **search, "tuning": None})
    assert isinstance(make_pruner(blind), optuna.pruners.NopPruner)


def test_an_ablation_is_never_pruned(tmp_path):
    """Left unset, [study] pruner would be Optuna's median pruner; in an ablation it is none, so the weaker
    arms' seeds run to the end (here the median pruner would stop infonce from its second seed on)."""
    data = document(ablation={"seeds": [0, 1, 2, 3], "baseline": "infonce", "arms": ARMS[::-1]})
    del data["tuning"], data["study"]["pruner"]
    data["train"] = {"batch_size": 4, "max_steps": 4, "eval_every_steps": 1, "lr": 1e-3}
    exp = validate_experiment(data)
    run_study(exp, PeakedPipeline(), runs_dir=tmp_path / "runs", progress=False)
    trials = load_study_dir(tmp_path / "runs" / "tuned").trials
    assert sorted((t.trial.arm, t.trial.seed, t.trial.state) for t in trials) == sorted(
        (arm, seed, "COMPLETE") for arm in ("infonce", "gist") for seed in range(4)
    )

    data["study"]["pruner"] = "median"
    with pytest.raises(ConfigError, match=r"study\.pruner.*runs every arm x seed to the end"):
        validate_experiment(data, source="tuned.toml")


def test_the_dev_suite_is_accepted_against_every_local_final_suite():
    for final in ("offline-all", "offline-lite", "offline-sts", "offline-mteb"):
        validate_experiment(document(final={"suite": final}))


def test_a_control_in_a_tuned_study_must_follow_the_arm_it_matches():
    arms = [*ARMS, {"name": "random", "strategy": "random", "strategy_params": {"match": "gist"}}]
    with pytest.raises(ConfigError, match="control 'random' copies 'gist'.s drops"):
        validate_experiment(document(ablation={"seeds": [0], "baseline": "infonce", "arms": arms}))
    arms = [*ARMS, {"name": "topk", "strategy": "student_topk_at_rate"}]
    with pytest.raises(ConfigError, match="follows a tuned 'gist' arm .valid: gist."):
        validate_experiment(document(ablation={"seeds": [0], "baseline": "infonce", "arms": arms}))


def test_follows_must_name_a_trained_leader():
    arms = [*ARMS, {"name": "random", "strategy": "random", "follows": "nope"}]
    with pytest.raises(ConfigError, match="no trained arm named 'nope'"):
        validate_experiment(document(ablation={"seeds": [0], "baseline": "infonce", "arms": arms}))


def test_a_bad_tuning_section_writes_nothing(tmp_path, monkeypatch):
    import tomli_w

    from harness.cli import main

    path = tmp_path / "tuned.toml"
    path.write_bytes(tomli_w.dumps(document(tuning={"trials": 0, "space": {"lr": LR}})).encode())
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(path), "--runs-dir", str(tmp_path / "runs")]) != 0
    assert not (tmp_path / "runs").exists()


def test_a_tuned_study_chooses_on_the_tuning_suite_and_confirms_on_fresh_seeds(tmp_path):
    exp = experiment()
    pipelines: list[PeakedPipeline] = []
    record, confirmed = tune_and_confirm(exp, tmp_path / "runs", pipelines)

    assert [a.arm for a in record.arms] == ["infonce", "gist"]
    for arm in record.arms:
        assert len(arm.trials) == 6  # the same budget for each arm (pruned trials count)
        best = max((t for t in arm.trials if t.state == "COMPLETE"), key=lambda t: t.value)
        assert arm.chosen == best.params and arm.chosen_trial == best.number
    tuning_fits = [f for p in pipelines[:-1] for f in p.fits]
    assert {f["seed"] for f in tuning_fits} == {1000} and {f["max_steps"] for f in tuning_fits} == {2}
    assert {s for p in pipelines[:-1] for s in p.suites} == {"dev"}  # never the final suite

    final = load_study_dir(tmp_path / "runs" / "tuned")
    lr = {t.trial.arm: t.trial.config["lr"] for t in final.trials}
    assert lr["gist"] == record.chosen["gist"]["lr"] and lr["random"] == lr["gist"]
    assert lr["infonce"] == record.chosen["infonce"]["lr"]
    assert {t.trial.seed for t in final.trials} == {0, 1}
    assert final.tuning is not None and final.tuning.chosen == record.chosen
    assert len(final.declarations) == 1  # declared once, before the first tuning trial

    report = build_report(final)
    assert report.tuning is not None
    text = render_files(report)["README.md"].decode()
    for piece in (
        "## Tuning",
        "expected best score by budget",
        "Chosen setting",
        "Tuning: cost",
        "confirmation, tuned arms only",
    ):
        assert piece in text
    assert any(f.name == "tuning_expected_max" for f in report.figures)


def test_rerunning_a_tuned_study_trains_nothing_again(tmp_path):
    exp = experiment()
    first, _ = tune_and_confirm(exp, tmp_path / "runs", [])
    again: list[PeakedPipeline] = []
    second, _ = tune_and_confirm(exp, tmp_path / "runs", again)
    assert second.chosen == first.chosen and not [f for p in again for f in p.fits]


def test_from_report_restores_the_tuning_trials_and_chooses_the_same(tmp_path):
    exp = experiment()
    record, _ = tune_and_confirm(exp, tmp_path / "runs", [])
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    for name, data in render_files(build_report(load_study_dir(tmp_path / "runs" / "tuned"))).items():
        (report_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (report_dir / name).write_bytes(data)
    stored = read_tuning(report_dir)
    assert stored == load_report_dir(report_dir).results.tuning == record

    fresh = tmp_path / "fresh"
    assert restore_tuning(exp, stored, fresh, None) == sum(len(a.trials) for a in record.arms)
    pipelines: list[PeakedPipeline] = []
    again = run_tuning(
        exp, lambda sub: pipelines.append(PeakedPipeline()) or pipelines[-1], runs_dir=fresh, progress=False
    )
    assert again.chosen == record.chosen and not [f for p in pipelines for f in p.fits]
    assert [t.number for t in again.arms[0].trials] == [t.number for t in record.arms[0].trials]


def test_expected_max_follows_dodge_et_al():
    curve = expected_max([1.0, 2.0, 3.0])
    assert [p.n for p in curve] == [1, 2, 3]
    assert curve[0].mean == pytest.approx(2.0)  # one draw: the mean
    assert curve[1].mean == pytest.approx(22 / 9) and curve[1].sd == pytest.approx(
        math.sqrt(58 / 9 - (22 / 9) ** 2)
    )
    assert curve[0].mean < curve[1].mean < curve[2].mean < 3.0
    assert expected_max([1.0, 2.0, 3.0], maximize=False)[1].mean == pytest.approx(4 - 22 / 9)


def test_a_tuned_study_stopped_in_its_confirmation_continues_from_an_interim_record(tmp_path):
    from harness.cli.interim_cmd import replace_folder
    from harness.report.interim import interim_files
    from harness.results import StudyManifest
    from harness.study.restore import restore_study

    exp = experiment()
    runs = tmp_path / "runs"
    record = run_tuning(exp, lambda sub: PeakedPipeline(), runs_dir=runs, progress=False)
    confirmed = with_tuned(exp, record.chosen)

    class Stops(PeakedPipeline):
        def fit(self, config, report):
            if len(self.fits) == 2:
                raise KeyboardInterrupt
            return super().fit(config, report)

    manifest = StudyManifest(study="tuned", experiment_toml="[study]\n")
    with pytest.raises(KeyboardInterrupt):
        run_study(confirmed, Stops(), runs_dir=runs, progress=False, manifest=manifest)
    interim = tmp_path / "interim"
    replace_folder(interim, interim_files(load_study_dir(runs / "tuned"), datetime.now(timezone.utc)))

    fresh = tmp_path / "fresh"  # a new machine: no runs folder
    restore_tuning(exp, read_tuning(interim), fresh, None)
    pipelines: list[PeakedPipeline] = []
    again = run_tuning(
        exp, lambda sub: pipelines.append(PeakedPipeline()) or pipelines[-1], runs_dir=fresh, progress=False
    )
    assert again.chosen == record.chosen and not [f for p in pipelines for f in p.fits]
    confirmed_again = with_tuned(exp, again.chosen)
    assert restore_study(confirmed_again, interim, fresh / "tuned", None) >= 2
    last = PeakedPipeline()
    run_study(confirmed_again, last, runs_dir=fresh, progress=False, manifest=manifest)
    assert len(last.fits) == 6 - 2  # 3 arms x 2 seeds, 2 done before the stop
    done = load_study_dir(fresh / "tuned")
    assert sorted((t.trial.arm, t.trial.seed) for t in done.trials if t.trial.state == "COMPLETE") == sorted(
        (a, s) for a in ("infonce", "gist", "random") for s in (0, 1)
    )
    assert done.tuning is not None and done.tuning.chosen == record.chosen


def _stoppable_cli_study(tmp_path, monkeypatch):
    """``tuned.toml`` for ``main(["run", ...])`` on fake pipelines that raise KeyboardInterrupt (Ctrl-C)
    once ``stop["after"]`` fits have run in all; returns the path, the pipelines made and ``stop``."""
    import tomli_w

    from harness.study import pipeline as pipeline_module

    made: list[PeakedPipeline] = []
    stop: dict[str, int | None] = {"after": None}

    class Fake(PeakedPipeline):
        def __init__(self, experiment, **_):
            super().__init__()
            made.append(self)

        def fit(self, config, report):
            if stop["after"] is not None and sum(len(p.fits) for p in made) >= stop["after"]:
                raise KeyboardInterrupt
            return super().fit(config, report)

    monkeypatch.setattr(pipeline_module, "RealPipeline", Fake)
    monkeypatch.setattr("harness.study.runner.check_models", lambda experiment: None)
    monkeypatch.setattr("harness.study.environment.data_checksums", lambda *a, **k: {})
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "tuned.toml"
    path.write_bytes(tomli_w.dumps(document()).encode())
    return path, made, stop


def test_an_interim_record_written_during_the_tuning_stage_continues_it(tmp_path, monkeypatch):
    """A stint that ends mid-tuning: the record keeps the finished tuning trials (no score shown), and
    the next stint, on a fresh machine, runs only the tuning trials that are left, then the rest."""
    from harness.cli import main

    path, made, stop = _stoppable_cli_study(tmp_path, monkeypatch)
    stop["after"] = 8  # infonce's 6 tuning trials, then 2 of gist's
    assert main(["run", str(path), "--runs-dir", "runs", "--no-progress", "--no-report"]) != 0  # stopped
    assert main(["interim", "runs/tuned", "--out", "interim"]) == 0
    readme = (tmp_path / "interim" / "tuned" / "README.md").read_text()
    assert "`infonce` 6 of 6" in readme and "`gist` 2 of 6" in readme and "0.6" not in readme

    made.clear()
    stop["after"] = None
    assert (
        main(
            [
                "run",
                str(path),
                "--runs-dir",
                "fresh",
                "--no-progress",
                "--no-report",
                "--from-report",
                "interim/tuned",
            ]
        )
        == 0
    )
    tuning_fits = [f for p in made for f in p.fits if f["seed"] == 1000]
    assert len(tuning_fits) == 4  # gist's last 4 tuning trials only
    done = load_study_dir(tmp_path / "fresh" / "tuned")
    states = [(t.trial.arm, t.trial.seed, t.trial.state, t.trial.error) for t in done.trials]
    assert len([s for s in states if s[2] == "COMPLETE"]) == 6, states
    assert done.tuning is not None and [len(a.trials) for a in done.tuning.arms] == [6, 6]
    assert len(done.declarations) == 1


def test_run_keeps_an_interim_record_after_every_trial(tmp_path, monkeypatch):
    """``run --interim DIR``: a stint cut off mid-tuning (Ctrl-C here) has already left the record of
    every finished trial, with nothing to run by hand; the next stint continues from it."""
    from harness.cli import main
    from harness.report.inputs import load_report_dir
    from harness.report.interim import is_interim_dir

    path, made, stop = _stoppable_cli_study(tmp_path, monkeypatch)
    run = ["run", str(path), "--no-progress", "--no-report", "--interim", "kept"]
    stop["after"] = 8  # infonce's 6 tuning trials, then 2 of gist's
    assert main([*run, "--runs-dir", "runs"]) != 0
    readme = (tmp_path / "kept" / "tuned" / "README.md").read_text()
    assert "`infonce` 6 of 6" in readme and "`gist` 2 of 6" in readme and "0.6" not in readme

    made.clear()
    stop["after"] = 4 + 3  # gist's last 4 tuning trials, then 3 confirmation trials
    assert main([*run, "--runs-dir", "fresh", "--from-report", "kept/tuned"]) != 0
    assert is_interim_dir(tmp_path / "kept" / "tuned")  # rewritten after each confirmation trial too
    record = load_report_dir(tmp_path / "kept" / "tuned").results
    assert [t.trial.state for t in record.trials if t.trial.state == "COMPLETE"] == ["COMPLETE"] * 3


def test_drops_trains_a_tuned_arm_at_its_chosen_setting(tmp_path):
    from harness.cli.drops_cmd import tuned
    from harness.errors import UserError

    exp = experiment()
    with pytest.raises(UserError, match="no chosen setting for every tuned arm"):
        tuned(exp, tmp_path / "runs")
    record = run_tuning(exp, lambda sub: PeakedPipeline(), runs_dir=tmp_path / "runs", progress=False)
    at = tuned(exp, tmp_path / "runs")
    assert at.trial_config(at.arm_overrides("gist")).lr == record.chosen["gist"]["lr"]
    assert at.trial_config(at.arm_overrides("random")).lr == record.chosen["gist"]["lr"]


def test_a_resumed_random_search_draws_new_values_and_trial_n_draws_the_same_everywhere(tmp_path):
    import optuna

    from harness.study.runner import make_sampler

    sub = tuning_experiment(experiment(), "gist")
    storage = f"sqlite:///{tmp_path / 'a.db'}"

    def draw(storage: str, n: int) -> list[float]:
        study = optuna.create_study(
            study_name="s", storage=storage, sampler=make_sampler(sub), load_if_exists=True
        )
        study.optimize(lambda t: t.suggest_float("lr", 1e-4, 1e-1, log=True), n_trials=n)
        return [t.params["lr"] for t in study.trials]

    first = draw(storage, 3)
    resumed = draw(storage, 3)  # a new sampler, as a new process has
    assert len(set(resumed)) == 6 and resumed[:3] == first
    assert draw(f"sqlite:///{tmp_path / 'b.db'}", 6) == resumed  # trial n draws the same in any study


def test_validate_names_the_tuned_arms_and_budget(capsys):
    from harness.cli import main

    assert main(["validate", str(Path(__file__).parents[1] / "experiments" / "tuned-static.toml")]) == 0
    assert "; tuned: infonce, gist, 12 trials each on dev)" in capsys.readouterr().out


def test_an_arm_that_sets_a_searched_field_itself_is_refused():
    arms = [*ARMS[:1], {"name": "gist", "strategy": "gist", "lr": 0.01}, ARMS[2]]
    with pytest.raises(ConfigError, match="arm 'gist' sets lr itself"):
        validate_experiment(document(ablation={"seeds": [0], "baseline": "infonce", "arms": arms}))


def test_a_control_follows_a_tuned_arm_of_the_strategy_it_copies():
    arms = [
        *ARMS,
        {"name": "random", "strategy": "random", "strategy_params": {"match": "gist"}, "follows": "infonce"},
    ]
    with pytest.raises(ConfigError, match="control 'random' copies 'gist'.s drops.*valid: gist"):
        validate_experiment(document(ablation={"seeds": [0], "baseline": "infonce", "arms": arms}))
    tuning = {"trials": 3, "arms": ["infonce"], "space": {"lr": LR}}
    with pytest.raises(ConfigError, match="none: tune an arm with strategy 'gist'"):
        validate_experiment(document(tuning=tuning))


def test_a_follower_with_its_own_margin_rule_keeps_its_own_margin():
    arms = [*ARMS, {"name": "self", "strategy": "self_filter", "follows": "gist"}]
    exp = experiment(ablation={"seeds": [0], "baseline": "infonce", "arms": arms})
    tuned = with_tuned(exp, {"gist": {"lr": 0.003}, "infonce": {"lr": 0.02}})
    config = tuned.trial_config(tuned.arm_overrides("self"))
    assert config.lr == 0.003 and "margin" not in dict(config.strategy_params)


class AlwaysFails(PeakedPipeline):
    def fit(self, config, report):
        self.fits.append(config.model_dump())
        raise RuntimeError("out of memory")


def test_an_arm_whose_tuning_trials_all_fail_stops_with_a_one_line_error(tmp_path):
    from harness.errors import UserError

    pipelines: list[PeakedPipeline] = []
    with pytest.raises(UserError, match="arm 'infonce': 6 tuning trials failed.*out of memory"):
        run_tuning(
            experiment(),
            lambda sub: pipelines.append(AlwaysFails()) or pipelines[-1],
            runs_dir=tmp_path,
            progress=False,
        )
    assert sum(len(p.fits) for p in pipelines) == 6


def test_a_tuning_change_after_the_confirmation_is_refused(tmp_path):
    from harness.errors import UserError
    from harness.study.tuning import check_confirmation

    small = experiment(tuning={"trials": 2, "max_steps": 2, "space": {"lr": LR}})
    first, confirmed = tune_and_confirm(small, tmp_path, [])
    check_confirmation(confirmed, tmp_path)  # unchanged: fine
    larger = experiment(tuning={"trials": 6, "max_steps": 2, "space": {"lr": LR}})
    record = run_tuning(larger, lambda sub: PeakedPipeline(), runs_dir=tmp_path, progress=False)
    assert record.chosen["gist"]["lr"] != first.chosen["gist"]["lr"]  # more trials found a better one
    with pytest.raises(UserError, match="trained with lr = .*the tuning chose another setting"):
        check_confirmation(with_tuned(larger, record.chosen), tmp_path)


def test_a_partial_tuning_record_chooses_nothing(tmp_path):
    from harness.cli.drops_cmd import tuned
    from harness.errors import UserError

    exp = experiment()
    record = run_tuning(exp, lambda sub: PeakedPipeline(), runs_dir=tmp_path / "runs", progress=False)
    partial = record.model_copy(
        update={
            "arms": [record.arms[0], record.arms[1].model_copy(update={"trials": record.arms[1].trials[:1]})]
        }
    )
    assert set(partial.chosen) == {"infonce"} and partial.progress() == "infonce 6 of 6, gist 1 of 6"
    from harness.results import TUNING_FILE, write_record

    write_record(tmp_path / "runs" / "tuned" / TUNING_FILE, partial)
    with pytest.raises(UserError, match="tuning trials finished: infonce 6 of 6, gist 1 of 6"):
        tuned(exp, tmp_path / "runs")


def test_a_worker_reads_the_chosen_settings_from_the_run_folder_or_else_the_shared_storage(tmp_path):
    from harness.errors import UserError
    from harness.study.tuning import worker_tuning

    exp, shared = experiment(), f"sqlite:///{tmp_path / 'shared.db'}"
    with pytest.raises(UserError, match="neither .*tuning.json nor the storage holds its tuning searches"):
        worker_tuning(exp, tmp_path / "elsewhere", shared)
    record = run_tuning(
        exp, lambda sub: PeakedPipeline(), runs_dir=tmp_path / "here", storage=shared, progress=False
    )
    assert worker_tuning(exp, tmp_path / "here", None).chosen == record.chosen  # its tuning.json
    remote = worker_tuning(
        exp, tmp_path / "elsewhere", shared
    )  # no tuning.json there: the storage's searches
    assert remote.chosen == record.chosen and remote.progress() == record.progress()
    with pytest.raises(UserError, match="neither"):
        worker_tuning(exp, tmp_path / "elsewhere", None)
    study = {**document()["study"], "storage": shared}  # the storage named in the experiment serves too
    assert worker_tuning(experiment(study=study), tmp_path / "elsewhere", None).chosen == record.chosen


def test_a_worker_is_refused_until_every_arms_search_is_in_the_storage(tmp_path):
    from harness.errors import UserError
    from harness.study.tuning import worker_tuning

    shared = f"sqlite:///{tmp_path / 'shared.db'}"
    exp = experiment()
    run_tuning(exp, lambda sub: PeakedPipeline(), runs_dir=tmp_path / "here", storage=shared, progress=False)
    larger = experiment(tuning={"trials": 7, "max_steps": 2, "space": {"lr": LR}})
    with pytest.raises(UserError, match=r"the tuning is not finished \(infonce 6 of 7, gist 6 of 7\)"):
        worker_tuning(larger, tmp_path / "elsewhere", shared)
    optuna.delete_study(study_name="tuned.tune.gist", storage=shared)  # gist's search not started yet
    with pytest.raises(UserError, match=r"the tuning is not finished \(infonce 6 of 6, gist 0 of 6\)"):
        worker_tuning(exp, tmp_path / "elsewhere", shared)


def test_a_restore_keeps_failed_trials_numbers_and_every_intermediate_score(tmp_path):
    exp = experiment()
    record = run_tuning(exp, lambda sub: PeakedPipeline(), runs_dir=tmp_path / "a", progress=False)
    arm = record.arms[0]
    failed = arm.trials[2].model_copy(update={"state": "FAIL", "value": None, "error": "killed"})
    cut = record.model_copy(
        update={
            "arms": [arm.model_copy(update={"trials": [*arm.trials[:2], failed, arm.trials[3]]})],
        }
    )
    restore_tuning(exp, cut, tmp_path / "b", None)
    again = run_tuning(exp, lambda sub: PeakedPipeline(), runs_dir=tmp_path / "b", progress=False)
    trials = again.arms[0].trials
    assert [t.number for t in trials] == list(range(len(trials)))  # no number twice
    assert trials[2].state == "FAIL" and trials[2].error == "killed"
    lrs = [t.params["lr"] for t in trials if t.state != "FAIL"]
    assert len(set(lrs)) == len(lrs)  # no setting drawn twice after the restore
    assert trials[0].intermediate == arm.trials[0].intermediate and len(trials[0].intermediate) == 2


def test_the_cost_ratio_and_the_complete_only_curves(tmp_path):
    from harness.report.tuning import cost_ratio, curves
    from harness.results import TunedArm, TuningRecord, TuningTrial

    assert cost_ratio([10.0, 20.0], [30.0, 30.0]) == pytest.approx(1.5) and cost_ratio([1.0], []) is None
    trials = [
        TuningTrial(number=0, state="COMPLETE", params={}, value=0.5, last_step=2, last_value=0.5),
        TuningTrial(number=1, state="PRUNED", params={}, last_step=1, last_value=0.3),
        TuningTrial(number=2, state="COMPLETE", params={}, value=0.7, last_step=2, last_value=0.7),
        TuningTrial(number=3, state="FAIL", params={}),
    ]
    record = TuningRecord(suite="dev", budget=3, seed=1000, sampler="random", pruner="median",
                          arms=[TunedArm(arm="a", study="s", space={}, trials=trials)])  # fmt: skip
    assert [p.mean for p in curves(record)["a"]] == pytest.approx(
        [p.mean for p in expected_max([0.5, 0.3, 0.7])]
    )
    assert [p.mean for p in curves(record, complete_only=True)["a"]] == pytest.approx([0.6, 0.65])


def test_dev_is_no_tuning_suite_for_a_multilingual_final_suite():
    with pytest.raises(
        ConfigError, match=r"overlaps the final suite 'offline-multilingual'.*e\.g\. held-out tasks"
    ):
        validate_experiment(document(final={"suite": "offline-multilingual"}))
