"""``harness.data.mining`` picks the negatives sentence-transformers' ``mine_hard_negatives`` picks.

Real data (every 16th row of ``banking77-pairs``, 626 rows over its 77 classes) and the packaged all-MiniLM-L6-v2: the
harness embeds through its guide cache, sentence-transformers through ``encode_query`` /
``encode_document`` (no prompts for this model), both normalised; the vectors agree to ~1e-7
(asserted below). Exact ties (texts the uncased tokenizer reads alike) are broken by
``torch.topk`` on score matrices of the same shape on both sides; a near-tie closer than the
vectors' rounding could in principle flip, and the assertion then shows the row. Integration
test: marked ``slow`` through the ``minilm`` and ``data_dir`` fixtures.
"""

from __future__ import annotations

import pytest

from harness.data.mining import MiningOptions, mine, source_rows

STRIDE = 16  # rows of banking77-pairs come grouped by class: a stride spreads them over all 77
SETTINGS = [
    {},
    {"absolute_margin": 0.0},
    {"relative_margin": 0.05, "range_min": 2},
    {"max_score": 0.8, "num_negatives": 5},
    {"absolute_margin": 0.1, "min_score": 0.3, "range_max": 40},
    {"relative_margin": 0.1, "output_format": "n-tuple"},
    {"absolute_margin": 0.0, "output_format": "labeled-pair", "num_negatives": 2},
]


@pytest.fixture(scope="module")
def mined_inputs(data_dir, minilm, tmp_path_factory):
    from harness.guides import build_guide

    anchors, positives, labels = source_rows("banking77-pairs", data_dir)
    anchors, positives = anchors[::STRIDE], positives[::STRIDE]
    cache = tmp_path_factory.mktemp("guide-cache")
    guide = build_guide(
        "all-minilm-l6", corpus=anchors + positives, cache_dir=cache, progress=False, device="cpu"
    )
    return anchors, positives, labels, guide, cache


def _rows(rows, columns):
    return [tuple(r[c] for c in columns) for r in rows]


@pytest.mark.parametrize(
    "setting", SETTINGS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()) or "defaults"
)
def test_same_negatives_as_sentence_transformers(mined_inputs, minilm, tmp_path_factory, setting):
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    anchors, positives, _, guide, _ = mined_inputs
    st_cache = tmp_path_factory.getbasetemp() / "st-embeddings"  # sentence-transformers embeds once
    expected = mine_hard_negatives(
        Dataset.from_dict({"anchor": anchors, "positive": positives}), minilm, sampling_strategy="top",
        use_faiss=False, verbose=False, cache_folder=str(st_cache), **setting,
    )  # fmt: skip
    rows, summary = mine(anchors, positives, guide.embed, MiningOptions(**setting))
    assert expected.num_rows > 0
    if set(setting) & {"absolute_margin", "relative_margin", "max_score", "min_score"}:
        assert sum(summary.removed.values()) > 0  # the filters were exercised
    columns = expected.column_names
    if setting.get("output_format") == "labeled-pair":  # (anchor, document, "1"/"0"): never read as pairs
        rows = [{"anchor": r["anchor"], "positive": r["document"], "label": int(r["label"])} for r in rows]
    assert _rows(rows, columns) == _rows(expected.to_list(), columns)


def test_vectors_agree_with_sentence_transformers_encoding(mined_inputs, minilm):
    anchors, _, _, guide, _ = mined_inputs
    texts = list(dict.fromkeys(anchors))
    reference = minilm.encode_query(texts, normalize_embeddings=True, convert_to_tensor=True)  # (N, 384)
    assert (guide.embed(texts) - reference.cpu()).abs().max() < 1e-5


def test_texts_embedded_once_are_read_from_the_guide_cache(mined_inputs):
    from harness.guides import build_guide

    anchors, positives, _, _, cache = mined_inputs
    again = build_guide("all-minilm-l6", cache_dir=cache, progress=False, device="cpu")
    assert again.warm(anchors + positives) == 0  # nothing left to embed


def test_the_guides_filter_lowers_the_false_negative_rate(mined_inputs):
    anchors, positives, labels, guide, _ = mined_inputs
    _, summary = mine(anchors, positives, guide.embed, MiningOptions(absolute_margin=0.0), labels=labels)
    assert summary.false_negative_rate is not None
    assert summary.false_negative_rate < summary.false_negative_rate_unfiltered
    assert summary.false_negative_rate_random < summary.false_negative_rate_unfiltered
