"""The lite suite: seeded subsamples, pooled SciFact candidates, names and categories (fast, no data)."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from datasets import Dataset
from mteb.abstasks.classification import AbsTaskClassification
from rank_bm25 import BM25Okapi

from harness.errors import UserError
from harness.evaluate import SUITES
from harness.tasks import TASKS
from harness.tasks.classification import LocalEmotion
from harness.tasks.lite import (
    BM25,
    LITE_TASKS,
    SEED,
    capped_per_label,
    pooled_candidates,
    stratified_sample,
    words,
)

LABELS = ["a"] * 50 + ["b"] * 30 + ["c"] * 15 + ["d"] * 5


def test_stratified_sample_is_seeded_sorted_and_proportional():
    kept = stratified_sample(LABELS, 20)
    assert kept == stratified_sample(LABELS, 20) == sorted(kept) and len(set(kept)) == 20
    assert Counter(LABELS[i] for i in kept) == {"a": 10, "b": 6, "c": 3, "d": 1}
    assert stratified_sample(LABELS, 20, seed=SEED + 1) != kept
    assert stratified_sample(LABELS, 500) == list(range(len(LABELS)))


def test_stratified_sample_hands_leftover_rows_to_the_largest_remainders():
    kept = stratified_sample(["x"] * 3 + ["y"] * 3 + ["z"] * 4, 5)  # exact shares 1.5, 1.5, 2.0
    assert Counter("xxxyyyzzzz"[i] for i in kept) == {"x": 2, "y": 1, "z": 2}


def test_capped_per_label_keeps_at_most_cap_per_label():
    kept = capped_per_label(LABELS, 8)
    assert kept == capped_per_label(LABELS, 8) == sorted(kept)
    assert Counter(LABELS[i] for i in kept) == {"a": 8, "b": 8, "c": 8, "d": 5}


@pytest.mark.parametrize("call", [lambda: stratified_sample(LABELS, 0), lambda: capped_per_label(LABELS, -1)])
def test_bad_sizes_are_one_line_user_errors(call):
    with pytest.raises(UserError) as info:
        call()
    assert "\n" not in str(info.value)


DOCS = {
    "d1": "Aspirin lowers the risk of heart attack.",
    "d2": "Statins lower cholesterol in adults.",
    "d3": "Heart attack risk rises with age.",
    "d4": "Vitamin D and bone density in the elderly.",
    "d5": "Cholesterol and heart disease: a cohort study.",
}


def test_bm25_postings_score_like_rank_bm25():
    tokens = [words(t) for t in DOCS.values()]
    for query in ("heart attack risk", "cholesterol cholesterol statins", "unknown words only"):
        np.testing.assert_allclose(
            BM25(tokens).scores(words(query)), BM25Okapi(tokens).get_scores(words(query))
        )


def test_pooled_candidates_hold_every_relevant_doc_then_bm25_top_k():
    queries = {"q1": "heart attack risk", "q2": "vitamin D for bones"}
    relevant = {"q1": {"d5": 1}, "q2": {"d4": 1, "d2": 1}}
    pooled = pooled_candidates(queries, DOCS, relevant, k=2)
    assert pooled == pooled_candidates(queries, DOCS, relevant, k=2)
    assert pooled["q1"][:1] == ["d5"] and set(pooled["q1"][1:]) == {"d1", "d3"}
    for qid, docs in relevant.items():
        assert set(docs) <= set(pooled[qid]) and len(pooled[qid]) == len(docs) + 2
        assert len(set(pooled[qid])) == len(pooled[qid])
    with pytest.raises(UserError, match="not in the corpus"):
        pooled_candidates(queries, DOCS, {"q1": {"d9": 1}}, k=2)


def test_lite_tasks_are_named_as_such_and_record_seed_and_parameters():
    for cls in LITE_TASKS:
        meta, source = cls.metadata, TASKS.get(cls.downsampled_from)
        assert meta.name == f"{source.metadata.name}-lite" and meta.name in TASKS
        assert cls.hub_name is None and meta.description.startswith("Not an MTEB task")
        assert meta.type == source.metadata.type and meta.main_score == source.metadata.main_score
        assert meta.dataset["revision"] != source.metadata.dataset["revision"]
        assert cls.params["seed"] == SEED and json.dumps(cls.params, sort_keys=True) in meta.description
        assert cls.files == source.files


def test_offline_lite_keeps_offline_all_order_and_categories():
    full = [t.name for t in SUITES.get("offline-all").tasks]
    lite = [t.name for t in SUITES.get("offline-lite").tasks]
    assert [TASKS.get(n).downsampled_from or n for n in lite] == full
    assert [TASKS.get(n).metadata.type for n in lite] == [TASKS.get(n).metadata.type for n in full]
    assert {n for n in lite if n.endswith("-lite")} == {c.metadata.name for c in LITE_TASKS}
    assert all(TASKS.get(n).metadata.type == "STS" for n in set(lite) & set(full) if "STS" in n)


def test_ls_suites_lists_offline_lite(capsys):
    from harness.cli import main

    assert main(["ls", "suites", "--json"]) == 0
    assert "offline-lite" in {row["name"] for row in json.loads(capsys.readouterr().out)}


def test_list_labels_draw_the_same_rows_as_mteb(tmp_path):
    labels = [i % 7 for i in range(300)]
    train = Dataset.from_dict({"text": [f"t{i}" for i in range(300)], "label": labels}).select(
        range(0, 300, 2)
    )
    ours = LocalEmotion(tmp_path)
    theirs = AbsTaskClassification._undersample_data
    for experiment in range(3):
        _, order, drawn = ours._undersample_data(train, experiment)
        _, mteb_order, mteb_drawn = theirs(ours, train, experiment)
        assert drawn == mteb_drawn and order == mteb_order


def test_lite_tasks_load_their_subsamples(data_dir):  # slow: reads the real data folder
    from harness.tasks import get_task

    scifact = get_task("local:SciFact-lite", data_dir)
    scifact.load_data()
    data = scifact.dataset["default"]["test"]
    corpus = set(data["corpus"]["id"])
    assert len(data["queries"]) == 150 and len(corpus) < 5183 / 3
    for qid, docs in data["relevant_docs"].items():
        assert set(docs) <= set(data["top_ranked"][qid]) <= corpus
    again = get_task("local:SciFact-lite", data_dir)
    again.load_data()
    assert again.dataset["default"]["test"]["top_ranked"] == data["top_ranked"]
    banking = get_task("local:Banking77Classification-lite", data_dir)
    banking.load_data()
    assert len(banking.dataset["test"]) == 2048
    assert max(Counter(banking.dataset["train"]["label"][:]).values()) == 32
    clusters = get_task("local:EmotionClustering-lite", data_dir)
    clusters.load_data()
    assert len(clusters.dataset["test"]) == 1024 and len(set(clusters.dataset["test"]["labels"][:])) == 6
