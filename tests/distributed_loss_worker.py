"""One rank of ``test_distributed_loss``: run under ``python -m torch.distributed.run --nproc_per_node 2``.

Arguments: the output folder and a JSON list of case names. Every case runs on this rank's 8 of the
16 rows; losses are averaged and parameter gradients averaged over ranks (what DDP does), and rank 0
writes ``results.pt``.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sentence_transformers.sentence_transformer.losses import GISTEmbedLoss  # noqa: E402
from test_distributed_loss import (  # noqa: E402
    SOURCE_NAMES,
    TEMPERATURE,
    all_texts,
    features_for,
    grads_of,
    guide_for,
    loss_for,
    rows,
    source_of,
    student_for,
)
from test_loss import tiny_model  # noqa: E402

from harness.loss import GuidedInBatchLoss  # noqa: E402


def averaged(value: torch.Tensor) -> torch.Tensor:
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / dist.get_world_size()


def averaged_grads(model) -> dict[str, torch.Tensor]:
    return {name: averaged(grad) for name, grad in grads_of(model).items()}


def local_rows(absent: bool = False):
    batch, labels = rows(absent)
    per_rank = len(batch) // dist.get_world_size()
    begin = dist.get_rank() * per_rank
    return batch, batch[begin : begin + per_rank], labels[begin : begin + per_rank]


# transformers saves a model on the main process only once a process group exists, so the tiny
# transformers (saved to a folder, then loaded) are built before it, and copied for each case.
MODELS: dict[str, object] = {}


def fresh(name: str):
    return copy.deepcopy(MODELS[name]) if name in MODELS else student_for(name)


def run_case(case: str) -> dict:
    import harness.loss.guided as guided

    absent = case.endswith("-absent")
    batch, mine, labels = local_rows(absent)
    student = fresh(case.split("-")[2])
    loss_fn = loss_for(case, student, guide_for(all_texts(batch)))
    loss_fn.source_names = SOURCE_NAMES
    features, label_tensor = features_for(loss_fn, mine, labels, source_of(batch) if absent else None)
    shapes, original = [], guided.score_rows

    def spy(*args, **kwargs):  # records the logits' shape of each row chunk
        scores = original(*args, **kwargs)
        shapes.append(list(scores.logits.shape))
        return scores

    guided.score_rows = spy
    try:
        loss = loss_fn(features, label_tensor)
    finally:
        guided.score_rows = original
    loss.backward()
    return {
        "loss": float(averaged(loss)),
        "grads": averaged_grads(student),
        "diagnostics": loss_fn.diagnostics_history[-1],
        "logits_shapes": shapes,
        "by_source": loss_fn.diagnostics_by_source(),
    }


def sentence_transformers_case() -> dict:
    """Ours (online gist, gathered) against ``GISTEmbedLoss(gather_across_devices=True)``."""
    batch, mine, _ = local_rows()
    columns = [[row[c] for row in mine] for c in ("anchor", "positive", "negative")]
    out = {}
    for blocks in ("none", "default"):
        toggles = {"contrast_anchors": blocks == "default", "contrast_positives": blocks == "default"}
        for name in ("st", "ours"):
            student, guide = fresh("transformer"), fresh("guide")
            if name == "st":
                loss_fn = GISTEmbedLoss(
                    student, guide, temperature=TEMPERATURE, gather_across_devices=True, **toggles
                )
            else:
                loss_fn = GuidedInBatchLoss(
                    student, guide, temperature=TEMPERATURE, guide_mode="online", **toggles
                )
            loss = loss_fn([student.preprocess(texts) for texts in columns], None)
            loss.backward()
            suffix = "" if blocks == "none" else "_default"
            out[f"{name}{suffix}_loss"] = float(averaged(loss))
            if blocks == "none":
                out[f"{name}_grads"] = averaged_grads(student)
    return out


def main() -> None:
    folder, cases = Path(sys.argv[1]), json.loads(sys.argv[2])
    torch.set_num_threads(1)
    MODELS.update(transformer=tiny_model(0), guide=tiny_model(1))
    dist.init_process_group("gloo")
    results = {"world_size": dist.get_world_size(), "cases": {c: run_case(c) for c in cases}}
    results["sentence_transformers"] = sentence_transformers_case()
    if dist.get_rank() == 0:
        torch.save(results, folder / "results.pt")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
