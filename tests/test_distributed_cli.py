"""``gist-harness run EXPERIMENT.toml --nproc 2`` end to end on the CPU (gloo), with the real data.

A tiny experiment (random static student, TF-IDF guide, 2 steps per trial) completes every trial
exactly once, with the same trials and states as ``--nproc 1``, and writes its report once.
Marked slow by the ``data_dir`` fixture.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna

REPO = Path(__file__).resolve().parents[1]

TINY = """
[study]
name = "{name}"
sampler = "random"
pruner = "none"

[model]
student = "static-random"
guide = "tfidf"

[data]
mixture = "mini-medi"
max_examples = 256
leakage = "drop"

[train]
max_steps = 2
batch_size = 8
logging_steps = 1

[objective]
suite = "dev"
tasks = ["local:STSBenchmark"]

[ablation]
seeds = [0]
baseline = "infonce"

[[ablation.arms]]
name = "infonce"
strategy = "none"
guide = "none"

[[ablation.arms]]
name = "gist"
strategy = "gist"
"""


TUNED = (
    TINY.replace(
        'suite = "dev"\ntasks = ["local:STSBenchmark"]', 'suite = "offline-sts"\ntasks = ["local:BIOSSES"]'
    )
    + """
[tuning]
trials = 2
tasks = ["local:STSBenchmark"]
pruner = "none"
max_steps = 2

[tuning.space.lr]
type = "float"
low = 1e-3
high = 1e-1
log = true
"""
)


def run(
    tmp_path: Path, data_dir: Path, nproc: int, text: str = TINY
) -> tuple[subprocess.CompletedProcess, list]:
    name = f"{'tuned' if text is TUNED else 'tiny'}-nproc{nproc}"
    experiment = tmp_path / f"{name}.toml"
    experiment.write_text(text.format(name=name))
    command = [
        sys.executable, "-m", "harness", "run", str(experiment), "--nproc", str(nproc), "--no-progress",
        "--data-dir", str(data_dir), "--runs-dir", str(tmp_path / "runs"),
        "--reports-dir", str(tmp_path / "reports"), "--device", "cpu",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GIST_HARNESS_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    storage = f"sqlite:///{tmp_path / 'runs' / name / 'optuna.db'}"
    trials = (
        optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
        if done.returncode == 0
        else []
    )
    return done, sorted((t.params["arm"], t.params["seed"], t.state.name) for t in trials)


def test_run_nproc_2_completes_every_trial_once_like_nproc_1(tmp_path, data_dir):
    two, trials_two = run(tmp_path, data_dir, 2)
    assert two.returncode == 0, two.stderr[-4000:]
    one, trials_one = run(tmp_path, data_dir, 1)
    assert one.returncode == 0, one.stderr[-4000:]
    assert trials_two == trials_one == [("gist", 0, "COMPLETE"), ("infonce", 0, "COMPLETE")]
    assert two.stdout.count("report: ") == 1  # written once, by rank 0
    assert (tmp_path / "reports" / "tiny-nproc2" / "index.html").exists()


def test_a_tuned_study_on_2_processes_tunes_and_confirms_like_1(tmp_path, data_dir):
    """Rank 0 runs each arm's search and the confirmation, every rank trains each trial: the same tuning
    trials (the trial-seeded sampler draws the same settings) and confirmation trials as one process."""
    from harness.results import TUNING_FILE, TuningRecord, read_record

    tuned = {}
    for nproc in (2, 1):
        done, trials = run(tmp_path, data_dir, nproc, TUNED)
        assert done.returncode == 0, done.stderr[-4000:]
        assert trials == [("gist", 0, "COMPLETE"), ("infonce", 0, "COMPLETE")]
        assert done.stdout.count("report: ") == 1
        record = read_record(tmp_path / "runs" / f"tuned-nproc{nproc}" / TUNING_FILE, TuningRecord)
        tuned[nproc] = [(a.arm, [(t.state, t.params) for t in a.trials]) for a in record.arms]
        assert set(record.chosen) == {"gist", "infonce"}
    assert tuned[2] == tuned[1] and [len(trials) for _, trials in tuned[2]] == [2, 2]
    assert {state for _, trials in tuned[2] for state, _ in trials} == {"COMPLETE"}
