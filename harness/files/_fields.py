"""Field-level helpers shared by the file readers: fixed-width tab lines, CSV tables, scores, labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.files.text import csv_records, header_index, malformed, parse_float, read_text

Row = dict[str, Any]


def tab_fields(line: str, where: str, number: int, expected: tuple[int, ...], shape: str) -> list[str]:
    """Splits a tab-separated line (quoting off) and checks it has one of the ``expected`` widths."""
    fields = line.split("\t")
    if len(fields) not in expected:
        raise malformed(where, number, shape, f"{len(fields)} field(s)")
    return fields


def optional_score(value: str, where: str, number: int) -> float | None:
    """A score field; empty means an unscored pair (None)."""
    return None if value.strip() == "" else parse_float(value, where, number, "the score")


def csv_table(path: Path, columns: list[str], *, delimiter: str = ",") -> list[tuple[int, dict[str, str]]]:
    """Reads a CSV with a header and returns ``(line, {column: value})`` for the wanted columns."""
    where = str(path)
    records = csv_records(read_text(path), where, delimiter=delimiter)
    first = next(records, None)
    col = header_index(first[1] if first else [], columns, where)
    width = len(first[1]) if first else 0
    rows = []
    for line, fields in records:
        if len(fields) != width:
            raise malformed(
                where,
                line,
                f"{width} {delimiter!r}-separated fields ({', '.join(columns)})",
                f"{len(fields)}",
            )
        rows.append((line, {name: fields[i] for name, i in col.items()}))
    return rows


def int_field(value: str, allowed: tuple[str, ...], where: str, line: int, what: str) -> int:
    """An integer label restricted to ``allowed`` spellings (e.g. ``("0", "1")``)."""
    if value not in allowed:
        raise malformed(where, line, f"{what} in {{{', '.join(allowed)}}}", repr(value))
    return int(value)
