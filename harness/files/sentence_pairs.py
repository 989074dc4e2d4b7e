"""Readers for paraphrase, NLI and answer-selection pairs: MSRP, PIT2015, SNLI, TrecQA."""

from __future__ import annotations

from pathlib import Path

from harness.errors import UserError
from harness.files._fields import Row, csv_table, int_field, tab_fields
from harness.files.text import header_index, malformed, parse_float, read_lines

SNLI_LABELS = ("entailment", "neutral", "contradiction")


def read_msrp(path: Path) -> list[Row]:
    """Reads an MSR paraphrase file (``msr-paraphrase/msr-para-{train,val,test}.tsv``; BOM, CRLF).

    Returns:
        One dict per pair: ``sentence1``, ``sentence2``, ``label`` (1 = paraphrase, 0 = not).
    """
    where, lines = str(path), read_lines(path)
    header = lines[0].split("\t") if lines else []
    col = header_index(header, ["Quality", "#1 String", "#2 String"], where)
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        f = tab_fields(line, where, number, (len(header),), f"{len(header)} tab-separated fields")
        if f[col["Quality"]] not in ("0", "1"):
            raise malformed(where, number, "Quality 0 or 1", repr(f[col["Quality"]]))
        rows.append(
            {
                "sentence1": f[col["#1 String"]],
                "sentence2": f[col["#2 String"]],
                "label": int(f[col["Quality"]]),
            }
        )
    return rows


def read_trecqa(path: Path) -> list[Row]:
    """Reads a TrecQA (Wang) answer-selection file (``trecqa-wang/{train,dev,test}.csv``).

    Returns:
        One dict per candidate: ``question``, ``answer``, ``label`` (1 = correct answer sentence).
    """
    return [
        {
            "question": r["qtext"],
            "answer": r["atext"],
            "label": int_field(r["label"], ("0", "1"), str(path), line, "label"),
        }
        for line, r in csv_table(path, ["qtext", "label", "atext"])
    ]


def read_snli(folder: Path, split: str) -> list[Row]:
    """Reads SentEval's SNLI copy: parallel ``s1.<split>``, ``s2.<split>``, ``labels.<split>`` files.

    The one space SentEval appended to every sentence line is removed.

    Returns:
        One dict per pair: ``premise``, ``hypothesis``, ``label`` (one of :data:`SNLI_LABELS`).
    """
    folder = Path(folder)
    paths = [folder / f"{name}.{split}" for name in ("s1", "s2", "labels")]
    s1, s2, labels = (read_lines(p) for p in paths)
    if not len(s1) == len(s2) == len(labels):
        raise UserError(
            f"{folder}: s1/s2/labels.{split} have {len(s1)}/{len(s2)}/{len(labels)} lines; expected equal counts"
        )
    rows = []
    for number, (premise, hypothesis, label) in enumerate(zip(s1, s2, labels, strict=True), start=1):
        if label not in SNLI_LABELS:
            raise malformed(str(paths[2]), number, f"a label in {SNLI_LABELS}", repr(label))
        rows.append(
            {"premise": premise.removesuffix(" "), "hypothesis": hypothesis.removesuffix(" "), "label": label}
        )
    return rows


def read_pit2015(data_path: Path, label_path: Path | None = None) -> list[Row]:
    """Reads a SemEval-2015 PIT file (``pit2015/{test,dev}.data``; ``test.label`` for the test labels).

    Columns (in file order): Topic_Id, Topic_Name, Sent_1, Sent_2, Label, Sent_1_tag, Sent_2_tag.
    Dev labels are ``(n_yes, n_no)`` of 5 workers: paraphrase if n_yes ≥ 3, not if n_yes ≤ 1,
    debatable (None) if 2. Test labels come from ``test.label`` (true / false / ``----`` = None).

    Returns:
        One dict per pair: ``topic_id``, ``topic``, ``sentence1``, ``sentence2``, ``label`` (1, 0 or
        None), ``score`` (dev: n_yes votes; test: expert 0–5).
    """
    where, rows = str(data_path), []
    lines = read_lines(data_path)
    labels = read_lines(label_path) if label_path is not None else None
    if labels is not None and len(labels) != len(lines):
        raise UserError(
            f"{label_path}: has {len(labels)} lines but {data_path} has {len(lines)}; expected one per pair"
        )
    for number, line in enumerate(lines, start=1):
        f = tab_fields(line, where, number, (7,), "7 tab-separated fields (Topic_Id .. Sent_2_tag)")
        if labels is None:
            try:
                n_yes = int(f[4].strip("()").split(",")[0])
            except ValueError:
                raise malformed(where, number, "a dev label like (3, 2)", repr(f[4])) from None
            label, score = (1 if n_yes >= 3 else 0 if n_yes <= 1 else None), float(n_yes)
        else:
            mark = labels[number - 1].split("\t")[0]
            if mark not in ("true", "false", "----"):
                raise malformed(
                    str(label_path), number, "true, false or ---- then a score", repr(labels[number - 1])
                )
            label, score = (
                {"true": 1, "false": 0, "----": None}[mark],
                parse_float(f[4], where, number, "Label"),
            )
        rows.append(
            {
                "topic_id": f[0],
                "topic": f[1],
                "sentence1": f[2],
                "sentence2": f[3],
                "label": label,
                "score": score,
            }
        )
    return rows
