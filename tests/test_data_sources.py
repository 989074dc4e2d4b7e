"""Every registered offline source loads from the real data folder; options, errors and data_dir."""

from __future__ import annotations

import pytest

from harness.data import DATASETS, data_dir, listing, load_source, source_examples
from harness.errors import UserError
from harness.registry import UnknownNameError

OFFLINE = [name for name, spec in DATASETS.items() if spec.kind == "offline"]


def test_the_issue_sources_are_registered():
    expected = {"stsb-train", "sick-train", "msrp-train", "snli-triplets", "trecqa-train",
                "banking77-pairs", "emotion-pairs", "amazon-cf-pairs"}  # fmt: skip
    assert expected <= set(OFFLINE)
    assert {"medi-mteb-triplets", "all-nli-triplets"} <= set(DATASETS.names())


@pytest.mark.parametrize("name", OFFLINE)
def test_offline_source_matches_its_listing(data_dir, name):
    spec = DATASETS.get(name)
    ds = load_source(name, data_dir)
    assert len(ds) == spec.n_examples
    assert tuple(ds.column_names) == spec.columns
    assert spec.origins and spec.licence and spec.origin
    for column in ("anchor", "positive"):
        assert all(text.strip() for text in ds[column])


def test_listing_rows_share_keys():
    rows = listing()
    assert len(rows) == len(DATASETS)
    assert all(row.keys() == rows[0].keys() for row in rows)
    assert {"name", "examples", "origin", "licence", "columns"} <= rows[0].keys()


def test_stsb_threshold_option(data_dir):
    assert len(load_source("stsb-train", data_dir, min_score=3.0)) > len(load_source("stsb-train", data_dir))


def test_sick_by_relatedness(data_dir):
    assert len(load_source("sick-train", data_dir, by="relatedness", min_score=4.5)) > 0
    with pytest.raises(UserError, match="by='nli'; expected 'entailment' or 'relatedness'"):
        load_source("sick-train", data_dir, by="nli")


def test_classification_pairs_keep_label_and_can_add_negatives(data_dir):
    ds = load_source("banking77-pairs", data_dir, with_negative=True, seed=1)
    assert ds.column_names == ["anchor", "positive", "negative", "label"]
    assert len(ds.features["label"].names) == 77
    first = source_examples("banking77-pairs", data_dir, seed=1)
    assert first == source_examples("banking77-pairs", data_dir, seed=1)


def test_trecqa_with_negative(data_dir):
    ds = load_source("trecqa-train", data_dir, with_negative=True)
    assert ds.column_names == ["anchor", "positive", "negative"] and len(ds) > 0


def test_unknown_option_lists_valid_ones(data_dir):
    with pytest.raises(UserError, match=r"unknown option\(s\) min_scor; valid options: min_score=4.0"):
        load_source("stsb-train", data_dir, min_scor=3)


def test_empty_after_filtering(data_dir):
    with pytest.raises(UserError, match="no examples left after filtering"):
        load_source("stsb-train", data_dir, min_score=6.0)


def test_unknown_source_suggests():
    with pytest.raises(UnknownNameError, match="Did you mean 'stsb-train'"):
        load_source("stsb-trian")


def test_missing_file_in_data_folder(tmp_path):
    with pytest.raises(UserError, match=r"sts-train\.csv: file not found"):
        load_source("stsb-train", tmp_path)


def test_data_dir_explicit_then_env_then_error(tmp_path, monkeypatch):
    monkeypatch.setenv("GIST_HARNESS_DATA", str(tmp_path / "env"))
    (tmp_path / "env").mkdir()
    assert data_dir(tmp_path) == tmp_path
    assert data_dir() == tmp_path / "env"
    monkeypatch.delenv("GIST_HARNESS_DATA")
    with pytest.raises(UserError, match="pass data_dir .* or set GIST_HARNESS_DATA"):
        data_dir()
    with pytest.raises(UserError, match="does not exist"):
        data_dir(tmp_path / "nope")
