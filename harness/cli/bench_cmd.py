"""``gist-harness bench WHAT``: measured timings (train step, evaluation, epochs) and the lite suite's
validity, printed or as JSON.

Each benchmark's handler lives in its own module ``harness/cli/bench_<what>.py`` exposing
``add_parser(subparsers)``; the benchmarks themselves live in :mod:`harness.bench`.
"""

from __future__ import annotations

import argparse

from harness.cli import bench_epoch, bench_eval, bench_lite, bench_step

BENCHES = [bench_step, bench_eval, bench_epoch, bench_lite]
"""The sub-commands, in the order of ``--help``."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="measure train-step, evaluation and epoch timings")
    inner = parser.add_subparsers(dest="bench", metavar="WHAT", required=True)
    for module in BENCHES:
        module.add_parser(inner)
