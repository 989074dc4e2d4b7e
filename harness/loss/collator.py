"""A data collator that hands the loss each text's id and, in cached mode, its guide vector.

sentence-transformers' Trainer gives a loss only tokenized features (``collect_features`` groups
batch keys by column prefix), and decoding tokens back to text is lossy (lower-casing, truncation,
``[UNK]``). So the collator, which still sees the raw texts, adds per text column ``c``:

* ``c_gist_text_id``: (B,) int64, a 64-bit BLAKE2b hash of the exact text (identity checks);
* ``c_gist_guide_embedding``: (B, D) float32 guide vectors, looked up in the guide cache
  (``guide_mode="cached"`` only);
* ``c_gist_guide_seconds``: (1,) seconds the lookup took (first text column only);
* ``c_gist_present``: (B,) bool, per negative column: False where the row has no negative of its
  own. A mixed batch can join a source with hard negatives and one without; the dataset then
  holds the row's anchor text as a placeholder (``harness.data.ABSENT`` convention), which the
  loss must not use as a candidate;
* ``anchor_gist_source``: (B,) int64, the index of each row's training source in
  ``source_names`` (-1 when unknown), for diagnostics by source.

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
PRESENT = "gist_present"
SOURCE = "gist_source"
BATCH_KEYS = (TEXT_ID, GUIDE_EMBEDDING, GUIDE_SECONDS, PRESENT, SOURCE)


def text_ids(texts: list[str]) -> np.ndarray:
    """64-bit BLAKE2b hashes of the exact texts, as int64 (collisions ~1e-8 at a million texts)."""
    digests = b"".join(hashlib.blake2b(t.encode("utf-8"), digest_size=8).digest() for t in texts)
    return np.frombuffer(digests, dtype="<i8").copy()


def pair_keys(anchor_ids: np.ndarray, positive_ids: np.ndarray) -> np.ndarray:
    """One id per (anchor, positive) pair, mixed from the two texts' ids (``text_ids``)."""
    mixed = anchor_ids.view(np.uint64) * np.uint64(0x100000001B3) ^ positive_ids.view(np.uint64)
    return mixed.view(np.int64)


@dataclass
class GuidedDataCollator(SentenceTransformerDataCollator):
    """``SentenceTransformerDataCollator`` plus text ids and cached guide vectors (see module doc).

    Attributes:
        guide: an object with ``embed(texts) -> Tensor (N, D)`` (a ``harness.guides`` guide), or None.
        source_of: pair id of (anchor, positive) -> source index (see ``pair_keys``);
            empty: sources unknown (-1).
    """

    guide: Any = field(default=None, repr=False)
    source_of: dict[int, int] = field(default_factory=dict, repr=False)

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        batch = super().__call__(features)
        skip = {"dataset_name", *self.valid_label_columns}
        columns = [c for c in features[0] if c not in skip]
        texts = {c: [row[c] for row in features] for c in columns}
        ids = {c: text_ids(texts[c]) for c in columns}
        for c in columns:
            batch[f"{c}_{TEXT_ID}"] = torch.from_numpy(ids[c])  # (B,)
            if c.startswith("negative"):  # a placeholder (the row's own anchor) marks no negative
                present = [n != a for n, a in zip(texts[c], texts["anchor"], strict=True)]
                batch[f"{c}_{PRESENT}"] = torch.tensor(present, dtype=torch.bool)  # (B,)
        if self.source_of:
            keys = pair_keys(ids["anchor"], ids["positive"])
            sources = [self.source_of.get(int(k), -1) for k in keys]
            batch[f"anchor_{SOURCE}"] = torch.tensor(sources, dtype=torch.long)  # (B,)
        if self.guide is not None:
            start = time.perf_counter()
            flat = [t for c in columns for t in texts[c]]
            vectors = self.guide.embed(flat).float()  # (columns * B, D)
            for c, part in zip(columns, vectors.split(len(features)), strict=True):
                batch[f"{c}_{GUIDE_EMBEDDING}"] = part  # (B, D)
            batch[f"{columns[0]}_{GUIDE_SECONDS}"] = torch.tensor([time.perf_counter() - start])
        return batch
