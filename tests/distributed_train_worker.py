"""One rank of ``test_distributed_train``: ``train()`` under ``python -m torch.distributed.run``.

Arguments: the output folder. Trains the tiny static student for one epoch (DDP on gloo: the data
is sharded, gradients averaged) and the tiny transformer with an online guide (the loss sees the
DDP wrapper), then rank 0 writes what every rank measured to ``train.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_loss import tiny_model  # noqa: E402
from test_train import FakeGuide, config, pairs, tiny_student  # noqa: E402

from harness.study import ranks  # noqa: E402
from harness.train import train  # noqa: E402


def checksum(model) -> float:
    return float(sum(p.detach().double().sum() for p in model.parameters()))


def main() -> None:
    out = Path(sys.argv[1])
    # transformers saves a model on the main process only once a process group exists: the tiny
    # transformers (saved to a folder, then loaded) are built first.
    student, guide = tiny_model(0), tiny_model(1)
    ranks.init_process_group(timeout_min=2)
    torch.set_num_threads(1)
    model, run = train(
        config(max_steps=None, epochs=1, strategy="gist", guide="fake"),
        student=tiny_student(),
        guide=FakeGuide(),
        train_dataset=pairs(48),
        progress=False,
    )
    guide.max_seq_length = 16  # shorter than the student's 32: online mode re-tokenises (reads the tokenizer)
    _, online = train(
        config(max_steps=2, strategy="gist", guide="model", guide_mode="online", lr=1e-3),
        student=student,
        guide=guide,
        train_dataset=pairs(48),
        progress=False,
    )
    from datasets import Dataset, DatasetDict

    triplets = Dataset.from_dict(
        {
            "anchor": [f"a question about topic {i}" for i in range(48)],
            "positive": [f"an answer on topic {i}" for i in range(48)],
            "negative": [f"an unrelated remark {i}" for i in range(48)],
        }
    )
    _, per_source = train(  # per-source batches: two columns here, three there
        config(max_steps=None, epochs=1, strategy="gist", guide="fake"),
        student=tiny_student(),
        guide=FakeGuide(),
        train_dataset=DatasetDict({"pairs": pairs(48).remove_columns("source"), "triplets": triplets}),
        progress=False,
    )
    mine = {
        "per_source_steps": per_source.steps,
        "steps": run.steps,
        "checksum": checksum(model),
        "drop_rate": [d.drop_rate for d in run.diagnostics],
        "online_steps": online.steps,
    }
    everyone = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, mine)
    if dist.get_rank() == 0:
        (out / "train.json").write_text(json.dumps(everyone))
    dist.barrier()  # both ranks tear down together (as the other workers do)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
