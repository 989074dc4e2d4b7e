"""Train-step time of cached GIST vs plain InfoNCE vs ST ``GISTEmbedLoss`` (``gist-harness bench step``),
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

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import UserError

LOSSES = ("infonce", "gist_cached", "st_gistembed")
OBJECTIVE_REFERENCE = "infonce_blocks"
"""The objectives bench's reference: ``GuidedInBatchLoss`` InfoNCE with the default blocks, no guide."""


@dataclass(frozen=True)
class StepOptions:
    """What ``gist-harness bench step`` times (its options, by the same names).

    Attributes:
        data_dir: the data folder (STS-B train pairs); None fails :func:`check_options`.
        nproc: the processes the global batch is split across (under a launcher: its ``WORLD_SIZE``).
        objectives: also run the objectives bench (``--no-objectives`` turns it off).
        static_student: the objectives bench's static student; ``"none"`` skips it.
    """

    data_dir: Path | None
    student: str = "all-minilm-l6"
    guide: str = "all-mpnet-base"
    batch_size: int = 32
    repeats: int = 10
    warmup: int = 2
    cache_dir: Path | None = None
    device: str = "cpu"
    nproc: int = 1
    threads: int | None = None
    keep_denormals: bool = False
    static_student: str = "static-minilm"
    static_batch_size: int = 128
    objectives: bool = True


def check_options(options: StepOptions) -> Path:
    """The data folder; one-line errors for a process count that does not divide every batch, or no folder."""
    batches = {"--batch-size": options.batch_size}
    if options.objectives and options.static_student != "none":
        batches["--static-batch-size"] = options.static_batch_size
    check_nproc(options.nproc, batches)
    if options.data_dir is None:
        raise UserError("bench step needs the data folder: pass --data-dir or set GIST_HARNESS_DATA")
    return options.data_dir


def bench_step(options: StepOptions, launched: bool = False) -> dict[str, Any] | None:
    """Times the three losses (and the objectives bench) as ``options`` say: medians, ratios, settings.

    Args:
        launched: this process is one of ``options.nproc`` started by a launcher: it joins the
            process group (on CUDA, each rank on its own GPU).

    Returns:
        The result (``--json`` prints it) on rank 0; None on the other ranks.
    """
    import torch

    from harness.loss import distributed
    from harness.models import load_model

    data_dir = check_options(options)
    device = _join(options.device) if launched else options.device
    if options.threads:
        torch.set_num_threads(options.threads)
    torch.set_flush_denormal(not options.keep_denormals)
    student = load_model(options.student, device=device)
    guide_model = load_model(options.guide, device=device)
    pairs = sts_pairs(data_dir, options.batch_size)
    result = measure(
        make_steps(student, guide_model, pairs, options.cache_dir), options.repeats, options.warmup
    )
    result.update(_settings(options, device, torch.get_num_threads()))
    if options.objectives:
        result["objectives"] = _objectives(options, student, guide_model, data_dir, device)
    rank = distributed.rank()
    if launched:
        from harness.study import ranks

        ranks.finish()
    return result if rank == 0 else None


def _join(device: str) -> str:
    """Joins the launcher's process group; the device of this rank (its own GPU on CUDA)."""
    from harness.study import ranks

    rank_device = ranks.init_process_group()
    return rank_device if device.startswith("cuda") else device


def _settings(options: StepOptions, device: str, threads: int) -> dict[str, Any]:
    return {
        "student": options.student,
        "guide": options.guide,
        "batch_size": options.batch_size,
        "nproc": options.nproc,
        "per_rank_batch_size": options.batch_size // options.nproc,
        "device": device,
        "threads": threads,
        "flush_denormal": not options.keep_denormals,
    }


def _objectives(
    options: StepOptions, student: Any, guide_model: Any, data_dir: Path, device: str
) -> dict[str, Any]:
    """The objectives bench of the transformer student and (unless "none") the static student."""
    from harness.models import load_model

    students = {"transformer": (student, options.batch_size)}
    if options.static_student != "none":
        static = load_model(options.static_student, device=device)
        students["static"] = (static, options.static_batch_size)
    out = bench_objectives(
        students, guide_model, data_dir, options.cache_dir, options.repeats, options.warmup
    )
    out["students"] = {"transformer": options.student, "static": options.static_student}
    return out


def tables(result: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """The printed tables of a :func:`bench_step` result: (title, rows), the three losses first."""
    losses = [
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
    batch = f"batch {result['batch_size']}"
    if result["nproc"] > 1:
        batch += f" = {result['nproc']} processes x {result['per_rank_batch_size']}"
    out = [(f"bench step: {result['student']} / guide {result['guide']}, {batch}", losses)]
    objectives = result.get("objectives", {})
    for kind, bench in objectives.items():
        if kind != "students":
            title = f"objectives, {kind} student {objectives['students'][kind]}, batch {bench['batch_size']}"
            out.append((title, _objective_rows(bench)))
    return out


def _objective_rows(bench: dict[str, Any]) -> list[dict[str, Any]]:
    ratios, cpu_ratios = (
        bench[f"ratio_to_{OBJECTIVE_REFERENCE}"],
        bench[f"cpu_ratio_to_{OBJECTIVE_REFERENCE}"],
    )
    return [
        {
            "loss": n,
            "median_s": bench["median_seconds"][n],
            f"x_{OBJECTIVE_REFERENCE}": ratios[n],
            "cpu_median_s": bench["cpu_median_seconds"][n],
            f"cpu_x_{OBJECTIVE_REFERENCE}": cpu_ratios[n],
        }
        for n in bench["median_seconds"]
    ]


def sts_pairs(data_dir: Path, count: int) -> list[tuple[str, str]]:
    """The first ``count`` STS-B train pairs with unique texts (the bench's fixed batch)."""
    from harness.files import read_stsb

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
    """One train step of ``loss`` on ``rows``: collate, forward, backward; returns the loss value."""

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
    columns = ("anchor", "positive")
    return {name: _step(student, *losses[name], rows, columns) for name in LOSSES if name in losses}


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
