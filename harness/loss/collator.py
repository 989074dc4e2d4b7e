"""A data collator that hands the loss each text's id and, in cached mode, its guide vector.

sentence-transformers' Trainer gives a loss only tokenized features (``collect_features`` groups
batch keys by column prefix), and decoding tokens back to text is lossy (lower-casing, truncation,
``[UNK]``). So the collator, which still sees the raw texts, adds per text column ``c``:

* ``c_gist_text_id``: (B,) int64, a 64-bit BLAKE2b hash of the exact text (identity checks);
* ``c_gist_guide_embedding``: (B, D) float32 guide vectors, looked up in the guide cache
  (``guide_mode="cached"`` only);
* ``c_gist_guide_seconds``: (1,) seconds the lookup took (first text column only).

The loss pops these keys before the student sees the features, so models never receive them.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sentence_transformers.sentence_transformer.data_collator import SentenceTransformerDataCollator

TEXT_ID = "gist_text_id"
GUIDE_EMBEDDING = "gist_guide_embedding"
GUIDE_SECONDS = "gist_guide_seconds"
BATCH_KEYS = (TEXT_ID, GUIDE_EMBEDDING, GUIDE_SECONDS)


def text_ids(texts: list[str]) -> np.ndarray:
    """64-bit BLAKE2b hashes of the exact texts, as int64 (collisions ~1e-8 at a million texts)."""
    digests = b"".join(hashlib.blake2b(t.encode("utf-8"), digest_size=8).digest() for t in texts)
    return np.frombuffer(digests, dtype="<i8").copy()


@dataclass
class GuidedDataCollator(SentenceTransformerDataCollator):
    """``SentenceTransformerDataCollator`` plus text ids and cached guide vectors (see module doc).

    Attributes:
        guide: an object with ``embed(texts) -> Tensor (N, D)`` (a ``harness.guides`` guide), or None.
    """

    guide: Any = field(default=None, repr=False)

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        batch = super().__call__(features)
        skip = {"dataset_name", *self.valid_label_columns}
        columns = [c for c in features[0] if c not in skip]
        texts = {c: [row[c] for row in features] for c in columns}
        for c in columns:
            batch[f"{c}_{TEXT_ID}"] = torch.from_numpy(text_ids(texts[c]))  # (B,)
        if self.guide is not None:
            start = time.perf_counter()
            flat = [t for c in columns for t in texts[c]]
            vectors = self.guide.embed(flat).float()  # (columns * B, D)
            for c, part in zip(columns, vectors.split(len(features)), strict=True):
                batch[f"{c}_{GUIDE_EMBEDDING}"] = part  # (B, D)
            batch[f"{columns[0]}_{GUIDE_SECONDS}"] = torch.tensor([time.perf_counter() - start])
        return batch
