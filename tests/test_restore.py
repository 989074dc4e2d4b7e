"""``run --from-report``: a study goes on from its committed report when its run folder is gone."""

from __future__ import annotations

import shutil
from pathlib import Path

import optuna
import pytest
from test_study import ARMS, FakePipeline, experiment

from harness.cli.run_cmd import write_report
from harness.errors import UserError
from harness.report.inputs import input_files, load_report_dir
from harness.results import StudyManifest, load_study_dir
from harness.study import run_study
from harness.study.restore import RESTORED_FROM, config_change, restore_study

CHECKSUMS = {"sts/stsbenchmark.tsv": "a" * 64}


def _run(runs: Path, exp, pipeline=None) -> optuna.Study:
    manifest = StudyManifest(study=exp.study.name, data_checksums=CHECKSUMS)
    return run_study(
        exp, pipeline or FakePipeline(), runs_dir=runs, progress=False, log=lambda _: None, manifest=manifest
    )


@pytest.fixture
def report(tmp_path: Path) -> Path:
    """The report of a finished 2-arm, 1-seed fake study whose run folder is then deleted."""
    runs = tmp_path / "old-runs"
    _run(runs, experiment("fake", ablation={"seeds": [0], "baseline": "infonce", "arms": ARMS}))
    folder = write_report(runs / "fake", tmp_path / "reports" / "fake")
    shutil.rmtree(runs)
    return folder


def test_restored_folder_gives_back_the_reports_inputs_byte_for_byte(report: Path, tmp_path: Path):
    exp = experiment("fake", ablation={"seeds": [0], "baseline": "infonce", "arms": ARMS})
    assert restore_study(exp, report, tmp_path / "runs" / "fake", None) == 2
    restored = load_study_dir(tmp_path / "runs" / "fake")
    assert input_files(restored) == input_files(load_report_dir(report).results)
    assert (
        restored.untrained is not None
        and restored.untrained.rows == load_report_dir(report).results.untrained.rows
    )

    study = optuna.load_study(
        study_name="fake", storage=f"sqlite:///{tmp_path / 'runs' / 'fake' / 'optuna.db'}"
    )
    history = load_report_dir(report).results.manifest.history
    assert [t.number for t in study.trials] == [h.number for h in history]
    for trial, h in zip(study.trials, history, strict=True):
        assert (trial.state.name, trial.value, trial.params) == (h.state, h.value, h.params)
        assert trial.intermediate_values == h.intermediate_values
        assert trial.user_attrs[RESTORED_FROM] == str(report)


def test_added_seeds_run_alone_and_number_after_the_restored_trials(report: Path, tmp_path: Path):
    runs = tmp_path / "runs"
    old = load_report_dir(report).results
    wider = experiment("fake")  # seeds [0, 1]
    restore_study(wider, report, runs / "fake", None)
    pipeline = FakePipeline()
    study = _run(runs, wider, pipeline)

    # Only seed 1 of each arm trained; the new trials come after the restored 0 and 1.
    assert sorted((c["strategy"], c["seed"]) for c in pipeline.fits) == [("gist", 1), ("none", 1)]
    assert [(t.number, t.params["seed"]) for t in study.trials] == [(0, 0), (1, 0), (2, 1), (3, 1)]
    results = load_study_dir(runs / "fake")
    assert [r.trial for r in results.trials[:2]] == [r.trial for r in old.trials]
    assert [r.scores.rows for r in results.trials[:2]] == [r.scores.rows for r in old.trials]
    assert results.manifest.created == old.manifest.created and len(results.manifest.sessions) == 2
    assert [h.number for h in results.manifest.history] == [0, 1, 2, 3]


