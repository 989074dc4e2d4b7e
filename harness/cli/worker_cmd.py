"""``gist-harness worker EXPERIMENT.toml --storage URL``: join a running study from another process or machine."""

from __future__ import annotations

import argparse

from harness.cli.run_cmd import add_common_arguments, launch, run_experiment, wants_launch
from harness.config import load_experiment


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="join a study started by 'gist-harness run' and run trials until none is left",
        description=(
            "Join the study of EXPERIMENT in a shared storage (PostgreSQL for several machines, or the "
            "SQLite/journal file of a run on this machine) and run its remaining trials."
        ),
    )
    add_common_arguments(parser)
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the study to exist")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    experiment = load_experiment(args.experiment)
    if wants_launch(args):
        return launch(args.nproc)
    run_experiment(experiment, args, worker=True)
    return 0
