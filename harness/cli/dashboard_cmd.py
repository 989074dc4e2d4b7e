"""``gist-harness dashboard RUN_DIR_OR_STORAGE``: watch a study live in optuna-dashboard."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dashboard",
        help="serve optuna-dashboard on a study's storage (watch trials, values and params live)",
        description="Serve optuna-dashboard on the storage of a run folder runs/<study>/ (its optuna.db, or the "
        "storage its manifest names) or on a storage URL (sqlite:///PATH, journal:PATH, postgresql+psycopg://...), "
        "on this machine only unless --host says otherwise. Ctrl-C stops it.",
    )
    parser.add_argument("source", metavar="RUN_DIR_OR_STORAGE", help="runs/<study>/ or an Optuna storage URL")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from optuna_dashboard import run_server

    from harness.study.storage import folder_url, make_storage, redact

    url = folder_url(args.source)
    storage = make_storage(url, Path(args.source))
    print(
        f"optuna-dashboard on {redact(url)}: http://{args.host}:{args.port}/dashboard/ (Ctrl-C stops)",
        flush=True,
    )
    try:
        run_server(storage, host=args.host, port=args.port)
    except KeyboardInterrupt:
        print("dashboard stopped", file=sys.stderr)
    return 0
