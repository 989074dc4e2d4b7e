"""``train()`` on 2 processes (``torch.distributed.run``, gloo on the CPU): DDP for real.

The Trainer must shard the data and average gradients (48 pairs, batch 8 per rank: 3 steps, not 6),
every rank must end with the same weights, ``guide_mode = "online"`` must work although the
Trainer hands the loss the DDP wrapper, and per-source batches must give every rank the same source.
"""

from __future__ import annotations

import json

from ranks import launch


def test_train_on_two_processes_shards_the_data_and_keeps_ranks_in_step(tmp_path):
    done = launch("distributed_train_worker.py", str(tmp_path))
    assert done.returncode == 0, done.stderr[-4000:]
    rank0, rank1 = json.loads((tmp_path / "train.json").read_text())
    assert rank0["steps"] == rank1["steps"] == 48 // (8 * 2)
    assert rank0["checksum"] == rank1["checksum"]  # gradients averaged: one model, two copies
    assert rank0["drop_rate"] == rank1["drop_rate"]  # diagnostics reduced over the ranks
    assert rank0["online_steps"] == rank1["online_steps"] == 2
    # Per-source batches (a DatasetDict): both ranks draw from one source at each step, so the
    # gathered batch has one set of columns; 2 sources x 48 rows / (8 x 2) = 6 steps.
    assert rank0["per_source_steps"] == rank1["per_source_steps"] == 6
