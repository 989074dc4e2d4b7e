"""Guide/student pairs: metadata naming a student and a guide from the model zoo.

A pair is named ``STUDENT__GUIDE``. Experiments may name a pair, or a student and a guide directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.models.zoo import MODELS, get_spec
from harness.registry import Registry


@dataclass(frozen=True)
class Pair:
    """A student to fine-tune and the frozen guide that filters its in-batch negatives.

    Attributes:
        name: ``STUDENT__GUIDE``.
        student: model zoo name of the student.
        guide: model zoo name of the guide.
        note: where the pairing comes from.
    """

    name: str
    student: str
    guide: str
    note: str

    @property
    def offline(self) -> bool:
        """True when both models load without the network."""
        return get_spec(self.student).offline and get_spec(self.guide).offline


PAIRS: Registry[Pair] = Registry("pair")

DEFAULT_PAIR = "all-minilm-l6__all-mpnet-base"

for _student, _guide, _note in [
    ("all-minilm-l6", "all-mpnet-base", "offline default: packaged 22M student, packaged 110M guide"),
    ("all-minilm-l6", "all-minilm-l6", "self-guide: a frozen copy of the student"),
    ("all-minilm-l6", "uae-large", "the paper's guide on the smallest student (GIST-all-MiniLM-L6-v2)"),
    ("bge-small", "uae-large", "the paper's GIST-small setup"),
    ("bge-base", "uae-large", "the paper's GIST-base setup"),
    ("bge-large", "uae-large", "the paper's GIST-large setup"),
    ("bge-small", "bge-large", "a same-family larger guide"),
]:
    get_spec(_student), get_spec(_guide)  # fail at import if a pair names an unknown model
    PAIRS.register(f"{_student}__{_guide}", Pair(f"{_student}__{_guide}", _student, _guide, _note))


def resolve_pair(name: str) -> Pair:
    """A registered pair, or an ad-hoc one from any ``STUDENT__GUIDE`` of zoo names."""
    if name in PAIRS:
        return PAIRS.get(name)
    student, sep, guide = name.partition("__")
    if sep and student in _zoo() and guide in _zoo():
        return Pair(name, student, guide, "ad hoc")
    return PAIRS.get(name)  # raises with close matches


def _zoo() -> list[str]:
    return MODELS.names()


def listing() -> list[dict[str, Any]]:
    """One row per registered pair, for ``gist-harness ls pairs``."""
    rows = []
    for _, pair in PAIRS.items():
        student, guide = get_spec(pair.student), get_spec(pair.guide)
        rows.append(
            {
                "name": pair.name,
                "student": f"{student.name} ({student.params_m:g}M)",
                "guide": f"{guide.name} ({guide.params_m:g}M)",
                "offline": "yes" if pair.offline else "no",
                "note": pair.note,
            }
        )
    return rows
