"""Where a suite's evaluation spends its time: per task, texts, tokens, padding, embedding and scoring.

One pass with the shared embedding cache, task by task in suite order: each task first embeds the
texts no earlier task embedded (``embed_s``; texts shared with an earlier task cost it nothing), then
mteb scores it from the cache (``score_s``: probes, k-means, similarity search). The tasks' seconds add
up to the suite's time. ``tokens`` counts the new texts' tokens after truncation to the model's
``max_seq_length``; ``padding`` is the share of padded positions in longest-first batches (what the
cache's warm-up runs) and ``padding_unsorted`` the share the same texts would pad in file order.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def token_lengths(model: Any, texts: Sequence[str]) -> list[int] | None:
    """Tokens per text after truncation to ``model.max_seq_length``; ``None`` without a tokenizer."""
    tokenizer = getattr(model, "tokenizer", None)
    limit = getattr(model, "max_seq_length", None)
    limit = int(limit) if isinstance(limit, int) else None
    if tokenizer is None or not texts:
        return [] if tokenizer is not None else None
    if hasattr(tokenizer, "encode_batch"):  # a `tokenizers.Tokenizer` (static models): no truncation
        return [len(e.ids) for e in tokenizer.encode_batch(list(texts))]
    ids = tokenizer(list(texts), truncation=limit is not None, max_length=limit)["input_ids"]
    return [len(i) for i in ids]


def padding_share(lengths: Sequence[int], batch_size: int, *, longest_first: bool) -> float:
    """Share of padded positions when ``lengths`` are batched (in order, or sorted longest first)."""
    order = sorted(lengths, reverse=True) if longest_first else list(lengths)
    padded = sum(
        max(order[i : i + batch_size]) * len(order[i : i + batch_size])
        for i in range(0, len(order), batch_size)
    )
    return round(1 - sum(order) / padded, 4) if padded else 0.0


def measure_tasks(
    model: Any, suite: Any, data_dir: Path | None, batch_size: int = 32
) -> list[dict[str, Any]]:
    """One row per task of ``suite`` (see the module docstring), scored once with the shared cache,
    then a ``(total)`` row."""
    from harness.embedding_cache import CachedEncoder
    from harness.evaluate import SUITES, suite_tasks

    suite = SUITES.get(suite) if isinstance(suite, str) else suite
    start = time.perf_counter()
    tasks = suite_tasks(suite, data_dir)
    load_s = time.perf_counter() - start
    encoder = CachedEncoder(model, batch_size=batch_size, progress=False)
    rows = [{"suite": suite.name, **_task_row(model, encoder, task, batch_size)} for task in tasks]
    return [*rows, _total_row(rows, suite.name, load_s)]


def _task_row(model: Any, encoder: Any, task: Any, batch_size: int) -> dict[str, Any]:
    """Embeds the texts of ``task`` that no earlier task embedded, then scores it from the cache."""
    from harness.evaluate import score_task

    texts = sorted(task.embedded_texts())
    new = [t for t in texts if ("encode", "", t) not in encoder.vectors]
    lengths = token_lengths(model, new)
    start = time.perf_counter()
    encoder.warm(new)
    embed_s = time.perf_counter() - start
    start = time.perf_counter()
    result = score_task(encoder, task, batch_size)
    score_s = time.perf_counter() - start
    scores = [s["main_score"] for per in result.scores.values() for s in per]
    return {
        "task": task.metadata.name,
        "category": task.metadata.type,
        "texts": len(texts),
        "new_texts": len(new),
        "tokens": sum(lengths) if lengths is not None else None,
        "padding": padding_share(lengths, batch_size, longest_first=True) if lengths else None,
        "padding_unsorted": padding_share(lengths, batch_size, longest_first=False) if lengths else None,
        "embed_s": round(embed_s, 2),
        "score_s": round(score_s, 2),
        "seconds": round(embed_s + score_s, 2),
        "main_score": round(float(sum(scores) / len(scores)), 6),
    }


def _total_row(rows: list[dict[str, Any]], suite: str, load_s: float) -> dict[str, Any]:
    """The suite's totals over its task ``rows``; loading the data counts as scoring time."""
    return {
        "suite": suite,
        "task": "(total)",
        "category": "-",
        "texts": sum(r["texts"] for r in rows),
        "new_texts": sum(r["new_texts"] for r in rows),
        "tokens": sum(r["tokens"] or 0 for r in rows),
        "padding": None,
        "padding_unsorted": None,
        "embed_s": round(sum(r["embed_s"] for r in rows), 2),
        "score_s": round(sum(r["score_s"] for r in rows) + load_s, 2),
        "seconds": round(sum(r["seconds"] for r in rows) + load_s, 2),
        "main_score": round(sum(r["main_score"] for r in rows) / len(rows), 6),
    }
