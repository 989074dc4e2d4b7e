"""Readers for the raw files of the data folder, one per file format (quirks per MANIFEST.md).

Each returns plain Python lists in file order: mteb's classification probe samples training rows by
position, so the order must be the file's.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import tokenize
import zipfile
from pathlib import Path


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8-sig").splitlines()


def senteval_sts(folder: Path, sets: list[str]) -> tuple[list[str], list[str], list[float]]:
    """SentEval STS files ``STS.input.<set>.txt`` + ``STS.gs.<set>.txt``; unscored pairs (blank gs) dropped."""
    s1: list[str] = []
    s2: list[str] = []
    scores: list[float] = []
    for name in sets:
        inputs = _lines(folder / f"STS.input.{name}.txt")
        gold = _lines(folder / f"STS.gs.{name}.txt")
        for line, score in zip(inputs, gold, strict=True):
            if not score.strip():
                continue
            a, b = line.split("\t")[:2]
            s1.append(a)
            s2.append(b)
            scores.append(float(score))
    return s1, s2, scores


def semeval_sts(paths: list[Path]) -> tuple[list[str], list[str], list[float]]:
    """brmson's SemEval files: ``score<TAB>sentence1<TAB>sentence2``, no header; unscored lines dropped."""
    s1, s2, scores = [], [], []
    for path in paths:
        for line in _lines(path):
            score, a, b = line.split("\t")
            if score.strip():
                s1.append(a)
                s2.append(b)
                scores.append(float(score))
    return s1, s2, scores


def stsbenchmark(path: Path) -> tuple[list[str], list[str], list[float]]:
    """STS-B csv: tab-separated, no header, quoting disabled; score in column 5, sentences 6 and 7."""
    s1, s2, scores = [], [], []
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            scores.append(float(row[4]))
            s1.append(row[5])
            s2.append(row[6])
    return s1, s2, scores


def sick(paths: list[Path]) -> tuple[list[str], list[str], list[float]]:
    """SICK files with header ``pair_ID sentence_A sentence_B relatedness_score entailment_judgment``."""
    s1, s2, scores = [], [], []
    for path in paths:
        for line in _lines(path)[1:]:
            _, a, b, score, _ = line.split("\t")
            s1.append(a)
            s2.append(b)
            scores.append(float(score))
    return s1, s2, scores


def biosses(sentences: Path, scores_path: Path) -> tuple[list[str], list[str], list[float]]:
    """BIOSSES: pair i = sentence lines 2i and 2i+1, one score per line."""
    lines = _lines(sentences)
    scores = [float(x) for x in _lines(scores_path) if x.strip()]
    return lines[0::2], lines[1::2], scores


def labelled_csv(path: Path, text: str, label: str, delimiter: str = ",") -> tuple[list[str], list[str]]:
    """A csv/tsv with a header (standard double-quote handling): the text and label columns."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=delimiter))
    return [r[text] for r in rows], [r[label] for r in rows]


def emotion(path: Path) -> tuple[list[str], list[str]]:
    """Emotion ``text;label`` lines after a header; split on the last ``;``."""
    texts, labels = [], []
    for line in _lines(path)[1:]:
        text, label = line.rsplit(";", 1)
        texts.append(text)
        labels.append(label)
    return texts, labels


def pit2015(data: Path, labels: Path | None = None) -> tuple[list[str], list[str], list[int]]:
    """PIT-2015 pairs with binary labels; debatable pairs dropped (the shared task's own rule).

    Dev labels are ``(n_yes, n_no)`` of 5 workers: 3+ yes = paraphrase, 0-1 = not, 2 = debatable.
    Test labels come from ``test.label`` (``true``/``false``/``----``).
    """
    rows = [line.split("\t") for line in _lines(data)]
    if labels is not None:
        verdicts = [line.split("\t")[0] for line in _lines(labels)]
        gold = [{"true": 1, "false": 0}.get(v) for v in verdicts]
    else:
        gold = []
        for row in rows:
            n_yes = int(row[4].strip("()").split(",")[0])
            gold.append(1 if n_yes >= 3 else 0 if n_yes <= 1 else None)
    kept = [(row[2], row[3], label) for row, label in zip(rows, gold, strict=True) if label is not None]
    return [k[0] for k in kept], [k[1] for k in kept], [k[2] for k in kept]


def msrp(path: Path) -> tuple[list[str], list[str], list[int]]:
    """MSR paraphrase tsv (BOM, CRLF, header ``Quality #1 ID #2 ID #1 String #2 String``)."""
    s1, s2, labels = [], [], []
    for line in _lines(path)[1:]:
        quality, _, _, a, b = line.split("\t")
        s1.append(a)
        s2.append(b)
        labels.append(int(quality))
    return s1, s2, labels


def trecqa(path: Path) -> list[tuple[str, int, str]]:
    """TrecQA csv ``qtext,label,atext`` rows as (question, label, answer)."""
    with path.open(encoding="utf-8", newline="") as handle:
        return [(r["qtext"], int(r["label"]), r["atext"]) for r in csv.DictReader(handle)]


def _abstract_sentences(value: str) -> list[str]:
    """The numpy repr ``['s1'\\n 's2' ...]`` of a list of Python string literals, as strings."""
    tokens = tokenize.generate_tokens(io.StringIO(value).readline)
    return [ast.literal_eval(tok.string) for tok in tokens if tok.type == tokenize.STRING]


def scifact_corpus(zip_path: Path) -> list[tuple[str, str, str]]:
    """SciFact corpus from the zip: (doc id, title, abstract sentences joined by spaces)."""
    csv.field_size_limit(1 << 30)
    with zipfile.ZipFile(zip_path) as archive, archive.open("corpus_train.csv") as raw:
        rows = list(csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8")))
    return [
        (r["doc_id"], r["title"], " ".join(s.strip() for s in _abstract_sentences(r["abstract"])))
        for r in rows
    ]


def beir_queries(path: Path) -> dict[str, str]:
    return {(obj := json.loads(line))["_id"]: obj["text"] for line in _lines(path) if line.strip()}


def beir_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    for line in _lines(path)[1:]:
        query, doc, score = line.split("\t")
        qrels.setdefault(query, {})[doc] = int(score)
    return qrels
