"""One rank of ``test_tensorboard``'s two-process run: ``train()`` with a TensorBoard folder.

Arguments: the output folder. Every rank hands ``train()`` the same ``logging_dir`` (the worst
case: a study names it on rank 0 only); rank 0 writes each rank's loss curve to ``curves.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_train import FakeGuide, config, pairs, tiny_student  # noqa: E402

from harness.study import ranks  # noqa: E402
from harness.train import train  # noqa: E402


def main() -> None:
    out = Path(sys.argv[1])
    ranks.init_process_group(timeout_min=2)
    torch.set_num_threads(1)
    _, run = train(
        config(max_steps=4, logging_steps=1, strategy="gist", guide="fake"),
        student=tiny_student(),
        guide=FakeGuide(),
        train_dataset=pairs(64),
        progress=False,
        logging_dir=out / "tensorboard",
    )
    everyone = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, run.loss_curve)
    if dist.get_rank() == 0:
        (out / "curves.json").write_text(json.dumps(everyone))
    dist.barrier()  # both ranks tear down together (as the other workers do)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
