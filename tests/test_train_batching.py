"""Per-source batches through the real sentence-transformers Trainer (tiny static student).

Every batch of an epoch comes from one source, the source with hard negatives trains with them,
a seeded rerun gives the same batch order, and the run record carries diagnostics by source.
"""

from __future__ import annotations

import pytest
import torch
from test_train import FakeGuide, config, tiny_student

from harness.data import Component, MixtureSpec, build_mixture, training_sets
from harness.loss import collator as collator_module
from harness.train import train


@pytest.fixture
def mixture(tmp_path):
    import json

    def jsonl(name, rows):
        path = tmp_path / name
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        return f"file:{path}"

    nli = jsonl(
        "nli.jsonl",
        [{"anchor": f"a man plays {i}", "positive": f"someone plays {i}", "negative": f"nobody plays {i}"}
         for i in range(40)],
    )  # fmt: skip
    sts = jsonl(
        "sts.jsonl", [{"anchor": f"the cat sat {i}", "positive": f"a cat sits {i}"} for i in range(24)]
    )
    qa = jsonl(
        "qa.jsonl",
        [{"anchor": f"who wrote book {i}", "positive": f"book {i} was written"} for i in range(16)],
    )
    spec = MixtureSpec("m", (Component(nli), Component(sts), Component(qa)))
    return build_mixture(spec, seed=0, dev_fraction=0, negatives="keep"), nli


@pytest.fixture
def batches(monkeypatch):
    """Records every training batch the collator builds: (row sources, columns, anchors)."""
    seen: list[tuple[list[int], list[str], list[str]]] = []
    original = collator_module.GuidedDataCollator.__call__

    def recording(self, features):
        batch = original(self, features)
        sources = batch[f"anchor_{collator_module.SOURCE}"].tolist()
        seen.append((sources, [c for c in features[0] if c != "label"], [f["anchor"] for f in features]))
        return batch

    monkeypatch.setattr(collator_module.GuidedDataCollator, "__call__", recording)
    return seen


def run(mixture, batching, negatives=None, seed=0, **overrides):
    cfg = config(max_steps=None, epochs=1, batch_size=8, seed=seed, strategy="gist", **overrides)
    data = training_sets(mixture, batching=batching, negatives=negatives, batch_size=8)
    sources = mixture.train_sources if batching == "mixed" else None
    return train(
        cfg, student=tiny_student(), guide=FakeGuide(), train_dataset=data, sources=sources, progress=False
    )


def test_every_per_source_batch_comes_from_one_source(tmp_path, monkeypatch, mixture, batches):
    monkeypatch.chdir(tmp_path)
    m, nli = mixture
    _, record = run(m, "per_source")
    names = list(record.by_source)
    assert len(batches) == 40 // 8 + 24 // 8 + 16 // 8 == record.steps  # every row of an epoch, drop_last
    for sources, columns, _ in batches:
        assert len(set(sources)) == 1, sources
        assert ("negative" in columns) == (names[sources[0]] == nli)
    assert {k: v["rows"] for k, v in record.by_source.items()} == {s: float(n) for s, n in m.counts.items()}
    assert "drop_rate_an1" in record.by_source[nli]
    assert all("drop_rate_an1" not in v for k, v in record.by_source.items() if k != nli)


def test_a_seeded_rerun_gives_the_same_batch_order(tmp_path, monkeypatch, mixture, batches):
    monkeypatch.chdir(tmp_path)
    m, _ = mixture
    run(m, "per_source", seed=3)
    first = [anchors for _, _, anchors in batches]
    batches.clear()
    run(m, "per_source", seed=3)
    assert [anchors for _, _, anchors in batches] == first
    batches.clear()
    run(m, "per_source", seed=4)
    assert [anchors for _, _, anchors in batches] != first


def test_mixed_batches_keep_negatives_where_a_source_has_them(tmp_path, monkeypatch, mixture, batches):
    monkeypatch.chdir(tmp_path)
    m, nli = mixture
    _, record = run(m, "mixed", negatives="keep")
    assert any(len(set(sources)) > 1 for sources, _, _ in batches)
    assert all("negative" in columns for _, columns, _ in batches)
    # Absent negatives are no candidates: only the NLI rows' negatives count in the an1 block.
    by_source = record.by_source
    nli_index = list(by_source).index(nli) if nli in by_source else None
    expected = sum(sources.count(nli_index) * len(sources) for sources, _, _ in batches)
    assert expected > 0
    assert sum(v.get("candidates_an1", 0) for v in by_source.values()) == expected
    assert sum(v["rows"] for v in by_source.values()) == record.steps * 8


def test_gradcache_per_source_matches_the_plain_loss(tmp_path, monkeypatch, mixture):
    monkeypatch.chdir(tmp_path)
    m, _ = mixture
    torch.manual_seed(0)
    model_a, record_a = run(m, "per_source", seed=1)
    torch.manual_seed(0)
    model_b, record_b = run(m, "per_source", seed=1, mini_batch_size=3)
    assert record_a.by_source == record_b.by_source
    a = model_a.encode(["a cat"], convert_to_tensor=True)
    b = model_b.encode(["a cat"], convert_to_tensor=True)
    assert torch.allclose(a, b, atol=1e-4)
