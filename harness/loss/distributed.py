"""Gathering the guided loss's batch across processes (one process per device, ``torch.distributed``).

With N processes of B rows each, every rank embeds its own B rows, then the columns are gathered so
that each rank scores its B anchors against all N x B candidates, exactly as one process would score
a batch of N x B (GISTEmbed, arXiv 2402.16829: the batch is the pool of negatives). Gathered are the
student embeddings (with gradients: ``torch.distributed.nn.functional.all_gather``, whose backward
sums each rank's gradient into the rows it owns, as sentence-transformers'
``MultipleNegativesRankingLoss(gather_across_devices=True)`` does), and, without gradients, the guide
vectors, text ids, labels and any per-row tensors the collator adds. Anchors are gathered too, so
the anchor-anchor block spans the whole batch.

DDP averages parameter gradients over the N ranks; each rank's loss is the mean over its own rows,
so the averaged gradient is that of the mean over all N x B rows: a 2 x 8 run equals a 1 x 16 run.

Only this module talks to ``torch.distributed`` for the loss; with no process group (or one
process) every helper is the identity.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor


def active() -> bool:
    """Whether a process group with more than one process is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """The number of processes (1 without a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def unwrap(model: Any) -> Any:
    """The model under DDP (``.module``) and ``torch.compile`` (``._orig_mod``) wrappers."""
    while True:
        inner = (
            getattr(model, "module", None)
            if isinstance(model, torch.nn.parallel.DistributedDataParallel)
            else None
        )
        inner = inner if inner is not None else getattr(model, "_orig_mod", None)
        if inner is None:
            return model
        model = inner


def _comm_device(tensor: Tensor) -> torch.device:
    """Where a collective needs the tensor: the current CUDA device for NCCL, else the CPU."""
    if dist.get_backend() == dist.Backend.NCCL:
        return torch.device("cuda", torch.cuda.current_device())
    return tensor.device if tensor.device.type == "cpu" else torch.device("cpu")


def gather_with_grad(tensor: Tensor) -> Tensor:
    """All ranks' ``tensor`` (B, ...) concatenated in rank order, (N * B, ...), gradients flowing back.

    The backward pass sums every rank's gradient for rank r's rows into rank r's ``tensor``.
    """
    if not active():
        return tensor
    from torch.distributed.nn.functional import all_gather

    parts = list(all_gather(tensor.contiguous()))
    parts[rank()] = tensor  # this rank's own rows keep their autograd history untouched
    return torch.cat(parts)  # (N * B, ...)


def gather(tensor: Tensor) -> Tensor:
    """All ranks' ``tensor`` (B, ...) concatenated in rank order, (N * B, ...), without gradients.

    Booleans travel as uint8 (not every backend reduces bools); the result is on ``tensor``'s device.
    """
    if not active():
        return tensor
    device, dtype = tensor.device, tensor.dtype
    wire = tensor.detach().to(_comm_device(tensor))
    if dtype == torch.bool:
        wire = wire.to(torch.uint8)
    parts = [torch.empty_like(wire) for _ in range(world_size())]
    dist.all_gather(parts, wire.contiguous())
    return torch.cat(parts).to(device=device, dtype=dtype)  # (N * B, ...)


def gather_optional(tensors: list[Tensor] | None) -> list[Tensor] | None:
    """``gather`` of each tensor of a list (one per input column); None stays None."""
    return None if tensors is None else [gather(t) for t in tensors]


def all_reduce_sum(tensor: Tensor) -> Tensor:
    """``tensor`` summed over ranks, in place (the identity without a process group)."""
    if not active():
        return tensor
    wire = tensor.to(_comm_device(tensor))
    dist.all_reduce(wire, op=dist.ReduceOp.SUM)
    if wire is not tensor:
        tensor.copy_(wire.to(tensor.device))
    return tensor


def check_same_layout(rows: int, columns: int, device: torch.device, **present: Any) -> None:
    """Raises on every rank when the ranks' batches differ in shape (a gather needs equal shapes).

    Compared: rows per column, number of columns, and which optional inputs exist (``present``:
    name -> the value or None, e.g. labels, guide vectors). Batches drawn per source
    (``DatasetDict``) can give ranks different columns at one step; mixed batches cannot.
    """
    if not active():
        return
    layout = [rows, columns, *(int(v is not None) for _, v in sorted(present.items()))]
    mine = torch.tensor(layout, device=device)
    every = gather(mine[None, :])  # (N, k)
    if bool((every != every[0]).any()):
        names = ["rows", "columns", *sorted(present)]
        shown = "; ".join(
            f"rank {r}: " + ", ".join(f"{n}={v}" for n, v in zip(names, row, strict=True))
            for r, row in enumerate(every.tolist())
        )
        raise ValueError(
            f"gathered negatives need the same batch layout on every rank ({shown}): drop the last "
            "short batch (dataloader_drop_last) and give every rank the same columns (mixed batches)"
        )


def gather_extra(extra: dict[str, Any]) -> dict[str, Any]:
    """The loss's per-row extras gathered: tensors, and lists of per-column tensors (None kept)."""
    out: dict[str, Any] = {}
    for key, value in extra.items():
        if isinstance(value, Tensor):
            out[key] = gather(value)
        elif isinstance(value, list):
            out[key] = [gather(v) if isinstance(v, Tensor) else v for v in value]
        else:
            out[key] = value
    return out


