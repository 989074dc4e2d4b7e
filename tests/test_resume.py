"""Kill-and-resume: a worker SIGKILLed mid-trial loses no finished trial; the rerun goes on.

The killed worker's trial keeps its RUNNING state in the storage until its heartbeat is older than
the grace period; then the rerun fails it (stale) and runs the same arm and seed again.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path

from test_study import FakePipeline, experiment
from test_workers import LoggingPipeline, fits, start, worker_command

from harness.results import load_study_dir
from harness.study import run_study


def wait_for(condition, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _running_with_heartbeat(db: Path) -> int:
    """RUNNING trials with a recorded heartbeat in an Optuna SQLite storage (``trial_heartbeats``)."""
    query = (
        "SELECT COUNT(DISTINCT h.trial_id) FROM trial_heartbeats h "
        "JOIN trials t ON t.trial_id = h.trial_id WHERE t.state = 'RUNNING'"
    )
    with sqlite3.connect(db) as connection:
        return connection.execute(query).fetchone()[0]


def test_sigkill_mid_trial_then_rerun(tmp_path: Path):
    runs, log = tmp_path / "runs", tmp_path / "fits.log"
    # Each fake trial takes 3 steps x 1 s: time enough to kill the worker in the middle of one.
    proc = start(worker_command("resume", runs, None, log, worker=False, sleep_s=1.0))
    wait_for(lambda: [e for e, *_ in fits(log)].count("start") == 2)  # trial 0 done, trial 1 running
    # Optuna's heartbeat thread records trial 1's first beat a moment after it starts; a trial killed
    # before that has no heartbeat and is never found stale, so wait for the beat (on a loaded machine
    # the kill could otherwise come first and the rerun would wait for ever).
    wait_for(lambda: _running_with_heartbeat(runs / "resume" / "optuna.db") == 1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    done_before = [(a, s) for e, a, s in fits(log) if e == "end"]
    assert len(done_before) == 1

    killed = [t for t in load_study_dir(runs / "resume").trials if t.trial.state == "RUNNING"]
    assert len(killed) == 1
    killed_arm = (killed[0].trial.arm, killed[0].trial.seed)

    rerun = LoggingPipeline(log, 0.0)
    study = run_study(
        experiment("resume"), rerun, runs_dir=runs, progress=False, poll_s=0.5, log=lambda _: None
    )

    # No finished trial ran again; the killed one was failed as stale and re-queued once.
    ended = sorted((a, s) for e, a, s in fits(log) if e == "end")
    assert ended == [("gist", "0"), ("gist", "1"), ("infonce", "0"), ("infonce", "1")]
    states = sorted(t.state.name for t in study.trials)
    assert states == ["COMPLETE"] * 4 + ["FAIL"]
    failed = next(t for t in study.trials if t.state.name == "FAIL")
    assert (failed.params["arm"], failed.params["seed"]) == killed_arm
    retried = [t for t in study.trials if t.system_attrs.get("failed_trial") == failed.number]
    assert len(retried) == 1 and retried[0].state.name == "COMPLETE"

    records = {t.trial.number: t.trial for t in load_study_dir(runs / "resume").trials}
    assert records[failed.number].state == "FAIL" and "no heartbeat" in (records[failed.number].error or "")
    assert records[retried[0].number].state == "COMPLETE"


def test_rerun_of_a_finished_study_runs_nothing(tmp_path: Path):
    runs = tmp_path / "runs"
    run_study(experiment("done"), FakePipeline(), runs_dir=runs, progress=False, log=lambda _: None)
    again = FakePipeline()
    study = run_study(experiment("done"), again, runs_dir=runs, progress=False, log=lambda _: None)
    assert again.fits == [] and [t.state.name for t in study.trials] == ["COMPLETE"] * 4
