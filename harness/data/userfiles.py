"""User training files: JSONL, CSV, TSV or Parquet with anchor, positive, negative*, [label] columns.

Column names are configurable (``columns={"anchor": "query", "positive": "doc"}``). Load one with
``load_source("file:path/to/train.jsonl", columns=...)`` or as a mixture component.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.data.examples import Example
from harness.errors import UserError
from harness.files.text import csv_records, malformed, read_bytes, read_text, split_lines

FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet"}

Record = tuple[int, dict[str, Any]]  # (line or row number, column -> value)


def detect_format(path: Path, file_format: str | None = None) -> str:
    """The file format: ``file_format`` if given, else from the suffix."""
    chosen = file_format or FORMATS.get(path.suffix.lower())
    if chosen not in set(FORMATS.values()):
        raise UserError(
            f"{path}: unknown format {file_format or path.suffix!r}; expected one of jsonl, csv, tsv, parquet"
        )
    return chosen


def read_jsonl(path: Path) -> tuple[list[str], list[Record]]:
    """Reads JSON lines (blank lines skipped); returns (columns of the first object, records)."""
    records = []
    for number, line in enumerate(split_lines(read_text(path)), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise malformed(
                str(path), number, "one JSON object per line", f"invalid JSON ({exc.msg})"
            ) from None
        if not isinstance(obj, dict):
            raise malformed(str(path), number, "one JSON object per line", type(obj).__name__)
        records.append((number, obj))
    return (list(records[0][1]) if records else []), records


def read_delimited(path: Path, delimiter: str) -> tuple[list[str], list[Record]]:
    """Reads a CSV/TSV with a header row; returns (header, records)."""
    rows = csv_records(read_text(path), str(path), delimiter=delimiter)
    first = next(rows, None)
    header = first[1] if first else []
    records = []
    for line, fields in rows:
        if len(fields) != len(header):
            raise malformed(str(path), line, f"{len(header)} fields like the header", str(len(fields)))
        records.append((line, dict(zip(header, fields, strict=True))))
    return header, records


def read_parquet(path: Path) -> tuple[list[str], list[Record]]:
    """Reads a Parquet file; record numbers are 1-based row numbers."""
    import pyarrow.parquet as pq

    read_bytes(path)  # a missing file becomes a UserError
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise UserError(f"{path}: not a readable Parquet file ({exc})") from None
    return table.column_names, list(enumerate(table.to_pylist(), start=1))


def read_records(path: Path, file_format: str | None = None) -> tuple[list[str], list[Record]]:
    """Reads a user file of any supported format into (columns, records)."""
    kind = detect_format(path, file_format)
    if kind == "jsonl":
        return read_jsonl(path)
    if kind == "parquet":
        return read_parquet(path)
    return read_delimited(path, "\t" if kind == "tsv" else ",")


def default_columns(found: list[str]) -> dict[str, str]:
    """The identity mapping for anchor, positive, negative* and label columns present in ``found``."""
    wanted = ["anchor", "positive", *(c for c in found if c.startswith("negative")), "label"]
    return {c: c for c in wanted if c in found or c in ("anchor", "positive")}


def to_examples(
    path: Path, found: list[str], records: list[Record], columns: Mapping[str, str]
) -> list[Example]:
    """Maps records onto examples, checking columns and value types (errors name file:line)."""
    for field_name in ("anchor", "positive"):
        if field_name not in columns:
            raise UserError(
                f"{path}: the column mapping has no {field_name!r}; mapping given: {dict(columns)}"
            )
    missing = [c for c in columns.values() if c not in found]
    if missing:
        raise UserError(
            f"{path}: missing column(s) {', '.join(map(repr, missing))}; columns found: {', '.join(map(repr, found))}"
            " (map them with columns={'anchor': ..., 'positive': ...})"
        )
    examples = []
    for number, record in records:
        example: Example = {}
        for field_name, column in columns.items():
            value = record.get(column)
            if field_name == "label":
                example["label"] = None if value is None else str(value)
            elif not isinstance(value, str):
                raise malformed(str(path), number, f"text in column {column!r}", repr(value))
            else:
                example[field_name] = value
        examples.append(example)
    return examples


def read_user_file(
    path: str | Path, *, columns: Mapping[str, str] | None = None, file_format: str | None = None
) -> list[Example]:
    """Reads a user training file into examples.

    Args:
        path: a ``.jsonl``/``.json`` (JSON lines), ``.csv``, ``.tsv`` or ``.parquet`` file.
        columns: example field -> file column; default: the columns named anchor, positive,
            negative*, label.
        file_format: overrides the format detected from the suffix.

    Raises:
        UserError: missing file or column, non-UTF-8 bytes, malformed line, non-text value.
    """
    path = Path(path)
    found, records = read_records(path, file_format)
    return to_examples(path, found, records, columns or default_columns(found))
