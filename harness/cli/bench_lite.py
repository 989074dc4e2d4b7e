"""``gist-harness bench lite RUN_DIR... [--model M]... --out DIR``: is the lite suite a valid proxy?

Scores the saved models of the given studies (and any ``--model``) on the full and the lite suite and
writes ``scores.csv``, ``timings.csv``, ``validity.json`` and ``README.md`` to DIR; an interrupted run
resumes where it stopped. See :mod:`harness.bench.lite` for what each file holds.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from harness.bench import lite


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lite",
        help="validity of the lite suite: rank agreement with the full suite over saved models",
        description="Score the saved models of RUN_DIR studies (and --model) on both suites; write "
        "scores, timings, Spearman's rho per task and per aggregate, and contrast agreement to --out.",
    )
    parser.add_argument(
        "runs",
        nargs="*",
        type=Path,
        metavar="RUN_DIR",
        help="study folders (runs/<study>) whose saved models to score, or report folders "
        "(reports/<study>) whose declared contrasts to compute from DIR's scores",
    )
    parser.add_argument(
        "--model", action="append", default=[], help="also score this model name or folder (repeatable)"
    )
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    parser.add_argument("--full", default="offline-all", help="full suite (default: offline-all)")
    parser.add_argument("--lite", default="offline-lite", help="lite suite (default: offline-lite)")
    parser.add_argument(
        "--data-dir", type=Path, metavar="DIR", help="data folder (default: $GIST_HARNESS_DATA)"
    )
    parser.add_argument(
        "--whole-from-lite",
        action="store_true",
        help="on the full suite score only the tasks the lite suite cuts; copy the shared whole tasks "
        "from the model's lite scores",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    options = lite.LiteOptions(
        out=args.out,
        runs=args.runs,
        models=args.model,
        full=args.full,
        lite=args.lite,
        data_dir=args.data_dir,
        whole_from_lite=args.whole_from_lite,
        batch_size=args.batch_size,
        device=args.device,
        progress=not args.no_progress,
    )
    print(lite.summary(lite.bench_lite(options), args.out))
    return 0
