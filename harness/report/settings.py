"""What a report tests: the ``[report]`` section of the experiment file (declared contrasts, alpha).

:class:`~harness.results.ReportConfig` is the section's one typed record (in :mod:`harness.results`,
light enough for the schema to import): ``harness.config`` validates it as part of an experiment (the
report never imports :mod:`harness.config`), and the report reads it back from the experiment text
stored in the manifest, or from a ``report.toml`` beside a committed report when the
contrasts were declared after the study ran. Unset: every arm against the ablation baseline, all
primary, tested on the mean over categories, alpha 0.05.

A contrast is two sides; a side is an arm or a :class:`~harness.results.Gain` of two sides, so a pair
``[a, b]``, an interaction ``[a, b, c, d]`` and a three-way interaction ``[a, ..., h]`` are all one
paired difference (:func:`contrast_of`, :func:`arms_of`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from pydantic import ValidationError

from harness.errors import UserError
from harness.results import (
    DEFAULT_ALPHA,
    GAIN,
    HEADLINE_AGGREGATE,
    Contrast,
    Gain,
    ReportConfig,
    UnrecordedLooks,
    experiment_table,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "DEFAULT_ALPHA",
    "GAIN",
    "HEADLINE_AGGREGATE",
    "Contrast",
    "Gain",
    "ReportConfig",
    "ReportSettings",
    "arms_of",
    "contrast_of",
    "declared_section",
    "gain_arms",
    "report_section",
    "report_settings",
    "unrecorded_looks",
    "untrained_arm_names",
]

BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class ReportSettings:
    """The contrasts a report tests and how.

    Attributes:
        contrasts: every contrast, primary ones first.
        primary: the primary contrasts (they get a forest plot); with ``primary_on`` they form the Holm
            family of the headline.
        alpha: the significance level of the verdicts.
        origin: where the contrasts come from, said in the report ("declared in the experiment file", ...).
        problems: declared contrasts that name an arm without COMPLETE trials (left out, listed in the report).
    """

    contrasts: list[Contrast]
    primary: list[Contrast]
    alpha: float = DEFAULT_ALPHA
    origin: str = ""
    problems: list[str] = field(default_factory=list)
    resamples: int = BOOTSTRAP_RESAMPLES
    seed: int = BOOTSTRAP_SEED
    alpha_spending: str = "split"
    """How the declared alpha is spent over looks (:mod:`harness.report.looks`)."""
    declared_alpha: float | None = None
    """The declared alpha when ``alpha`` is what is left of it for this look (None: no looks)."""
    after_data: frozenset[Contrast] = frozenset()
    """Contrasts first declared after trials had run (marked "declared after data")."""
    primary_on: tuple[str, ...] = (HEADLINE_AGGREGATE,)
    """The aggregates the primary contrasts are tested on: Holm runs over every (primary, aggregate) pair."""
    primary_after_data: frozenset[tuple[Contrast, str]] = frozenset()
    """(primary contrast, aggregate) pairs first declared primary after trials had run (also marked)."""
    untrained: frozenset[str] = frozenset()
    """Untrained arms some contrast takes as its reference (scored once: no seed variance)."""
    unrecorded_looks: UnrecordedLooks | None = None
    """Looks taken before looks were recorded (``inputs/report.toml``); they spend alpha too."""


def report_section(toml_text: str) -> ReportConfig | None:
    """The ``[report]`` section of an experiment text, or None (also for an empty section, text that
    does not parse, or a section that does not validate)."""
    section = experiment_table(toml_text, "report")
    try:
        return ReportConfig.model_validate(section) if section else None
    except ValidationError:
        return None


def declared_section(experiment_toml: str, report_toml: str = "") -> tuple[ReportConfig | None, bool]:
    """The ``[report]`` section a report follows, and whether the experiment file declared it: its own
    (declared before the study ran) wins over one declared beside the report (``inputs/report.toml``)."""
    own = report_section(experiment_toml)
    return own or report_section(report_toml), own is not None


def unrecorded_looks(report_toml: str) -> UnrecordedLooks | None:
    """The ``[unrecorded_looks]`` table of a report's ``inputs/report.toml`` (None: there is none)."""
    try:
        table = tomllib.loads(report_toml).get("unrecorded_looks") if report_toml else None
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"not valid TOML ({e})") from None
    if table is None:
        return None
    try:
        return UnrecordedLooks.model_validate(table)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "table"
        raise UserError(
            f"[unrecorded_looks] {where}: {first['msg']} (count: an integer >= 1; "
            "evidence: where the looks can be seen)"
        ) from None


def untrained_arm_names(experiment_toml: str) -> list[str]:
    """The names of the ``untrained = true`` arms of an experiment text ([] if it does not parse)."""
    arms = (experiment_table(experiment_toml, "ablation") or {}).get("arms", [])
    if not isinstance(arms, list):
        return []
    return [a["name"] for a in arms if isinstance(a, dict) and a.get("untrained") and "name" in a]


