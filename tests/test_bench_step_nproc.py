"""``gist-harness bench step --nproc N``: option checks, the launcher's command line, and 2 gloo processes."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import bench_step
from harness.errors import UserError

REPO = Path(__file__).resolve().parents[1]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench_step.add_parser(parser.add_subparsers())
    return parser.parse_args(["step", *argv])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--nproc", "0"], "--nproc must be 1 or more processes, got 0"),
        (["--nproc", "3", "--batch-size", "32", "--no-objectives"], "--batch-size 32 must be a multiple of"),
        (["--nproc", "2", "--batch-size", "32", "--static-batch-size", "9"], "--static-batch-size 9 must be"),
    ],
)
def test_invalid_nproc_is_a_one_line_error_naming_the_option(argv, message, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(UserError) as error:
        bench_step.run(parse(argv))
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_nproc_launches_the_same_command_on_n_processes_with_torchrun(monkeypatch, tmp_path):
    import torch.distributed.run

    argv = ["bench", "step", "--nproc", "2", "--batch-size", "16", "--data-dir", str(tmp_path), "--json"]
    launched = []
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(sys, "argv", ["gist-harness", *argv])
    monkeypatch.setattr(torch.distributed.run, "main", launched.append)
    assert bench_step.run(parse(argv[2:])) == 0
    assert launched == [
        ["--standalone", "--nproc_per_node=2", "--module", "harness",
         "bench", "step", "--batch-size", "16", "--data-dir", str(tmp_path), "--json"],
    ]  # fmt: skip


def test_bench_step_nproc_2_on_gloo(tmp_path, data_dir):
    """Two CPU processes time a tiny student (random static, MiniLM guide) on one global batch of 16."""
    command = [
        sys.executable, "-m", "harness", "bench", "step", "--nproc", "2", "--student", "static-random",
        "--guide", "all-minilm-l6", "--batch-size", "16", "--repeats", "3", "--warmup", "1",
        "--no-objectives", "--json", "--data-dir", str(data_dir), "--cache-dir", str(tmp_path / "cache"),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout)  # printed once, by rank 0
    assert (result["nproc"], result["batch_size"], result["per_rank_batch_size"]) == (2, 16, 8)
    assert set(result["median_seconds"]) == {"infonce", "gist_cached"}  # no HF tokenizer: no st_gistembed
    for loss, median in result["median_seconds"].items():
        assert 0 < median <= result["p90_seconds"][loss]
    assert result["ratio_to_infonce"]["infonce"] == 1.0
