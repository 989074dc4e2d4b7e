"""``gist-harness bench eval``: wall time of a suite with and without the shared embedding cache.

``--per-task`` instead scores each suite once (cache on) and reports every task's texts, tokens,
padding, embedding and scoring seconds; with several ``--suite`` it also reports each suite's time
relative to the first (``offline-all`` vs ``offline-lite``). See :mod:`harness.bench.eval`.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from harness.bench import eval as bench
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


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    suites = args.suite or ["offline-sts"]
    if args.per_task:
        result = bench.bench_per_task(args.model, suites, args.data_dir, args.batch_size, args.device)
        _print_per_task(result, suites[0], args.json)
        return 0
    runs = bench.bench_eval(args.model, suites, args.data_dir, args.batch_size, args.device)
    if args.json:
        print(json.dumps(runs[0] if len(runs) == 1 else runs, indent=2))
        return 0
    for suite, timed in zip(suites, runs, strict=True):
        print_rows(timed["runs"], title=f"bench eval: {suite} (speedup with cache: {timed['speedup']:.2f}x)")
    return 0


def _print_per_task(result: dict[str, Any], first: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=2))
        return
    print_rows(result["tasks"], title=f"bench eval --per-task: {result['model']}")
    print_rows(result["suites"], title=f"per suite (speedup against {first})")
