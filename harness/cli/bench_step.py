"""``gist-harness bench step``: train-step time of cached GIST vs plain InfoNCE vs ST ``GISTEmbedLoss``,
and of every loss objective against InfoNCE with the same blocks (:mod:`harness.bench.step`).

With ``--nproc N`` the command starts N copies of itself with ``torch.distributed.run``; rank 0 prints.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from harness.bench import step
from harness.cli.table import print_rows


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "step", help="time one train step: cached GIST vs InfoNCE vs GISTEmbedLoss"
    )
    parser.add_argument("--student", default="all-minilm-l6", help="student model (default: all-minilm-l6)")
    parser.add_argument("--guide", default="all-mpnet-base", help="guide model (default: all-mpnet-base)")
    parser.add_argument("--batch-size", type=int, default=32, help="pairs per batch (default: 32)")
    parser.add_argument("--repeats", type=int, default=10, help="timed steps per loss (default: 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per loss first (default: 2)")
    parser.add_argument(
        "--data-dir", type=Path, metavar="DIR", help="data folder (default: $GIST_HARNESS_DATA)"
    )
    parser.add_argument(
        "--cache-dir", type=Path, metavar="DIR", help="guide cache folder (default: harness cache)"
    )
    parser.add_argument(
        "--device", default="cpu", help="torch device; with --nproc, cuda is one GPU per process"
    )
    parser.add_argument(
        "--nproc",
        type=int,
        default=1,
        metavar="N",
        help="time the step on N processes started with torch.distributed.run (gloo on the CPU, NCCL on "
        "CUDA), the global batch split across them, negatives gathered (default: 1)",
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own)")
    parser.add_argument(
        "--keep-denormals",
        action="store_true",
        help="do not flush denormal floats to zero (CPU: InfoNCE's tiny softmax gradients are denormal "
        "and slow the backward pass ~2.5x; masked candidates get exact zeros instead)",
    )
    parser.add_argument(
        "--static-student",
        default="static-minilm",
        help="static student of the objectives bench ('none' to skip; default: static-minilm)",
    )
    parser.add_argument(
        "--static-batch-size", type=int, default=128, help="static student's pairs per batch (default: 128)"
    )
    parser.add_argument(
        "--no-objectives", action="store_true", help="skip the objectives bench (the three losses only)"
    )
    parser.add_argument("--json", action="store_true", help="print the medians and ratios as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1  # one of N processes (``ranks.launched``)
    nproc = int(os.environ["WORLD_SIZE"]) if launched else args.nproc
    data_dir = args.data_dir or os.environ.get("GIST_HARNESS_DATA")
    options = step.StepOptions(
        data_dir=Path(data_dir) if data_dir is not None else None,
        student=args.student,
        guide=args.guide,
        batch_size=args.batch_size,
        repeats=args.repeats,
        warmup=args.warmup,
        cache_dir=args.cache_dir,
        device=args.device,
        nproc=nproc,
        threads=args.threads,
        keep_denormals=args.keep_denormals,
        static_student=args.static_student,
        static_batch_size=args.static_batch_size,
        objectives=not args.no_objectives,
    )
    step.check_options(options)
    if args.nproc > 1 and not launched:
        from harness.cli.run_cmd import launch

        return launch(args.nproc)
    result = step.bench_step(options, launched)
    if result is None:
        return 0  # rank 0 prints
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for title, rows in step.tables(result):
        print_rows(rows, title=title)
    return 0
