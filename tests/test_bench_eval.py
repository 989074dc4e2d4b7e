"""``gist-harness bench eval`` and its pytest-benchmark twin: offline-sts with and without the shared cache.

The benchmarks are slow (real model, real data); run them with
``pytest -m slow tests/test_bench_eval.py --benchmark-enable``.
"""

from __future__ import annotations

import json

import pytest

from harness.bench.eval import measure
from harness.cli import main
from harness.evaluate import evaluate


def test_measure_reports_both_runs(monkeypatch, tmp_path):
    import harness.evaluate as evaluate_module

    calls = []

    def fake_evaluate(model, suite, **kwargs):
        import pandas as pd

        calls.append(kwargs["cache"])
        return pd.DataFrame({"task": ["a", "b"], "main_score": [0.5, 0.7]})

    monkeypatch.setattr(evaluate_module, "evaluate", fake_evaluate)
    rows = measure(object(), "offline-sts", tmp_path)
    assert calls == [True, False]
    assert [r["cache"] for r in rows] == [True, False]
    assert all(r["tasks"] == 2 and r["mean_main_score"] == 0.6 and r["seconds"] >= 0 for r in rows)


def test_bench_eval_cli_prints_json(monkeypatch, capsys):
    import harness.bench.eval as bench
    import harness.models

    monkeypatch.setattr(harness.models, "load_model", lambda name, device=None: object())
    fake = [
        {"suite": "offline-sts", "cache": c, "tasks": 8, "seconds": s, "mean_main_score": 0.8}
        for c, s in ((True, 2.0), (False, 5.0))
    ]
    monkeypatch.setattr(bench, "measure", lambda *a, **k: [dict(r) for r in fake])
    assert main(["bench", "eval", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["speedup"] == 2.5 and out["runs"][0]["model"] == "all-minilm-l6"


@pytest.mark.slow
@pytest.mark.parametrize("cache", [True, False], ids=["shared-cache", "no-cache"])
def test_benchmark_offline_sts(benchmark, minilm, data_dir, cache):
    if not cache and benchmark.disabled:  # CI: the baseline alone took 762 s of the slow suite (stop 36)
        pytest.skip("the no-cache run is only a timing baseline: run with --benchmark-enable")
    table = benchmark.pedantic(
        evaluate,
        args=(minilm, "offline-sts"),
        kwargs={"data_dir": data_dir, "cache": cache, "progress": False},
        rounds=1,
        iterations=1,
    )
    assert table.task.nunique() == 8


def test_padding_share_counts_padded_positions():
    from harness.bench.eval_tasks import padding_share

    assert padding_share([4, 1, 4, 1], 2, longest_first=False) == 0.375  # 10 tokens in 16 positions
    assert padding_share([4, 1, 4, 1], 2, longest_first=True) == 0.0  # (4, 4), (1, 1)
    assert padding_share([], 2, longest_first=True) == 0.0


def test_bench_eval_per_task_reports_each_suite_against_the_first(monkeypatch, capsys):
    import harness.bench.eval_tasks as per_task
    import harness.models

    monkeypatch.setattr(harness.models, "load_model", lambda name, device=None: object())
    seconds = {"offline-all": 40.0, "offline-lite": 8.0}

    def fake(model, suite, data_dir, batch_size):
        task = {"suite": suite, "task": "local:x", "seconds": seconds[suite] - 1}
        return [task, {"suite": suite, "task": "(total)", "seconds": seconds[suite]}]

    monkeypatch.setattr(per_task, "measure_tasks", fake)
    args = ["bench", "eval", "--suite", "offline-all", "--suite", "offline-lite", "--per-task", "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert [t["suite"] for t in out["tasks"]] == ["offline-all", "offline-lite"]
    assert [s["speedup"] for s in out["suites"]] == [1.0, 5.0]
