"""The manifest's reproducibility facts: data checksums of every file a study reads."""

from __future__ import annotations

import re
from pathlib import Path

from harness.config import load_experiment
from harness.study.environment import data_checksums, expand_braces

REPO = Path(__file__).resolve().parents[1]


def test_expand_braces_follows_the_data_layers_origin_notation():
    assert expand_braces("snli/{s1,s2}.{dev,test}") == [
        "snli/s1.dev",
        "snli/s1.test",
        "snli/s2.dev",
        "snli/s2.test",
    ]
    assert expand_braces("banking77/train.csv") == ["banking77/train.csv"]


def test_quickstart_checksums_cover_training_and_scored_files_and_match_the_manifest(data_dir):
    sums = data_checksums(load_experiment(REPO / "experiments" / "quickstart_minilm.toml"), data_dir)
    assert {"stsbenchmark/sts-train.csv", "snli-senteval/s1.dev", "stsbenchmark/sts-test.csv"} <= set(sums)
    manifest = (data_dir / "MANIFEST.md").read_text()
    for rel, sha in sums.items():
        listed = re.search(rf"\| `{re.escape(rel)}` \|.*?`([0-9a-f]{{64}})`", manifest)
        assert listed and listed.group(1) == sha, rel
