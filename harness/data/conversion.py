"""Turning labelled rows into training examples: classification → pairs, NLI → triplets, QA → pairs.

Pure functions over plain dicts; an *example* is a dict with ``anchor``, ``positive``, optionally
``negative`` and optionally ``label`` (a string class name).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Any

Example = dict[str, Any]


def group_texts(rows: Iterable[dict[str, Any]], key: str, value: str) -> dict[str, list[str]]:
    """Groups ``row[value]`` by ``row[key]``, first-seen order, each text once per group."""
    groups: dict[str, list[str]] = {}
    for row in rows:
        texts = groups.setdefault(row[key], [])
        if row[value] not in texts:
            texts.append(row[value])
    return groups


def _other(rng: random.Random, n: int, i: int) -> int:
    """A uniform index in ``range(n)`` other than ``i`` (needs ``n >= 2``)."""
    j = rng.randrange(n - 1)
    return j + 1 if j >= i else j


def label_pairs(
    rows: Sequence[dict[str, Any]], *, seed: int = 0, with_negative: bool = False
) -> list[Example]:
    """Classification rows → pairs of two texts with the same label (the paper's MTEBcls recipe).

    Each distinct text is the anchor of one example; its positive is another text of the same
    label drawn uniformly, and with ``with_negative`` a negative is drawn from a uniformly chosen
    other label. Labels with a single text yield nothing.

    Args:
        rows: dicts with ``text`` and ``label``.
        seed: seeds the draws; the same rows and seed give the same pairs.
        with_negative: also draw a ``negative`` text of another label.

    Returns:
        Examples with ``anchor``, ``positive``, [``negative``], ``label``.
    """
    rng = random.Random(seed)
    by_label = group_texts(rows, "label", "text")
    labels = list(by_label)
    examples = []
    for li, label in enumerate(labels):
        texts = by_label[label]
        if len(texts) < 2:
            continue
        for i, anchor in enumerate(texts):
            example = {"anchor": anchor, "positive": texts[_other(rng, len(texts), i)]}
            if with_negative and len(labels) > 1:
                negatives = by_label[labels[_other(rng, len(labels), li)]]
                example["negative"] = negatives[rng.randrange(len(negatives))]
            examples.append(example | {"label": str(label)})
    return examples


def nli_triplets(rows: Sequence[dict[str, Any]]) -> list[Example]:
    """NLI rows → (premise, entailed hypothesis, contradicting hypothesis) triplets.

    One triplet per entailed hypothesis of a premise that also has a contradiction; when a premise
    has fewer contradictions than entailments they are reused in order.

    Args:
        rows: dicts with ``premise``, ``hypothesis``, ``label`` (entailment | neutral | contradiction).
    """
    entailed = group_texts((r for r in rows if r["label"] == "entailment"), "premise", "hypothesis")
    contradicted = group_texts((r for r in rows if r["label"] == "contradiction"), "premise", "hypothesis")
    return [
        {
            "anchor": premise,
            "positive": hyp,
            "negative": contradicted[premise][k % len(contradicted[premise])],
        }
        for premise, hyps in entailed.items()
        if premise in contradicted
        for k, hyp in enumerate(hyps)
    ]


def answer_pairs(rows: Sequence[dict[str, Any]], *, with_negative: bool = False) -> list[Example]:
    """Answer-selection rows → (question, correct answer) pairs, optionally with a wrong answer.

    With ``with_negative`` the k-th correct answer of a question gets its k-th wrong answer (reused
    in order); questions without a wrong answer are then skipped.

    Args:
        rows: dicts with ``question``, ``answer``, ``label`` (1 = correct).
    """
    right = group_texts((r for r in rows if r["label"] == 1), "question", "answer")
    wrong = group_texts((r for r in rows if r["label"] != 1), "question", "answer")
    examples = []
    for question, answers in right.items():
        for k, answer in enumerate(answers):
            if not with_negative:
                examples.append({"anchor": question, "positive": answer})
            elif question in wrong:
                negatives = wrong[question]
                examples.append(
                    {"anchor": question, "positive": answer, "negative": negatives[k % len(negatives)]}
                )
    return examples


def scored_pairs(rows: Iterable[dict[str, Any]], *, min_score: float) -> list[Example]:
    """Scored sentence pairs → (sentence1, sentence2) examples with ``score >= min_score``."""
    return [
        {"anchor": r["sentence1"], "positive": r["sentence2"]}
        for r in rows
        if r["score"] is not None and r["score"] >= min_score
    ]
