"""Interim records: a study's trials committed between working stints, continued with ``--from-report``,
with no contrast computed or shown and no look taken (resuming is not looking)."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import pytest
from test_looks import NoisyPipeline, files, study

from harness.cli import main
from harness.cli.interim_cmd import replace_folder
from harness.cli.run_cmd import write_report
from harness.report import build_report
from harness.report.inputs import input_files, is_report_dir, load_report_dir
from harness.report.interim import INTERIM_FILE, is_interim_dir
from harness.results import StudyManifest, load_study_dir, write_record
from harness.study import run_study
from harness.study.restore import restore_study


class Killed(NoisyPipeline):
    """Stops the process (as Ctrl-C or a SIGTERM would) when it starts its ``after``-th fit."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after = after

    def fit(self, config, report):
        if len(self.fits) == self.after:
            raise KeyboardInterrupt
        return super().fit(config, report)


def stint(runs: Path, seeds: list[int], pipeline) -> Path:
    """Runs the study ``looks`` in ``runs`` until it ends or ``pipeline`` stops it."""
    exp, manifest = study(seeds)
    with contextlib.suppress(KeyboardInterrupt):  # stopped: the study stays as the stop left it
        run_study(exp, pipeline, runs_dir=runs, progress=False, manifest=manifest, log=lambda _: None)
    return runs / "looks"


def interim(folder: Path, out: Path) -> Path:
    assert main(["interim", str(folder), "--out", str(out)]) == 0
    return out / "looks"


def fitted(pipeline) -> list[tuple[str, int]]:
    return sorted((c["strategy"], c["seed"]) for c in pipeline.fits)


def test_an_interim_record_holds_the_trials_and_shows_no_result(tmp_path: Path):
    folder = stint(tmp_path / "runs", [0, 1, 2], Killed(after=4))
    record = interim(folder, tmp_path / "interim")

    assert is_report_dir(record) and is_interim_dir(record)
    assert not (folder / "looks").exists()  # no look in the run folder
    assert not (record / "inputs" / "looks").exists()
    assert input_files(load_report_dir(record).results) == input_files(load_study_dir(folder))
    assert sorted(p.name for p in record.iterdir()) == ["README.md", "inputs", "results.csv"]

    readme = (record / "README.md").read_text(encoding="utf-8")
    assert "interim record, not a report" in readme and "looks taken so far: 0." in readme
    # The arms ran in order (infonce's seeds, then gist's); the stop left gist's seed 1 RUNNING.
    assert "| infonce | 2 | #2 COMPLETE |" in readme and "| gist | 1 | #4 RUNNING |" in readme
    assert "COMPLETE seeds per arm: gist 1, infonce 3." in readme
    assert "arms × seeds without a COMPLETE trial): gist seed 1, gist seed 2." in readme
    # No score, aggregate, contrast, interval or p-value: none of the trials' values or scores appears.
    results = load_study_dir(folder)
    values = {f"{t.trial.value:.{d}f}" for t in results.trials if t.trial.value for d in (2, 3, 4)}
    values |= {f"{100 * s.main_score:.2f}" for t in results.trials if t.scores for s in t.scores.rows}
    assert values and not [v for v in values if v in readme]
    for word in ("Δ", "±", "CI", "p =", "p-value ", "Holm", "mean", "significant"):
        assert word not in readme, word


def test_report_refuses_an_interim_record(tmp_path: Path, capsys):
    record = interim(stint(tmp_path / "runs", [0, 1], NoisyPipeline()), tmp_path / "interim")
    before = {p: p.read_bytes() for p in record.rglob("*") if p.is_file()}
    assert main(["report", str(record)]) == 2
    assert "an interim record (no contrasts, not a look)" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in record.rglob("*") if p.is_file()} == before


def test_from_an_interim_record_only_the_missing_trials_run_and_the_first_report_is_look_1(tmp_path: Path):
    folder = stint(tmp_path / "stint-1", [0, 1, 2], Killed(after=3))
    fitted_before = sorted(
        (t.trial.arm, t.trial.seed) for t in load_study_dir(folder).trials if t.trial.state == "COMPLETE"
    )
    assert len(fitted_before) == 3
    record = interim(folder, tmp_path / "interim")
    shutil.rmtree(tmp_path / "stint-1")  # a fresh machine: the run folder is gone

    exp, _ = study([0, 1, 2])
    # Trials 0-2 COMPLETE, 3 stopped RUNNING (back as FAIL, re-queued), 4-5 never started (left out).
    assert restore_study(exp, record, tmp_path / "runs" / "looks", None) == 4
    pipeline = NoisyPipeline()
    folder = stint(tmp_path / "runs", [0, 1, 2], pipeline)

    names = {"none": "infonce", "gist": "gist"}
    trained_now = sorted((names[strategy], seed) for strategy, seed in fitted(pipeline))
    assert sorted(fitted_before + trained_now) == sorted(
        (a, s) for a in ("infonce", "gist") for s in (0, 1, 2)
    )
    assert not (folder / "looks").exists()  # the record and the resume took no look
    assert files(folder / "declarations") == ["0001.json"]  # nor declared anything new

    write_report(folder, tmp_path / "report")
    results = load_study_dir(folder)
    assert [look.number for look in results.looks] == [1]
    assert results.looks[0].seeds == {"gist": 3, "infonce": 3}
    assert "Verdicts at alpha = 0.05." in build_report(results).contrasts[0].notes[0]


