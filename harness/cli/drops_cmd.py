"""``gist-harness drops``: which in-batch candidates an arm's masking strategy dropped, as texts.

``gist-harness drops EXPERIMENT.toml --arm ARM --seed S --out FILE.parquet`` trains that arm and seed
once, exactly as the study's trial does (same data, batches, guide and seed; the objective is scored
as in the study, the final suite is not), with a ``harness.loss.DropLog`` on the loss, and writes one
row per dropped (anchor, candidate) pair with the three texts, the block, the source and the guide's and
student's similarities. ``gist-harness drops FILE.parquet`` prints the summary of a written file again.

``--shadow STRATEGY`` compares two rules' drops on the same batches: the log also runs a second
masking strategy, never applied, on exactly the candidates the arm's strategy read at every step (same
batch, same student, same guide; ``harness.loss.drop_log`` says why one run and not two), and marks
each logged pair ``dropped_by`` = ``applied``, ``shadow`` or ``both``. The strategy runs at its
defaults, with the arm's ``margin`` and ``margin_strategy`` where it has them (as a control that
follows the arm would), then ``--shadow-param KEY=VALUE``. ``--shadow-arm ARM`` takes another trained
arm's strategy and parameters instead (refused when that arm differs from ``--arm`` in anything but
its strategy: the shadow would not be that arm's rule on these batches).

The summary: drops by source and block, and the ``--top`` dropped pairs with the largest guide margin
(the guide's similarity of anchor to candidate minus anchor to its own positive). With a shadow, also
both drop sets per source and block (``harness.loss.compare_drops``: counts, overlap, Jaccard, the
same-class share of each set over labelled rows) and the ``--top`` pairs only one of them dropped.
"""

from __future__ import annotations

import argparse
import json
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
    parser.add_argument(
        "--shadow",
        metavar="STRATEGY",
        help="also log the drops of this registered strategy on the same candidates, never applied "
        "(with the arm's margin and margin_strategy where it has them)",
    )
    parser.add_argument(
        "--shadow-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a parameter of the --shadow strategy (repeatable; e.g. blocks=ap)",
    )
    parser.add_argument(
        "--shadow-arm",
        metavar="ARM",
        help="as --shadow, with the strategy and parameters of this trained arm of the experiment",
    )
    parser.add_argument("--top", type=int, default=10, help="dropped pairs to print (default: 10)")
    parser.add_argument("--data-dir", help="offline data folder (default: experiment's, GIST_HARNESS_DATA)")
    parser.add_argument(
        "--runs-dir",
        type=Path,
        default=Path("runs"),
        help="parent of runs/<study>/: a [tuning] study's arms train at the settings in its tuning.json",
    )
    parser.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    if args.top < 0:
        raise UserError(f"--top must be >= 0, got {args.top}")
    if args.path.suffix == ".parquet":
        from harness.loss.drop_log import COLUMNS

        if args.shadow or args.shadow_arm or args.shadow_param:
            raise UserError(
                "--shadow, --shadow-arm and --shadow-param go with an experiment (.toml), not a log"
            )

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
    print(f"wrote {len(frame)} logged pairs to {args.out}", file=sys.stderr)
    summarise(frame, args.top, by_source)
    return 0


def log_drops(args: argparse.Namespace) -> tuple[Any, dict[str, dict[str, float]]]:
    """Trains ``args.arm`` x ``args.seed`` with a ``DropLog`` (and its ``--shadow``): its frame with
    the texts resolved, and the run's diagnostics by source (``RunRecord.by_source``)."""
    from harness.config import load_experiment
    from harness.loss import DropLog, texts_by_id
    from harness.study.pipeline import RealPipeline
    from harness.study.trial import trained_arms
    from harness.train import training_texts

    experiment = tuned(load_experiment(args.path), args.runs_dir)
    arms = trained_arms(experiment)
    if not arms:
        raise UserError(f"{args.path}: no [[ablation.arms]] with training: nothing to log")
    if args.arm not in arms:
        raise UserError(f"{args.path}: --arm {args.arm!r} is not a trained arm; valid: {', '.join(arms)}")
    seed = experiment.ablation.seeds[0] if args.seed is None else args.seed
    config = experiment.trial_config({**experiment.arm_overrides(args.arm), "seed": seed})
    if config.rounds > 1:
        raise UserError(f"{args.path}: arm {args.arm!r} trains in {config.rounds} rounds; drops logs one run")
    shadow = shadow_of(args, experiment, config)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    pipeline = RealPipeline(
        experiment, data_dir=args.data_dir, device=args.device, progress=not args.no_progress
    )
    pipeline.prepare()
    pipeline.drop_log = log = DropLog(shadow)
    _, record = pipeline.fit(config, lambda value, step: None)
    texts = texts_by_id(sorted(training_texts(pipeline.train_set(config))))
    frame = log.frame(texts).assign(arm=args.arm, seed=seed, shadow=str(shadow) if shadow else "")
    return frame, record.by_source


