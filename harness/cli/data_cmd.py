"""``gist-harness data show NAME``: counts and a sample of a training source or mixture."""

from __future__ import annotations

import argparse

from harness.cli.table import print_rows


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="inspect training sources and mixtures")
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="print per-source counts and a sample of a source or mixture")
    show.add_argument("name", help="a mixture (ls mixtures), a source (ls datasets) or file:PATH")
    show.add_argument("--data-dir", help="the data folder (default: $GIST_HARNESS_DATA)")
    show.add_argument("-n", "--sample", type=int, default=5, help="rows to print (default 5)")
    show.add_argument("--seed", type=int, default=0, help="seed for caps, dev split and shuffling")
    show.add_argument("--max-examples", type=int, help="limit the training examples")
    show.add_argument(
        "--dev-fraction", type=float, default=0.05, help="held-out share per source (default 0.05)"
    )
    show.add_argument("--json", action="store_true", help="print JSON instead of tables")
    show.set_defaults(func=run_show)


def run_show(args: argparse.Namespace) -> int:
    from harness.data import build_mixture

    mixture = build_mixture(
        args.name,
        args.data_dir,
        seed=args.seed,
        max_examples=args.max_examples,
        dev_fraction=args.dev_fraction,
    )
    counts = [
        {"source": s, "train": mixture.counts[s], "dev": mixture.dev_counts[s], **mixture.removed[s]}
        for s in mixture.counts
    ]
    print_rows(
        counts, title=f"{mixture.name}: {len(mixture.train)} train, {len(mixture.dev)} dev", as_json=args.json
    )
    sample = mixture.train.select(range(min(args.sample, len(mixture.train))))
    rows = [
        {"source": source, **row} | ({"label": mixture.label_names[row["label"]] if row["label"] >= 0 else ""}
                                     if "label" in row else {})
        for source, row in zip(mixture.train_sources, sample, strict=False)
    ]  # fmt: skip
    print_rows(rows, title="sample", as_json=args.json)
    return 0
