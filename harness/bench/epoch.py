"""One training epoch per student and loss on the same mixture (``gist-harness bench epoch``).

Answers two questions about the static-student fast track: how much faster does a static student
train than a transformer on the same data, and does the (cached) guide dominate a step that cheap?
Each student trains one epoch with plain InfoNCE and one per guided arm (cached GIST, and the
``gist`` mask with each loss objective) through ``train()`` (the real Trainer path); the guide cache
is filled before timing, as a study does before its first trial. Every arm uses the default blocks
(ap, aa, pp, negatives), so each ratio to ``infonce`` is the cost of the guide and the objective.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

ARMS: dict[str, dict[str, Any]] = {
    "infonce": {"strategy": "none", "guide": "none"},
    "gist": {"strategy": "gist"},
    "gist+hardness": {"strategy": "gist", "objective": "hardness", "objective_params": {"sims": "guide"}},
    "gist+debiased": {"strategy": "gist", "objective": "debiased"},
    "gist+distill_kl": {"strategy": "gist", "objective": "distill_kl"},
    "gist+margin_mse": {"strategy": "gist", "objective": "margin_mse"},
    "gist+relabel_positive": {"strategy": "gist", "objective": "relabel_positive"},
}


def bench_epochs(
    *,
    students: list[str],
    guide: str,
    mixture: str,
    max_examples: int,
    batch_size: int,
    max_seq_len: int,
    threads: int | None = None,
    data_dir: Path | None = None,
    arms: list[str] | None = None,
) -> dict[str, Any]:
    """Times one epoch per (student, arm); returns rows plus static-vs-transformer and arm/InfoNCE ratios."""
    chosen = _chosen(arms)
    import torch

    from harness.data import build_mixture
    from harness.guides import build_guide
    from harness.train import training_texts

    if threads:
        torch.set_num_threads(threads)
    torch.set_flush_denormal(True)  # see bench step: time the algorithms, not denormal arithmetic
    data = build_mixture(mixture, data_dir, seed=0, max_examples=max_examples, dev_fraction=0.0).train
    start = time.perf_counter()
    guide_obj = build_guide(guide, corpus=sorted(training_texts(data)), progress=True)
    cache_seconds = time.perf_counter() - start
    rows = [
        _epoch(student, arm, data, guide_obj, batch_size, max_seq_len)
        for student in students
        for arm in chosen
    ]
    return {
        "examples": len(data),
        "guide": guide,
        "guide_cache_seconds": round(cache_seconds, 2),
        "threads": torch.get_num_threads(),
        "rows": rows,
        "ratios": _ratios(rows),
    }


def _chosen(arms: list[str] | None) -> list[str]:
    """``arms`` (all by default) with ``infonce`` first; a one-line error for an unknown arm."""
    from harness.errors import UserError

    chosen = ["infonce", *[a for a in arms or ARMS if a != "infonce"]]
    unknown = [a for a in chosen if a not in ARMS]
    if unknown:
        raise UserError(f"bench epoch: unknown arm(s) {', '.join(unknown)}; valid: {', '.join(ARMS)}")
    return chosen


def _epoch(
    student_name: str, arm: str, data: Any, guide: Any, batch_size: int, max_seq_len: int
) -> dict[str, Any]:
    """Trains a fresh ``student_name`` one epoch on ``data`` with ``arm``; the row of its timings."""
    from harness.config import TrainConfig
    from harness.config.static_preset import STATIC_DEFAULTS
    from harness.models import get_spec, load_model
    from harness.train import train

    static = get_spec(student_name).static
    cfg = TrainConfig(
        epochs=1,
        batch_size=batch_size,
        max_seq_len=max_seq_len,
        lr=STATIC_DEFAULTS["lr"] if static else 5e-5,
        logging_steps=max(1, len(data) // batch_size // 20),  # ~20 diagnostics points
        **ARMS[arm],
    )
    model = load_model(student_name, device="cpu")
    _, record = train(
        cfg, student=model, guide=None if arm == "infonce" else guide, train_dataset=data, progress=False
    )
    assert record.steps is not None and record.train_seconds is not None  # train() sets both
    drops = [p.drop_rate for p in record.diagnostics]
    return {
        "student": student_name,
        "kind": "static" if static else "transformer",
        "arm": arm,
        "steps": record.steps,
        "epoch_s": round(record.train_seconds, 2),
        "step_ms": round(1000 * record.train_seconds / max(record.steps, 1), 1),
        "drop_rate": round(sum(drops) / len(drops), 3) if drops else 0.0,
    }


def _ratios(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Each arm's epoch time over InfoNCE's per student, and each transformer's over each static's."""
    by = {(r["student"], r["arm"]): r["epoch_s"] for r in rows}
    ratios = {}
    for student, arm in by:
        if arm != "infonce" and by.get((student, "infonce"), 0) > 0:
            ratios[f"{student}: {arm} / infonce"] = round(by[(student, arm)] / by[(student, "infonce")], 3)
    statics = [r["student"] for r in rows if r["kind"] == "static" and r["arm"] == "infonce"]
    transformers = [r["student"] for r in rows if r["kind"] == "transformer" and r["arm"] == "infonce"]
    for s in statics:
        for t in transformers:
            if by[(s, "infonce")] > 0:
                ratios[f"{t} / {s} (infonce epoch)"] = round(by[(t, "infonce")] / by[(s, "infonce")], 1)
    return ratios
