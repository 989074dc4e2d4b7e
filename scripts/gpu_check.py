"""The prepared GPU check (issue 16): one command, under 8 minutes on one GPU. Not run on a GPU yet.

Parts (each timed; the figures go to stdout and ``--out``/gpu_check.json):

1. ``parity``: loss and gradients of the guided loss on the packaged models (all-MiniLM-L6-v2
   student, all-mpnet-base-v2 guide, cached), 32 STS-B pairs, on the GPU against the CPU, for
   ``none`` and ``gist``, with and without GradCache.
2. ``bench_step``: ``gist-harness bench step --device cuda`` (cached GIST / InfoNCE, CUDA-synchronised).
3. ``big_batch``: one train step at batch 1024 with GradCache (mini-batches of 64): seconds and
   peak GPU memory.
4. ``quickstart_bf16``: ``experiments/quickstart.toml`` in bf16, end to end, into a temporary folder.

Usage: ``scripts/gpu_check.sh`` (or ``python scripts/gpu_check.py --device cuda``). On a CPU
``--device cpu --small`` runs the same code at toy sizes (a smoke test of this script).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _to(value, device: str):
    return value.to(device) if isinstance(value, torch.Tensor) else value


def sts_pairs(count: int) -> list[tuple[str, str]]:
    from harness.bench.step import sts_pairs as read

    return read(Path(os.environ["GIST_HARNESS_DATA"]), count)


def loss_and_grads(student, guide, pairs, strategy: str, mini_batch_size: int | None, device: str):
    """One forward + backward on ``device``; the loss and the student's gradients (on the CPU)."""
    from harness.loss import GuidedInBatchLoss, make_data_collator

    student.to(device).zero_grad(set_to_none=True)
    loss_fn = GuidedInBatchLoss(
        student, guide if strategy != "none" else None, strategy=strategy, mini_batch_size=mini_batch_size
    )
    batch = make_data_collator(loss_fn)([{"anchor": a, "positive": p} for a, p in pairs])
    features = [
        {k[len(c) + 1 :]: _to(v, device) for k, v in batch.items() if k.startswith(c + "_")}
        for c in ("anchor", "positive")
    ]
    loss = loss_fn(features, None)
    loss.backward()
    grads = {n: p.grad.detach().float().cpu() for n, p in student.named_parameters() if p.grad is not None}
    return float(loss.detach()), grads


def parity(device: str, pairs_count: int) -> dict:
    from harness.guides import build_guide
    from harness.models import load_model

    pairs = sts_pairs(pairs_count)
    guide = build_guide(
        "all-mpnet-base", corpus=[t for p in pairs for t in p], device=device, progress=False, persist=False
    )
    out = {}
    for strategy in ("none", "gist"):
        for mini in (None, 8):
            cpu_loss, cpu_grads = loss_and_grads(
                load_model("all-minilm-l6", "cpu"), guide, pairs, strategy, mini, "cpu"
            )
            dev_loss, dev_grads = loss_and_grads(
                load_model("all-minilm-l6", device), guide, pairs, strategy, mini, device
            )
            worst = max(
                float((dev_grads[n] - g).abs().max() / (g.abs().max() + 1e-12)) for n, g in cpu_grads.items()
            )
            out[f"{strategy}{'-gradcache' if mini else ''}"] = {
                "loss_cpu": cpu_loss,
                "loss_device": dev_loss,
                "loss_abs_diff": abs(cpu_loss - dev_loss),
                "grad_max_rel_diff": worst,
            }
    return out


def big_batch(device: str, batch_size: int) -> dict:
    from harness.guides import build_guide
    from harness.loss import GuidedInBatchLoss, make_data_collator
    from harness.models import load_model

    pairs = sts_pairs(batch_size)
    student = load_model("all-minilm-l6", device)
    student.max_seq_length = 64
    start = time.perf_counter()
    guide = build_guide(
        "all-mpnet-base", corpus=[t for p in pairs for t in p], device=device, progress=False, persist=False
    )
    fill = time.perf_counter() - start
    loss_fn = GuidedInBatchLoss(student, guide, strategy="gist", mini_batch_size=64)
    batch = make_data_collator(loss_fn)([{"anchor": a, "positive": p} for a, p in pairs])
    features = [
        {k[len(c) + 1 :]: _to(v, device) for k, v in batch.items() if k.startswith(c + "_")}
        for c in ("anchor", "positive")
    ]
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    sync(device)
    start = time.perf_counter()
    loss = loss_fn(features, None)
    loss.backward()
    sync(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None
    return {
        "batch_size": len(pairs),
        "mini_batch_size": 64,
        "step_seconds": round(seconds, 3),
        "peak_memory_mb": peak,
        "guide_fill_seconds": round(fill, 1),
        "loss": float(loss.detach()),
        "drop_rate": loss_fn.diagnostics_history[-1]["drop_rate"],
    }


def bench_step(device: str, repeats: int) -> dict:
    command = [
        sys.executable, "-m", "harness", "bench", "step", "--device", device, "--json",
        "--no-objectives", "--repeats", str(repeats),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(done.stdout[done.stdout.index("{") :])


def quickstart_bf16(device: str) -> dict:
    text = (REPO / "experiments" / "quickstart_minilm.toml").read_text()  # the transformer student
    text = text.replace('name = "quickstart-minilm"', 'name = "quickstart-bf16-check"')
    text = text.replace("[train]\n", '[train]\nprecision = "bf16"\n', 1)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as folder:
        experiment = Path(folder) / "quickstart_bf16.toml"
        experiment.write_text(text)
        start = time.perf_counter()
        command = [
            sys.executable, "-m", "harness", "run", str(experiment), "--device", device, "--no-progress",
            "--runs-dir", str(Path(folder) / "runs"), "--reports-dir", str(Path(folder) / "reports"),
        ]  # fmt: skip
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        summary = {
            "returncode": done.returncode,
            "seconds": round(seconds, 1),
            "stderr_tail": done.stderr[-2000:],
        }
        records = sorted((Path(folder) / "runs" / "quickstart-bf16-check").glob("trial-*/trial.json"))
        summary["trials"] = [json.loads(r.read_text()).get("state") for r in records]
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--small", action="store_true", help="toy sizes (a smoke test on a CPU)")
    parser.add_argument("--skip", nargs="*", default=[], help="parts to skip")
    parser.add_argument("--out", type=Path, default=Path("gpu_check.json"))
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device: run with --device cpu --small for a smoke test", file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    results: dict = {
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
        "torch": torch.__version__,
    }
    parts = {
        "parity": lambda: parity(args.device, 8 if args.small else 32),
        "bench_step": lambda: bench_step(args.device, 2 if args.small else 10),
        "big_batch": lambda: big_batch(args.device, 64 if args.small else 1024),
        "quickstart_bf16": lambda: quickstart_bf16(args.device),
    }
    for name, part in parts.items():
        if name in args.skip:
            continue
        start = time.perf_counter()
        try:
            results[name] = part()
        except Exception as exc:  # one failed part must not hide the others' figures
            traceback.print_exc()
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
        results[name + "_seconds"] = round(time.perf_counter() - start, 1)
        print(json.dumps({name: results[name]}, indent=2, default=str), flush=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    failed = [n for n in parts if isinstance(results.get(n), dict) and "error" in results[n]]
    print(f"wrote {args.out}; failed parts: {', '.join(failed) or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
