"""Mixtures: budget allocation, caps, duplicates across sources, dev split, seeds, negatives, labels."""

from __future__ import annotations

import json

import pytest

from harness.data import (
    MIXTURES,
    Component,
    MixtureSpec,
    build_mixture,
    drop_leaked,
    find_overlaps,
    mixture_listing,
)
from harness.data.mixtures import allocate, dev_size
from harness.errors import UserError


def jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return f"file:{path}"


@pytest.fixture
def two_sources(tmp_path):
    a = jsonl(
        tmp_path / "a.jsonl",
        [{"anchor": f"a{i}", "positive": f"pa{i}", "negative": f"na{i}"} for i in range(40)],
    )
    b = jsonl(
        tmp_path / "b.jsonl", [{"anchor": f"b{i}", "positive": f"pb{i}", "label": i % 2} for i in range(20)]
    )
    return a, b


def test_allocate_by_weight_with_water_filling():
    # 100 examples at weights 1:1:2 -> 25/25/50, but b has only 10: its 15 go to a and c 1:2.
    assert allocate({"a": 100, "b": 10, "c": 100}, {"a": 1, "b": 1, "c": 2}, 100) == {
        "a": 30,
        "b": 10,
        "c": 60,
    }
    assert allocate({"a": 5, "b": 5}, {"a": 1, "b": 1}, None) == {"a": 5, "b": 5}
    assert allocate({"a": 5, "b": 5}, {"a": 1, "b": 1}, 50) == {"a": 5, "b": 5}
    assert sum(allocate({"a": 50, "b": 50, "c": 50}, {"a": 1, "b": 1, "c": 1}, 10).values()) == 10


def test_dev_size():
    assert [dev_size(n, 0.05) for n in (1, 2, 10, 100)] == [0, 1, 1, 5]
    assert dev_size(100, 0) == 0


def test_build_mixture_counts_split_and_columns(two_sources):
    a, b = two_sources
    m = build_mixture(MixtureSpec("ab", (Component(a), Component(b))), seed=0, dev_fraction=0.1)
    assert m.counts == {a: 36, b: 18} and m.dev_counts == {a: 4, b: 2}
    assert len(m.train) == 54 and len(m.dev) == 6
    # b has no negatives, so the shared columns are anchor/positive; b's labels are kept, a gets -1.
    assert m.train.column_names == ["anchor", "positive", "label"]
    assert m.label_names == (f"{b}:0", f"{b}:1")
    labels = dict(zip(m.train_sources, m.train["label"], strict=True))
    assert labels[a] == -1
    assert not set(m.train["anchor"]) & set(m.dev["anchor"])
    assert m.origins[a] == ((a[len("file:") :], "train"),)


def test_same_seed_same_mixture_other_seed_other_order(two_sources):
    spec = MixtureSpec("ab", tuple(Component(s) for s in two_sources))
    first, again, other = (build_mixture(spec, seed=s) for s in (1, 1, 2))
    assert first.train["anchor"] == again.train["anchor"]
    assert first.train["anchor"] != other.train["anchor"]


def test_caps_weights_and_max_examples(two_sources):
    a, b = two_sources
    spec = MixtureSpec("ab", (Component(a, cap=10), Component(b, weight=3)))
    m = build_mixture(spec, dev_fraction=0, max_examples=12)
    assert m.counts == {a: 3, b: 9}
    assert m.removed[a]["unused"] == 37 and m.removed[b]["unused"] == 11


def test_negatives_policy(two_sources):
    a, b = two_sources
    assert build_mixture(a, dev_fraction=0).train.column_names == ["anchor", "positive", "negative"]
    assert build_mixture(a, negatives=False).train.column_names == ["anchor", "positive"]
    with pytest.raises(
        UserError, match=r"negatives = true \(require\) but source\(s\) .*b\.jsonl have no negative column"
    ):
        build_mixture(MixtureSpec("ab", (Component(a), Component(b))), negatives=True)


def test_exact_duplicates_removed_across_sources(tmp_path):
    a = jsonl(tmp_path / "a.jsonl", [{"anchor": "x", "positive": "y"}, {"anchor": "x", "positive": "z"}])
    b = jsonl(tmp_path / "b.jsonl", [{"anchor": "x", "positive": "y"}, {"anchor": "u", "positive": "v"}])
    m = build_mixture(MixtureSpec("ab", (Component(a), Component(b))), dev_fraction=0)
    assert m.counts == {a: 2, b: 1} and m.removed[b]["duplicates"] == 1


def test_bad_settings(two_sources):
    a, _ = two_sources
    with pytest.raises(UserError, match="weight must be > 0"):
        Component(a, weight=0)
    with pytest.raises(UserError, match="dev_fraction"):
        build_mixture(a, dev_fraction=1.0)
    with pytest.raises(UserError, match="lists a source twice"):
        build_mixture(MixtureSpec("aa", (Component(a), Component(a))))
    with pytest.raises(UserError, match="unknown mixture or dataset 'mini-medj'. Did you mean 'mini-medi'"):
        build_mixture("mini-medj")


def test_source_left_empty(tmp_path):
    empty = jsonl(tmp_path / "e.jsonl", [{"anchor": "same", "positive": "same"}])
    with pytest.raises(UserError, match=r"source 'file:.*e\.jsonl' has no examples left after filtering"):
        build_mixture(empty)


def test_drop_leaked_removes_rows_and_counts(two_sources):
    a, b = two_sources
    m = build_mixture(MixtureSpec("ab", (Component(a), Component(b))), dev_fraction=0)
    report = find_overlaps(
        m.texts_by_source(), {"T": {"test": {"A0", "pb3"}}}
    )  # matching is case-insensitive
    dropped = drop_leaked(m, report)
    assert len(dropped.train) == len(m.train) - 2
    assert dropped.removed[a]["leaked"] == 1 and dropped.removed[b]["leaked"] == 1
    assert "a0" not in dropped.train["anchor"]


def test_mixture_listing():
    rows = mixture_listing()
    assert [r["name"] for r in rows] == MIXTURES.names() == ["mini-medi", "mini-medi+cls"]
    assert all(r["examples"] > 0 for r in rows)


def test_named_mixtures_build_from_real_data(data_dir):
    medi = build_mixture("mini-medi", data_dir, seed=0)
    assert set(medi.counts) == {"snli-triplets", "stsb-train", "msrp-train", "trecqa-train"}
    assert medi.train.column_names == ["anchor", "positive"]  # only SNLI has negatives
    cls = build_mixture("mini-medi+cls", data_dir, seed=0, max_examples=2000)
    assert sum(cls.counts.values()) == len(cls.train) == 2000
    assert cls.train.column_names == ["anchor", "positive", "label"]
    assert {cls.label_names[i].split(":")[0] for i in cls.train["label"] if i >= 0} == {
        "banking77-pairs", "emotion-pairs", "amazon-cf-pairs"}  # fmt: skip
