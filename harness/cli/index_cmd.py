"""``gist-harness index``: write the reports index (``reports/README.md``, ``reports/index.html``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.errors import UserError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "index",
        help="write the index of the committed reports and benchmarks (reports/README.md, index.html)",
        description="List every report under REPORTS (question, student, guide, seeds, primary verdict, "
        "date) and every benchmark under BENCHMARKS, in REPORTS/README.md and REPORTS/index.html.",
    )
    parser.add_argument(
        "--reports", type=Path, default=Path("reports"), help="reports folder (default: reports)"
    )
    parser.add_argument(
        "--benchmarks", type=Path, default=Path("benchmarks"), help="benchmarks folder (default: benchmarks)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.cli.report_cmd import write_files
    from harness.report.index import collect
    from harness.report.render import render_index

    if not args.reports.is_dir():
        raise UserError(f"{args.reports}: no such reports folder")
    studies, benchmarks = collect(args.reports, args.benchmarks)
    write_files(args.reports, render_index(studies, benchmarks))
    print(f"index of {len(studies)} reports and {len(benchmarks)} benchmarks: {args.reports / 'README.md'}")
    return 0