def test_after_a_report_an_interim_record_carries_its_look_and_the_next_report_is_look_2(tmp_path: Path):
    first = stint(tmp_path / "stint-1", [0, 1, 2], NoisyPipeline())
    write_report(first, tmp_path / "report")  # look 1
    shutil.rmtree(tmp_path / "stint-1")
    exp, _ = study([0, 1, 2, 3, 4])  # seeds added after the look: a second declaration
    restore_study(exp, tmp_path / "report", tmp_path / "stint-2" / "looks", None)
    second = stint(tmp_path / "stint-2", [0, 1, 2, 3, 4], Killed(after=2))
    record = interim(second, tmp_path / "interim")
    assert files(record / "inputs" / "looks") == ["0001.json"]
    assert "looks taken so far: 1 " in (record / "README.md").read_text(encoding="utf-8")
    shutil.rmtree(tmp_path / "stint-2")

    restore_study(exp, record, tmp_path / "runs" / "looks", None)
    pipeline = NoisyPipeline()
    folder = stint(tmp_path / "runs", [0, 1, 2, 3, 4], pipeline)
    assert fitted(pipeline) == [("gist", 3), ("gist", 4)]  # infonce 3 and 4 ran before the stop
    write_report(folder, tmp_path / "report")
    results = load_study_dir(folder)
    assert [look.number for look in results.looks] == [1, 2]
    assert [d.number for d in results.declarations] == [1, 2]
    assert "Verdicts at alpha = 0.025" in build_report(results).contrasts[0].notes[0]


def test_a_second_interim_record_replaces_the_first_whole(tmp_path: Path):
    folder = stint(tmp_path / "runs", [0, 1], Killed(after=2))
    record = interim(folder, tmp_path / "interim")
    (record / "inputs" / "stale.txt").write_text("left over", encoding="utf-8")
    stint(tmp_path / "runs", [0, 1], NoisyPipeline())  # the plain rerun finishes the study
    interim(folder, tmp_path / "interim")
    assert not (record / "inputs" / "stale.txt").exists()
    states = [t.trial.state for t in load_report_dir(record).results.trials]
    assert states.count("COMPLETE") == 4 and "RUNNING" not in states
    assert sorted(p.name for p in (tmp_path / "interim").iterdir()) == ["looks"]  # no staging left


def test_a_failed_write_leaves_the_earlier_record_as_it_was(tmp_path: Path):
    record = interim(stint(tmp_path / "runs", [0, 1], NoisyPipeline()), tmp_path / "interim")
    before = {p: p.read_bytes() for p in record.rglob("*") if p.is_file()}
    with pytest.raises(OSError):  # "a" is a file, so "a/b" cannot be written
        replace_folder(record, {"a": b"x", "a/b": b"y"})
    assert {p: p.read_bytes() for p in record.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in (tmp_path / "interim").iterdir()) == ["looks"]


def test_bad_sources_and_targets_are_one_line_errors_that_write_nothing(tmp_path: Path, capsys):
    folder = stint(tmp_path / "runs", [0, 1], NoisyPipeline())
    write_report(folder, tmp_path / "reports" / "looks")
    cases = [
        ([str(tmp_path / "reports" / "looks")], "a report or interim record, not a run folder"),
        ([str(folder), "--out", str(tmp_path / "reports")], "exists and is not an interim record"),
        ([str(tmp_path / "nowhere")], "no such folder"),
    ]
    for argv, message in cases:
        assert main(["interim", *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "reports" / "looks" / INTERIM_FILE).exists()


def test_a_study_with_no_trial_has_nothing_to_record(tmp_path: Path, capsys):
    folder = tmp_path / "runs" / "looks"
    write_record(folder / "manifest.json", StudyManifest(study="looks"))
    assert main(["interim", str(folder), "--out", str(tmp_path / "interim")]) == 2
    assert "no trial has started yet" in capsys.readouterr().err
    assert not (tmp_path / "interim").exists()