def tuned(experiment: Any, runs_dir: Path) -> Any:
    """A ``[tuning]`` study's experiment at its chosen settings (``runs/<study>/tuning.json``), as its
    confirmation trials train; any other experiment as it is."""
    if experiment.tuning is None:
        return experiment
    from harness.config.tuning import tuned_arms, with_tuned
    from harness.results import TUNING_FILE, TuningRecord, read_record

    path = runs_dir / experiment.study.name / TUNING_FILE
    record = read_record(path, TuningRecord) if path.exists() else None
    if record is None or set(record.chosen) != set(tuned_arms(experiment)):
        done = f" (tuning trials finished: {record.progress()})" if record else ""
        raise UserError(
            f"{path}: no chosen setting for every tuned arm{done}; an arm of a [tuning] study trains at its "
            "tuned setting: finish the study's tuning first (gist-harness run), or pass --runs-dir"
        )
    return with_tuned(experiment, record.chosen)


def shadow_of(args: argparse.Namespace, experiment: Any, config: Any) -> Any:
    """The ``Shadow`` that ``--shadow`` (``--shadow-param``) or ``--shadow-arm`` name for ``config``
    (the arm's trial), or None without either.

    Raises:
        UserError: both or neither with parameters, an unknown strategy or arm, an arm that differs in
            more than its strategy, or a shadow that reads a guide the arm's loss does not have.
    """
    from harness.config.schema import FOLLOWED_PARAMS, STRATEGY_FIELDS
    from harness.loss import LossConfig, Shadow, requirements
    from harness.masking import STRATEGIES
    from harness.study.trial import trained_arms

    if args.shadow and args.shadow_arm:
        raise UserError("--shadow STRATEGY or --shadow-arm ARM, not both")
    if args.shadow_param and not args.shadow:
        raise UserError("--shadow-param needs --shadow STRATEGY (an arm's parameters are its own)")
    name, applied = args.shadow or args.shadow_arm, LossConfig.of(config)
    if name is None:
        return None
    if args.shadow_arm:
        arms = trained_arms(experiment)
        if name not in arms:
            raise UserError(
                f"{args.path}: --shadow-arm {name!r} is not a trained arm; valid: {', '.join(arms)}"
            )
        other = experiment.trial_config({**experiment.arm_overrides(name), "seed": config.seed})
        ours, theirs = config.model_dump(), other.model_dump()
        differ = [k for k in ours if k not in (*STRATEGY_FIELDS, "seed") and ours[k] != theirs[k]]
        if differ:
            raise UserError(
                f"{args.path}: --shadow-arm {name!r} differs from --arm {args.arm!r} in {', '.join(differ)}, "
                "not only in its strategy; name the strategy instead (--shadow STRATEGY --shadow-param ...)"
            )
        rule = LossConfig.of(other)
        strategy, params = rule.strategy, rule.resolved_strategy_params()
    elif name in STRATEGIES:
        accepted = STRATEGIES.get(name).params
        ours = applied.resolved_strategy_params()
        params = {k: ours[k] for k in FOLLOWED_PARAMS if k in ours and k in accepted}
        params.update(_key_values(args.shadow_param))
        strategy = name
    else:
        raise UserError(f"--shadow: {STRATEGIES.unknown_message(name)} (an arm: --shadow-arm)")
    shadow = Shadow(strategy, params, seed=config.seed)
    arm_reads = requirements(applied.strategy, applied.resolved_strategy_params(), applied.objective,
                             applied.objective_params)  # fmt: skip
    if shadow.needs_guide and not arm_reads.guide:
        raise UserError(
            f"--shadow {name!r} reads guide similarities, and arm {args.arm!r} trains without them "
            "(no strategy or objective of it reads the guide): shadow a guided arm instead"
        )
    return shadow


