"""A study on 2 processes (``torch.distributed.run``, gloo on the CPU) with a fake pipeline.

Rank 0 owns the Optuna trials and broadcasts each one; both ranks train it (the fake ``fit`` runs a
collective per step, as DDP does), so every trial runs exactly once and on both ranks. A rank that
fails ends the run on both without hanging, and the same command resumes to the end.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import optuna
import pytest
import ranks
from optuna.trial import TrialState


def launch(out: Path, storage: str, fail: str = "none") -> subprocess.CompletedProcess:
    return ranks.launch("distributed_study_worker.py", str(out), storage, fail, timeout=300)


def trials(storage: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name="ranked", storage=storage).get_trials(deepcopy=False)


def arm_states(storage: str) -> Counter:
    return Counter((t.params.get("arm"), t.params.get("seed"), t.state) for t in trials(storage))


def test_every_trial_runs_once_on_both_ranks(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    done = launch(tmp_path, storage)
    assert done.returncode == 0, done.stderr[-4000:]
    states = arm_states(storage)
    expected = {(arm, seed, TrialState.COMPLETE): 1 for arm in ("infonce", "gist") for seed in (0, 1)}
    assert states == expected
    rank0 = json.loads((tmp_path / "fits-0.json").read_text())
    rank1 = json.loads((tmp_path / "fits-1.json").read_text())
    assert rank0 == rank1 and len(rank0) == 4  # the same trials, in the same order
    assert (tmp_path / "runs" / "ranked" / "manifest.json").exists()


@pytest.mark.parametrize("fail", ["rank1-trial1", "kill-rank1-trial1"])
def test_a_failing_rank_fails_the_run_and_the_same_command_resumes(tmp_path, fail):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    failed = launch(tmp_path, storage, fail=fail)  # returns: no rank hangs
    assert failed.returncode != 0
    if fail == "rank1-trial1":
        assert "injected failure" in failed.stderr
    first = Counter(t.state for t in trials(storage))
    assert first[TrialState.COMPLETE] == 1
    resumed = launch(tmp_path, storage)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    done = [t for t in trials(storage) if t.state == TrialState.COMPLETE]
    assert sorted((t.params["arm"], t.params["seed"]) for t in done) == sorted(
        (arm, seed) for arm in ("infonce", "gist") for seed in (0, 1)
    )
    assert not [t for t in trials(storage) if t.state in (TrialState.RUNNING, TrialState.WAITING)]


def test_a_trial_pruned_on_rank_0_stops_on_every_rank_at_the_same_step(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    done = launch(tmp_path, storage, fail="prune")  # a rank that trained on would hang, then time out
    assert done.returncode == 0, done.stderr[-4000:]
    pruned = {(t.params["strategy"], t.params["lr"]): max(t.intermediate_values) for t in trials(storage)}
    assert {t.state for t in trials(storage)} == {TrialState.PRUNED}
    assert pruned == {
        ("gist", 1e-05): 4,
        ("gist", 0.01): 4,
        ("none", 1e-05): 5,
        ("none", 0.01): 5,
    }  # of 5 steps
    rank0 = json.loads((tmp_path / "fits-0.json").read_text())
    assert rank0 == json.loads((tmp_path / "fits-1.json").read_text()) and len(rank0) == 4


def test_a_tuned_study_prepares_and_trains_every_search_and_the_confirmation_on_both_ranks(tmp_path):
    """Rank 0 broadcasts the experiment each study prepares (each arm's search, then the confirmation):
    the other rank prepares the same ones, in order, and trains the same trials."""
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    done = launch(tmp_path, storage, fail="tuned")
    assert done.returncode == 0, done.stderr[-4000:]
    prepared = [json.loads((tmp_path / f"prepared-{rank}.json").read_text()) for rank in (0, 1)]
    assert prepared[0] == prepared[1] == ["ranked.tune.infonce", "ranked.tune.gist", "ranked"]
    fits = [json.loads((tmp_path / f"fits-{rank}.json").read_text()) for rank in (0, 1)]
    assert fits[0] == fits[1] and len(fits[0]) == 2 + 2 + 4  # 2 tuning trials per arm, 2 arms x 2 seeds
    assert {t.state for t in trials(storage)} == {TrialState.COMPLETE}
