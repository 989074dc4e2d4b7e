"""GradCache glue (Gao et al. 2021, arXiv 2101.06983): mini-batches of the student, static students included.

With ``mini_batch_size`` the loss runs sentence-transformers' ``CachedLossMixin``: the batch is
embedded in mini-batches without gradients, the loss is back-propagated to those embeddings, and each
mini-batch is embedded again with gradients (replaying its random state) to finish the backward pass.
Same loss and gradients as the plain path, bounded memory. The mixin slices features along the batch
dimension, which a static-embedding student's flat token ids lack: ``padded_if_static`` gives them
one, ``flat_if_static`` takes it away again before the student sees a mini-batch.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch
from torch import Tensor

from harness.loss.st_private import RandContext, create_minibatch


def embed_minibatch(
    model: Any,
    sentence_feature: dict[str, Tensor],
    begin: int,
    end: int,
    with_grad: bool,
    copy_random_state: bool,
    random_state: RandContext | None = None,
) -> tuple[Tensor, RandContext | None]:
    """``CachedLossMixin.embed_minibatch`` for ``model``, plus static students (see ``padded_if_static``)."""
    grad_context = nullcontext if with_grad else torch.no_grad
    random_state_context = nullcontext() if random_state is None else random_state
    minibatch = flat_if_static(create_minibatch(sentence_feature, begin, end))
    with random_state_context, grad_context():
        random_state = RandContext(*minibatch.values()) if copy_random_state else None
        reps = model(minibatch)["sentence_embedding"]  # (b, D)
    return reps, random_state


def embed_chunked(model: Any, feature: dict[str, Tensor], step: int) -> Tensor:
    """``model``'s embeddings of ``feature``'s texts, ``step`` texts at a time (the online guide), (B, D)."""
    size = feature["input_ids"].shape[0]
    parts = [
        model(create_minibatch(feature, b, b + step))["sentence_embedding"] for b in range(0, size, step)
    ]
    return torch.cat(parts)  # (B, D)


def padded_if_static(feature: dict[str, Tensor]) -> dict[str, Tensor]:
    """Static-embedding features (flat ``input_ids`` + per-text ``offsets``) as padded rows.

    GradCache slices features along the batch dimension, which flat token ids do not have; the
    padded form ``(B, L)`` with an attention mask slices like a transformer's, and
    ``flat_if_static`` turns each mini-batch back before the student sees it.
    """
    if "offsets" not in feature:
        return feature
    ids, offsets = feature["input_ids"], feature["offsets"]  # (T,), (B,)
    lengths = torch.diff(offsets, append=offsets.new_tensor([ids.numel()]))  # (B,)
    width = max(int(lengths.max()), 1) if len(lengths) else 1
    mask = torch.arange(width, device=ids.device)[None, :] < lengths[:, None]  # (B, L)
    padded = ids.new_zeros(len(offsets), width)  # (B, L)
    padded[mask] = ids  # row-major: the texts' tokens in order
    return {
        "input_ids": padded,
        "attention_mask": mask.long(),
        "static_offsets": offsets.new_zeros(len(offsets)),
    }


def flat_if_static(feature: dict[str, Tensor]) -> dict[str, Tensor]:
    """The inverse of ``padded_if_static`` for one mini-batch (no-op for other features)."""
    if "static_offsets" not in feature:
        return feature
    mask = feature["attention_mask"].bool()  # (b, L)
    lengths = mask.sum(1)  # (b,)
    offsets = torch.cat([lengths.new_zeros(1), lengths.cumsum(0)[:-1]])  # (b,)
    return {"input_ids": feature["input_ids"][mask], "offsets": offsets}
