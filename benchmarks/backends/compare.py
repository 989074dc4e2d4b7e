"""Side by side: sentence-transformers' torch backend against its OpenVINO or ONNX backend.

Issue 15 asks for a faster evaluation backend only if it is faster here *and* scores equal to 1e-4.
This scores one model on one suite with each backend in the same process, one after the other (run it
on an idle machine), and writes per-task scores and seconds to ``--out``::

    python benchmarks/backends/compare.py --model all-minilm-l6 --suite offline-lite \
        --backend openvino --out benchmarks/backends

It needs the backend's extra, which the project does not install (``sentence-transformers[openvino]``
or ``[onnx]``; see README.md beside this file for what installs with the pinned stack).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from importlib.metadata import version
from pathlib import Path


def _score(model, suite: str, seq_len: int) -> tuple[dict[str, float], dict[str, float], float]:
    from harness.evaluate import evaluate

    model.max_seq_length = seq_len
    start = time.perf_counter()
    table = evaluate(model, suite, progress=False)
    wall = time.perf_counter() - start
    scores = table.groupby("task")["main_score"].mean().to_dict()
    seconds = table.groupby("task")["seconds"].sum().to_dict()
    seconds["(warm-up embedding)"] = table.attrs["warmup_seconds"]
    return scores, seconds, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="all-minilm-l6")
    parser.add_argument("--suite", default="offline-lite")
    parser.add_argument("--backend", choices=["openvino", "onnx"], default="openvino")
    parser.add_argument("--max-seq-len", type=int, default=256)
    parser.add_argument(
        "--ov-precision",
        choices=["default", "f32", "bf16"],
        default="default",
        help="OpenVINO's INFERENCE_PRECISION_HINT (its default is bf16 on CPUs with AVX512_BF16 or AMX)",
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    from sentence_transformers import SentenceTransformer

    from harness.models import model_path

    path = str(model_path(args.model))
    runs = {}
    for backend in ("torch", args.backend):
        start = time.perf_counter()
        kwargs = {}
        if backend == "openvino" and args.ov_precision != "default":
            kwargs["model_kwargs"] = {"ov_config": {"INFERENCE_PRECISION_HINT": args.ov_precision}}
        model = SentenceTransformer(path, device="cpu", backend=backend, **kwargs)
        load = time.perf_counter() - start
        scores, seconds, wall = _score(model, args.suite, args.max_seq_len)
        runs[backend] = {"load_seconds": round(load, 2), "wall_seconds": round(wall, 2),
                         "scores": scores, "seconds": seconds}  # fmt: skip
        print(f"{backend}: {wall:.1f} s on {args.suite} (load {load:.1f} s)", flush=True)

    base, other = runs["torch"], runs[args.backend]
    rows = []
    for task in sorted(base["scores"]):
        a, b = base["scores"][task], other["scores"][task]
        rows.append({"task": task, "torch": a, args.backend: b, "abs_diff": abs(a - b),
                     "torch_s": base["seconds"][task], f"{args.backend}_s": other["seconds"][task]})  # fmt: skip
    worst = max(r["abs_diff"] for r in rows)
    speedup = base["wall_seconds"] / other["wall_seconds"]
    meta = {
        "command": f"python benchmarks/backends/compare.py --model {args.model} --suite {args.suite} "
        f"--backend {args.backend} --ov-precision {args.ov_precision} --out {args.out}",
        "written": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "versions": {p: version(p) for p in ("torch", "transformers", "sentence-transformers")},
        "max_abs_score_diff": worst,
        "speedup_wall": round(speedup, 3),
        "adopt": worst <= 1e-4 and speedup > 1.0,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    precision = f"-{args.ov_precision}" if args.backend == "openvino" else ""
    name = f"{args.model}-{args.suite}-{args.backend}{precision}.json"
    (args.out / name).write_text(json.dumps({**meta, "runs": runs, "rows": rows}, indent=2) + "\n")
    print(f"max |score difference| {worst:.2e}; wall speed-up {speedup:.2f}x; wrote {args.out / name}")


if __name__ == "__main__":
    main()
