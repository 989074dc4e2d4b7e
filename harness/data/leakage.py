"""Leakage check: training texts that also occur in an evaluation split.

The caller passes the evaluation texts as plain sets (``harness.evaluate.suite_texts``), so this
module never imports the task code. Texts are compared under two keys:

* :func:`exact_key` — whitespace collapsed and casefolded ("exact" in reports);
* :func:`token_key` — the casefolded word tokens (``\\w+``) joined by one space. This also matches
  the lowercased, Moses-tokenised STS12–16 copies (``don ' t``, ``" word "``) and SNLI's PTB
  spacing against raw training text, which the exact key misses. It is the key the policy uses;
  every exact match is also a token match.

An overlap with a split whose role is ``train`` (a task's own training data, e.g. Banking77 train
while scoring Banking77 test, as the GISTEmbed paper did) is recorded as ``in-domain``. So is a
test-split overlap with a text that the task's own train split also contains (the benchmark's own
train/test overlap). Any other overlap with a test split is a ``leak``: an error by default.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.errors import UserError

Role = Literal["test", "train"]
Policy = Literal["error", "drop", "warn"]
POLICIES = ("error", "drop", "warn")

log = logging.getLogger(__name__)
_WORD = re.compile(r"\w+")


def exact_key(text: str) -> str:
    """The key of an "exact" match: whitespace runs collapsed to one space, ends stripped, casefolded."""
    return " ".join(text.split()).casefold()


def token_key(text: str) -> str:
    """Casefolded word tokens joined by a space: punctuation and tokenisation spacing ignored."""
    return " ".join(_WORD.findall(text.casefold()))


@dataclass(frozen=True)
class Overlap:
    """Texts one training source shares with one evaluation split.

    Attributes:
        source: the training source name.
        task: the evaluation task name.
        split: the task's split.
        role: ``test`` (scored) or ``train`` (the task's own training split).
        kind: ``leak`` (a test text not in the task's train split) or ``in-domain``.
        count: distinct shared texts under :func:`token_key`.
        exact_count: of those, how many also match under :func:`exact_key`.
        examples: a few shared training texts, as written in the source.
    """

    source: str
    task: str
    split: str
    role: Role
    kind: Literal["leak", "in-domain"]
    count: int
    exact_count: int
    examples: tuple[str, ...]


@dataclass(frozen=True)
class LeakageReport:
    """Every overlap found, and the token keys of leaked texts per source (for ``drop``)."""

    overlaps: tuple[Overlap, ...] = ()
    leaked_keys: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @property
    def leaks(self) -> list[Overlap]:
        return [o for o in self.overlaps if o.kind == "leak"]

    @property
    def in_domain(self) -> list[Overlap]:
        return [o for o in self.overlaps if o.kind == "in-domain"]

    @property
    def ok(self) -> bool:
        """True when no training text occurs in a test split (in-domain overlaps allowed)."""
        return not self.leaks

    def is_leaked(self, source: str, text: str) -> bool:
        """Whether ``text`` of ``source`` matches a leaked evaluation text."""
        return token_key(text) in self.leaked_keys.get(source, frozenset())

    def rows(self) -> list[dict[str, Any]]:
        """One plain dict per overlap, for results and reports."""
        return [{**o.__dict__, "examples": list(o.examples)} for o in self.overlaps]

    def message(self) -> str:
        """A one-line summary of the leaks."""
        parts = [
            f"{o.source} shares {o.count} text(s) with {o.task}/{o.split} (e.g. {', '.join(repr(e[:60]) for e in o.examples)})"
            for o in self.leaks
        ]
        return "training data overlaps evaluation test splits: " + "; ".join(parts)


def _keys(texts: Iterable[str]) -> dict[str, str]:
    """token key -> one original text (first seen); texts without a word are skipped."""
    keys: dict[str, str] = {}
    for text in texts:
        key = token_key(text)
        if key:
            keys.setdefault(key, text)
    return keys


def default_role(split: str) -> Role:
    """``train`` for a split named train, otherwise ``test``."""
    return "train" if split == "train" else "test"


def _overlap(
    source, task, split, role, kind, shared: list[str], train: dict[str, str], eval_exact: set[str], n
):
    exact = sum(1 for k in shared if exact_key(train[k]) in eval_exact)
    return Overlap(source, task, split, role, kind, len(shared), exact, tuple(train[k] for k in shared[:n]))


def find_overlaps(
    train_texts_by_source: Mapping[str, Iterable[str]],
    eval_texts: Mapping[str, Mapping[str, Iterable[str]]],
    eval_roles: Mapping[str, Mapping[str, Role]] | None = None,
    *,
    max_examples: int = 3,
) -> LeakageReport:
    """Compares every training source with every evaluation split (no policy applied).

    Args:
        train_texts_by_source: source name -> its training texts (anchors, positives, negatives).
        eval_texts: task -> split -> texts.
        eval_roles: task -> split -> ``test`` | ``train``; default :func:`default_role`.
        max_examples: shared texts quoted per overlap.
    """
    roles = eval_roles or {}
    train_keys = {source: _keys(texts) for source, texts in train_texts_by_source.items()}
    overlaps: list[Overlap] = []
    leaked: dict[str, set[str]] = {}
    for task, splits in eval_texts.items():
        split_keys = {split: {token_key(t) for t in texts} - {""} for split, texts in splits.items()}
        split_exact = {split: {exact_key(t) for t in texts} for split, texts in splits.items()}
        role_of = {split: roles.get(task, {}).get(split, default_role(split)) for split in splits}
        own_train = set().union(*(k for s, k in split_keys.items() if role_of[s] == "train"))
        for source, keys in train_keys.items():
            for split, eval_keys in split_keys.items():
                shared = sorted(eval_keys.intersection(keys))
                if role_of[split] == "test":
                    leak = [k for k in shared if k not in own_train]
                    in_domain = [k for k in shared if k in own_train]
                else:
                    leak, in_domain = [], shared
                args = (source, task, split, role_of[split])
                if leak:
                    overlaps.append(_overlap(*args, "leak", leak, keys, split_exact[split], max_examples))
                    leaked.setdefault(source, set()).update(leak)
                if in_domain:
                    overlaps.append(
                        _overlap(*args, "in-domain", in_domain, keys, split_exact[split], max_examples)
                    )
    return LeakageReport(tuple(overlaps), {s: frozenset(k) for s, k in leaked.items()})


def check_leakage(
    train_texts_by_source: Mapping[str, Iterable[str]],
    eval_texts: Mapping[str, Mapping[str, Iterable[str]]],
    eval_roles: Mapping[str, Mapping[str, Role]] | None = None,
    *,
    policy: Policy = "error",
    max_examples: int = 3,
) -> LeakageReport:
    """Finds overlaps (:func:`find_overlaps`) and applies ``policy`` to test-split leaks.

    Args:
        train_texts_by_source: source name -> its training texts.
        eval_texts: task -> split -> texts (from ``harness.evaluate.suite_texts``).
        eval_roles: task -> split -> ``test`` | ``train``.
        policy: ``error`` raises a ``UserError`` naming source, task, count and examples;
            ``warn`` logs the same line; ``drop`` only reports (remove the rows with
            :func:`harness.data.drop_leaked`).
        max_examples: shared texts quoted per overlap.

    Returns:
        The report, including in-domain overlaps, for the run record.
    """
    if policy not in POLICIES:
        raise UserError(f"leakage policy {policy!r}; expected one of {', '.join(POLICIES)}")
    report = find_overlaps(train_texts_by_source, eval_texts, eval_roles, max_examples=max_examples)
    if report.leaks and policy == "error":
        raise UserError(
            report.message() + "; remove the source or the task, or set the leakage policy to drop or warn"
        )
    if report.leaks and policy == "warn":
        log.warning(report.message())
    return report


SuiteTexts = tuple[Mapping[str, Mapping[str, Iterable[str]]], Mapping[str, Mapping[str, Role]]]
"""One suite's ``(texts, roles)``: task -> split -> texts, and task -> split -> role."""


def check_training_data(
    texts_by_source: Mapping[str, Iterable[str]], suites: Sequence[SuiteTexts], *, policy: Policy = "error"
) -> LeakageReport:
    """The leakage check of the training texts against every text of ``suites``.

    A training text found in a scored (test) split is an error under ``policy="error"``; texts shared
    with a task's own train split are in-domain and only reported.

    Args:
        texts_by_source: source name -> its training texts.
        suites: each suite's texts and roles (``harness.evaluate.suite_texts``), computed by the caller.
        policy: what a test-split leak does (see :func:`check_leakage`).

    Returns:
        The report (its ``in_domain`` overlaps name the tasks).
    """
    eval_texts: dict[str, dict[str, set[str]]] = {}
    eval_roles: dict[str, dict[str, Role]] = {}
    for texts, roles in suites:
        for task, splits in texts.items():  # a task in two suites: union its splits' texts
            for split, split_texts in splits.items():
                eval_texts.setdefault(task, {}).setdefault(split, set()).update(split_texts)
        for task, split_roles in roles.items():
            eval_roles.setdefault(task, {}).update(split_roles)
    return check_leakage(texts_by_source, eval_texts, eval_roles or None, policy=policy)
