"""``bench step`` and ``bench epoch`` report every loss objective against InfoNCE with the same blocks."""

from __future__ import annotations

from test_loss import ANCHORS, NEGATIVES, POSITIVES, tiny_model

from harness.bench import epoch as bench_epoch
from harness.bench import step as bench_step
from harness.loss.objectives import OBJECTIVES


def test_objective_steps_cover_every_objective_against_infonce_with_blocks(tmp_path):
    rows = list(zip(ANCHORS, POSITIVES, NEGATIVES, strict=True))
    steps = bench_step.make_objective_steps(tiny_model(0), tiny_model(1), rows, tmp_path)
    assert set(steps) == {bench_step.OBJECTIVE_REFERENCE, *(f"gist+{name}" for name in OBJECTIVES.names())}
    result = bench_step.measure(steps, repeats=1, warmup=0, reference=bench_step.OBJECTIVE_REFERENCE)
    ratios = result["cpu_ratio_to_infonce_blocks"]
    assert ratios["infonce_blocks"] == 1.0 and set(ratios) == set(steps)


def test_bench_objectives_reports_each_student_kind(tmp_path, monkeypatch):
    rows = list(zip(ANCHORS, POSITIVES, NEGATIVES, strict=True))
    monkeypatch.setattr(bench_step, "sts_triplets", lambda data_dir, count: rows[:count])
    out = bench_step.bench_objectives(
        {"transformer": (tiny_model(0), 6), "static": (tiny_model(2), 4)},
        tiny_model(1),
        tmp_path,
        tmp_path,
        1,
        0,
    )
    assert set(out) == {"transformer", "static"}
    assert out["static"]["batch_size"] == 4 and "gist+distill_kl" in out["static"]["ratio_to_infonce_blocks"]


def test_bench_epoch_arms_and_ratios():
    assert {"infonce", "gist", *(f"gist+{n}" for n in OBJECTIVES.names() if n != "infonce")} == set(
        bench_epoch.ARMS
    )
    rows = [
        {"student": "s", "kind": "static", "arm": "infonce", "epoch_s": 2.0},
        {"student": "s", "kind": "static", "arm": "gist+debiased", "epoch_s": 2.1},
        {"student": "t", "kind": "transformer", "arm": "infonce", "epoch_s": 20.0},
    ]
    ratios = bench_epoch._ratios(rows)
    assert ratios == {"s: gist+debiased / infonce": 1.05, "t / s (infonce epoch)": 10.0}
