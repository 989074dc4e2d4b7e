"""Readers for the STS-style scored sentence pairs: SemEval STS 2012–16, STS-B, SICK, BIOSSES."""

from __future__ import annotations

from pathlib import Path

from harness.errors import UserError
from harness.files._fields import Row, optional_score, tab_fields
from harness.files.text import header_index, parse_float, read_lines


def read_semeval_sts(path: Path) -> list[Row]:
    """Reads a brmson SemEval STS file (``semeval-sts-brmson/<year>/<set>.{test,train}.tsv``).

    Format: ``score<TAB>sentence1<TAB>sentence2``, no header, quoting off; the score is empty on
    unscored lines (2015, 2016).

    Returns:
        One dict per line: ``sentence1``, ``sentence2``, ``score`` (float 0–5, or None if unscored).
    """
    where, rows = str(path), []
    for number, line in enumerate(read_lines(path), start=1):
        score, s1, s2 = tab_fields(
            line, where, number, (3,), "3 tab-separated fields score, sentence1, sentence2"
        )
        rows.append({"sentence1": s1, "sentence2": s2, "score": optional_score(score, where, number)})
    return rows


def read_sts_input(input_path: Path, gs_path: Path) -> list[Row]:
    """Reads a SemEval/SentEval ``STS.input.<set>.txt`` with its ``STS.gs.<set>.txt`` scores.

    The input has ``sentence1<TAB>sentence2`` per line; the gs file one score per line in the same
    order, a blank line meaning an unscored pair.

    Returns:
        One dict per pair: ``sentence1``, ``sentence2``, ``score`` (float, or None if unscored).

    Raises:
        UserError: if the two files differ in line count or a line is malformed.
    """
    pairs, scores = read_lines(input_path), read_lines(gs_path)
    if len(pairs) != len(scores):
        raise UserError(
            f"{gs_path}: has {len(scores)} lines but {input_path} has {len(pairs)}; expected one score line per pair"
        )
    rows = []
    for number, (line, score) in enumerate(zip(pairs, scores, strict=True), start=1):
        s1, s2 = tab_fields(
            line, str(input_path), number, (2,), "2 tab-separated fields sentence1, sentence2"
        )
        rows.append({"sentence1": s1, "sentence2": s2, "score": optional_score(score, str(gs_path), number)})
    return rows


def read_sts_folder(folder: Path) -> dict[str, list[Row]]:
    """Reads every ``STS.input.<set>.txt`` + ``STS.gs.<set>.txt`` of one folder, keyed by set name.

    Used for ``sts12-16-senteval-tokenized/STS1x-en-test/`` and ``sts12-original/``.
    """
    folder = Path(folder)
    inputs = sorted(folder.glob("STS.input.*.txt"))
    if not inputs:
        raise UserError(f"{folder}: no STS.input.<set>.txt files found; expected a SemEval STS test folder")
    return {
        p.name[len("STS.input.") : -len(".txt")]: read_sts_input(
            p, p.with_name(p.name.replace("input", "gs", 1))
        )
        for p in inputs
    }


def read_stsb(path: Path) -> list[Row]:
    """Reads an STS Benchmark file (``stsbenchmark/sts-{train,dev,test}.csv``).

    Format: tab-separated, no header, quoting off: genre, file, years, id, score, sentence1,
    sentence2, and on some lines 2 extra source columns (ignored).

    Returns:
        One dict per line: ``genre``, ``file``, ``years``, ``sentence1``, ``sentence2``, ``score`` (0–5).
    """
    where, rows = str(path), []
    for number, line in enumerate(read_lines(path), start=1):
        f = tab_fields(
            line, where, number, (7, 9), "7 (or 9) tab-separated fields genre..score, sentence1, sentence2"
        )
        rows.append(
            {"genre": f[0], "file": f[1], "years": f[2], "sentence1": f[5], "sentence2": f[6],
             "score": parse_float(f[4], where, number, "the score")}
        )  # fmt: skip
    return rows


def read_sick(path: Path) -> list[Row]:
    """Reads a SICK 2014 file (``sick2014/SICK_{train,trial,test_annotated}.txt``).

    Returns:
        One dict per pair: ``pair_id``, ``sentence1``, ``sentence2``, ``score`` (relatedness 1–5),
        ``entailment`` (``ENTAILMENT`` | ``NEUTRAL`` | ``CONTRADICTION``).
    """
    where, lines = str(path), read_lines(path)
    columns = ["pair_ID", "sentence_A", "sentence_B", "relatedness_score", "entailment_judgment"]
    col = header_index(lines[0].split("\t") if lines else [], columns, where)
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        f = tab_fields(
            line, where, number, (len(lines[0].split("\t")),), f"{len(columns)} tab-separated fields"
        )
        rows.append(
            {"pair_id": f[col["pair_ID"]], "sentence1": f[col["sentence_A"]], "sentence2": f[col["sentence_B"]],
             "score": parse_float(f[col["relatedness_score"]], where, number, "relatedness_score"),
             "entailment": f[col["entailment_judgment"]]}
        )  # fmt: skip
    return rows


def read_biosses(sentences_path: Path, scores_path: Path) -> list[Row]:
    """Reads BIOSSES: 200 sentence lines (pair *i* = lines 2i, 2i+1) and 100 score lines.

    Returns:
        One dict per pair: ``sentence1``, ``sentence2``, ``score`` (0–4).
    """
    sentences, scores = read_lines(sentences_path), read_lines(scores_path)
    if len(sentences) != 2 * len(scores):
        raise UserError(
            f"{sentences_path}: has {len(sentences)} lines; expected 2 per score line of {scores_path} ({2 * len(scores)})"
        )
    return [
        {"sentence1": sentences[2 * i], "sentence2": sentences[2 * i + 1],
         "score": parse_float(score, str(scores_path), i + 1, "the score")}
        for i, score in enumerate(scores)
    ]  # fmt: skip
