"""Static-embedding students: specs, offline build from packaged models, save and reload."""

from __future__ import annotations

import pytest
import torch

from harness.models import MODELS, get_spec, listing, load_model, model_fingerprint
from harness.registry import UnknownNameError


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GIST_HARNESS_CACHE", str(tmp_path))
    return tmp_path


def test_static_specs_are_marked_static_in_the_listing():
    rows = {row["name"]: row for row in listing()}
    for name in ["static-minilm", "static-mpnet", "static-random"]:
        assert rows[name]["kind"] == "static" and get_spec(name).static
    assert rows["all-minilm-l6"]["kind"] == "transformer"


def test_random_static_student_takes_any_dimension():
    spec = get_spec("static-random-64")
    assert (spec.dimension, spec.static_dim, spec.static) == (64, 64, True)
    assert "static-random-64" not in MODELS  # parsed, not registered one by one
    with pytest.raises(UnknownNameError):
        get_spec("static-random-x")


def test_random_static_student_builds_saves_and_reloads_identically(cache):
    model = load_model("static-random-32", device="cpu")
    texts = ["a cat sat on the mat", "stocks fell on tuesday"]
    first = model.encode(texts, convert_to_tensor=True)
    assert first.shape == (2, 32)
    (folder,) = (cache / "models").iterdir()
    again = load_model("static-random-32", device="cpu")  # loaded from the saved folder
    assert torch.equal(first, again.encode(texts, convert_to_tensor=True))
    assert (folder / "modules.json").exists()
    assert model_fingerprint("static-random-32") == "static:static-random-32:random:32"


@pytest.mark.slow
def test_static_minilm_starts_from_the_transformers_input_embeddings(cache, minilm):
    static = load_model("static-minilm", device="cpu")
    table = static[0].embedding.weight  # (V, 384)
    words = minilm[0].auto_model.embeddings.word_embeddings.weight  # (V, 384)
    assert torch.equal(table, words)
    # Mean of the token rows, no special tokens: check one text by hand.
    ids = static[0].tokenizer.encode("guided negatives", add_special_tokens=False).ids
    expected = words[ids].mean(0)
    got = static.encode(["guided negatives"], convert_to_tensor=True)[0]
    assert torch.allclose(got, expected, atol=1e-6)


@pytest.mark.slow
def test_static_mpnet_builds_from_the_split_archive():
    model = load_model("static-mpnet", device="cpu")
    emb = torch.nn.functional.normalize(
        model.encode(
            ["A man plays a guitar.", "Someone plays an instrument.", "Stocks fell."], convert_to_tensor=True
        ),
        dim=-1,
    )
    assert emb.shape == (3, 768) and emb[0] @ emb[1] > emb[0] @ emb[2]
