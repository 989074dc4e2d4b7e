"""A persisted cache of guide vectors, looked up by the exact text (GISTEmbed, arXiv 2402.16829).

A guide is frozen, so each unique training text is embedded once per key (guide fingerprint incl.
weights and revision, ``max_seq_len``, normalisation, dtype) and reused by every epoch, trial and
run. One file per key, ``<cache_dir>/guides/<key>.guide``:

    8 bytes little-endian header length | JSON header | padding to 64 bytes | matrix (rows, dim)

The header holds the format version, the key's parts, the dtype, the shape, the text hashes (row
order) and a SHA-256 over hashes and matrix. The matrix is memory-mapped. Writes go to a temporary
file then ``os.replace`` (atomic), so readers never see half a file; a file whose checksum does
not match is removed with a warning and rebuilt. New texts are kept in memory until ``save()``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
_ALIGN = 64


def text_hash(text: str) -> int:
    """64-bit BLAKE2b hash of the exact text as a signed int (same as ``harness.loss.text_ids``)."""
    return int.from_bytes(
        hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little", signed=True
    )


def cache_key(fingerprint: str, max_seq_len: int | None, normalize: bool, dtype: str) -> str:
    """File stem of a cache: a digest of everything that changes the vectors."""
    parts = json.dumps([fingerprint, max_seq_len, normalize, dtype])
    return hashlib.sha256(parts.encode()).hexdigest()[:24]


class GuideCache:
    """Guide vectors by text hash: a memory-mapped matrix on disk plus rows added since opening.

    Args:
        path: the ``.guide`` file (created on first ``save()``); None keeps the cache in memory.
        dimension: vector size.
        dtype: "float32" or "float16" storage; lookups always return float32.
        meta: key parts recorded in the header (fingerprint, max_seq_len, normalize).
    """

    def __init__(
        self, path: Path | None, dimension: int, dtype: str = "float32", meta: dict[str, Any] | None = None
    ) -> None:
        if dtype not in ("float32", "float16"):
            raise ValueError(f"dtype must be float32 or float16, got {dtype!r}")
        self.path = Path(path) if path is not None else None
        self.dimension = dimension
        self.dtype = dtype
        self.meta = dict(meta or {})
        self._matrix: np.ndarray = np.zeros((0, dimension), dtype=dtype)
        self._index: dict[int, int] = {}
        self._new: list[np.ndarray] = []
        self._new_hashes: list[int] = []
        self._open()

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, text: str) -> bool:
        return text_hash(text) in self._index

    def lookup(
        self,
        texts: list[str],
        embed_fn: Callable[[list[str]], Tensor],
        batch_size: int = 64,
        progress: bool = False,
    ) -> Tensor:
        """Vectors of ``texts`` (N, D) float32; texts not cached yet are embedded and added."""
        hashes = [text_hash(t) for t in texts]
        missing = {h: t for h, t in zip(hashes, texts, strict=True) if h not in self._index}
        if missing:
            self.add(list(missing.values()), embed_fn, batch_size=batch_size, progress=progress)
        rows = np.fromiter((self._index[h] for h in hashes), dtype=np.int64, count=len(hashes))
        return torch.from_numpy(self._rows(rows).astype(np.float32, copy=False))  # (N, D)

    def add(
        self,
        texts: list[str],
        embed_fn: Callable[[list[str]], Tensor],
        batch_size: int = 64,
        progress: bool = False,
    ) -> int:
        """Embeds the texts not cached yet, in batches with a progress bar; returns how many were new."""
        todo: dict[int, str] = {}
        for text in texts:
            h = text_hash(text)
            if h not in self._index and h not in todo:
                todo[h] = text
        # Longest first: each chunk is padded to its longest text, so similar lengths waste least.
        items = sorted(todo.items(), key=lambda item: len(item[1]), reverse=True)
        bar = tqdm(total=len(items), desc="guide embeddings", unit="text", disable=not progress or not items)
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            vectors = embed_fn([t for _, t in chunk]).detach().float().cpu().numpy()  # (b, D)
            for (h, _), vector in zip(chunk, vectors, strict=True):
                self._index[h] = len(self._index)
                self._new_hashes.append(h)
                self._new.append(vector.astype(self.dtype))
            bar.update(len(chunk))
        bar.close()
        return len(items)

    def save(self) -> None:
        """Writes the cache (old and new rows) atomically; a no-op when nothing was added."""
        if not self._new or self.path is None:
            return
        matrix = np.concatenate([np.asarray(self._matrix), np.stack(self._new)]).astype(self.dtype)
        hashes = self._hashes_in_order()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        header = {
            "version": FORMAT_VERSION,
            "dtype": self.dtype,
            "rows": int(matrix.shape[0]),
            "dimension": self.dimension,
            "meta": self.meta,
            "hashes": hashes,
            "sha256": _digest(hashes, matrix),
        }
        raw = json.dumps(header).encode()
        pad = (-(8 + len(raw))) % _ALIGN
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(struct.pack("<Q", len(raw) + pad) + raw + b" " * pad)
                out.write(np.ascontiguousarray(matrix).tobytes())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._new, self._new_hashes = [], []
        self._open()

    # -- internals ----------------------------------------------------------------------------

    def _rows(self, rows: np.ndarray) -> np.ndarray:
        on_disk = len(self._matrix)
        out = np.empty((len(rows), self.dimension), dtype=self.dtype)
        disk = rows < on_disk
        if disk.any():
            out[disk] = self._matrix[rows[disk]]
        for i in np.flatnonzero(~disk):  # rows added since the last save (few)
            out[i] = self._new[rows[i] - on_disk]
        return out

    def _hashes_in_order(self) -> list[int]:
        ordered = [0] * len(self._index)
        for h, row in self._index.items():
            ordered[row] = h
        return ordered

    def _open(self) -> None:
        if self.path is None or not self.path.exists():
            return
        try:
            header, matrix = _read(self.path)
            if header["dimension"] != self.dimension or header["dtype"] != self.dtype:
                raise ValueError("shape or dtype differ from the requested cache")
            if _digest(header["hashes"], matrix) != header["sha256"]:
                raise ValueError("checksum mismatch")
        except (OSError, ValueError, KeyError, json.JSONDecodeError, struct.error) as exc:
            logger.warning(
                "guide cache %s is unreadable (%s): removing it, it will be rebuilt", self.path, exc
            )
            self.path.unlink(missing_ok=True)
            return
        self._matrix = matrix
        self._index = {h: i for i, h in enumerate(header["hashes"])}


def _read(path: Path) -> tuple[dict[str, Any], np.ndarray]:
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    shape = (header["rows"], header["dimension"])
    matrix = np.memmap(path, dtype=header["dtype"], mode="r", offset=8 + length, shape=shape)
    return header, matrix


def _digest(hashes: list[int], matrix: np.ndarray) -> str:
    sha = hashlib.sha256(np.asarray(hashes, dtype="<i8").tobytes())
    sha.update(np.ascontiguousarray(matrix).tobytes())
    return sha.hexdigest()
