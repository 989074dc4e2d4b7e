"""Per-trial provenance and session history: a resume appends, never rewrites."""

from __future__ import annotations

import subprocess
from pathlib import Path

import optuna

from harness.config import TrainConfig
from harness.results import StudyManifest, TrialRecord, read_record
from harness.study.artifacts import RunFolder, trial_record
from harness.study.environment import code_provenance

REPO = Path(__file__).resolve().parents[1]


def test_code_provenance_matches_git():
    code = code_provenance(REPO)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    diff = subprocess.run(
        ["git", "diff", "HEAD", "--no-ext-diff", "--binary"], cwd=REPO, capture_output=True
    ).stdout
    assert code.git_commit == head
    assert code.dirty == bool(diff)
    assert (code.diff_sha256 != "") == code.dirty
    assert "python" in code.package_versions and code.started is not None


def test_code_provenance_outside_git(tmp_path):
    code = code_provenance(tmp_path)
    assert code.git_commit == "" and not code.dirty and code.diff_sha256 == ""


def test_resume_appends_a_session_and_keeps_the_first(tmp_path):
    study = optuna.create_study()
    base = StudyManifest(study="s", command="gist-harness run e.toml")
    first = RunFolder(tmp_path, "s")
    first.write_manifest(study, base)
    first.write_manifest(study, base)  # after each trial: still one session for this process
    sessions = read_record(tmp_path / "manifest.json", StudyManifest).sessions
    assert len(sessions) == 1
    RunFolder(tmp_path, "s").write_manifest(study, base)  # a resume: a new process, a new folder object
    later = read_record(tmp_path / "manifest.json", StudyManifest).sessions
    assert len(later) == 2 and later[0] == sessions[0]


def test_trial_records_carry_provenance(tmp_path):
    study = optuna.create_study()
    folder = RunFolder(tmp_path, "s")
    trial = study.ask()
    folder.on_start(trial, "gist", 0, TrainConfig())
    running = read_record(tmp_path / "trial-0000" / "trial.json", TrialRecord)
    assert running.provenance is not None and running.provenance == folder.code_provenance()
    study.tell(trial, 0.5)
    frozen = study.get_trials()[0]
    assert trial_record("s", frozen).provenance == running.provenance


def test_set_aside_trial_stays_in_the_trials_table(tmp_path):
    """A trial failed by hand and its folder set aside is still listed, from the Optuna history."""
    import shutil

    from harness.report import build_report, load_study_dir, render_markdown

    fixture = Path(__file__).parent / "fixtures" / "report_study"
    shutil.copytree(fixture, tmp_path / "s")
    shutil.rmtree(tmp_path / "s" / "trial-0008")
    markdown = render_markdown(build_report(load_study_dir(tmp_path / "s")))
    row = next(line for line in markdown.splitlines() if line.startswith("| 8 |"))
    assert "| FAIL |" in row and "in the Optuna history only: no trial record (set aside)" in row


def test_sessions_are_listed_in_the_report(tmp_path):
    from harness.report.provenance import reproducibility
    from harness.results import CodeProvenance, StudyResults

    first = CodeProvenance(
        git_commit="a" * 40, package_versions={"torch": "2.13.0"}, command="gist-harness run e"
    )
    second = CodeProvenance(
        git_commit="b" * 40, dirty=True, diff_sha256="c" * 64, package_versions={"torch": "2.14.0"}
    )
    table = reproducibility(
        StudyResults(manifest=StudyManifest(study="s", sessions=[first, second]))
    ).sessions
    assert table is not None and len(table.rows) == 2
    assert [c.text for c in table.rows[1]][2:4] == ["bbbbbbbbbb+diff cccccccc", "torch 2.14.0"]


def test_wall_time_of_a_study_run_in_two_sessions_leaves_out_the_gap():
    from datetime import datetime, timedelta, timezone

    from harness.report.provenance import wall_time
    from harness.results import CodeProvenance, StudyResults, TrialResult

    t0 = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)

    def trial(number: int, start_min: float, minutes: float) -> TrialResult:
        started = t0 + timedelta(minutes=start_min)
        record = TrialRecord(
            study="s", number=number, state="COMPLETE", started=started,
            finished=started + timedelta(minutes=minutes), wall_seconds=minutes * 60,
        )  # fmt: skip
        return TrialResult(trial=record)

    # Session 1: 08:00, two trials to 08:30. Session 2 two days later: 08:00, one trial to 08:12.
    trials = [trial(0, 1, 14), trial(1, 15, 15), trial(2, 2 * 24 * 60 + 2, 10)]
    sessions = [CodeProvenance(started=t0), CodeProvenance(started=t0 + timedelta(days=2))]
    manifest = StudyManifest(study="s", created=t0, sessions=sessions)
    assert wall_time(StudyResults(manifest=manifest, trials=trials)) == (
        "42 min 00 s in 2 sessions, each from its start to its last trial's end (39 min 00 s in trials)"
    )
    # One session (or none recorded): creation to the last trial's end, as before.
    single = StudyResults(manifest=manifest.model_copy(update={"sessions": sessions[:1]}), trials=trials[:2])
    assert wall_time(single) == "30 min 00 s from creation to the last trial's end (29 min 00 s in trials)"


def test_sessions_on_other_machines_say_which_and_older_records_stay_as_they_were():
    """Each session records its machine; the column appears only where some session kept one."""
    from harness.report.provenance import reproducibility
    from harness.results import CodeProvenance, StudyResults

    old = CodeProvenance(git_commit="a" * 40)
    new = CodeProvenance(
        git_commit="b" * 40, hardware={"cpu_model": "AMD EPYC 7B13", "cpus": "2", "memory_gb": "23.5"}
    )
    assert "hardware" not in old.model_dump(mode="json")  # older manifests rewrite byte for byte

    def columns_and_machines(sessions):
        table = reproducibility(StudyResults(manifest=StudyManifest(study="s", sessions=sessions))).sessions
        at = table.columns.index("Machine") if "Machine" in table.columns else None
        return table.columns, [row[at].text for row in table.rows] if at is not None else []

    assert columns_and_machines([old, old])[0] == ["#", "Started (UTC)", "Code", "Packages", "Command"]
    columns, machines = columns_and_machines([old, new])
    assert columns[4] == "Machine"
    assert machines == ["not recorded", "AMD EPYC 7B13, 2 CPUs, 23.5 GiB"]


def test_code_provenance_records_the_machine():
    code = code_provenance(REPO)
    assert code.hardware["cpus"].isdigit() and code.hardware["cpu_model"]
