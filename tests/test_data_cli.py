"""``gist-harness data show`` and ``ls datasets|mixtures``."""

from __future__ import annotations

import json

from harness.cli import main


def test_data_show_mixture(data_dir, capsys):
    assert main(["data", "show", "mini-medi", "--data-dir", str(data_dir), "-n", "2", "--json"]) == 0
    out = capsys.readouterr().out
    counts_json, sample_json = out.split("\n]\n", 1)
    counts = json.loads(counts_json + "\n]")
    assert {row["source"] for row in counts} == {"snli-triplets", "stsb-train", "msrp-train", "trecqa-train"}
    assert len(json.loads(sample_json)) == 2


def test_data_show_file_source(tmp_path, capsys):
    path = tmp_path / "t.jsonl"
    path.write_text('{"anchor": "a", "positive": "b", "label": "x"}\n{"anchor": "c", "positive": "d"}\n')
    assert main(["data", "show", f"file:{path}", "--dev-fraction", "0"]) == 0
    out = capsys.readouterr().out
    assert "2 train, 0 dev" in out


def test_data_show_user_error_is_one_line(capsys, monkeypatch):
    monkeypatch.delenv("GIST_HARNESS_DATA", raising=False)
    assert main(["data", "show", "stsb-train"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no data folder") and err.count("\n") == 1


def test_ls_datasets_and_mixtures(capsys):
    assert main(["ls", "datasets", "--json"]) == 0
    names = {row["name"] for row in json.loads(capsys.readouterr().out)}
    assert {"stsb-train", "banking77-pairs", "all-nli-triplets"} <= names
    assert main(["ls", "mixtures", "--json"]) == 0
    assert {row["name"] for row in json.loads(capsys.readouterr().out)} == {"mini-medi", "mini-medi+cls"}
