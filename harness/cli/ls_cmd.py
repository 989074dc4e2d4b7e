"""``gist-harness ls KIND``: list what a registry holds."""

from __future__ import annotations

import argparse
import importlib

from harness.cli.table import print_rows

# kind -> "module:function"; the function returns a list of dicts (one per registered item).
LISTINGS = {
    "models": "harness.models:listing",
    "pairs": "harness.pairs:listing",
    "strategies": "harness.masking:listing",
    "objectives": "harness.loss.objectives:listing",
    "guides": "harness.guides:listing",
    "datasets": "harness.data:listing",
    "mixtures": "harness.data:mixture_listing",
    "tasks": "harness.tasks:listing",
    "suites": "harness.evaluate:listing",
}
# kind -> "module:constant": a note printed under the table (not with --json, which stays a list).
NOTES = {
    "strategies": "harness.masking:DUPLICATES_NOTE",
    "objectives": "harness.loss.objectives:NOTE",
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ls", help="list registered models, pairs, strategies, objectives, datasets, ..."
    )
    parser.add_argument("kind", choices=sorted(LISTINGS), help="what to list")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    module_name, func_name = LISTINGS[args.kind].split(":")
    listing = getattr(importlib.import_module(module_name), func_name)
    print_rows(listing(), title=args.kind, as_json=args.json)
    if args.kind in NOTES and not args.json:
        module_name, attr = NOTES[args.kind].split(":")
        print(getattr(importlib.import_module(module_name), attr))
    return 0