def test_the_same_seeds_again_run_nothing(report: Path, tmp_path: Path):
    exp = experiment("fake", ablation={"seeds": [0], "baseline": "infonce", "arms": ARMS})
    restore_study(exp, report, tmp_path / "runs" / "fake", None)
    pipeline = FakePipeline()
    study = _run(tmp_path / "runs", exp, pipeline)
    assert pipeline.fits == [] and len(study.trials) == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "other"}, "a report of study 'fake', not of 'other'"),
        ({"train": {"batch_size": 8, "max_steps": 3, "eval_every_steps": 1}}, "trained with batch_size = 4"),
        ({"final": {"suite": "offline-lite"}}, "its final_suite is 'offline-sts'"),
        ({"arms": [ARMS[0]]}, "arm 'gist' is not an arm of the experiment"),
        ({"seeds": [1]}, "seed 0 is not in the experiment's seeds [1]"),
    ],
)
def test_a_different_experiment_is_refused_and_nothing_is_written(report, tmp_path, change, message):
    sections = {
        "ablation": {
            "seeds": change.pop("seeds", [0]),
            "baseline": "infonce",
            "arms": change.pop("arms", ARMS),
        }
    }
    name = change.pop("name", "fake")
    exp = experiment(name, **sections, **change)
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]")):
        restore_study(exp, report, tmp_path / "runs" / name, None)
    assert not (tmp_path / "runs").exists() or list((tmp_path / "runs").iterdir()) == []


def test_a_field_added_after_the_trial_ran_is_a_change_only_away_from_its_default(report: Path):
    """A trial recorded before a [train] field existed (bidirectional ``directions`` came after the
    headline study's first trials) restores when the experiment leaves the field at its default, which
    trains as before, and is refused when the experiment sets it otherwise."""
    record = load_report_dir(report).results.trials[0].trial
    older = record.model_copy(
        update={"config": {k: v for k, v in record.config.items() if k != "weight_decay"}}
    )
    exp = experiment("fake", ablation={"seeds": [0], "baseline": "infonce", "arms": ARMS})
    assert config_change(exp, record) is None and config_change(exp, older) is None
    changed = experiment(
        "fake",
        ablation={"seeds": [0], "baseline": "infonce", "arms": ARMS},
        train={"batch_size": 4, "max_steps": 3, "eval_every_steps": 1, "weight_decay": 0.5},
    )
    assert "trained with weight_decay = 0.01; the experiment now gives 0.5" in config_change(changed, older)


def test_other_data_and_an_existing_study_are_refused(report: Path, tmp_path: Path):
    exp = experiment("fake", ablation={"seeds": [0], "baseline": "infonce", "arms": ARMS})
    with pytest.raises(UserError, match="data file sts/stsbenchmark.tsv differs"):
        restore_study(
            exp,
            report,
            tmp_path / "runs" / "fake",
            None,
            data_checksums={**CHECKSUMS, "sts/stsbenchmark.tsv": "0" * 64},
        )
    assert not (tmp_path / "runs").exists()
    restore_study(exp, report, tmp_path / "runs" / "fake", None, data_checksums=CHECKSUMS)
    with pytest.raises(UserError, match="already holds a study"):
        restore_study(exp, report, tmp_path / "runs" / "fake", None)
    journal = f"journal:{tmp_path / 'shared.journal'}"
    restore_study(exp, report, tmp_path / "a" / "fake", journal)
    with pytest.raises(UserError, match="already exists in the storage"):
        restore_study(exp, report, tmp_path / "b" / "fake", journal)
    assert not (tmp_path / "b" / "fake").exists()
    with pytest.raises(UserError, match="not a report folder"):
        restore_study(exp, tmp_path / "runs", tmp_path / "c" / "fake", None)


def test_added_seeds_on_a_live_study_say_how_to_go_on(tmp_path: Path):
    runs = tmp_path / "runs"
    _run(runs, experiment("fake", ablation={"seeds": [0], "baseline": "infonce", "arms": ARMS}))
    pipeline = FakePipeline()
    with pytest.raises(
        UserError, match=r"drew seed from \[0\], the experiment now from \[0, 1\].*--from-report"
    ):
        _run(runs, experiment("fake"), pipeline)
    assert pipeline.fits == [] and len(load_study_dir(runs / "fake").trials) == 2


def test_a_failed_trial_of_a_removed_seed_is_refused_by_name(tmp_path: Path):
    class FailSeed1(FakePipeline):
        def fit(self, config, report):
            if config.seed == 1:
                raise RuntimeError("boom")
            return super().fit(config, report)

    runs = tmp_path / "old-runs"
    _run(runs, experiment("fake"), FailSeed1())  # seeds [0, 1]: seed 1 fails for both arms
    report = write_report(runs / "fake", tmp_path / "reports" / "fake")
    only_seed_0 = experiment("fake", ablation={"seeds": [0], "baseline": "infonce", "arms": ARMS})
    with pytest.raises(
        UserError, match=r"trial \d \(FAIL\) has seed = 1, outside the experiment's seed choices"
    ):
        restore_study(only_seed_0, report, tmp_path / "runs" / "fake", None)
    assert not (tmp_path / "runs").exists()
    # With seed 1 still in the experiment, its failed trials come back FAIL and run again.
    restore_study(experiment("fake"), report, tmp_path / "runs" / "fake", None)
    pipeline = FakePipeline()
    study = _run(tmp_path / "runs", experiment("fake"), pipeline)
    assert sorted(c["seed"] for c in pipeline.fits) == [1, 1]
    assert [t.state.name for t in study.trials].count("COMPLETE") == 4


