"""``gist-harness ls KIND``: list what a registry holds."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from harness.cli.table import print_rows

# Each registry is imported only when listed, so ``ls`` of one kind does not load torch for another.


def _models() -> list[dict[str, Any]]:
    from harness.models import listing

    return listing()


def _pairs() -> list[dict[str, Any]]:
    from harness.models.pairs import listing

    return listing()


def _strategies() -> list[dict[str, Any]]:
    from harness.masking import listing

    return listing()


def _objectives() -> list[dict[str, Any]]:
    from harness.loss.objectives import listing

    return listing()


def _guides() -> list[dict[str, Any]]:
    from harness.guides import listing

    return listing()


def _datasets() -> list[dict[str, Any]]:
    from harness.data import listing

    return listing()


def _mixtures() -> list[dict[str, Any]]:
    from harness.data import mixture_listing

    return mixture_listing()


def _tasks() -> list[dict[str, Any]]:
    from harness.tasks import listing

    return listing()


def _suites() -> list[dict[str, Any]]:
    from harness.evaluate import listing

    return listing()


def _strategies_note() -> str:
    from harness.masking import DUPLICATES_NOTE

    return DUPLICATES_NOTE


def _objectives_note() -> str:
    from harness.loss.objectives import NOTE

    return NOTE


LISTINGS: dict[str, Callable[[], list[dict[str, Any]]]] = {
    "models": _models,
    "pairs": _pairs,
    "strategies": _strategies,
    "objectives": _objectives,
    "guides": _guides,
    "datasets": _datasets,
    "mixtures": _mixtures,
    "tasks": _tasks,
    "suites": _suites,
}
# A note printed under the table (not with --json, which stays a list).
NOTES: dict[str, Callable[[], str]] = {"strategies": _strategies_note, "objectives": _objectives_note}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ls", help="list registered models, pairs, strategies, objectives, datasets, ..."
    )
    parser.add_argument("kind", choices=sorted(LISTINGS), help="what to list")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print_rows(LISTINGS[args.kind](), title=args.kind, as_json=args.json)
    if args.kind in NOTES and not args.json:
        print(NOTES[args.kind]())
    return 0
