"""One rank of ``test_controls``' two-process check: run under ``torch.distributed.run``, 2 ranks.

Arguments: the output folder and a JSON list of cases ``STRATEGY-MODE`` (mode ``plain`` or
``gradcache``). Each rank scores its 8 of the 16 rows of ``test_distributed_loss.rows`` against all
16 (gathered), drawing from a generator seeded ``SEED + rank``; losses and parameter gradients are
averaged over ranks (as DDP does) and rank 0 writes ``results.pt``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_distributed_loss import all_texts, features_for, grads_of, guide_for, rows  # noqa: E402
from test_train import tiny_student  # noqa: E402

from harness.loss import GuidedInBatchLoss  # noqa: E402

SEED = 11


def loss_for(strategy: str, mode: str, student, guide) -> GuidedInBatchLoss:
    """The loss of one case (the one-process reference builds the same)."""
    return GuidedInBatchLoss(
        student,
        guide,
        temperature=0.05,
        strategy=strategy,
        mini_batch_size=4 if mode == "gradcache" else None,
        seed=SEED,
    )


def averaged(value: torch.Tensor) -> torch.Tensor:
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / dist.get_world_size()


def run_case(case: str) -> dict:
    strategy, mode = case.split("-")
    batch, labels = rows()
    begin = dist.get_rank() * 8
    student = tiny_student()
    loss_fn = loss_for(strategy, mode, student, guide_for(all_texts(batch)))
    features, label_tensor = features_for(loss_fn, batch[begin : begin + 8], labels[begin : begin + 8])
    loss = loss_fn(features, label_tensor)
    loss.backward()
    grads = {name: averaged(grad) for name, grad in grads_of(student).items()}
    return {"loss": float(averaged(loss)), "grads": grads}


def main() -> None:
    folder, cases = Path(sys.argv[1]), json.loads(sys.argv[2])
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    results = {"world_size": dist.get_world_size(), "cases": {c: run_case(c) for c in cases}}
    if dist.get_rank() == 0:
        torch.save(results, folder / "results.pt")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