def test_a_study_stopped_mid_trial_restores_and_runs_only_what_it_lacks(tmp_path: Path):
    class Stopped(FakePipeline):
        def fit(self, config, report):
            if len(self.fits) == 1:
                raise KeyboardInterrupt  # Ctrl-C during the second trial
            return super().fit(config, report)

    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "old-runs", experiment("fake"), Stopped())
    report = write_report(tmp_path / "old-runs" / "fake", tmp_path / "reports" / "fake")
    # Trial 0 COMPLETE, trial 1 stopped RUNNING (comes back FAIL), trials 2-3 never started (left out).
    assert restore_study(experiment("fake"), report, tmp_path / "runs" / "fake", None) == 2
    study = optuna.load_study(
        study_name="fake", storage=f"sqlite:///{tmp_path / 'runs' / 'fake' / 'optuna.db'}"
    )
    assert [t.state.name for t in study.trials] == ["COMPLETE", "FAIL"]
    assert study.trials[1].user_attrs["error"] == f"still RUNNING in {report}; re-queued"
    pipeline = FakePipeline()
    study = _run(tmp_path / "runs", experiment("fake"), pipeline)
    assert sorted((c["strategy"], c["seed"]) for c in pipeline.fits) == [
        ("gist", 0),
        ("gist", 1),
        ("none", 1),
    ]
    assert [t.state.name for t in study.trials].count("COMPLETE") == 4


def test_a_final_suite_changed_before_a_look_reruns_every_trial_and_is_declared(report: Path, tmp_path: Path):
    """``--rerun-changed``: an amendment (the final suite shrunk to fit the study's time) keeps the old
    trials as FAIL with the reason, runs every arm and seed again, scores the untrained student again,
    and is a new declaration saying what changed."""
    runs = tmp_path / "runs"
    lite = experiment(
        "fake", final={"suite": "offline-lite"}, ablation={"seeds": [0], "baseline": "infonce", "arms": ARMS}
    )
    assert restore_study(lite, report, runs / "fake", None, rerun_changed=True, experiment_toml="x") == 2
    restored = load_study_dir(runs / "fake")
    assert [t.trial.state for t in restored.trials] == ["FAIL", "FAIL"]
    assert all(t.scores is None for t in restored.trials) and restored.untrained is None
    assert restored.trials[0].trial.error == (
        "scored on offline-sts; the experiment now scores offline-lite: re-queued (--rerun-changed)"
    )
    assert restored.manifest.final_suite == "offline-lite"
    first, second = restored.declarations
    assert second.number == 2 and second.final_suite == "offline-lite"
    assert second.changed == ["final_suite: offline-sts -> offline-lite"] and second.experiment_toml == "x"

    pipeline = FakePipeline()
    study = _run(runs, lite, pipeline)
    assert sorted(c["strategy"] for c in pipeline.fits) == ["gist", "none"]
    assert [(t.number, t.state.name) for t in study.trials] == [
        (0, "FAIL"), (1, "FAIL"), (2, "COMPLETE"), (3, "COMPLETE")
    ]  # fmt: skip
    after = load_study_dir(runs / "fake")
    assert len(after.declarations) == 2  # the run declared nothing more: the restore recorded the change
    assert after.untrained is not None and after.untrained.suite == "offline-lite"
    assert {t.scores.suite for t in after.trials if t.scores is not None} == {"offline-lite"}


