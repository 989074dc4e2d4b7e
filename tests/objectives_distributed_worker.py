"""One rank of ``test_objectives_distributed``: run under ``python -m torch.distributed.run --nproc_per_node 2``.

Arguments: the output folder and a JSON list of case names (``OBJECTIVE-plain|gradcache``). Each case
runs on this rank's 8 of the 16 rows of ``test_distributed_loss.rows``; losses and parameter
gradients are averaged over ranks (what DDP does), and rank 0 writes ``results.pt``.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_distributed_loss import all_texts, features_for, grads_of, guide_for, rows  # noqa: E402
from test_loss import tiny_model  # noqa: E402
from test_objectives_distributed import objective_loss_for  # noqa: E402


def averaged(value: torch.Tensor) -> torch.Tensor:
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / dist.get_world_size()


def main() -> None:
    folder, cases = Path(sys.argv[1]), json.loads(sys.argv[2])
    torch.set_num_threads(1)
    model = tiny_model(0)  # built before the process group (transformers saves on the main process only)
    dist.init_process_group("gloo")
    batch, labels = rows()
    per_rank = len(batch) // dist.get_world_size()
    begin = dist.get_rank() * per_rank
    results = {"world_size": dist.get_world_size(), "cases": {}}
    for case in cases:
        student = copy.deepcopy(model)
        loss_fn = objective_loss_for(case, student, guide_for(all_texts(batch)))
        features, label_tensor = features_for(
            loss_fn, batch[begin : begin + per_rank], labels[begin : begin + per_rank]
        )
        loss = loss_fn(features, label_tensor)
        loss.backward()
        grads = {name: averaged(grad) for name, grad in grads_of(student).items()}
        results["cases"][case] = {"loss": float(averaged(loss)), "grads": grads}
    if dist.get_rank() == 0:
        torch.save(results, folder / "results.pt")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
