"""User files: JSONL, CSV, TSV and Parquet, column mapping, and one-line errors for bad input."""

from __future__ import annotations

import json

import pytest

from harness.data import load_source, read_user_file
from harness.errors import UserError

ROWS = [
    {"anchor": "a1", "positive": "p1", "negative": "n1", "label": "x"},
    {"anchor": "a2", "positive": "p2", "negative": "n2", "label": "y"},
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_every_format_reads_the_same_examples(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    write_jsonl(tmp_path / "t.jsonl", ROWS)
    (tmp_path / "t.csv").write_text(
        'anchor,positive,negative,label\r\na1,p1,n1,x\r\na2,"p2",n2,y\r\n', encoding="utf-8"
    )
    (tmp_path / "t.tsv").write_text(
        "anchor\tpositive\tnegative\tlabel\na1\tp1\tn1\tx\na2\tp2\tn2\ty", encoding="utf-8"
    )
    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "t.parquet")
    for suffix in ("jsonl", "csv", "tsv", "parquet"):
        assert read_user_file(tmp_path / f"t.{suffix}") == ROWS, suffix


def test_column_mapping_and_dataset(tmp_path):
    path = write_jsonl(tmp_path / "q.jsonl", [{"query": "q", "doc": "d", "hard": "h"}])
    ds = load_source(f"file:{path}", columns={"anchor": "query", "positive": "doc", "negative": "hard"})
    assert ds.column_names == ["anchor", "positive", "negative"] and ds[0] == {
        "anchor": "q",
        "positive": "d",
        "negative": "h",
    }


def test_misnamed_columns_list_the_columns_found(tmp_path):
    path = write_jsonl(tmp_path / "q.jsonl", [{"query": "q", "doc": "d"}])
    with pytest.raises(
        UserError, match=r"q\.jsonl: missing column\(s\) 'anchor', 'positive'; columns found: 'query', 'doc'"
    ):
        read_user_file(path)


def test_malformed_json_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"anchor": "a", "positive": "b"}\n\n{"anchor": "a",\n', encoding="utf-8")
    with pytest.raises(
        UserError, match=r"bad\.jsonl:3: expected one JSON object per line, found invalid JSON"
    ):
        read_user_file(path)


def test_non_text_value_names_the_line(tmp_path):
    path = write_jsonl(
        tmp_path / "n.jsonl", [{"anchor": "a", "positive": "b"}, {"anchor": "a", "positive": None}]
    )
    with pytest.raises(UserError, match=r"n\.jsonl:2: expected text in column 'positive', found None"):
        read_user_file(path)


def test_non_utf8_csv(tmp_path):
    path = tmp_path / "l.csv"
    path.write_bytes(b"anchor,positive\na,b\nc,caf\xe9\n")
    with pytest.raises(UserError, match=r"l\.csv:3: byte 0xe9 is not valid UTF-8"):
        read_user_file(path)


def test_ragged_tsv(tmp_path):
    path = tmp_path / "r.tsv"
    path.write_text("anchor\tpositive\na\tb\tc\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"r\.tsv:2: expected 2 fields like the header, found 3"):
        read_user_file(path)


def test_missing_and_unknown_format(tmp_path):
    with pytest.raises(UserError, match="file not found"):
        read_user_file(tmp_path / "none.jsonl")
    with pytest.raises(UserError, match="unknown format '.txt'; expected one of jsonl, csv, tsv, parquet"):
        read_user_file(tmp_path / "x.txt")
    (tmp_path / "x.txt").write_text("anchor,positive\na,b\n", encoding="utf-8")
    assert read_user_file(tmp_path / "x.txt", file_format="csv") == [{"anchor": "a", "positive": "b"}]


def test_empty_after_filtering(tmp_path):
    path = write_jsonl(
        tmp_path / "e.jsonl", [{"anchor": "same", "positive": "same"}, {"anchor": " ", "positive": "x"}]
    )
    with pytest.raises(UserError, match="no examples left after filtering"):
        load_source(f"file:{path}")


def test_corrupt_parquet(tmp_path):
    (tmp_path / "c.parquet").write_bytes(b"not parquet")
    with pytest.raises(UserError, match=r"c\.parquet: not a readable Parquet file"):
        read_user_file(tmp_path / "c.parquet")