ARMS_PER_ENTRY = (2, 4, 8)
"""How many arms a declared entry names: a pair, an interaction, a three-way interaction."""


def _side(arms: tuple[str, ...]) -> str:
    """One arm, or the gain of the first half of ``arms`` over the second."""
    if len(arms) == 1:
        return arms[0]
    half = len(arms) // 2
    return Gain(_side(arms[:half]), _side(arms[half:]))


def contrast_of(arms: tuple[str, ...]) -> Contrast:
    """A pair as it is; an interaction ``[a, b, c, d]`` as the pair of gains ``(a − b, c − d)``; a
    three-way interaction ``[a, ..., h]`` as the pair ``((a − b) − (c − d), (e − f) − (g − h))``."""
    if len(arms) not in ARMS_PER_ENTRY:
        raise ValueError(f"{list(arms)!r}: a contrast names 2, 4 or 8 arms")
    half = len(arms) // 2
    return Contrast(_side(arms[:half]), _side(arms[half:]))


def _arms_of_side(side: str) -> list[str]:
    return (
        [*_arms_of_side(side.arm), *_arms_of_side(side.reference)] if isinstance(side, Gain) else [str(side)]
    )


def arms_of(contrast: Contrast) -> list[str]:
    """The inverse of :func:`contrast_of`: ``[arm, reference]``, ``[a, b, c, d]`` or ``[a, ..., h]``."""
    return [arm for side in contrast for arm in _arms_of_side(side)]


def _gains_of_side(side: str) -> dict[str, tuple[str, str]]:
    if not isinstance(side, Gain):
        return {}
    return {**_gains_of_side(side.arm), **_gains_of_side(side.reference), side: (side.arm, side.reference)}


def gain_arms(contrasts: list[Contrast]) -> dict[str, tuple[str, str]]:
    """The gain arms ``"(a − b)" -> (a, b)`` that the interactions among ``contrasts`` compare, a gain's
    own gains before it (a three-way interaction's two-way gains come first)."""
    return {g: parts for c in contrasts for side in c for g, parts in _gains_of_side(side).items()}


def _known(side: str, arms: set[str]) -> bool:
    """Whether every arm under ``side`` has COMPLETE trials."""
    return all(arm in arms for arm in _arms_of_side(side))


def _primary_on(section: ReportConfig | None) -> tuple[str, ...]:
    return (
        tuple(dict.fromkeys(section.primary_on))
        if section is not None and section.primary_on
        else (HEADLINE_AGGREGATE,)
    )


def report_settings(
    section: ReportConfig | None,
    arms: list[str],
    baseline: str,
    *,
    origin: str = "",
    untrained: list[str] | tuple[str, ...] = (),
) -> ReportSettings:
    """Resolves the contrasts of a report from a ``[report]`` section (None: each arm vs ``baseline``).

    ``untrained``: the untrained arms whose scores exist; a declared contrast may take one as its reference.
    """
    alpha, spending = DEFAULT_ALPHA, "split"
    entries: list[tuple[str, ...]] = []
    primary_entries: list[tuple[str, ...]] = []
    if section is not None:
        entries = [tuple(p) for p in (section.contrasts or []) + (section.interactions or [])]
        primary_entries = [tuple(p) for p in section.primary or []]
        alpha = section.alpha if 0 < section.alpha < 1 else DEFAULT_ALPHA
        spending = section.alpha_spending
    problems = [
        f"{list(p)!r}: a contrast names 2, 4 or 8 arms" for p in entries if len(p) not in ARMS_PER_ENTRY
    ]
    declared = [contrast_of(p) for p in entries if len(p) in ARMS_PER_ENTRY]
    primary = [contrast_of(p) for p in primary_entries if len(p) in ARMS_PER_ENTRY]
    if not declared:
        declared = [Contrast(arm, baseline) for arm in arms if arm != baseline] if baseline in arms else []
        origin = "not declared: every arm against the baseline" if declared else "none (no baseline arm)"
        primary = []
    trained = set(arms)
    references = [n for n in untrained if n not in trained]
    usable = [
        c
        for c in declared
        if _known(c.arm, trained)
        and (_known(c.reference, trained) or c.reference in references)
        and c[0] != c[1]
    ]
    problems += [
        f"{a} − {b}: no COMPLETE trial of {', '.join(x for x in (a, b) if not _known(x, trained | set(references)))}"
        for a, b in declared
        if (a, b) not in usable and a != b
    ]
    primary = [c for c in primary if c in usable] or usable
    ordered = primary + [c for c in usable if c not in primary]
    origin = origin or "declared in the experiment file"
    return ReportSettings(
        ordered,
        primary,
        alpha,
        origin,
        problems,
        alpha_spending=spending,
        primary_on=_primary_on(section),
        untrained=frozenset(c.reference for c in ordered if c.reference in references),
    )
