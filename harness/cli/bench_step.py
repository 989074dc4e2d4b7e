"""``gist-harness bench step``: train-step time of cached GIST vs plain InfoNCE vs ST ``GISTEmbedLoss``.

Same student, batch and texts for the three losses (STS-B train pairs); a step is collate
(tokenise, and for cached GIST the guide-cache lookup) + forward + backward. The losses run
in rotating rounds so drift on a shared machine hits them alike; the medians and ratios are reported.
The guide cache is filled before timing starts (as ``build_guide(corpus=...)`` does before training).

Denormal floats are flushed to zero unless ``--keep-denormals``: at temperature 0.01 most softmax
gradients of plain InfoNCE are denormal (~e^-100), which makes a CPU backward pass ~2.5x slower,
while masked candidates get exact zeros; flushing measures the algorithms rather than that effect.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.cli.table import print_rows
from harness.errors import UserError

LOSSES = ("infonce", "gist_cached", "st_gistembed")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "step", help="time one train step: cached GIST vs InfoNCE vs GISTEmbedLoss"
    )
    parser.add_argument("--student", default="all-minilm-l6", help="student model (default: all-minilm-l6)")
    parser.add_argument("--guide", default="all-mpnet-base", help="guide model (default: all-mpnet-base)")
    parser.add_argument("--batch-size", type=int, default=32, help="pairs per batch (default: 32)")
    parser.add_argument("--repeats", type=int, default=10, help="timed steps per loss (default: 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per loss first (default: 2)")
    parser.add_argument(
        "--data-dir", type=Path, metavar="DIR", help="data folder (default: $GIST_HARNESS_DATA)"
    )
    parser.add_argument(
        "--cache-dir", type=Path, metavar="DIR", help="guide cache folder (default: harness cache)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own)")
    parser.add_argument(
        "--keep-denormals",
        action="store_true",
        help="do not flush denormal floats to zero (CPU: InfoNCE's tiny softmax gradients are denormal "
        "and slow the backward pass ~2.5x; masked candidates get exact zeros instead)",
    )
    parser.add_argument("--json", action="store_true", help="print the medians and ratios as JSON")
    parser.set_defaults(func=run)


def sts_pairs(data_dir: Path, count: int) -> list[tuple[str, str]]:
    """The first ``count`` STS-B train pairs with unique texts (the bench's fixed batch)."""
    from harness.data.files import read_stsb

    path = Path(data_dir) / "stsbenchmark" / "sts-train.csv"
    if not path.exists():
        raise UserError(f"bench step reads {path}: pass --data-dir or set GIST_HARNESS_DATA")
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for row in read_stsb(path):
        a, b = row["sentence1"], row["sentence2"]
        if a in seen or b in seen or a == b:
            continue
        seen.update((a, b))
        pairs.append((a, b))
        if len(pairs) == count:
            break
    return pairs


def make_steps(
    student: Any, guide_model: Any, pairs: list[tuple[str, str]], cache_dir: Path | None
) -> dict[str, Callable[[], float]]:
    """One zero-argument train step per loss (collate + forward + backward); each returns the loss value."""
    from sentence_transformers.sentence_transformer.data_collator import SentenceTransformerDataCollator
    from sentence_transformers.sentence_transformer.losses import GISTEmbedLoss, MultipleNegativesRankingLoss

    from harness.guides import build_guide
    from harness.loss import GuidedInBatchLoss, make_data_collator

    rows = [{"anchor": a, "positive": p} for a, p in pairs]
    corpus = [t for pair in pairs for t in pair]
    guide = build_guide(guide_model, corpus=corpus, cache_dir=cache_dir, progress=False)
    plain = SentenceTransformerDataCollator(preprocess_fn=student.preprocess)
    cached = GuidedInBatchLoss(student, guide, guide_mode="cached")
    losses = {
        "infonce": (MultipleNegativesRankingLoss(student, scale=100.0), plain),
        "gist_cached": (cached, make_data_collator(cached)),
        "st_gistembed": (GISTEmbedLoss(student, guide_model), plain),
    }

    def step_for(loss: Any, collator: Any) -> Callable[[], float]:
        def step() -> float:
            batch = collator(rows)
            features = [
                {k[len(c) + 1 :]: v for k, v in batch.items() if k.startswith(c + "_")}
                for c in ("anchor", "positive")
            ]
            value = loss(features, None)
            value.backward()
            student.zero_grad(set_to_none=True)
            return float(value.detach())

        return step

    return {name: step_for(*losses[name]) for name in LOSSES}


def measure(steps: dict[str, Callable[[], float]], repeats: int = 10, warmup: int = 2) -> dict[str, Any]:
    """Median wall and CPU seconds per step for each loss, and their ratios to InfoNCE.

    CPU time (``time.process_time``, all threads) is the steadier figure on a shared machine,
    where wall time also counts the time spent waiting for a core.

    Each round runs every loss once untimed then once timed, in an order rotated every round: the
    step right after another loss's (e.g. after the big guide's activations were freed) pays for
    page faults and cold caches, which would otherwise always land on the same loss.
    """
    names = list(steps)
    for _ in range(warmup):
        for step in steps.values():
            step()
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            steps[name]()  # settle
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            steps[name]()
            wall[name].append(time.perf_counter() - start_wall)
            cpu[name].append(time.process_time() - start_cpu)
    out: dict[str, Any] = {"repeats": repeats}
    for label, times in (("", wall), ("cpu_", cpu)):
        medians = {name: statistics.median(values) for name, values in times.items()}
        out[f"{label}median_seconds"] = {k: round(v, 4) for k, v in medians.items()}
        out[f"{label}ratio_to_infonce"] = {k: round(v / medians["infonce"], 3) for k, v in medians.items()}
    return out


def run(args: argparse.Namespace) -> int:
    import torch

    from harness.models import load_model

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(not args.keep_denormals)
    data_dir = args.data_dir or os.environ.get("GIST_HARNESS_DATA")
    if data_dir is None:
        raise UserError("bench step needs the data folder: pass --data-dir or set GIST_HARNESS_DATA")
    student = load_model(args.student, device=args.device)
    guide_model = load_model(args.guide, device=args.device)
    steps = make_steps(student, guide_model, sts_pairs(Path(data_dir), args.batch_size), args.cache_dir)
    result = measure(steps, args.repeats, args.warmup)
    result.update(
        student=args.student,
        guide=args.guide,
        batch_size=args.batch_size,
        device=args.device,
        threads=torch.get_num_threads(),
        flush_denormal=not args.keep_denormals,
    )
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        rows = [
            {
                "loss": n,
                "median_s": result["median_seconds"][n],
                "x_infonce": result["ratio_to_infonce"][n],
                "cpu_median_s": result["cpu_median_seconds"][n],
                "cpu_x_infonce": result["cpu_ratio_to_infonce"][n],
            }
            for n in LOSSES
        ]
        print_rows(rows, title=f"bench step: {args.student} / guide {args.guide}, batch {args.batch_size}")
    return 0
