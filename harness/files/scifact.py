"""Readers for SciFact (``scifact.zip``: claims and corpus) and BEIR queries/qrels files."""

from __future__ import annotations

import ast
import io
import json
import re
import tokenize
import zipfile
from pathlib import Path

from harness.errors import UserError
from harness.files._fields import Row, csv_table
from harness.files.text import csv_records, decode_utf8, header_index, malformed, parse_float, read_lines


def parse_string_list(value: str) -> list[str]:
    r"""Parses a numpy-repr list of Python string literals, e.g. ``['s1'\n 's2']``.

    The literals are separated by whitespace, not commas, so ``ast.literal_eval`` on the whole
    value would concatenate them; each STRING token is evaluated on its own instead.

    Raises:
        ValueError: if the value is not such a list.
    """
    tokens = tokenize.generate_tokens(io.StringIO(value).readline)
    try:
        return [ast.literal_eval(t.string) for t in tokens if t.type == tokenize.STRING]
    except (tokenize.TokenError, SyntaxError) as exc:
        raise ValueError(f"not a list of string literals: {exc}") from None


def _zip_csv(zip_path: Path, member: str, columns: list[str]) -> list[tuple[int, dict[str, str]]]:
    where = f"{zip_path}!{member}"
    try:
        with zipfile.ZipFile(zip_path) as archive:
            data = archive.read(member)
    except FileNotFoundError:
        raise UserError(f"{zip_path}: file not found (check the data folder)") from None
    except (KeyError, zipfile.BadZipFile) as exc:
        raise UserError(f"{zip_path}: cannot read member {member!r} ({exc})") from None
    records = csv_records(decode_utf8(data, where), where)
    first = next(records, None)
    col = header_index(first[1] if first else [], columns, where)
    return [(line, {name: fields[i] for name, i in col.items()}) for line, fields in records]


def read_scifact_claims(zip_path: Path, split: str) -> list[Row]:
    """Reads ``claims_<split>.csv`` (train | validation | test) from ``scifact/scifact.zip``.

    Returns:
        One dict per row (claim × evidence doc): ``id``, ``claim``, ``cited_doc_ids`` (list of str).
    """
    rows, where = [], f"{zip_path}!claims_{split}.csv"
    for line, r in _zip_csv(zip_path, f"claims_{split}.csv", ["id", "claim", "cited_doc_ids"]):
        # numpy repr of an int array: "[31715818]" or "[ 5152028 11705328]"
        if not re.fullmatch(r"\[[\d\s,]*\]", r["cited_doc_ids"]):
            raise malformed(where, line, "cited_doc_ids like [123 456]", repr(r["cited_doc_ids"]))
        rows.append(
            {"id": r["id"], "claim": r["claim"], "cited_doc_ids": re.findall(r"\d+", r["cited_doc_ids"])}
        )
    return rows


def read_scifact_corpus(zip_path: Path) -> list[Row]:
    """Reads ``corpus_train.csv`` from ``scifact/scifact.zip`` (5,183 abstracts).

    Returns:
        One dict per document: ``doc_id``, ``title``, ``sentences`` (list of str), ``text``
        (``title + " " + " ".join(s.strip() for s in sentences)``, MTEB's document text).
    """
    rows, where = [], f"{zip_path}!corpus_train.csv"
    for line, r in _zip_csv(zip_path, "corpus_train.csv", ["doc_id", "title", "abstract"]):
        try:
            sentences = parse_string_list(r["abstract"])
        except ValueError as exc:
            raise malformed(where, line, "an abstract like ['s1' 's2']", str(exc)) from None
        text = r["title"] + " " + " ".join(s.strip() for s in sentences)
        rows.append({"doc_id": r["doc_id"], "title": r["title"], "sentences": sentences, "text": text})
    return rows


def read_beir_queries(path: Path) -> list[Row]:
    """Reads a BEIR ``queries.jsonl``: one ``{"_id", "text", ...}`` object per line.

    Returns:
        One dict per query: ``id``, ``text``.
    """
    rows = []
    for number, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            rows.append({"id": str(obj["_id"]), "text": obj["text"]})
        except (json.JSONDecodeError, KeyError, TypeError):
            raise malformed(
                str(path), number, 'a JSON object with "_id" and "text"', repr(line[:60])
            ) from None
    return rows


def read_beir_qrels(path: Path) -> list[Row]:
    """Reads a BEIR qrels TSV with header ``query-id corpus-id score`` (CRLF handled).

    Returns:
        One dict per judgment: ``query_id``, ``corpus_id``, ``score`` (int).
    """
    return [
        {
            "query_id": r["query-id"],
            "corpus_id": r["corpus-id"],
            "score": int(parse_float(r["score"], str(path), line, "score")),
        }
        for line, r in csv_table(path, ["query-id", "corpus-id", "score"], delimiter="\t")
    ]
