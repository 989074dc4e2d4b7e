"""How many tokens a model reads: ``truncate`` sets it, ``max_seq_len_of`` reads it back.

A static-embedding model (sentence-transformers' ``StaticEmbedding``) has no position limit, and its
``max_seq_length`` is read-only: there its tokenizer truncates instead.
"""

from __future__ import annotations

from typing import Any


def truncate(model: Any, max_seq_len: int) -> None:
    """Truncates a model's inputs to ``max_seq_len`` tokens (a static model's tokenizer truncates)."""
    static = _static_module(model)
    if static is not None:
        static.tokenizer.enable_truncation(max_seq_len)
    else:
        model.max_seq_length = max_seq_len


def max_seq_len_of(model: Any) -> int | None:
    """The truncation a model applies, in tokens (a static model's tokenizer's; None if unbounded)."""
    static = _static_module(model)
    if static is not None:
        truncation = static.tokenizer.truncation
        return int(truncation["max_length"]) if truncation else None
    length = getattr(model, "max_seq_length", None)
    return int(length) if isinstance(length, (int, float)) and length != float("inf") else None


def _static_module(model: Any) -> Any | None:
    """The model's ``StaticEmbedding`` input module (its tokenizer truncates), or None."""
    first = model[0] if len(model) else None
    if type(first).__name__ == "StaticEmbedding" and hasattr(first, "tokenizer"):
        return first
    return None
