"""``gist-harness bench step``: the parser, the measurement on tiny models, and a pytest-benchmark twin."""

from __future__ import annotations

import argparse

import pytest
from test_loss import ANCHORS, POSITIVES, tiny_model

from harness.bench import step as bench_step
from harness.cli import bench_step as bench_step_cmd


def test_parser_defaults():
    parser = argparse.ArgumentParser()
    bench_step_cmd.add_parser(parser.add_subparsers())
    args = parser.parse_args(["step", "--json"])
    assert (args.student, args.guide, args.batch_size, args.json) == (
        "all-minilm-l6",
        "all-mpnet-base",
        32,
        True,
    )


def test_measure_reports_medians_and_ratios_on_tiny_models(tmp_path):
    steps = bench_step.make_steps(
        tiny_model(0), tiny_model(1), list(zip(ANCHORS, POSITIVES, strict=True)), tmp_path
    )
    result = bench_step.measure(steps, repeats=2, warmup=1)
    assert set(result["median_seconds"]) == set(bench_step.LOSSES)
    assert result["ratio_to_infonce"]["infonce"] == 1.0


def test_sts_pairs_are_unique(data_dir):
    pairs = bench_step.sts_pairs(data_dir, 32)
    texts = [t for pair in pairs for t in pair]
    assert len(pairs) == 32 and len(set(texts)) == 64


@pytest.mark.slow
@pytest.mark.parametrize("loss", bench_step.LOSSES)
def test_benchmark_train_step(benchmark, loss, minilm, mpnet, data_dir, tmp_path):
    """pytest-benchmark twin of ``gist-harness bench step`` (run with ``pytest -m slow --benchmark-enable``)."""
    steps = bench_step.make_steps(minilm, mpnet, bench_step.sts_pairs(data_dir, 32), tmp_path)
    steps[loss]()  # warm-up
    benchmark.pedantic(steps[loss], rounds=5, iterations=1)
