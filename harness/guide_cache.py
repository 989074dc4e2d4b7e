"""A persisted cache of guide vectors, looked up by the exact text (GISTEmbed, arXiv 2402.16829).

A guide is frozen, so each unique training text is embedded once per key (guide fingerprint incl.
weights and revision, ``max_seq_len``, normalisation, dtype) and reused by every epoch, trial and
run. One file per key, ``<cache_dir>/guides/<key>.guide``:

    8 bytes little-endian header length | JSON header | padding to 64 bytes | matrix (rows, dim)

The header holds the format version, the key's parts, the dtype, the shape, the text hashes (row
order) and a SHA-256 over hashes and matrix. New texts are kept in memory until ``save()``.

Safe under concurrency (several ranks or workers sharing one cache folder):

* header and matrix are read through one file descriptor (the matrix is memory-mapped from it), so
  a reader holds one version of the file even while a writer replaces it;
* writes go to a temporary file then ``os.replace`` (atomic), under a ``filelock`` on
  ``<key>.guide.lock``; ``save()`` merges the rows on disk with its own, so concurrent fillers add
  up instead of the last save winning, and ``filling()`` holds the lock across fill-and-save so a
  second filler waits and then finds the rows already there;
* a corrupt, truncated or garbage file is removed with a warning and rebuilt, never a crash; it is
  removed under the lock and only if it is still the file that was read (a writer's fresh file is
  never deleted).
"""

from __future__ import annotations

import hashlib
import json
import logging
import mmap
import os
import struct
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from filelock import FileLock
from torch import Tensor
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
_ALIGN = 64
# Everything that a damaged file can raise while it is parsed: bad JSON, a header length that
# overflows or asks for terabytes, a shape that does not fit the bytes, missing keys...
_UNREADABLE = (
    OSError,
    ValueError,
    KeyError,
    TypeError,
    OverflowError,
    MemoryError,
    json.JSONDecodeError,
    struct.error,
)


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
        self._lock: FileLock | None = None
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
        """Writes the rows on disk plus this cache's new ones atomically; a no-op when nothing was added.

        Under the file lock the file is read again first, so rows another process saved since this
        cache opened are kept (merged), not overwritten.
        """
        if not self._new or self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked():
            disk_hashes, disk_matrix = self._read_valid()
            on_disk = set(disk_hashes)
            mine = [(h, row) for h, row in self._index.items() if h not in on_disk]
            extra = self._rows(np.fromiter((row for _, row in mine), dtype=np.int64, count=len(mine)))
            matrix = np.concatenate([np.asarray(disk_matrix), extra]).astype(self.dtype)  # (rows, D)
            self._write(disk_hashes + [h for h, _ in mine], matrix)
            self._new, self._new_hashes = [], []
            self._open()

    @contextmanager
    def filling(self) -> Iterator[None]:
        """Holds the file lock across a fill-and-save, re-reading the file first.

        A second process filling the same cache waits here, then finds the first one's rows on disk
        and embeds only what is still missing (``NeuralGuide.warm`` fills inside this).
        """
        if self.path is None:
            yield
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked():
            self._reopen()
            yield
            self.save()

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

    def _write(self, hashes: list[int], matrix: np.ndarray) -> None:
        assert self.path is not None
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

    def _locked(self) -> Any:
        """The inter-process lock of this cache file (re-entrant within one process)."""
        if self.path is None:
            return nullcontext()
        if self._lock is None:
            self._lock = FileLock(str(self.path) + ".lock", timeout=-1)
        return self._lock

    def _reopen(self) -> None:
        """Picks up rows saved by other processes, keeping the rows added here since."""
        pending = list(zip(self._new_hashes, self._new, strict=True))
        self._matrix = np.zeros((0, self.dimension), dtype=self.dtype)
        self._index, self._new, self._new_hashes = {}, [], []
        self._open()
        for h, vector in pending:
            if h not in self._index:
                self._index[h] = len(self._index)
                self._new_hashes.append(h)
                self._new.append(vector)

    def _read_valid(self) -> tuple[list[int], np.ndarray]:
        """Hashes and matrix of the file on disk, or nothing when it is missing or unreadable."""
        empty: tuple[list[int], np.ndarray] = ([], np.zeros((0, self.dimension), dtype=self.dtype))
        if self.path is None:
            return empty
        try:
            header, matrix, _ = self._checked_read()
        except _UNREADABLE:
            return empty  # rewritten whole by the caller, under the lock
        return list(header["hashes"]), matrix

    def _checked_read(self) -> tuple[dict[str, Any], np.ndarray, tuple[int, int]]:
        """``_read`` plus the checks against this cache (dimension, dtype, checksum)."""
        assert self.path is not None
        header, matrix, identity = _read(self.path)
        if header["dimension"] != self.dimension or header["dtype"] != self.dtype:
            raise ValueError("shape or dtype differ from the requested cache")
        if len(header["hashes"]) != header["rows"]:
            raise ValueError("row count and hashes differ")
        if _digest(header["hashes"], matrix) != header["sha256"]:
            raise ValueError("checksum mismatch")
        return header, matrix, identity

    def _open(self) -> None:
        if self.path is None:
            return
        try:
            header, matrix, _ = self._checked_read()
        except FileNotFoundError:
            return
        except _UNREADABLE as exc:
            self._discard(exc)
            return
        self._matrix = matrix
        self._index = {h: i for i, h in enumerate(header["hashes"])}

    def _discard(self, exc: BaseException) -> None:
        """Removes an unreadable file, under the lock and only if no writer has replaced it since.

        Under the lock no writer is mid-way, so the file is read once more: a fresh valid file
        (a writer's ``os.replace`` won the race) is taken, not removed.
        """
        assert self.path is not None
        with self._locked():
            try:
                header, matrix, _ = self._checked_read()
            except FileNotFoundError:
                return
            except _UNREADABLE as again:
                logger.warning(
                    "guide cache %s is unreadable (%s): removing it, it will be rebuilt", self.path, again
                )
                self.path.unlink(missing_ok=True)
                return
        logger.info("guide cache %s was replaced while read (%s): using the new file", self.path, exc)
        self._matrix = matrix
        self._index = {h: i for i, h in enumerate(header["hashes"])}


