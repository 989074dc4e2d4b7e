"""``gist-harness run experiments/quickstart_minilm.toml --nproc 2``: ``kill -9`` of rank 0 mid-trial, then
the same command finishes the study: every arm x seed COMPLETE exactly once, none RUNNING or
WAITING, the report written once (issue 16). Real models and data, 2 gloo processes: slow.

Mid-trial is caught without fixed sleeps: the storage has a RUNNING trial and both ranks are
inside ``harness.train.train`` (each holds a ``gist-harness-trainer-*`` folder in its TMPDIR).
Killing rank 0, the study's only Optuna client, leaves its trial RUNNING; the rerun waits for its
heartbeat to go stale (grace period 60 s), fails it and runs it again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import psutil
import pytest
from optuna.trial import TrialState

from harness.config import load_experiment
from harness.study.runner import arm_seeds

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "experiments" / "quickstart_minilm.toml"  # the transformer machinery, a few minutes


def rank_pid(launcher: subprocess.Popen, rank: int) -> int | None:
    """The pid of the launched process of ``rank`` (a child of the launcher with ``RANK`` set)."""
    for child in psutil.Process(launcher.pid).children(recursive=True):
        try:
            if child.environ().get("RANK") == str(rank) and "harness" in child.cmdline():
                return child.pid
        except psutil.Error:
            continue
    return None


def running_trials(db: Path) -> list[optuna.trial.FrozenTrial]:
    if not db.exists():  # loading would create it
        return []
    storage = f"sqlite:///{db}"
    try:
        study = optuna.load_study(study_name="quickstart-minilm", storage=storage)
    except KeyError:  # not created yet
        return []
    return study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))


@pytest.mark.slow
def test_quickstart_on_2_processes_resumes_after_kill_9_of_rank_0(tmp_path, data_dir):
    command = [
        sys.executable, "-m", "harness", "run", str(QUICKSTART), "--nproc", "2", "--no-progress",
        "--data-dir", str(data_dir), "--runs-dir", str(tmp_path / "runs"),
        "--reports-dir", str(tmp_path / "reports"), "--device", "cpu",
    ]  # fmt: skip
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(scratch)}
    db = tmp_path / "runs" / "quickstart-minilm" / "optuna.db"

    log = (tmp_path / "first.log").open("w")
    first = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 900
    try:
        while True:
            assert first.poll() is None, "the run ended before a trial was caught mid-training"
            assert time.monotonic() < deadline, "no trial was caught training on both ranks"
            training = len(list(scratch.glob("gist-harness-trainer-*")))
            if training == 2 and running_trials(db):
                break
            time.sleep(0.2)
        rank0 = rank_pid(first, 0)
        assert rank0 is not None
        os.kill(rank0, signal.SIGKILL)
        first.wait(timeout=300)  # the launcher stops rank 1 and fails
    finally:
        if first.poll() is None:  # a failed check: stop the launcher and its ranks
            for process in [*psutil.Process(first.pid).children(recursive=True), first]:
                process.kill()
        log.close()
    assert first.returncode != 0
    assert running_trials(db)  # rank 0 died holding its trial

    rerun = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    trials = optuna.load_study(study_name="quickstart-minilm", storage=f"sqlite:///{db}").get_trials(
        deepcopy=False
    )
    complete = Counter((t.params["arm"], t.params["seed"]) for t in trials if t.state == TrialState.COMPLETE)
    expected = {(p["arm"], p["seed"]): 1 for p in arm_seeds(load_experiment(QUICKSTART))}
    assert complete == expected
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert rerun.stdout.count("report: ") == 1
    assert (tmp_path / "reports" / "quickstart-minilm" / "index.html").exists()