def token_text_ids(features: list[dict[str, Tensor]]) -> list[Tensor]:
    """Text ids from token ids, comparable across ranks: a 64-bit hash of each text's tokens.

    The loss's own fallback (``torch.unique`` over the batch) numbers texts per process, which
    would make two ranks' different texts look identical once gathered. Handles padded
    (``input_ids`` + ``attention_mask``) and static (flat ``input_ids`` + ``offsets``) features.
    """
    out = []
    for feature in features:
        ids = feature["input_ids"].detach().cpu()
        if "offsets" in feature:
            bounds = [*feature["offsets"].tolist(), ids.numel()]
            rows = [ids[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        else:
            mask = feature.get("attention_mask", torch.ones_like(ids)).detach().cpu().bool()
            rows = [row[keep] for row, keep in zip(ids, mask, strict=True)]
        digests = b"".join(
            hashlib.blake2b(row.numpy().astype("<i8").tobytes(), digest_size=8).digest() for row in rows
        )
        hashed = torch.from_numpy(np.frombuffer(digests, dtype="<i8").copy())  # (B,)
        out.append(hashed.to(feature["input_ids"].device))
    return out


def scoring_columns(
    local: list[Tensor], gathers: bool, with_backward: bool
) -> tuple[list[Tensor], list[Tensor] | None]:
    """The student columns a rank scores its anchors against, and the GradCache leaves (or None).

    Args:
        local: this rank's (B, D) student embeddings, one per column.
        gathers: whether the loss gathers across processes; if not, ``local`` itself.
        with_backward: GradCache's per-chunk backward: fresh leaves (see ``leaf_columns``), whose
            gradients ``reduce_leaf_grads`` then sums over ranks.

    Returns:
        every rank's columns, (N * B, D) each, and the leaves when ``with_backward``.
    """
    if not gathers:
        return local, None
    if with_backward:
        leaves = leaf_columns(local)
        return leaves, leaves
    if torch.is_grad_enabled():
        return [gather_with_grad(s) for s in local], None
    return [gather(s) for s in local], None


def leaf_columns(local: list[Tensor]) -> list[Tensor]:
    """GradCache: gathered columns as fresh leaves, so each row chunk's backward stays on this rank.

    ``reduce_leaf_grads`` then sums the leaves' gradients over ranks and hands each rank the rows it
    owns (what the backward of ``gather_with_grad`` does at once).
    """
    return [gather(column.detach()).requires_grad_() for column in local]


def reduce_leaf_grads(local: list[Tensor], leaves: list[Tensor], offset: int) -> None:
    """Back-propagates the summed gradients of this rank's rows of ``leaves`` into ``local``."""
    for column, leaf in zip(local, leaves, strict=True):
        grad = leaf.grad if leaf.grad is not None else torch.zeros_like(leaf)  # (N * B, D)
        grad = all_reduce_sum(grad.contiguous())
        column.backward(grad[offset : offset + column.shape[0]])


def reduce_tally(tally: Any) -> Any:
    """Sums a per-step diagnostics tally (``harness.loss.diagnostics.StepTally``) over ranks, in place.

    The tally's fields are merged by type, so fields added later reduce too: tensors and numbers
    are summed, booleans or-ed, lists of tensors or tuples (per-row records) concatenated in rank
    order, dicts merged key by key; ``guide_seconds`` takes the slowest rank (the step waits for
    it); anything else (the block layout) stays local.
    """
    if not active():
        return tally
    state = {k: _to_cpu(v) for k, v in vars(tally).items()}
    states: list[Any] = [None] * world_size()
    dist.all_gather_object(states, state)
    for key, value in state.items():
        values = [s[key] for s in states]
        if key == "guide_seconds":
            merged: Any = max(values)
        else:
            merged = _merge(values, value)
        setattr(tally, key, _like(merged, getattr(tally, key)))
    return tally


def _to_cpu(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.detach().cpu()
    if isinstance(value, (list, tuple)):
        return type(value)(_to_cpu(v) for v in value)
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    return value


def _merge(values: list[Any], local: Any) -> Any:
    if isinstance(local, bool):
        return any(values)
    if isinstance(local, (int, float)):
        return sum(values)
    if isinstance(local, Tensor):
        return torch.stack(values).sum(0) if all(v.shape == local.shape for v in values) else local
    if isinstance(local, list) and all(isinstance(v, (Tensor, tuple)) for value in values for v in value):
        return [v for value in values for v in value]  # per-row records: every rank's rows, in rank order
    if isinstance(local, dict):
        keys = {k for value in values for k in value}
        out = {}
        for key in keys:
            present = [value[key] for value in values if key in value]
            out[key] = _merge(present, present[0])
        return out
    return local


def _like(merged: Any, original: Any) -> Any:
    """Puts merged tensors back on the device of the tally's own."""
    if isinstance(original, Tensor) and isinstance(merged, Tensor):
        return merged.to(original.device)
    if isinstance(original, list) and original and isinstance(original[0], Tensor):
        return [m.to(original[0].device) for m in merged]
    return merged


def rank_seed(seed: int) -> int:
    """The seed of this rank's random generator: ``seed + rank`` (rank 0 keeps ``seed``)."""
    return seed + rank()


def trainer_arguments() -> dict[str, Any]:
    """``TrainingArguments`` of a run launched on several processes (``WORLD_SIZE`` > 1), else none.

    NCCL on CUDA; gloo on the CPU, with ``use_cpu``: without it transformers does not enter DDP on
    a machine without CUDA, and every process trains its own copy on the whole data.
    """
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return {}
    if torch.cuda.is_available():
        return {"ddp_backend": "nccl"}
    return {"ddp_backend": "gloo", "use_cpu": True}


def rank_aligned_sampler(order: str) -> Any:
    """The multi-dataset batch sampler ``order`` ("proportional", "round_robin") for N processes.

    With several processes the Trainer deals the sampler's batches to the ranks in turn (batch
    ``k * N + r`` to rank ``r``), so sentence-transformers' own samplers would give the ranks
    batches of different sources at one step: a gathered batch would mix sources and their columns
    (one rank with hard negatives, one without). This sampler draws ``N`` consecutive batches from
    one source each time, so every rank's batch at a step comes from the same source and the
    gathered batch is one source's, N times as large. One process: ``order`` unchanged.
    """
    if world_size() == 1:
        return order
    from itertools import accumulate

    from sentence_transformers.base.sampler import MultiDatasetDefaultBatchSampler
    from torch.utils.data import SubsetRandomSampler

    ranks = world_size()

    class RankAlignedBatchSampler(MultiDatasetDefaultBatchSampler):
        def _groups(self) -> list[int]:
            return [len(sampler) // ranks for sampler in self.batch_samplers]  # (datasets,)

        def __iter__(self):  # noqa: ANN204 - BatchSampler's
            if self.generator is not None and self.seed is not None:
                self.generator.manual_seed(self.seed + self.epoch)
            offsets = [0, *accumulate(len(d) for d in self.dataset.datasets)]
            iterators = [iter(sampler) for sampler in self.batch_samplers]
            groups = self._groups()
            if order == "round_robin":
                picks = [d for _ in range(min(groups)) for d in range(len(groups))]
            else:
                indices = [d for d, n in enumerate(groups) for _ in range(n)]
                picks = list(SubsetRandomSampler(indices, generator=self.generator))
            for dataset in picks:
                try:
                    group = [next(iterators[dataset]) for _ in range(ranks)]
                except StopIteration:
                    continue
                for batch in group:
                    yield [index + offsets[dataset] for index in batch]

        def __len__(self) -> int:
            groups = self._groups()
            return ranks * (min(groups) * len(groups) if order == "round_robin" else sum(groups))

    RankAlignedBatchSampler.__name__ = f"RankAligned{order.title().replace('_', '')}BatchSampler"
    return RankAlignedBatchSampler
