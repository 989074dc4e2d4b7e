"""``gist-harness bench epoch``: one training epoch per student and loss on the same mixture.

How much faster a static student trains than a transformer on the same data, and what the (cached)
guide and each loss objective cost on top of InfoNCE; see :mod:`harness.bench.epoch`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from harness.bench.epoch import ARMS, bench_epochs
from harness.cli.table import print_rows


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "epoch", help="epoch time of static vs transformer students, GIST vs InfoNCE"
    )
    parser.add_argument(
        "--students",
        default="static-minilm,all-minilm-l6",
        help="comma-separated students (default: static-minilm,all-minilm-l6)",
    )
    parser.add_argument(
        "--guide", default="all-mpnet-base", help="guide of the GIST runs (default: all-mpnet-base)"
    )
    parser.add_argument(
        "--mixture", default="mini-medi", help="training mixture or source (default: mini-medi)"
    )
    parser.add_argument("--max-examples", type=int, default=1024, help="training pairs (default: 1024)")
    parser.add_argument("--batch-size", type=int, default=32, help="pairs per batch (default: 32)")
    parser.add_argument(
        "--max-seq-len", type=int, default=64, help="student truncation in tokens (default: 64)"
    )
    parser.add_argument(
        "--arms",
        default=",".join(ARMS),
        help=f"comma-separated arms, 'infonce' always included (default: all: {', '.join(ARMS)})",
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own)")
    parser.add_argument(
        "--data-dir", type=Path, metavar="DIR", help="data folder (default: $GIST_HARNESS_DATA)"
    )
    parser.add_argument("--json", action="store_true", help="print the rows and ratios as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    result = bench_epochs(
        students=[s.strip() for s in args.students.split(",") if s.strip()],
        guide=args.guide,
        mixture=args.mixture,
        max_examples=args.max_examples,
        batch_size=args.batch_size,
        max_seq_len=args.max_seq_len,
        threads=args.threads,
        data_dir=args.data_dir,
        arms=[a.strip() for a in args.arms.split(",") if a.strip()],
    )
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_rows(result["rows"], title=f"one epoch of {result['examples']} pairs ({args.mixture})")
        print_rows([{"ratio": k, "value": v} for k, v in result["ratios"].items()], title="ratios")
    return 0
