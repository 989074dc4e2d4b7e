"""``gist-harness bench WHAT``: measured timings (train step, evaluation, epochs), printed or as JSON.

Each benchmark lives in its own module ``harness/cli/bench_<what>.py`` exposing
``add_parser(subparsers)``; modules not built yet are skipped.
"""

from __future__ import annotations

import argparse
import importlib

BENCHES = ["step", "eval", "epoch", "lite"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="measure train-step, evaluation and epoch timings")
    inner = parser.add_subparsers(dest="bench", metavar="WHAT", required=True)
    for name in BENCHES:
        try:
            module = importlib.import_module(f"harness.cli.bench_{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"harness.cli.bench_{name}":
                continue
            raise
        module.add_parser(inner)
