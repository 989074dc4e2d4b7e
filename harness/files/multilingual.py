"""Readers for the multilingual files: STS-B machine-translated (stsb-multi-mt) and Tatoeba bitexts."""

from __future__ import annotations

from pathlib import Path

from harness.errors import UserError
from harness.files._fields import Row
from harness.files.text import csv_records, malformed, parse_float, read_lines, read_text


def read_stsb_multi(path: Path) -> list[Row]:
    """Reads a stsb-multi-mt file (``stsb-multi-mt/stsb-<lang>-{train,dev,test}.csv``).

    Format: CSV without a header, standard double-quote handling, CRLF: sentence1, sentence2,
    similarity score (0–5). Text is kept as stored (the U+0012 in en train and the 1-character nl
    train sentences included).

    Returns:
        One dict per line: ``sentence1``, ``sentence2``, ``score``.
    """
    where, rows = str(path), []
    for line, fields in csv_records(read_text(path), where):
        if len(fields) != 3:
            raise malformed(
                where, line, "3 comma-separated fields sentence1, sentence2, score", f"{len(fields)}"
            )
        s1, s2, score = fields
        rows.append({"sentence1": s1, "sentence2": s2, "score": parse_float(score, where, line, "the score")})
    return rows


def read_tatoeba(source_path: Path, english_path: Path) -> list[Row]:
    """Reads one Tatoeba pair (``tatoeba/tatoeba.<xxx>-eng.<xxx>`` with its ``.eng`` file).

    Line *i* of the ``<xxx>`` file translates line *i* of the English file.

    Returns:
        One dict per line: ``sentence1`` (the ``<xxx>`` sentence), ``sentence2`` (the English one),
        without the line's newline.

    Raises:
        UserError: if the two files differ in line count.
    """
    source, english = read_lines(source_path), read_lines(english_path)
    if len(source) != len(english):
        raise UserError(
            f"{english_path}: has {len(english)} lines but {source_path} has {len(source)}; "
            "expected one translation per line"
        )
    return [{"sentence1": s, "sentence2": e} for s, e in zip(source, english, strict=True)]