def _key_values(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings as a dict, each value read as JSON where it is (``0.1``, ``true``),
    else as a string (``ap``)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--shadow-param {pair!r}: expected KEY=VALUE, e.g. blocks=ap")
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value.strip()
    return out


def summarise(frame: Any, top: int, by_source: dict[str, dict[str, float]] | None = None) -> None:
    """Prints the arm's drops by source and block and its ``top`` pairs with the largest guide
    margin; with a shadow in the log, the two drop sets compared (``print_comparison``).

    Per source and block: pairs dropped, distinct anchors and dropped texts, the median guide margin,
    the share of drops sharing the anchor's label (over labelled rows); with the run's diagnostics
    (``by_source``) also the block's eligible candidates over the run (every in-batch text that
    could have been a negative) and the share dropped.
    """
    if "dropped_by" not in frame.columns:  # a log written before shadows: the arm's drops only
        frame = frame.assign(dropped_by="applied")
    frame = frame.assign(
        margin=(frame.guide_sim - frame.guide_pos).astype(float),
        student_margin=(frame.student_sim - frame.student_pos).astype(float),
    )
    shadow = _shadow_name(frame)
    applied = frame[frame.dropped_by != "shadow"]
    if applied.empty:
        print("the arm's strategy dropped no candidate")
    else:
        _print_counts(applied, by_source)
        if top:
            shown = applied.nlargest(top, "margin") if applied.margin.notna().any() else applied.head(top)
            print_rows(_examples(shown), title=f"{len(shown)} dropped pairs, largest guide margin first")
    if shadow is not None:
        print_comparison(frame, top, shadow)


def print_comparison(frame: Any, top: int, shadow: str) -> None:
    """Prints the arm's and the shadow's drop sets side by side (``harness.loss.compare_drops``) and
    the ``top`` pairs only one of them dropped: the arm's by guide margin, the shadow's by student
    margin (the student's similarity of anchor to candidate minus anchor to its own positive)."""
    from harness.loss import compare_drops

    arm = ", ".join(str(a) for a in frame.arm.unique()) if "arm" in frame.columns else "the arm"
    if frame.empty:
        print(f"neither {arm} nor the shadow {shadow} dropped a candidate")
        return
    table = compare_drops(frame).round({c: 4 if c == "jaccard" else 3 for c in ("jaccard", *_SAME_LABEL)})
    table = table.drop(columns=[c for c in _SAME_LABEL if table[c].isna().all()])
    print_rows(_records(table), title=f"drops of {arm} (applied) and of the shadow {shadow}")
    for which, order in (("applied", "margin"), ("shadow", "student_margin")):
        only = frame[frame.dropped_by == which]
        if top and not only.empty:
            shown = only.nlargest(top, order) if only[order].notna().any() else only.head(top)
            label = f"{arm} only" if which == "applied" else f"the shadow only ({shadow})"
            what = "guide" if order == "margin" else "student"
            print_rows(
                _examples(shown), title=f"{len(shown)} pairs dropped by {label}, largest {what} margin first"
            )


_SAME_LABEL = tuple(f"same_label_{s}" for s in ("applied", "shadow", "only_applied", "only_shadow"))


def _shadow_name(frame: Any) -> str | None:
    """The log's shadow strategy as written (``Shadow.__str__``), or None without one."""
    if "shadow" not in frame.columns:
        return None
    names = [str(n) for n in frame.shadow.unique() if n]
    return ", ".join(names) if names else None


def _print_counts(frame: Any, by_source: dict[str, dict[str, float]] | None) -> None:
    """The arm's drops by source and block (see ``summarise``)."""
    import pandas as pd

    counts = (
        frame.groupby(["source", "block"])
        .agg(
            dropped=("block", "size"),
            anchors=("anchor_id", "nunique"),
            texts_dropped=("candidate_id", "nunique"),
            median_guide_margin=("margin", "median"),
            same_label=("same_label", lambda s: s.dropna().astype(float).mean() if s.notna().any() else None),
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
    print_rows(_records(counts), title="dropped candidates by source and block")


def _records(table: Any) -> list[dict[str, Any]]:
    """A table's rows as dicts, a missing value as None (printed empty, not ``nan``)."""
    return table.astype(object).where(table.notna(), None).to_dict("records")


def _examples(shown: Any) -> list[dict[str, Any]]:
    """Printable rows of logged pairs: source, block, both margins and the three texts, cut short."""
    return [
        {
            "source": r.source,
            "block": r.block,
            "guide_margin": round(float(r.margin), 4),
            "student_margin": round(float(r.student_margin), 4),
            "anchor": _short(r.anchor),
            "positive": _short(r.positive),
            "dropped": _short(r.candidate),
        }
        for r in shown.itertuples()
    ]


def _short(text: Any) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"
