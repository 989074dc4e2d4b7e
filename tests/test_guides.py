"""Guides and the guide-embedding cache: lookups by text, persistence, corruption, lexical guides."""

from __future__ import annotations

import logging

import pytest
import torch
from test_loss import tiny_model

from harness.errors import UserError
from harness.guide_cache import GuideCache
from harness.guides import GUIDES, build_guide, listing
from harness.models import weights_digest

CORPUS = [
    "a cat sits on the mat",
    "a kitten rests on a rug",
    "the stock market fell",
    "shares dropped sharply",
    "he plays the guitar",
    "a man strums a guitar",
]


@pytest.fixture(scope="module")
def model():
    return tiny_model(3)


class CountingEmbed:
    """A fake guide: deterministic vectors, counts how many texts it was asked to embed."""

    def __init__(self, dim=4):
        self.calls = 0
        self.dim = dim

    def __call__(self, texts):
        self.calls += len(texts)
        return torch.stack(
            [torch.tensor([float(len(t)), float(t.count("a")), 1.0, float(hash(t) % 7)]) for t in texts]
        )


def test_cache_embeds_each_text_once_and_persists(tmp_path):
    embed = CountingEmbed()
    cache = GuideCache(tmp_path / "g.guide", dimension=4)
    first = cache.lookup(CORPUS + CORPUS[:2], embed)
    assert first.shape == (8, 4) and embed.calls == 6
    assert torch.equal(first[0], first[6])
    cache.save()
    reopened = GuideCache(tmp_path / "g.guide", dimension=4)
    assert len(reopened) == 6
    again = reopened.lookup(CORPUS, embed)
    assert embed.calls == 6 and torch.equal(again, first[:6])
    reopened.lookup(["a new text"], embed)  # missing -> embedded on the fly and appended
    assert embed.calls == 7 and len(reopened) == 7
    reopened.save()
    assert len(GuideCache(tmp_path / "g.guide", dimension=4)) == 7


def test_float16_cache_round_trips(tmp_path):
    cache = GuideCache(tmp_path / "h.guide", dimension=4, dtype="float16")
    vectors = cache.lookup(CORPUS, CountingEmbed())
    cache.save()
    again = GuideCache(tmp_path / "h.guide", dimension=4, dtype="float16").lookup(CORPUS, CountingEmbed())
    assert again.dtype == torch.float32 and torch.equal(vectors, again)


def test_corrupt_cache_is_rebuilt_with_a_warning(tmp_path, caplog):
    path = tmp_path / "c.guide"
    cache = GuideCache(path, dimension=4)
    cache.lookup(CORPUS, CountingEmbed())
    cache.save()
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0xFF  # flip bits in the matrix
    path.write_bytes(bytes(raw))
    with caplog.at_level(logging.WARNING):
        rebuilt = GuideCache(path, dimension=4)
    assert "checksum mismatch" in caplog.text and len(rebuilt) == 0 and not path.exists()
    embed = CountingEmbed()
    rebuilt.lookup(CORPUS, embed)
    assert embed.calls == 6


def test_neural_guide_is_frozen_normalised_and_cached(model, tmp_path):
    guide = build_guide(model, corpus=CORPUS, cache_dir=tmp_path, progress=False)
    assert guide.kind == "neural" and len(guide.cache) == 6
    vectors = guide.embed(CORPUS[:3])
    torch.testing.assert_close(vectors.norm(dim=1), torch.ones(3))
    assert not any(p.requires_grad for p in guide.model.parameters())
    files = list((tmp_path / "guides").glob("*.guide"))
    assert len(files) == 1
    same = build_guide(model, cache_dir=tmp_path, progress=False)
    assert same.fingerprint == guide.fingerprint and len(same.cache) == 6


def test_self_guide_is_a_frozen_copy_of_the_student_at_step_0(model, tmp_path):
    guide = build_guide("self", student=model, cache_dir=tmp_path, progress=False)
    before = guide.embed(CORPUS[:2])
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5)  # the student trains on; the guide must not move
    after = guide.embed(CORPUS[:2])
    torch.testing.assert_close(before, after)
    assert guide.kind == "self" and guide.model is not model
    assert weights_digest(guide.model) != weights_digest(model)


@pytest.mark.parametrize("kind", ["tfidf", "bm25"])
def test_lexical_guides_rank_word_overlap_first(kind):
    guide = build_guide(kind, corpus=CORPUS)
    vectors = guide.embed(["he plays the guitar", "a man strums a guitar", "the stock market fell"])
    assert vectors.shape[1] == guide.dimension
    torch.testing.assert_close(vectors.norm(dim=1), torch.ones(3))
    sims = vectors @ vectors.T
    assert sims[0, 1] > sims[0, 2]


def test_build_guide_errors_and_none():
    assert build_guide("none") is None
    with pytest.raises(UserError, match="corpus"):
        build_guide("tfidf")
    with pytest.raises(UserError, match="student"):
        build_guide("self", cache_dir="/tmp")
    with pytest.raises(UserError, match="unknown guide 'bm52'"):
        build_guide("bm52")


def test_listing_rows():
    rows = listing()
    names = [r["name"] for r in rows]
    assert set(GUIDES.names()) <= set(names) and "all-mpnet-base" in names
    assert all(set(r) == {"name", "kind", "summary", "languages"} for r in rows)
