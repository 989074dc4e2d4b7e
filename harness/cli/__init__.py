"""The ``gist-harness`` command line: thin handlers that parse, call one library function, write.

Each sub-command lives in its own module of this package and exposes ``add_parser(subparsers)``,
which registers the command and sets ``func`` (a handler taking the parsed namespace and returning
an exit status). Env, logging, output folders and device choice live only here.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from harness import __version__
from harness.cli import (
    bench_cmd,
    dashboard_cmd,
    data_cmd,
    drops_cmd,
    eval_cmd,
    index_cmd,
    interim_cmd,
    ls_cmd,
    mine_cmd,
    models_cmd,
    report_cmd,
    run_cmd,
    validate_cmd,
    worker_cmd,
)
from harness.errors import UserError
from harness.registry import UnknownNameError

COMMANDS = [
    ls_cmd,
    models_cmd,
    data_cmd,
    mine_cmd,
    validate_cmd,
    run_cmd,
    worker_cmd,
    eval_cmd,
    report_cmd,
    interim_cmd,
    index_cmd,
    bench_cmd,
    drops_cmd,
    dashboard_cmd,
]
"""The sub-commands, in the order of ``--help``."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gist-harness",
        description=(
            "Fine-tune text-embedding models with guided in-batch negatives (GISTEmbed) and "
            "compare masking strategies, guides and margins against plain InfoNCE on MTEB tasks."
        ),
        epilog="Run 'gist-harness COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"gist-harness {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        return int(args.func(args) or 0)
    except (UserError, UnknownNameError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
