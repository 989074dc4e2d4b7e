"""``gist-harness bench eval``: wall time of a suite with and without the shared embedding cache.

``--per-task`` instead scores each suite once (cache on) and reports every task's texts, tokens,
padding, embedding and scoring seconds (``bench_eval_tasks``); with several ``--suite`` it also reports
each suite's time relative to the first (``offline-all`` vs ``offline-lite``).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from harness.cli.table import print_rows


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval", help="time a suite's evaluation with and without the embedding cache"
    )
    parser.add_argument(
        "--model", default="all-minilm-l6", help="model name or folder (default: all-minilm-l6)"
    )
    parser.add_argument(
        "--suite",
        action="append",
        help="local suite; repeat to compare suites (default: offline-sts)",
    )
    parser.add_argument(
        "--per-task",
        action="store_true",
        help="one cached run per suite: seconds, texts, tokens and padding per task",
    )
    parser.add_argument(
        "--data-dir", type=Path, metavar="DIR", help="data folder (default: $GIST_HARNESS_DATA)"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


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


def run(args: argparse.Namespace) -> int:
    from harness.models import load_model

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    suites = args.suite or ["offline-sts"]
    model = load_model(args.model, device=args.device)
    if args.per_task:
        return _per_task(model, suites, args)
    runs = []
    for suite in suites:
        rows = measure(model, suite, args.data_dir, args.batch_size)
        speedup = rows[1]["seconds"] / rows[0]["seconds"]
        for row in rows:
            row["model"] = args.model
        runs.append({"runs": rows, "speedup": round(speedup, 2)})
        if not args.json:
            print_rows(rows, title=f"bench eval: {suite} (speedup with cache: {speedup:.2f}x)")
    if args.json:
        print(json.dumps(runs[0] if len(runs) == 1 else runs, indent=2))
    return 0


def _per_task(model: Any, suites: list[str], args: argparse.Namespace) -> int:
    from harness.cli.bench_eval_tasks import measure_tasks

    tasks, totals = [], []
    for suite in suites:
        rows = measure_tasks(model, suite, args.data_dir, args.batch_size)
        tasks += rows[:-1]
        totals.append({"model": args.model, **rows[-1]})
    first = totals[0]["seconds"]
    for total in totals:
        total["speedup"] = round(first / total["seconds"], 2) if total["seconds"] else None
    if args.json:
        print(json.dumps({"model": args.model, "tasks": tasks, "suites": totals}, indent=2))
    else:
        print_rows(tasks, title=f"bench eval --per-task: {args.model}")
        print_rows(totals, title=f"per suite (speedup against {suites[0]})")
    return 0
