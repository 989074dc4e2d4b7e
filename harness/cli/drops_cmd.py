"""``gist-harness drops``: which in-batch candidates an arm's masking strategy dropped, as texts.

``gist-harness drops EXPERIMENT.toml --arm ARM --seed S --out FILE.parquet`` trains that arm and seed
once, exactly as the study's trial does (same data, batches, guide and seed; the objective is scored
as in the study, the final suite is not), with a ``harness.loss.DropLog`` on the loss, and writes one
row per dropped (anchor, candidate) pair with the three texts, the block, the source and the guide's and
student's similarities. ``gist-harness drops FILE.parquet`` prints the summary of a written file again.

The summary: drops by source and block, and the ``--top`` dropped pairs with the largest guide margin
(the guide's similarity of anchor to candidate minus anchor to its own positive).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from harness.cli.table import print_rows
from harness.errors import UserError

SHOWN_CHARS = 70  # characters of each text in the printed examples


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "drops",
        help="train one arm x seed of an experiment and list the candidates its strategy dropped",
        description="EXPERIMENT.toml: train --arm/--seed once as its study does, logging every dropped "
        "candidate, write them to --out (.parquet) and summarise. FILE.parquet: summarise a written log.",
    )
    parser.add_argument("path", type=Path, metavar="EXPERIMENT.toml|FILE.parquet")
    parser.add_argument("--arm", help="the trained arm (required with an experiment)")
    parser.add_argument("--seed", type=int, help="the seed (default: the experiment's first)")
    parser.add_argument("--out", type=Path, metavar="FILE", help="where to write the log (.parquet)")
    parser.add_argument("--top", type=int, default=10, help="dropped pairs to print (default: 10)")
    parser.add_argument("--data-dir", help="offline data folder (default: experiment's, GIST_HARNESS_DATA)")
    parser.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    if args.top < 0:
        raise UserError(f"--top must be >= 0, got {args.top}")
    if args.path.suffix == ".parquet":
        from harness.loss.drop_log import COLUMNS

        if not args.path.is_file():
            raise UserError(f"{args.path}: no such file")
        frame = pd.read_parquet(args.path)
        missing = {*COLUMNS, "anchor", "positive", "candidate"} - set(frame.columns)
        if missing:
            raise UserError(f"{args.path}: not a drops log (no column {sorted(missing)[0]!r})")
        summarise(frame, args.top)
        return 0
    if args.path.suffix != ".toml":
        raise UserError(f"{args.path}: expected an experiment (.toml) or a drops log (.parquet)")
    if args.out is None or args.out.suffix != ".parquet":
        raise UserError("--out FILE.parquet is required with an experiment")
    frame, by_source = log_drops(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, args.out)  # nothing half-written
    print(f"wrote {len(frame)} dropped pairs to {args.out}", file=sys.stderr)
    summarise(frame, args.top, by_source)
    return 0


def log_drops(args: argparse.Namespace) -> tuple[Any, dict[str, dict[str, float]]]:
    """Trains ``args.arm`` x ``args.seed`` with a ``DropLog``: its frame with the texts resolved, and
    the run's diagnostics by source (``RunRecord.by_source``)."""
    from harness.config import load_experiment
    from harness.loss import DropLog, texts_by_id
    from harness.study.pipeline import RealPipeline
    from harness.study.trial import trained_arms
    from harness.train import training_texts

    experiment = load_experiment(args.path)
    arms = trained_arms(experiment)
    if not arms:
        raise UserError(f"{args.path}: no [[ablation.arms]] with training: nothing to log")
    if args.arm not in arms:
        raise UserError(f"{args.path}: --arm {args.arm!r} is not a trained arm; valid: {', '.join(arms)}")
    seed = experiment.ablation.seeds[0] if args.seed is None else args.seed
    config = experiment.trial_config({**experiment.arm_overrides(args.arm), "seed": seed})
    if config.rounds > 1:
        raise UserError(f"{args.path}: arm {args.arm!r} trains in {config.rounds} rounds; drops logs one run")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    pipeline = RealPipeline(
        experiment, data_dir=args.data_dir, device=args.device, progress=not args.no_progress
    )
    pipeline.prepare()
    pipeline.drop_log = log = DropLog()
    _, record = pipeline.fit(config, lambda value, step: None)
    texts = texts_by_id(sorted(training_texts(pipeline.train_set(config))))
    return log.frame(texts).assign(arm=args.arm, seed=seed), record.by_source


def summarise(frame: Any, top: int, by_source: dict[str, dict[str, float]] | None = None) -> None:
    """Prints drops by source and block, and the ``top`` pairs with the largest guide margin.

    Per source and block: pairs dropped, distinct anchors and dropped texts, the median guide margin,
    the share of drops sharing the anchor's label (with labels); with the run's diagnostics
    (``by_source``) also the block's eligible candidates over the run (every in-batch text that
    could have been a negative) and the share dropped.
    """
    import pandas as pd

    if frame.empty:
        print("no candidate was dropped")
        return
    frame = frame.assign(margin=(frame.guide_sim - frame.guide_pos).astype(float))
    counts = (
        frame.groupby(["source", "block"])
        .agg(
            dropped=("block", "size"),
            anchors=("anchor_id", "nunique"),
            texts_dropped=("candidate_id", "nunique"),
            median_guide_margin=("margin", "median"),
            same_label=("same_label", lambda s: s.dropna().mean() if s.notna().any() else None),
        )
        .reset_index()
    )
    if by_source:
        eligible = [by_source.get(r.source, {}).get(f"candidates_{r.block}") for r in counts.itertuples()]
        counts["eligible"] = pd.Series(eligible, dtype=float)
        counts["drop_rate"] = counts.dropped / counts.eligible
    counts = counts.round({"median_guide_margin": 4, "same_label": 3, "drop_rate": 5})
    if counts["same_label"].isna().all():
        counts = counts.drop(columns="same_label")
    print_rows(counts.to_dict("records"), title="dropped candidates by source and block")
    if top:
        shown = frame.nlargest(top, "margin") if frame.margin.notna().any() else frame.head(top)
        rows = [
            {
                "source": r.source,
                "block": r.block,
                "margin": round(float(r.margin), 4),
                "anchor": _short(r.anchor),
                "positive": _short(r.positive),
                "dropped": _short(r.candidate),
            }
            for r in shown.itertuples()
        ]
        print_rows(rows, title=f"{len(rows)} dropped pairs, largest guide margin first")


def _short(text: Any) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"
