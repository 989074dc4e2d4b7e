"""Parity with sentence-transformers on real sentences and the real packaged models (slow).

Student all-minilm-l6, guide all-mpnet-base, STS-B train pairs. The guide tokenizer differs from
the student's, so sentence-transformers' ``GISTEmbedLoss`` decodes the student's tokens for the
guide (lower-cased). Cached mode embeds the raw text instead, so the sentences are lower-cased and
kept only where decoding gives back the exact text: there both modes see identical guide inputs.
"""

from __future__ import annotations

import csv

import pytest
import torch
from sentence_transformers.sentence_transformer.losses import GISTEmbedLoss, MultipleNegativesRankingLoss

from harness.guides import build_guide
from harness.loss import GuidedInBatchLoss, make_data_collator

pytestmark = pytest.mark.slow
BATCH = 16
COLUMNS = ("anchor", "positive", "negative")


@pytest.fixture(scope="module")
def sts_columns(data_dir, minilm):
    """16 (anchor, positive, negative) rows: similar pairs (score >= 4), negatives from dissimilar pairs."""
    tokenizer = minilm.tokenizer

    def round_trips(text):
        return tokenizer.decode(tokenizer(text)["input_ids"], skip_special_tokens=True) == text

    similar, dissimilar, seen = [], [], set()
    with open(data_dir / "stsbenchmark" / "sts-train.csv", encoding="utf-8") as f:
        for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            score, s1, s2 = float(row[4]), row[5].lower(), row[6].lower()
            if s1 in seen or s2 in seen or s1 == s2 or not (round_trips(s1) and round_trips(s2)):
                continue
            seen.update((s1, s2))
            if score >= 4.0:
                similar.append((s1, s2))
            elif score <= 1.0:
                dissimilar.append(s2)
            if len(similar) >= BATCH and len(dissimilar) >= BATCH:
                break
    anchors, positives = zip(*similar[:BATCH], strict=False)
    return [list(anchors), list(positives), dissimilar[:BATCH]]


def collate(loss, columns):
    rows = [dict(zip(COLUMNS, values, strict=False)) for values in zip(*columns, strict=False)]
    batch = make_data_collator(loss)(rows)
    return [
        {k[len(c) + 1 :]: v for k, v in batch.items() if k.startswith(c + "_")}
        for c in COLUMNS[: len(columns)]
    ]


@pytest.fixture(scope="module")
def cached_guide(mpnet, sts_columns, tmp_path_factory):
    corpus = [t for column in sts_columns for t in column]
    return build_guide(mpnet, corpus=corpus, cache_dir=tmp_path_factory.mktemp("cache"), progress=False)


@pytest.mark.parametrize("margin_strategy,margin", [("absolute", 0.0), ("absolute", 0.1), ("relative", 0.05)])
@pytest.mark.parametrize("toggles", [(True, True), (False, False), (True, False), (False, True)])
@pytest.mark.parametrize("n_columns", [2, 3])
def test_gist_parity_online_and_cached(
    minilm, mpnet, cached_guide, sts_columns, margin_strategy, margin, toggles, n_columns
):
    columns = sts_columns[:n_columns]
    kwargs = dict(
        margin_strategy=margin_strategy,
        margin=margin,
        contrast_anchors=toggles[0],
        contrast_positives=toggles[1],
    )
    with torch.no_grad():
        expected = float(
            GISTEmbedLoss(minilm, mpnet, **kwargs)([minilm.preprocess(c) for c in columns], None)
        )
        online = GuidedInBatchLoss(minilm, mpnet, guide_mode="online", **kwargs)
        got_online = float(online([minilm.preprocess(c) for c in columns], None))
        cached = GuidedInBatchLoss(minilm, cached_guide, guide_mode="cached", **kwargs)
        got_cached = float(cached(collate(cached, columns), None))
    assert abs(got_online - expected) <= 1e-6
    assert abs(got_cached - expected) <= 1e-6


@pytest.mark.parametrize("n_columns", [2, 3])
def test_none_matches_multiple_negatives_ranking(minilm, sts_columns, n_columns):
    columns = sts_columns[:n_columns]
    with torch.no_grad():
        expected = float(
            MultipleNegativesRankingLoss(minilm, scale=100.0)([minilm.preprocess(c) for c in columns], None)
        )
        loss = GuidedInBatchLoss(
            minilm, None, strategy="none", contrast_anchors=False, contrast_positives=False
        )
        got = float(loss(collate(loss, columns), None))
    assert abs(got - expected) <= 1e-6


def test_build_guide_by_name_reuses_the_persisted_cache(sts_columns, tmp_path):
    corpus = sts_columns[0]
    first = build_guide("all-mpnet-base", corpus=corpus, cache_dir=tmp_path, progress=False)
    second = build_guide("all-mpnet-base", cache_dir=tmp_path, progress=False)
    assert second.fingerprint == first.fingerprint and len(second.cache) == len(set(corpus))
    torch.testing.assert_close(first.embed(corpus[:3]), second.embed(corpus[:3]))
