"""Stored result records: JSON round trips, atomic writes, loading a study folder, one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from harness.errors import UserError
from harness.results import (
    DiagnosticsPoint,
    RunRecord,
    ScoreRow,
    ScoreTable,
    StudyManifest,
    TrialRecord,
    load_study_dir,
    read_record,
    save_trial,
    score_table,
    write_record,
)

FIXTURE = Path(__file__).parent / "fixtures" / "report_study"


def _score(task: str = "local:SICK-R", value: float = 0.78) -> ScoreRow:
    return ScoreRow(
        model="m", task=task, category="STS", split="test", metric="cosine_spearman", main_score=value
    )


def test_records_round_trip(tmp_path):
    run = RunRecord(
        loss_curve=[(10, 2.5), (20, 1.9)],
        diagnostics=[
            DiagnosticsPoint(
                step=10,
                drop_rate=0.03,
                kept_per_anchor_mean=60.0,
                kept_per_anchor_min=55,
                share_no_negatives=0.0,
            )
        ],  # fmt: skip
        peak_memory_mb=1500.0,
    )
    trial = TrialRecord(study="s", number=3, state="COMPLETE", arm="gist", seed=1, value=0.8)
    folder = save_trial(tmp_path, trial, scores=ScoreTable(suite="q", rows=[_score()]), run=run)
    assert folder.name == "trial-0003"
    assert read_record(folder / "trial.json", TrialRecord) == trial
    assert read_record(folder / "run.json", RunRecord) == run
    assert read_record(folder / "scores.json", ScoreTable).rows[0].main_score == 0.78
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")], "no temporary files left behind"


def test_write_record_replaces_the_previous_version(tmp_path):
    path = tmp_path / "trial.json"
    write_record(path, TrialRecord(study="s", number=0, state="RUNNING"))
    write_record(path, TrialRecord(study="s", number=0, state="COMPLETE"))
    assert read_record(path, TrialRecord).state == "COMPLETE"
    assert [p.name for p in tmp_path.iterdir()] == ["trial.json"]


def test_records_refuse_unknown_fields():
    with pytest.raises(ValueError, match="extra"):
        TrialRecord(study="s", number=0, state="COMPLETE", colour="red")


def test_corrupt_json_is_a_user_error_naming_the_file(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(UserError, match=r"manifest\.json: not valid JSON"):
        load_study_dir(tmp_path)


def test_invalid_record_names_file_and_field(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "study")
    trial = tmp_path / "study" / "trial-0002" / "trial.json"
    data = json.loads(trial.read_text())
    data["state"] = "DONE"
    trial.write_text(json.dumps(data))
    with pytest.raises(UserError, match=r"trial-0002/trial\.json: not a valid TrialRecord: field state"):
        load_study_dir(tmp_path / "study")


def test_folder_without_a_study(tmp_path):
    with pytest.raises(UserError, match="no study here"):
        load_study_dir(tmp_path)
    with pytest.raises(UserError, match="no such folder"):
        load_study_dir(tmp_path / "missing")
    shutil.copytree(FIXTURE, tmp_path / "fixture-ablation")
    with pytest.raises(UserError, match="studies inside: fixture-ablation"):
        load_study_dir(tmp_path)


def test_load_fixture_study():
    study = load_study_dir(FIXTURE)
    assert study.manifest.study == "fixture-ablation"
    assert [t.trial.number for t in study.trials] == list(range(11))
    states = {t.trial.number: t.trial.state for t in study.trials}
    assert states[8] == "FAIL" and states[10] == "RUNNING"
    assert study.trials[8].scores is None and study.trials[10].run is None
    assert len(study.trials[0].scores.rows) == 3
    assert {r.task for r in study.untrained.rows} == {
        "local:STSBenchmark", "local:SICK-R", "local:Banking77Classification"}  # fmt: skip
    assert len(study.manifest.history) == 11


def test_load_one_trial_folder_keeps_only_that_trial():
    study = load_study_dir(FIXTURE / "trial-0004")
    assert [t.trial.number for t in study.trials] == [4]
    assert study.manifest.study == "fixture-ablation"


def test_scores_parquet_is_read_when_json_is_absent(tmp_path):
    folder = save_trial(tmp_path, TrialRecord(study="s", number=0, state="COMPLETE"))
    write_record(tmp_path / "manifest.json", StudyManifest(study="s"))
    pd.DataFrame([_score().model_dump()]).to_parquet(folder / "scores.parquet")
    assert load_study_dir(tmp_path).trials[0].scores.rows == [_score()]


def test_score_table_from_evaluate_frame():
    frame = pd.DataFrame([{**_score().model_dump(), "extra_column": 1}])
    table = score_table(frame, suite="sts")
    assert table.suite == "sts" and table.rows == [_score()]