def _read(path: Path) -> tuple[dict[str, Any], np.ndarray, tuple[int, int]]:
    """Header, memory-mapped matrix and (device, inode) of one version of the file.

    One open: the header is parsed and the matrix mapped from the same descriptor, so a concurrent
    ``os.replace`` cannot pair this header with another file's bytes. Every length is checked
    against the file size before anything is allocated.
    """
    with open(path, "rb") as f:
        stat = os.fstat(f.fileno())
        size = stat.st_size
        prefix = f.read(8)
        if len(prefix) < 8:
            raise ValueError(f"truncated: {size} bytes")
        (length,) = struct.unpack("<Q", prefix)
        if length > size - 8:
            raise ValueError(f"header length {length} exceeds the file ({size} bytes)")
        header = json.loads(f.read(length))
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
        rows, dimension = int(header["rows"]), int(header["dimension"])
        dtype = np.dtype(header["dtype"])
        if rows < 0 or dimension < 0 or dtype not in (np.float32, np.float16):
            raise ValueError("bad shape or dtype in the header")
        offset = 8 + length
        if offset + rows * dimension * dtype.itemsize != size:
            raise ValueError(f"truncated or padded: {size} bytes for {rows} x {dimension} {dtype}")
        if rows * dimension == 0:
            matrix = np.zeros((rows, dimension), dtype=dtype)
        else:
            buffer = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)  # outlives the descriptor
            matrix = np.frombuffer(buffer, dtype=dtype, count=rows * dimension, offset=offset)
            matrix = matrix.reshape(rows, dimension)
    return header, matrix, (stat.st_dev, stat.st_ino)


def _digest(hashes: list[int], matrix: np.ndarray) -> str:
    sha = hashlib.sha256(np.asarray(hashes, dtype="<i8").tobytes())
    sha.update(np.ascontiguousarray(matrix).tobytes())
    return sha.hexdigest()
