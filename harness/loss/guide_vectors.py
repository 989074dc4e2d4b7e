"""Where a batch's guide vectors come from: the collator's cache lookup, or the guide re-run online.

``guide_mode="cached"``: the collator looked each text up in a guide from
``harness.guides.build_guide`` and hands the vectors over with the batch. ``guide_mode="online"``:
the guide (a ``SentenceTransformer``) embeds every batch again; where the student's and the guide's
vocabularies differ, or the guide would truncate earlier, it reads the student's tokens decoded back
to text, exactly as sentence-transformers' ``GISTEmbedLoss`` does (lossy: casing, ``[UNK]``, spacing).
"""

from __future__ import annotations

from typing import Any

import torch
from sentence_transformers.util import batch_to_device
from torch import Tensor

from harness.errors import UserError
from harness.loss import distributed
from harness.loss.gradcache import embed_chunked
from harness.loss.st_private import embed_columns


def check_guide(guide: Any, guide_mode: str, needed_by: str | None) -> None:
    """Raises a ``UserError`` when ``guide`` cannot serve the loss.

    Args:
        guide: the loss's guide, or None.
        guide_mode: "cached" or "online".
        needed_by: what reads guide similarities ("strategy 'gist'"), or None when nothing does.
    """
    if guide is None:
        if needed_by is not None:
            raise UserError(f"{needed_by} needs a guide; got guide=None")
        return
    if guide_mode == "cached" and not callable(getattr(guide, "embed", None)):
        raise UserError(
            "guide_mode='cached' needs a guide from harness.guides.build_guide(...) "
            f"(with .embed(texts)), got {type(guide).__name__}; or use guide_mode='online'"
        )


def cached_vectors(cached: list[Tensor] | None) -> list[Tensor]:
    """The collator's guide vectors, one (B, D_guide) per column; a ``UserError`` without them."""
    if cached is None:
        raise UserError(
            "guide_mode='cached' needs the collator's guide vectors: pass "
            "data_collator=make_data_collator(loss) to SentenceTransformerTrainer"
        )
    return cached


class OnlineGuide:
    """A ``SentenceTransformer`` guide that embeds every batch of the student's features again.

    Args:
        student: the student at construction (its tokenizer and ``max_seq_length`` decide retokenising).
        guide: the guide ``SentenceTransformer``.
    """

    def __init__(self, student: Any, guide: Any) -> None:
        from transformers import PreTrainedTokenizerBase

        student_tokenizer = getattr(student, "tokenizer", None)
        guide_tokenizer = getattr(guide, "tokenizer", None)
        if not (
            isinstance(student_tokenizer, PreTrainedTokenizerBase)
            and isinstance(guide_tokenizer, PreTrainedTokenizerBase)
        ):
            raise UserError(
                "guide_mode='online' needs a SentenceTransformer guide and student with HF tokenizers"
            )
        self.guide = guide
        # Exactly GISTEmbedLoss's rule: decode the student's tokens when the vocabularies differ or
        # the guide would truncate earlier. Decoding is lossy (casing, [UNK], spacing): see README.
        self.must_retokenize = (
            student_tokenizer.get_vocab() != guide_tokenizer.get_vocab()
            or guide.max_seq_length < student.max_seq_length
        )

    def embed(
        self, student: Any, features: list[dict[str, Tensor]], mini_batch_size: int | None
    ) -> list[Tensor]:
        """The guide's (B, D_guide) vectors of each column, ``mini_batch_size`` texts at a time if set.

        Args:
            student: the student now (the Trainer may have wrapped it in DDP), whose tokenizer decodes.
            features: the student's features, one dict per column.
            mini_batch_size: GradCache's mini-batch size, or None (one pass, like ``GISTEmbedLoss``).
        """
        with torch.no_grad():
            guide_features = [self._features(student, f) for f in features]
            if mini_batch_size is None:  # exactly GISTEmbedLoss's call, padding included
                return embed_columns(self.guide, guide_features)
            return [embed_chunked(self.guide, f, mini_batch_size) for f in guide_features]

    def _features(self, student: Any, feature: dict[str, Tensor]) -> dict[str, Tensor]:
        if not self.must_retokenize:
            return dict(feature)
        tokenizer = distributed.unwrap(student).tokenizer  # the Trainer may hand over its DDP wrapper
        decoded = tokenizer.batch_decode(feature["input_ids"], skip_special_tokens=True)
        return batch_to_device(self.guide.preprocess(decoded), self.guide.device)
