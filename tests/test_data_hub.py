"""Hub sources: the column mapping with a fake ``load_dataset`` (no network)."""

from __future__ import annotations

import pytest
from datasets import Dataset

from harness.data import DATASETS, HubSpec, load_hub_examples
from harness.data.hub import text_of
from harness.errors import UserError

MEDI = HubSpec("owner/medi", columns={"anchor": "query", "positive": "pos", "negative": "neg"})


def fake_loader(rows):
    calls = []

    def load(dataset_id, config=None, *, split, revision):
        calls.append((dataset_id, config, split, revision))
        return Dataset.from_list(rows)

    load.calls = calls
    return load


def test_medi_instruction_lists_keep_the_text():
    rows = [{"query": ["Represent the question:", "what is x?"], "pos": ["Represent the doc:", "x is y"],
             "neg": ["Represent the doc:", "z"], "task_name": "t"}]  # fmt: skip
    loader = fake_loader(rows)
    examples = load_hub_examples(MEDI, loader=loader, split="train[:10]", revision="abc")
    assert examples == [{"anchor": "what is x?", "positive": "x is y", "negative": "z"}]
    assert loader.calls == [("owner/medi", None, "train[:10]", "abc")]
    joined = load_hub_examples(MEDI, loader=fake_loader(rows), with_instruction=True)
    assert joined[0]["anchor"] == "Represent the question: what is x?"


def test_plain_string_columns_and_labels():
    spec = HubSpec(
        "o/nli", "triplet", columns={"anchor": "premise", "positive": "hypothesis", "label": "label"}
    )
    rows = [{"premise": "p", "hypothesis": "h", "label": 2}]
    assert load_hub_examples(spec, loader=fake_loader(rows)) == [
        {"anchor": "p", "positive": "h", "label": "2"}
    ]


def test_missing_hub_columns():
    with pytest.raises(
        UserError, match="hub dataset owner/medi: missing column.*neg; columns found: query, pos"
    ):
        load_hub_examples(MEDI, loader=fake_loader([{"query": "q", "pos": "p"}]))


def test_text_of():
    assert (text_of(None), text_of([]), text_of("s"), text_of(["i", "t"])) == ("", "", "s", "t")


def test_registered_hub_sources_are_listed_not_loaded():
    spec = DATASETS.get("medi-mteb-triplets")
    assert spec.kind == "hub" and spec.n_examples is None
    assert "avsolatorio/medi-data-mteb_avs_triplets" in spec.origin
    assert set(spec.option_defaults()) == {"split", "revision", "with_instruction"}
