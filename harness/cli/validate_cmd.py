"""``gist-harness validate FILE...``: check experiment files without loading any model."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from harness.config import ConfigError, load_experiment


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check experiment files: schema, registered names, consistency (loads no model)",
        description="Check experiment TOML files and list every error with its line, field and valid choices.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="experiment TOML files")
    parser.set_defaults(func=run)


def batching_summary(experiment: Any) -> str:
    """How the study's batches are composed, e.g. ``batching per_source (proportional), negatives keep``."""
    from harness.data.mixtures import negative_policy
    from harness.study.pipeline import planned_configs

    configs = planned_configs(experiment)
    seen = sorted({(c.batching, negative_policy(c.negatives, c.batching)) for c in configs})
    order = experiment.data.source_order
    parts = [f"{b}{f' ({order})' if b == 'per_source' else ''}, negatives {n}" for b, n in seen]
    return "batching " + " | ".join(parts)


def tuning_summary(experiment: Any) -> str:
    """``; tuned: gist, infonce, 12 trials each on dev`` for a ``[tuning]`` study, else nothing."""
    if experiment.tuning is None:
        return ""
    from harness.config.tuning import tuned_arms

    tuning = experiment.tuning
    return f"; tuned: {', '.join(tuned_arms(experiment))}, {tuning.trials} trials each on {tuning.label}"


def run(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.files:
        try:
            experiment = load_experiment(path)
        except ConfigError as exc:
            failed += 1
            print(f"error: {exc}", file=sys.stderr)
            continue
        arms = [a.name for a in experiment.ablation.arms]
        what = f"arms {', '.join(arms)}" if arms else f"search over {', '.join(experiment.search_space)}"
        print(
            f"ok: {path} (study {experiment.study.name}: {what}; {batching_summary(experiment)}{tuning_summary(experiment)})"
        )
    return 2 if failed else 0