def test_a_changed_training_setting_reruns_only_what_it_changes(report: Path, tmp_path: Path):
    changed = experiment(
        "fake",
        train={"batch_size": 8, "max_steps": 3, "eval_every_steps": 1},
        ablation={"seeds": [0], "baseline": "infonce", "arms": ARMS},
    )
    with pytest.raises(
        UserError, match=r"trained with batch_size = 4.*\(--rerun-changed runs such trials again\)"
    ):
        restore_study(changed, report, tmp_path / "runs" / "fake", None)
    restore_study(changed, report, tmp_path / "runs" / "fake", None, rerun_changed=True)
    restored = load_study_dir(tmp_path / "runs" / "fake")
    assert len(restored.declarations) == 1  # the declared fields are unchanged
    assert restored.untrained is not None  # the final suite is the same: its scores stand
    pipeline = FakePipeline()
    _run(tmp_path / "runs", changed, pipeline)
    assert sorted(c["strategy"] for c in pipeline.fits) == ["gist", "none"]


def test_a_changed_final_suite_with_no_complete_trial_still_rescores_and_declares(tmp_path: Path):
    class StoppedAtOnce(FakePipeline):
        def fit(self, config, report):
            raise KeyboardInterrupt  # Ctrl-C in the first trial: nothing COMPLETE to re-queue

    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "old-runs", experiment("fake"), StoppedAtOnce())
    report = write_report(tmp_path / "old-runs" / "fake", tmp_path / "reports" / "fake")
    assert load_report_dir(report).results.untrained is not None  # scored on offline-sts
    lite = experiment("fake", final={"suite": "offline-lite"})
    restore_study(lite, report, tmp_path / "runs" / "fake", None, rerun_changed=True)
    restored = load_study_dir(tmp_path / "runs" / "fake")
    assert restored.untrained is None and restored.manifest.final_suite == "offline-lite"
    assert restored.declarations[-1].changed == ["final_suite: offline-sts -> offline-lite"]


def test_a_changed_final_length_is_refused_or_rescored_and_declared(tmp_path: Path):
    """``[final] max_seq_len`` is in no trial's record: the experiment text the report's run kept says
    what the trials were scored at, so a changed length is caught like a changed final suite."""
    old = experiment(
        "fake",
        final={"suite": "offline-sts", "max_seq_len": 64},
        ablation={"seeds": [0], "baseline": "infonce", "arms": ARMS},
    )
    text = '[study]\nname = "fake"\n\n[final]\nsuite = "offline-sts"\nmax_seq_len = 64\n'
    manifest = StudyManifest(study="fake", data_checksums=CHECKSUMS, experiment_toml=text)
    run_study(old, FakePipeline(), runs_dir=tmp_path / "old-runs", progress=False, log=lambda _: None,
              manifest=manifest)  # fmt: skip
    report = write_report(tmp_path / "old-runs" / "fake", tmp_path / "reports" / "fake")

    assert restore_study(old, report, tmp_path / "same" / "fake", None) == 2  # same length: restores
    longer = experiment(
        "fake",
        final={"suite": "offline-sts", "max_seq_len": 128},
        ablation={"seeds": [0], "baseline": "infonce", "arms": ARMS},
    )
    runs = tmp_path / "runs"
    with pytest.raises(
        UserError,
        match=r"its trials were scored at \[final\] max_seq_len 64; the experiment now gives 128 \(--rerun",
    ):
        restore_study(longer, report, runs / "fake", None)
    assert not runs.exists() or list(runs.iterdir()) == []

    restore_study(longer, report, runs / "fake", None, rerun_changed=True, experiment_toml="x")
    restored = load_study_dir(runs / "fake")
    assert [t.trial.state for t in restored.trials] == ["FAIL", "FAIL"] and restored.untrained is None
    assert restored.trials[0].trial.error == (
        "scored at [final] max_seq_len 64; the experiment now gives 128: re-queued (--rerun-changed)"
    )
    assert restored.declarations[-1].changed == ["[final] max_seq_len: 64 -> 128"]
    own = experiment("fake", ablation={"seeds": [0], "baseline": "infonce", "arms": ARMS})
    with pytest.raises(UserError, match="max_seq_len 64; the experiment now gives each model's own"):
        restore_study(own, report, tmp_path / "own" / "fake", None)


def test_an_unreadable_experiment_text_leaves_the_length_unknown():
    from harness.study.restore import _final_lengths

    exp = experiment("fake", final={"suite": "offline-sts", "max_seq_len": 128})
    assert _final_lengths(exp, StudyManifest(study="fake", experiment_toml="[final\n")) is None
    assert _final_lengths(exp, StudyManifest(study="fake")) is None
    kept = StudyManifest(study="fake", experiment_toml='[study]\nname = "fake"\n')
    assert _final_lengths(exp, kept) == ("each model's own", "128")
