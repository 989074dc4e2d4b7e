"""``gist-harness eval MODEL --suite NAME [--tasks TASK ...] [--json PATH] [--data-dir DIR]``: score a
model on a suite, or on some of its tasks."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from harness.cli.table import print_rows


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="score a model on a suite of MTEB tasks (table + per-category averages)",
        description="Score MODEL (a registered model name, a hub id hub:ORG/NAME[@REVISION] or a "
        "sentence-transformers folder) on a suite; "
        "'gist-harness ls suites' lists them. Local suites read the offline data folder.",
    )
    parser.add_argument(
        "model",
        help="registered model name (gist-harness ls models), hub:ORG/NAME[@REVISION] or model folder",
    )
    parser.add_argument("--suite", default="offline-sts", help="suite name (default: offline-sts)")
    parser.add_argument(
        "--tasks",
        nargs="+",
        metavar="TASK",
        help="score only these tasks of the suite (names as 'gist-harness ls tasks' gives them)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the rows as a JSON list")
    parser.add_argument(
        "--data-dir", type=Path, metavar="DIR", help="data folder (default: $GIST_HARNESS_DATA)"
    )
    parser.add_argument("--batch-size", type=int, default=32, help="texts per forward pass (default: 32)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument(
        "--no-cache", action="store_true", help="embed each task's texts again (benchmarks only)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.config import SuiteRef
    from harness.errors import UserError
    from harness.evaluate import SUITES, category_means, evaluate, suite_object, suite_tasks

    suite = SUITES.get(args.suite)
    if args.tasks:
        names = [t.name for t in suite.tasks]
        unknown = [t for t in args.tasks if t not in names]
        if unknown:
            raise UserError(
                f"--tasks: {unknown[0]!r} is not a task of suite {args.suite!r}; valid: {', '.join(names)}"
            )
        suite = suite_object(SuiteRef(suite=args.suite, tasks=args.tasks))
    if not suite.hub:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        suite_tasks(suite, args.data_dir)  # a bad data folder fails before the model loads
    model = _load(args.model, args.device)
    table = evaluate(
        model,
        suite,
        data_dir=args.data_dir,
        model_name=_label(args.model),
        batch_size=args.batch_size,
        cache=not args.no_cache,
    )
    shown = table.assign(main_score=table.main_score.round(4), seconds=table.seconds.round(1))
    print_rows(
        shown.drop(columns=["mteb_version", "task_revision"]).to_dict("records"), title=f"{args.suite}"
    )
    means = category_means(table).assign(main_score=lambda d: d.main_score.round(4))
    print_rows(means.to_dict("records"), title="mean main score per category")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(table.to_dict("records"), indent=2) + "\n")
        print(f"wrote {len(table)} rows to {args.json}")
    return 0


def _label(name_or_path: str) -> str:
    """The ``model`` column: a hub id with the commit it resolved to, any other name as given."""
    from harness.models import is_hub_ref, model_fingerprint

    return model_fingerprint(name_or_path) if is_hub_ref(name_or_path) else name_or_path


def _load(name_or_path: str, device: str | None):
    """The model, or a one-line ``UserError`` for a folder that holds no sentence-transformers model."""
    from harness.errors import UserError
    from harness.models import is_model_name, load_model

    path = Path(name_or_path)
    if not is_model_name(name_or_path) and path.is_dir():
        if not (path / "modules.json").exists() and not (path / "config.json").exists():
            raise UserError(f"{path} is not a model folder (no modules.json or config.json)")
        try:
            return load_model(name_or_path, device=device)
        except (ValueError, OSError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"{path} could not be loaded as a model: {reason}") from None
    return load_model(name_or_path, device=device)
