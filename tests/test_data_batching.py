"""Batch composition: per-source training sets keep each source's columns; mixed sets fill holes."""

from __future__ import annotations

import json

import pytest

from harness.data import Component, MixtureSpec, build_mixture, kept_negatives, training_sets
from harness.errors import UserError


def jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return f"file:{path}"


@pytest.fixture
def mixture(tmp_path):
    """An SNLI-like source with hard negatives (40 rows) and two pair sources (30 and 20 rows)."""
    nli = jsonl(
        tmp_path / "nli.jsonl",
        [
            {"anchor": f"premise {i}", "positive": f"entailed {i}", "negative": f"contradiction {i}"}
            for i in range(40)
        ],
    )
    sts = jsonl(tmp_path / "sts.jsonl", [{"anchor": f"s{i}", "positive": f"t{i}"} for i in range(30)])
    qa = jsonl(tmp_path / "qa.jsonl", [{"anchor": f"q{i}", "positive": f"a{i}"} for i in range(20)])
    spec = MixtureSpec("m", (Component(nli), Component(sts), Component(qa)))
    return build_mixture(spec, seed=0, dev_fraction=0, negatives="keep"), (nli, sts, qa)


def test_keep_builds_every_column_with_holes(mixture):
    m, (nli, sts, qa) = mixture
    assert m.train.column_names == ["anchor", "positive", "negative"]
    rows = list(zip(m.train_sources, m.train["negative"], strict=True))
    assert all((neg is not None) == (src == nli) for src, neg in rows)
    assert kept_negatives(m, "shared") == [] and kept_negatives(m, "keep") == ["negative"]


def test_per_source_sets_keep_their_own_columns(mixture):
    m, (nli, sts, qa) = mixture
    sets = training_sets(m, batching="per_source", negatives=None, batch_size=8)
    assert list(sets) == [nli, sts, qa]
    assert sets[nli].column_names == ["anchor", "positive", "negative"]
    assert sets[sts].column_names == sets[qa].column_names == ["anchor", "positive"]
    assert {k: len(v) for k, v in sets.items()} == m.counts
    dropped = training_sets(m, batching="per_source", negatives=False, batch_size=8)
    assert dropped[nli].column_names == ["anchor", "positive"]
    # Same rows whatever the policy: only the column differs.
    assert dropped[nli]["anchor"] == sets[nli]["anchor"]


def test_mixed_sets_hold_the_anchor_where_a_row_has_no_negative(mixture):
    m, (nli, _, _) = mixture
    mixed = training_sets(m, batching="mixed", negatives="keep", batch_size=8)
    assert mixed.column_names == ["anchor", "positive", "negative"]
    for src, anchor, negative in zip(m.train_sources, mixed["anchor"], mixed["negative"], strict=True):
        assert (negative == anchor) == (src != nli)
    shared = training_sets(m, batching="mixed", negatives=None, batch_size=8)  # the old default
    assert shared.column_names == ["anchor", "positive"]
    assert shared["anchor"] == mixed["anchor"] == m.train["anchor"]


def test_errors_name_the_source_and_the_valid_values(mixture):
    m, (nli, sts, qa) = mixture
    too_small = (
        rf"source\(s\) '{sts}' \(30 rows\), '{qa}' \(20 rows\) have fewer training rows than batch_size 32"
    )
    with pytest.raises(UserError, match=too_small):
        training_sets(m, batching="per_source", negatives=None, batch_size=32)
    with pytest.raises(
        UserError, match=r"negatives = true \(require\) but source\(s\) .*sts.jsonl, .*qa.jsonl"
    ):
        training_sets(m, batching="per_source", negatives=True, batch_size=8)
    with pytest.raises(UserError, match=r"batching must be one of per_source, mixed; got 'per-source'"):
        training_sets(m, batching="per-source", negatives=None, batch_size=8)
    with pytest.raises(
        UserError, match=r"negatives must be true, false or one of keep, shared, drop, require"
    ):
        training_sets(m, batching="mixed", negatives="some", batch_size=8)


def test_a_source_that_repeats_its_anchors_cannot_fill_a_duplicate_free_batch(tmp_path):
    qa = jsonl(tmp_path / "qa.jsonl", [{"anchor": f"q{i % 4}", "positive": f"answer {i}"} for i in range(40)])
    nli = jsonl(tmp_path / "nli.jsonl", [{"anchor": f"p{i}", "positive": f"h{i}"} for i in range(40)])
    m = build_mixture(MixtureSpec("m", (Component(nli), Component(qa))), seed=0, dev_fraction=0)
    assert len(training_sets(m, batching="per_source", negatives=None, batch_size=8)[qa]) == 40
    with pytest.raises(
        UserError, match=rf"source\(s\) '{qa}' \(40 rows\) cannot fill one batch of 8 without"
    ):
        training_sets(m, batching="per_source", negatives=None, batch_size=8, no_duplicates=True)
    assert len(training_sets(m, batching="per_source", negatives=None, batch_size=4, no_duplicates=True)) == 2


def test_mini_medi_per_source_keeps_snli_hard_negatives(data_dir):
    """On the real data: SNLI trains with its contradiction negatives, the pair sources as pairs."""
    m = build_mixture("mini-medi", data_dir, seed=0, dev_fraction=0, negatives="keep")
    sets = training_sets(m, batching="per_source", negatives=None, batch_size=32, no_duplicates=True)
    assert sets["snli-triplets"].column_names == ["anchor", "positive", "negative"]
    assert all(sets[s].column_names == ["anchor", "positive"] for s in ("stsb-train", "msrp-train"))
    row = sets["snli-triplets"][0]
    assert row["negative"] not in (row["anchor"], row["positive"])
    with pytest.raises(UserError, match=r"'trecqa-train' \(\d+ rows\) cannot fill one batch of 128"):
        training_sets(m, batching="per_source", negatives=None, batch_size=128, no_duplicates=True)
    assert training_sets(m, batching="mixed", negatives=None, batch_size=32).column_names == [
        "anchor",
        "positive",
    ]
