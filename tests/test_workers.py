"""Several worker processes share one study: every arm x seed runs exactly once.

The workers are real processes (``python tests/test_workers.py ...`` runs one, with the fake
pipeline of ``test_study``); storages: the default SQLite file, an Optuna journal file and
PostgreSQL at 127.0.0.1:5432 (database ``test``, marked ``postgres``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def worker_command(
    name: str, runs: Path, storage: str | None, log: Path, *, worker: bool, sleep_s: float
) -> list[str]:
    cmd = [sys.executable, str(HERE / "test_workers.py"), name, str(runs), str(log), "--sleep", str(sleep_s)]
    if storage:
        cmd += ["--storage", storage]
    return cmd + (["--worker"] if worker else [])


def start(cmd: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def fits(log: Path) -> list[tuple[str, str, str]]:
    """(event, arm, seed) lines written by the fake pipeline of every worker."""
    if not log.exists():
        return []
    return [tuple(line.split()[:3]) for line in log.read_text().splitlines() if line.strip()]  # type: ignore[misc]


def run_workers(name: str, runs: Path, storage: str | None, log: Path, n: int = 3) -> None:
    procs = [start(worker_command(name, runs, storage, log, worker=False, sleep_s=0.3))]
    procs += [start(worker_command(name, runs, storage, log, worker=True, sleep_s=0.3)) for _ in range(n - 1)]
    for proc in procs:
        out, _ = proc.communicate(timeout=240)
        assert proc.returncode == 0, out


def check_each_arm_ran_once(name: str, runs: Path, storage: str | None, log: Path) -> None:
    import optuna

    from harness.results import load_study_dir
    from harness.study.storage import make_storage

    ended = sorted((arm, seed) for event, arm, seed in fits(log) if event == "end")
    assert ended == [("gist", "0"), ("gist", "1"), ("infonce", "0"), ("infonce", "1")]
    study = optuna.load_study(study_name=name, storage=make_storage(storage, runs / name))
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert sorted((t.params["arm"], t.params["seed"]) for t in complete) == [
        ("gist", 0), ("gist", 1), ("infonce", 0), ("infonce", 1)
    ]  # fmt: skip
    records = load_study_dir(runs / name)
    assert sorted(t.trial.number for t in records.trials if t.trial.state == "COMPLETE") == sorted(
        t.number for t in complete
    )


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_workers_share_a_file_study(tmp_path: Path, kind: str):
    name = f"workers-{kind}"
    storage = None if kind == "sqlite" else f"journal:{tmp_path / 'optuna.journal'}"
    run_workers(name, tmp_path / "runs", storage, tmp_path / "fits.log")
    check_each_arm_ran_once(name, tmp_path / "runs", storage, tmp_path / "fits.log")


def _postgres_up() -> bool:
    try:
        import psycopg

        psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", connect_timeout=3).close()
        return True
    except Exception:
        return False


@pytest.mark.postgres
def test_workers_share_a_postgres_study(tmp_path: Path):
    if not _postgres_up():
        pytest.skip("no PostgreSQL at 127.0.0.1:5432 (database test)")
    import optuna

    name = f"test-workers-{uuid.uuid4().hex[:12]}"  # each run its own study
    try:
        run_workers(name, tmp_path / "runs", POSTGRES, tmp_path / "fits.log")
        check_each_arm_ran_once(name, tmp_path / "runs", POSTGRES, tmp_path / "fits.log")
    finally:
        with contextlib.suppress(KeyError):
            optuna.delete_study(study_name=name, storage=POSTGRES)


class LoggingPipeline:
    """The fake pipeline of test_study, logging 'start/end ARM SEED PID' lines to a shared file."""

    def __init__(self, log: Path, sleep_s: float) -> None:
        from test_study import FakePipeline

        self.fake = FakePipeline(sleep_s=sleep_s)
        self.log = log
        self.in_domain_tasks: list[str] = []

    def prepare(self) -> None:
        pass

    def fit(self, config, report):
        arm = "gist" if config.strategy == "gist" else "infonce"
        self._event("start", arm, config.seed)
        result = self.fake.fit(config, report)
        self._event("end", arm, config.seed)
        return result

    def _event(self, event: str, arm: str, seed: int) -> None:
        fd = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)  # one write per line: no interleaving
        try:
            os.write(fd, f"{event} {arm} {seed} {os.getpid()}\n".encode())
        finally:
            os.close(fd)

    def score(self, model, suite):
        return self.fake.score(model, suite)

    def load_student(self):
        return self.fake.load_student()


def main() -> None:
    """One worker process: ``python tests/test_workers.py NAME RUNS LOG [--storage URL] [--worker]``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("runs", type=Path)
    parser.add_argument("log", type=Path)
    parser.add_argument("--storage")
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--sleep", type=float, default=0.3)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from test_study import experiment

    from harness.study import run_study

    run_study(
        experiment(args.name),
        LoggingPipeline(args.log, args.sleep),
        runs_dir=args.runs,
        storage=args.storage,
        worker=args.worker,
        progress=False,
        poll_s=0.5,
        log=lambda line: print(line, flush=True),
    )


if __name__ == "__main__":
    main()
