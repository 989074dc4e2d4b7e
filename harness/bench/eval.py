"""A suite's evaluation time with and without the shared embedding cache (``gist-harness bench eval``).

:func:`bench_eval` runs each suite twice (cache on, then off); :func:`bench_per_task` instead scores
each suite once (cache on) and reports every task's texts, tokens, padding, embedding and scoring
seconds (:mod:`harness.bench.eval_tasks`), and each suite's time relative to the first
(``offline-all`` vs ``offline-lite``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from harness.bench import eval_tasks


def measure(model: Any, suite: Any, data_dir: Path | None, batch_size: int = 32) -> list[dict[str, Any]]:
    """Runs ``suite`` twice (shared cache on, then off); one row per run with seconds and the mean score."""
    from harness.evaluate import evaluate

    rows = []
    for cache in (True, False):
        start = time.perf_counter()
        table = evaluate(model, suite, data_dir=data_dir, batch_size=batch_size, cache=cache, progress=False)
        rows.append(
            {
                "suite": getattr(suite, "name", suite),
                "cache": cache,
                "tasks": table.task.nunique(),
                "texts_embedded": table.attrs.get("texts_embedded"),
                "seconds": round(time.perf_counter() - start, 2),
                "mean_main_score": round(float(table.main_score.mean()), 6),
            }
        )
    return rows


def bench_eval(
    model_name: str, suites: list[str], data_dir: Path | None, batch_size: int, device: str
) -> list[dict[str, Any]]:
    """Per suite, in order: ``{"runs": [cached, uncached], "speedup": uncached / cached seconds}``."""
    from harness.models import load_model

    model = load_model(model_name, device=device)
    runs = []
    for suite in suites:
        rows = measure(model, suite, data_dir, batch_size)
        speedup = rows[1]["seconds"] / rows[0]["seconds"]
        for row in rows:
            row["model"] = model_name
        runs.append({"runs": rows, "speedup": round(speedup, 2)})
    return runs


def bench_per_task(
    model_name: str, suites: list[str], data_dir: Path | None, batch_size: int, device: str
) -> dict[str, Any]:
    """Every task of every suite (cache on), and per suite its total and speed-up against the first."""
    from harness.models import load_model

    model = load_model(model_name, device=device)
    tasks, totals = [], []
    for suite in suites:
        rows = eval_tasks.measure_tasks(model, suite, data_dir, batch_size)
        tasks += rows[:-1]
        totals.append({"model": model_name, **rows[-1]})
    first = totals[0]["seconds"]
    for total in totals:
        total["speedup"] = round(first / total["seconds"], 2) if total["seconds"] else None
    return {"model": model_name, "tasks": tasks, "suites": totals}
