"""``gist-harness bench step``: train-step time of cached GIST vs plain InfoNCE vs ST ``GISTEmbedLoss``,
and of every loss objective against InfoNCE with the same blocks, for a transformer and a static student.

Same student, batch and texts for the three losses (STS-B train pairs); a step is collate
(tokenise, and for cached GIST the guide-cache lookup) + forward + backward. The losses run
in rotating rounds so drift on a shared machine hits them alike; the medians and ratios are reported.
The guide cache is filled before timing starts (as ``build_guide(corpus=...)`` does before training).

The objectives bench (``objectives`` in the JSON) times, per student, ``GuidedInBatchLoss`` with
InfoNCE and the default blocks (ap, aa, pp, an1; no guide) against the ``gist`` mask with each
registered objective (cached guide; ``hardness`` on the guide's cosines), on (anchor, positive,
negative) triplets of STS-B sentences, so ``margin_mse`` has its negative column.

With ``--nproc N`` the command starts N copies of itself with ``torch.distributed.run`` (as
``gist-harness run --nproc`` does; gloo on the CPU, NCCL on CUDA): the global batch of
``--batch-size`` pairs is split evenly across the ranks, the student runs under DDP, the losses
gather their negatives across ranks, and every timed step starts and ends at a barrier, so a
step's wall time is the slowest rank's; CPU time is summed over the ranks. Rank 0 prints.
``st_gistembed`` is skipped for a student or guide without a Hugging Face tokenizer (static models).

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
OBJECTIVE_REFERENCE = "infonce_blocks"
"""The objectives bench's reference: ``GuidedInBatchLoss`` InfoNCE with the default blocks, no guide."""


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
    parser.add_argument(
        "--device", default="cpu", help="torch device; with --nproc, cuda is one GPU per process"
    )
    parser.add_argument(
        "--nproc",
        type=int,
        default=1,
        metavar="N",
        help="time the step on N processes started with torch.distributed.run (gloo on the CPU, NCCL on "
        "CUDA), the global batch split across them, negatives gathered (default: 1)",
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own)")
    parser.add_argument(
        "--keep-denormals",
        action="store_true",
        help="do not flush denormal floats to zero (CPU: InfoNCE's tiny softmax gradients are denormal "
        "and slow the backward pass ~2.5x; masked candidates get exact zeros instead)",
    )
    parser.add_argument(
        "--static-student",
        default="static-minilm",
        help="static student of the objectives bench ('none' to skip; default: static-minilm)",
    )
    parser.add_argument(
        "--static-batch-size", type=int, default=128, help="static student's pairs per batch (default: 128)"
    )
    parser.add_argument(
        "--no-objectives", action="store_true", help="skip the objectives bench (the three losses only)"
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


def sts_triplets(data_dir: Path, count: int) -> list[tuple[str, str, str]]:
    """``count`` (anchor, positive, negative) rows: STS-B train pairs, the negative a later pair's text."""
    pairs = sts_pairs(data_dir, 2 * count)
    if len(pairs) < 2 * count:
        raise UserError(f"bench step: STS-B train has {len(pairs)} unique pairs, {2 * count} needed")
    return [(a, p, n) for (a, p), (_, n) in zip(pairs[:count], pairs[count:], strict=True)]


def check_nproc(nproc: int, batch_sizes: dict[str, int]) -> None:
    """One-line errors for an ``--nproc`` that is not a whole number of processes dividing every batch."""
    if nproc < 1:
        raise UserError(f"--nproc must be 1 or more processes, got {nproc}")
    for option, size in batch_sizes.items():
        if size % nproc:
            raise UserError(
                f"{option} {size} must be a multiple of the {nproc} processes (the global batch is split "
                "evenly across them)"
            )


def this_rank(rows: list[Any]) -> list[Any]:
    """This rank's share of the global batch ``rows``: the r-th of N equal slices (all without a process group)."""
    from harness.loss import distributed

    size = len(rows) // distributed.world_size()
    start = distributed.rank() * size
    return rows[start : start + size]


_WRAPPED: dict[int, Any] = {}


def run_through_ddp(student: Any, losses: list[Any]) -> None:
    """Under a process group, makes ``losses`` run ``student`` through one DDP wrapper (as the Trainer does).

    DDP all-reduces the gradients in each backward pass; one wrapper per student, since a second
    one would register its hooks on the same parameters. Without a process group: nothing.
    """
    from harness.loss import distributed

    if not distributed.active():
        return
    from torch.nn.parallel import DistributedDataParallel

    if id(student) not in _WRAPPED:  # find_unused_parameters: the Trainer's default without checkpointing
        _WRAPPED[id(student)] = DistributedDataParallel(student, find_unused_parameters=True)
    for loss in losses:
        loss.model = _WRAPPED[id(student)]


def objective_losses(student: Any, guide: Any) -> dict[str, Any]:
    """The objectives bench's losses: the reference (InfoNCE, default blocks) and gist + each objective."""
    from harness.loss import GuidedInBatchLoss
    from harness.loss.objectives import OBJECTIVES

    losses = {OBJECTIVE_REFERENCE: GuidedInBatchLoss(student, None, strategy="none")}
    for name in OBJECTIVES.names():
        params = {"sims": "guide"} if name == "hardness" else {}
        losses[f"gist+{name}"] = GuidedInBatchLoss(
            student, guide, strategy="gist", objective=name, objective_params=params
        )
    return losses


def make_objective_steps(
    student: Any, guide_model: Any, rows: list[tuple[str, str, str]], cache_dir: Path | None
) -> dict[str, Callable[[], float]]:
    """One zero-argument train step (collate + forward + backward) per objective-bench loss."""
    from harness.guides import build_guide
    from harness.loss import make_data_collator

    columns = ("anchor", "positive", "negative")
    rows = this_rank(rows)
    batch_rows = [dict(zip(columns, row, strict=True)) for row in rows]
    guide = build_guide(
        guide_model, corpus=[t for row in rows for t in row], cache_dir=cache_dir, progress=False
    )
    losses = objective_losses(student, guide)
    collators = {name: make_data_collator(loss) for name, loss in losses.items()}
    run_through_ddp(student, list(losses.values()))
    return {name: _step(student, loss, collators[name], batch_rows, columns) for name, loss in losses.items()}


def _step(
    student: Any, loss: Any, collator: Any, rows: list[dict[str, str]], columns: tuple[str, ...]
) -> Callable[[], float]:
    def step() -> float:
        batch = collator(rows)
        features = [{k[len(c) + 1 :]: v for k, v in batch.items() if k.startswith(c + "_")} for c in columns]
        value = loss(features, None)
        value.backward()
        student.zero_grad(set_to_none=True)
        return float(value.detach())

    return step


def make_steps(
    student: Any, guide_model: Any, pairs: list[tuple[str, str]], cache_dir: Path | None
) -> dict[str, Callable[[], float]]:
    """One zero-argument train step per loss (collate + forward + backward); each returns the loss value.

    Under a process group, of this rank's share of ``pairs`` (the global batch), negatives gathered.
    ``st_gistembed`` only when student and guide have Hugging Face tokenizers (not static models).
    """
    from sentence_transformers.sentence_transformer.data_collator import SentenceTransformerDataCollator
    from sentence_transformers.sentence_transformer.losses import GISTEmbedLoss, MultipleNegativesRankingLoss
    from transformers import PreTrainedTokenizerBase

    from harness.guides import build_guide
    from harness.loss import GuidedInBatchLoss, distributed, make_data_collator

    pairs = this_rank(pairs)
    gather = distributed.active()
    rows = [{"anchor": a, "positive": p} for a, p in pairs]
    corpus = [t for pair in pairs for t in pair]
    guide = build_guide(guide_model, corpus=corpus, cache_dir=cache_dir, progress=False)
    plain = SentenceTransformerDataCollator(preprocess_fn=student.preprocess)
    cached = GuidedInBatchLoss(student, guide, guide_mode="cached")
    losses = {
        "infonce": (MultipleNegativesRankingLoss(student, scale=100.0, gather_across_devices=gather), plain),
        "gist_cached": (cached, make_data_collator(cached)),
    }
    if all(
        isinstance(getattr(m, "tokenizer", None), PreTrainedTokenizerBase) for m in (student, guide_model)
    ):
        losses["st_gistembed"] = (GISTEmbedLoss(student, guide_model, gather_across_devices=gather), plain)
    run_through_ddp(student, [loss for loss, _ in losses.values()])

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

    return {name: step_for(*losses[name]) for name in LOSSES if name in losses}


def measure(
    steps: dict[str, Callable[[], float]], repeats: int = 10, warmup: int = 2, reference: str = "infonce"
) -> dict[str, Any]:
    """Median (and 90th-percentile) wall and CPU seconds per step for each loss, and their ratios to
    ``reference`` (InfoNCE).

    Under a process group every rank runs the same rounds; each timed step starts and ends at a
    barrier, and a step counts as the slowest rank's wall time and the sum of the ranks' CPU time.

    CPU time (``time.process_time``, all threads) is the steadier figure on a shared machine,
    where wall time also counts the time spent waiting for a core.

    Each round runs every loss once untimed then once timed, in an order rotated every round: the
    step right after another loss's (e.g. after the big guide's activations were freed) pays for
    page faults and cold caches, which would otherwise always land on the same loss.
    """
    names = list(steps)
    sync = synchronize()
    for _ in range(warmup):
        for step in steps.values():
            step()
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            steps[name]()  # settle
            sync()  # CUDA runs asynchronously: the clock starts and stops with the device idle
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            steps[name]()
            sync()
            wall[name].append(time.perf_counter() - start_wall)
            cpu[name].append(time.process_time() - start_cpu)
    wall, cpu = over_ranks(wall, max), over_ranks(cpu, sum)
    out: dict[str, Any] = {"repeats": repeats}
    for label, times in (("", wall), ("cpu_", cpu)):
        medians = {name: statistics.median(values) for name, values in times.items()}
        out[f"{label}median_seconds"] = {k: round(v, 4) for k, v in medians.items()}
        out[f"{label}p90_seconds"] = {k: round(percentile(v, 90), 4) for k, v in times.items()}
        out[f"{label}ratio_to_{reference}"] = {
            k: round(v / medians[reference], 3) for k, v in medians.items()
        }
    return out


def bench_objectives(
    students: dict[str, tuple[Any, int]],
    guide_model: Any,
    data_dir: Path,
    cache_dir: Path | None,
    repeats: int,
    warmup: int,
) -> dict[str, Any]:
    """Per student kind ("transformer", "static"): medians and ratios of each objective to InfoNCE + blocks.

    Args:
        students: kind -> (model, batch size).
    """
    out: dict[str, Any] = {}
    for kind, (student, batch_size) in students.items():
        steps = make_objective_steps(student, guide_model, sts_triplets(data_dir, batch_size), cache_dir)
        result = measure(steps, repeats, warmup, reference=OBJECTIVE_REFERENCE)
        out[kind] = {"batch_size": batch_size, **result}
    return out


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile of ``values``."""
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * q // 100) - 1)]


def over_ranks(
    times: dict[str, list[float]], combine: Callable[[list[float]], float]
) -> dict[str, list[float]]:
    """Each step's times on every rank combined (``max``: the slowest rank; ``sum``); one process: as is."""
    from harness.loss import distributed

    if not distributed.active():
        return times
    import torch.distributed as dist

    every: list[Any] = [None] * distributed.world_size()
    dist.all_gather_object(every, times)
    return {name: [combine(step) for step in zip(*(t[name] for t in every), strict=True)] for name in times}


def synchronize() -> Callable[[], None]:
    """Waits for the device (CUDA) and, under a process group, for every rank (a barrier)."""
    from harness.loss import distributed

    cuda = cuda_synchronize()
    if not distributed.active():
        return cuda
    import torch.distributed as dist

    def sync() -> None:
        cuda()
        dist.barrier()

    return sync


def cuda_synchronize() -> Callable[[], None]:
    """``torch.cuda.synchronize`` when CUDA is present (a step's kernels finish before the clock
    stops), else a no-op."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return torch.cuda.synchronize
    return lambda: None


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1  # one of N processes (``ranks.launched``)
    nproc = int(os.environ["WORLD_SIZE"]) if launched else args.nproc
    batches = {"--batch-size": args.batch_size}
    if not args.no_objectives and args.static_student != "none":
        batches["--static-batch-size"] = args.static_batch_size
    check_nproc(nproc, batches)
    data_dir = args.data_dir or os.environ.get("GIST_HARNESS_DATA")
    if data_dir is None:
        raise UserError("bench step needs the data folder: pass --data-dir or set GIST_HARNESS_DATA")
    if args.nproc > 1 and not launched:
        from harness.cli.run_cmd import launch

        return launch(args.nproc)

    import torch

    from harness.loss import distributed
    from harness.models import load_model
    from harness.study import ranks

    device = args.device
    if launched:
        rank_device = ranks.init_process_group()
        device = rank_device if args.device.startswith("cuda") else args.device
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(not args.keep_denormals)
    student = load_model(args.student, device=device)
    guide_model = load_model(args.guide, device=device)
    steps = make_steps(student, guide_model, sts_pairs(Path(data_dir), args.batch_size), args.cache_dir)
    result = measure(steps, args.repeats, args.warmup)
    result.update(
        student=args.student,
        guide=args.guide,
        batch_size=args.batch_size,
        nproc=nproc,
        per_rank_batch_size=args.batch_size // nproc,
        device=device,
        threads=torch.get_num_threads(),
        flush_denormal=not args.keep_denormals,
    )
    if not args.no_objectives:
        students = {"transformer": (student, args.batch_size)}
        if args.static_student != "none":
            students["static"] = (load_model(args.static_student, device=device), args.static_batch_size)
        result["objectives"] = bench_objectives(
            students, guide_model, Path(data_dir), args.cache_dir, args.repeats, args.warmup
        )
        result["objectives"]["students"] = {"transformer": args.student, "static": args.static_student}
    if distributed.rank() != 0:
        return 0  # rank 0 prints
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        rows = [
            {
                "loss": n,
                "median_s": result["median_seconds"][n],
                "p90_s": result["p90_seconds"][n],
                "x_infonce": result["ratio_to_infonce"][n],
                "cpu_median_s": result["cpu_median_seconds"][n],
                "cpu_x_infonce": result["cpu_ratio_to_infonce"][n],
            }
            for n in result["median_seconds"]
        ]
        batch = f"batch {args.batch_size}"
        if nproc > 1:
            batch += f" = {nproc} processes x {args.batch_size // nproc}"
        print_rows(rows, title=f"bench step: {args.student} / guide {args.guide}, {batch}")
        for kind, bench in result.get("objectives", {}).items():
            if kind == "students":
                continue
            ratios, cpu_ratios = (
                bench[f"ratio_to_{OBJECTIVE_REFERENCE}"],
                bench[f"cpu_ratio_to_{OBJECTIVE_REFERENCE}"],
            )
            objective_rows = [
                {
                    "loss": n,
                    "median_s": bench["median_seconds"][n],
                    f"x_{OBJECTIVE_REFERENCE}": ratios[n],
                    "cpu_median_s": bench["cpu_median_seconds"][n],
                    f"cpu_x_{OBJECTIVE_REFERENCE}": cpu_ratios[n],
                }
                for n in bench["median_seconds"]
            ]
            title = f"objectives, {kind} student {result['objectives']['students'][kind]}, batch {bench['batch_size']}"
            print_rows(objective_rows, title=title)
    return 0
