"""``gist-harness mine``: offline, positive-aware hard-negative mining with a guide.

``gist-harness mine SOURCE --guide GUIDE --out FILE.jsonl`` embeds the source's anchors and the corpus
with the guide (a neural guide reads and fills the persisted guide cache, so texts embedded before are
not embedded again), picks negatives as sentence-transformers' ``mine_hard_negatives`` does
(``harness.data.mining``), writes the rows atomically and prints what each filter removed and, for a
labelled source, the mining-time false-negative rates. The file trains as ``file:FILE.jsonl`` in an
experiment's ``[data] sources``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness.cli.table import print_rows
from harness.errors import UserError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "mine",
        help="mine hard negatives for a source's (anchor, positive) rows with a guide, to a JSONL file",
        description="Offline, positive-aware hard-negative mining (sentence-transformers' "
        "mine_hard_negatives semantics) with a guide read through the guide cache. Writes rows "
        "(anchor, positive, negative | negative_1..n [, label]) that train as file:OUT in an experiment, "
        "and prints the candidates each filter removed and, for labelled sources, how many mined "
        "negatives share the anchor's class (with and without the filters, and for a random negative).",
    )
    parser.add_argument("source", help="training source of (anchor, positive) rows: a registered name "
                        "(gist-harness ls datasets) or file:PATH (.jsonl, .csv, .tsv, .parquet)")  # fmt: skip
    parser.add_argument("--guide", required=True, help="a model (gist-harness ls models), a model folder, "
                        "tfidf or bm25 (lexical, fit on anchors and corpus)")  # fmt: skip
    parser.add_argument(
        "--out", type=Path, required=True, metavar="FILE.jsonl", help="where to write the rows"
    )
    parser.add_argument("--corpus", metavar="SOURCE", help="candidate texts from this source or file:PATH "
                        "(its --corpus-column); default: the source's own positives")  # fmt: skip
    parser.add_argument("--corpus-column", default="positive", help="the --corpus column (default: positive)")
    parser.add_argument(
        "--anchor-column", default="anchor", help="the source's anchor column (default: anchor)"
    )
    parser.add_argument(
        "--positive-column", default="positive", help="its positive column (default: positive)"
    )
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a source option (repeatable, JSON values; gist-harness ls datasets)")  # fmt: skip
    add_selection_arguments(parser)
    parser.add_argument("--max-seq-len", type=int, help="guide truncation in tokens (default: the model's)")
    parser.add_argument("--summary", type=Path, metavar="FILE.json", help="also write the summary as JSON")
    parser.add_argument("--data-dir", help="offline data folder (default: GIST_HARNESS_DATA)")
    parser.add_argument("--device", help="torch device of a model guide (default: cuda when available)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def add_selection_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``harness.data.mining.MiningOptions`` (sentence-transformers' names)."""
    group = parser.add_argument_group("selection (as sentence-transformers' mine_hard_negatives)")
    group.add_argument("--num-negatives", type=int, default=3, help="negatives per anchor (default: 3)")
    group.add_argument("--range-min", type=int, default=0, help="skip this many best candidates (default: 0)")
    group.add_argument("--range-max", type=int, help="consider this many best candidates (default: range_min "
                       "+ num_negatives + max positives, x10 negatives when a score filter is set)")  # fmt: skip
    group.add_argument("--max-score", type=float, help="remove candidates scored above this")
    group.add_argument("--min-score", type=float, help="remove candidates scored below this")
    group.add_argument("--absolute-margin", type=float, help="remove candidates with s_neg + margin > s_pos "
                       "(s_pos: the anchor's lowest positive score)")  # fmt: skip
    group.add_argument("--relative-margin", type=float, help="remove candidates with s_neg > s_pos - |s_pos| "
                       "x margin (0.05: NV-Retriever's TopK-PercPos 95%%)")  # fmt: skip
    group.add_argument("--sampling-strategy", choices=["top", "random"], default="top",
                       help="top: the hardest remaining; random: uniform over the remaining window")  # fmt: skip
    group.add_argument("--output-format", choices=["triplet", "n-tuple", "labeled-pair"], default="triplet",
                       help="triplet: (anchor, positive, negative) per negative; n-tuple: (anchor, positive, "
                       "negative_1..n), anchors short of n dropped; labeled-pair: (anchor, document, label 1/0),"
                       " for cross-encoders, not a training source here")  # fmt: skip
    group.add_argument("--seed", type=int, default=0, help="seed of random sampling (default: 0)")
    calibrated = parser.add_argument_group("calibrated margins (on the guide's own scores)")
    calibrated.add_argument("--margin-quantile", type=float, metavar="Q",
                            help="absolute margin = the Q-quantile of s_pos - s_cand over the candidates: "
                            "removes the share Q closest to (or above) their positive, whatever the guide")  # fmt: skip
    calibrated.add_argument("--rank-margin", type=int, metavar="R",
                            help="keep a candidate only if it ranks more than R places below the positive "
                            "(0: remove those scored above the positive)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from harness.data.mining import MiningOptions, arrange, mine, source_rows

    if args.out.suffix != ".jsonl":
        raise UserError(f"--out {args.out}: expected a .jsonl file")
    from harness.guides import GUIDES

    if args.guide in GUIDES and args.guide not in ("tfidf", "bm25"):  # checked before any data is read
        raise UserError(
            f"guide {args.guide!r} cannot mine: use a model (gist-harness ls models), a model folder, tfidf or bm25"
        )
    options = MiningOptions(**{k: getattr(args, k) for k in MiningOptions.__dataclass_fields__})
    anchors, positives, labels = source_rows(
        args.source, args.data_dir, anchor_column=args.anchor_column,
        positive_column=args.positive_column, options=source_options(args.option),
    )  # fmt: skip
    corpus = None
    if args.corpus:
        _, corpus, corpus_labels = source_rows(args.corpus, args.data_dir, positive_column=args.corpus_column)
        labels = corpus_labels | labels
    options.check(len(arrange(anchors, positives, corpus).corpus))  # before any text is embedded
    guide = mining_guide(args, [*anchors, *(corpus or positives)])
    rows, summary = mine(
        anchors, positives, guide.embed, options, corpus=corpus, labels=labels, progress=not args.no_progress
    )
    guide.save()
    write_jsonl(args.out, rows)
    print(f"wrote {len(rows)} rows to {args.out}", file=sys.stderr)
    report = summary_rows(summary)
    print_rows(report, title=f"mining {args.source} with guide {args.guide}")
    if args.summary:
        write_text(args.summary, json.dumps({"guide": args.guide, **summary.__dict__}, indent=2) + "\n")
    return 0


def source_options(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings as source options (values parsed as JSON, else kept as text)."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--option {pair!r}: expected KEY=VALUE")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def mining_guide(args: argparse.Namespace, texts: list[str]) -> Any:
    """The guide: a model (cached vectors, filled now) or a lexical guide fit on ``texts``."""
    from harness.guides import build_guide

    return build_guide(
        args.guide,
        corpus=texts,
        max_seq_len=args.max_seq_len,
        device=args.device,
        progress=not args.no_progress,
    )


def summary_rows(summary: Any) -> list[dict[str, Any]]:
    """What mining considered and removed, one row per step.

    Exclusions are shares of the candidates considered; each filter's removals are shares of the
    candidates left after the exclusions, both as applied in order ("share") and alone ("alone").
    """
    left = summary.considered - sum(summary.excluded.values())

    def row(step: str, count: Any = "", share: str = "", alone: str = "") -> dict[str, Any]:
        return {"step": step, "count": count, "share": share, "alone": alone}

    def pct(n: int, of: int) -> str:
        return f"{n / of:.2%}" if of else ""

    out = [row(f"candidates considered ({summary.queries} anchors x {summary.window})", summary.considered)]
    out += [row(f"excluded: {k}", n, pct(n, summary.considered)) for k, n in summary.excluded.items()]
    out.append(row("candidates left", left))
    for name, n in summary.removed.items():
        label = f"removed by {name} = {summary.options.get(name)}"
        if name == "margin_quantile" and summary.resolved_margin is not None:
            label += f" (absolute margin {summary.resolved_margin:.4f})"
        out.append(row(label, n, pct(n, left), pct(summary.removed_alone[name], left)))
    out.append(row("negatives mined", summary.negatives))
    out.append(row(f"anchors short of {summary.options['num_negatives']} negatives", summary.short))
    out.append(row("rows written", summary.rows))
    for key, name in (
        ("false_negative_rate", "same-class negatives, with the filters"),
        ("false_negative_rate_unfiltered", "same-class negatives, no filter"),
        ("false_negative_rate_random", "same-class negatives, a random negative"),
    ):
        value = getattr(summary, key)
        if value is not None:
            out.append(row(name, share=f"{value:.2%}"))
    return out


def write_jsonl(path: Path, rows: list[dict[str, str]]) -> None:
    """Writes JSON lines atomically (a temporary file in the same folder, then renamed)."""
    write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def write_text(path: Path, text: str) -> None:
    """Writes ``text`` to ``path`` through a temporary file and ``os.replace``: never half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
