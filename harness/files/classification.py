"""Readers for the classification sets: Banking77, Emotion, AmazonCounterfactual, tweet sentiment."""

from __future__ import annotations

import json
from pathlib import Path

from harness.errors import UserError
from harness.files._fields import Row, csv_table, int_field
from harness.files.text import malformed, read_lines, read_text

# Label ids used by MTEB for these copies (MANIFEST: checked against MTEB's stats).
EMOTION_LABELS = ("sadness", "joy", "love", "anger", "fear", "surprise")
TWEET_SENTIMENT_LABELS = ("negative", "neutral", "positive")


def read_banking77(path: Path) -> list[Row]:
    """Reads a Banking77 split (``banking77/{train,test}.csv``; quoted fields may span lines).

    Returns:
        One dict per utterance: ``text`` (verbatim, newlines kept), ``label`` (category name).
    """
    return [{"text": r["text"], "label": r["category"]} for _, r in csv_table(path, ["text", "category"])]


def read_banking77_categories(path: Path) -> list[str]:
    """Reads ``banking77/categories.json``: the 77 label names in their published order."""
    try:
        names = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{path}:{exc.lineno}: invalid JSON ({exc.msg}); expected a list of label names"
        ) from None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise UserError(f"{path}: expected a JSON list of label names")
    return names


def read_emotion(path: Path) -> list[Row]:
    """Reads an emotion split (``emotion/{train,val,test}.txt``): header, then ``text;label``.

    Lines are split on the *last* ``;`` (a text may contain ``;``).

    Returns:
        One dict per text: ``text``, ``label`` (one of :data:`EMOTION_LABELS`).
    """
    where, lines = str(path), read_lines(path)
    if not lines or lines[0] != "text;label_name":
        raise malformed(where, 1, "the header 'text;label_name'", repr(lines[0] if lines else ""))
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        text, sep, label = line.rpartition(";")
        if not sep or label not in EMOTION_LABELS:
            raise malformed(where, number, f"text;label with a label in {EMOTION_LABELS}", repr(line[-40:]))
        rows.append({"text": text, "label": label})
    return rows


def read_amazon_counterfactual(path: Path) -> list[Row]:
    """Reads an AmazonCounterfactual file (``amazon-counterfactual/{EN,EN-ext,DE,JP}_{train,valid,test}.tsv``).

    Tab-separated with standard CSV double-quote handling (that reproduces MTEB's texts); the U+001A
    characters of a few DE/JP sentences are kept.

    Returns:
        One dict per sentence: ``text``, ``label`` (1 = counterfactual, 0 = not).
    """
    return [
        {
            "text": r["sentence"],
            "label": int_field(r["is_counterfactual"], ("0", "1"), str(path), line, "is_counterfactual"),
        }
        for line, r in csv_table(path, ["sentence", "is_counterfactual"], delimiter="\t")
    ]


def read_tweet_sentiment(path: Path) -> list[Row]:
    """Reads ``tweet-sentiment-extraction/test.csv`` (leading spaces in texts are kept).

    Returns:
        One dict per tweet: ``id``, ``text``, ``label`` (one of :data:`TWEET_SENTIMENT_LABELS`).
    """
    rows = []
    for line, r in csv_table(path, ["textID", "text", "sentiment"]):
        if r["sentiment"] not in TWEET_SENTIMENT_LABELS:
            raise malformed(str(path), line, f"sentiment in {TWEET_SENTIMENT_LABELS}", repr(r["sentiment"]))
        rows.append({"id": r["textID"], "text": r["text"], "label": r["sentiment"]})
    return rows
