"""Classification → pairs, NLI → triplets, QA → pairs, and cleaning, on tiny hand-made rows."""

from __future__ import annotations

from harness.data import conversion
from harness.data.examples import clean, to_dataset

ROWS = [
    {"text": "a1", "label": "A"},
    {"text": "a2", "label": "A"},
    {"text": "a3", "label": "A"},
    {"text": "b1", "label": "B"},
    {"text": "b2", "label": "B"},
    {"text": "c1", "label": "C"},  # a label with one text yields no pair
]


def test_label_pairs_same_label_positive_other_label_negative():
    examples = conversion.label_pairs(ROWS, seed=3, with_negative=True)
    assert [e["anchor"] for e in examples] == ["a1", "a2", "a3", "b1", "b2"]
    for e in examples:
        assert e["positive"] != e["anchor"] and e["positive"][0] == e["anchor"][0] == e["label"].lower()
        assert e["negative"][0] != e["anchor"][0]


def test_label_pairs_are_seeded():
    assert conversion.label_pairs(ROWS, seed=1) == conversion.label_pairs(ROWS, seed=1)
    draws = {tuple(e["positive"] for e in conversion.label_pairs(ROWS, seed=s)) for s in range(20)}
    assert len(draws) > 1
    assert "negative" not in conversion.label_pairs(ROWS)[0]


def test_nli_triplets_pair_entailment_with_contradiction():
    rows = [
        {"premise": "p", "hypothesis": "e1", "label": "entailment"},
        {"premise": "p", "hypothesis": "n", "label": "neutral"},
        {"premise": "p", "hypothesis": "c1", "label": "contradiction"},
        {"premise": "p", "hypothesis": "e2", "label": "entailment"},
        {"premise": "q", "hypothesis": "e", "label": "entailment"},  # no contradiction: skipped
    ]
    assert conversion.nli_triplets(rows) == [
        {"anchor": "p", "positive": "e1", "negative": "c1"},
        {"anchor": "p", "positive": "e2", "negative": "c1"},
    ]


def test_answer_pairs_with_and_without_wrong_answers():
    rows = [
        {"question": "q1", "answer": "right", "label": 1},
        {"question": "q1", "answer": "wrong", "label": 0},
        {"question": "q2", "answer": "right2", "label": 1},
    ]
    assert conversion.answer_pairs(rows) == [
        {"anchor": "q1", "positive": "right"},
        {"anchor": "q2", "positive": "right2"},
    ]
    assert conversion.answer_pairs(rows, with_negative=True) == [
        {"anchor": "q1", "positive": "right", "negative": "wrong"}
    ]


def test_scored_pairs_threshold_and_unscored():
    rows = [{"sentence1": "a", "sentence2": "b", "score": s} for s in (3.9, 4.0, None, 5.0)]
    assert len(conversion.scored_pairs(rows, min_score=4.0)) == 2


def test_clean_counts_each_reason():
    examples = [
        {"anchor": "a", "positive": "b"},
        {"anchor": "a", "positive": "b"},  # duplicate
        {"anchor": "x", "positive": "x"},  # identical
        {"anchor": " ", "positive": "y"},  # blank
        {"anchor": "a", "positive": "b", "negative": "c"},  # different texts: kept
    ]
    cleaned = clean(examples)
    assert (len(cleaned.examples), cleaned.duplicates, cleaned.identical, cleaned.blank) == (2, 1, 1, 1)


def test_to_dataset_columns_and_class_labels():
    ds = to_dataset(
        [{"anchor": "a", "positive": "b", "label": "y"}, {"anchor": "c", "positive": "d", "label": None}]
    )
    assert ds.column_names == ["anchor", "positive", "label"]
    assert ds.features["label"].names == ["y"] and ds["label"] == [0, -1]
    negatives = to_dataset([{"negative_2": "n2", "negative": "n", "positive": "p", "anchor": "a"}])
    assert negatives.column_names == ["anchor", "positive", "negative", "negative_2"]
