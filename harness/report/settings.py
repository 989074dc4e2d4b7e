"""What a report tests: the ``[report]`` section of the experiment file (declared contrasts, alpha).

:class:`~harness.results.ReportConfig` is the section's one typed record (in :mod:`harness.results`,
light enough for the schema to import): ``harness.config`` validates it as part of an experiment (the
report never imports :mod:`harness.config`), and the report reads it back from the experiment text
stored in the manifest, or from a ``report.toml`` beside a committed report when the
contrasts were declared after the study ran. Unset: every arm against the ablation baseline, all
primary, alpha 0.05.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import tomllib
from pydantic import ValidationError

from harness.results import DEFAULT_ALPHA, GAIN, Contrast, Gain, ReportConfig

__all__ = [
    "DEFAULT_ALPHA",
    "GAIN",
    "Contrast",
    "Gain",
    "ReportConfig",
    "ReportSettings",
    "arms_of",
    "contrast_of",
    "gain_arms",
    "report_section",
    "report_settings",
]

BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class ReportSettings:
    """The contrasts a report tests and how.

    Attributes:
        contrasts: every contrast, primary ones first.
        primary: the contrasts that form the Holm family of the headline (and get a forest plot).
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


def report_section(toml_text: str) -> ReportConfig | None:
    """The ``[report]`` section of an experiment text, or None (also for an empty section, text that
    does not parse, or a section that does not validate)."""
    try:
        section = tomllib.loads(toml_text).get("report") if toml_text else None
        return ReportConfig.model_validate(section) if isinstance(section, dict) and section else None
    except (tomllib.TOMLDecodeError, ValidationError):
        return None


def contrast_of(arms: tuple[str, ...]) -> Contrast:
    """A pair as it is; a four-arm interaction ``[a, b, c, d]`` as the pair of gains ``(a − b, c − d)``."""
    if len(arms) == 4:
        return Contrast(Gain(arms[0], arms[1]), Gain(arms[2], arms[3]))
    return Contrast(arms[0], arms[1])


def arms_of(contrast: Contrast) -> list[str]:
    """The inverse of :func:`contrast_of`: ``[arm, reference]``, or an interaction's ``[a, b, c, d]``."""
    out: list[str] = []
    for side in contrast:
        out += [side.arm, side.reference] if isinstance(side, Gain) else [str(side)]
    return out


def gain_arms(contrasts: list[Contrast]) -> dict[str, tuple[str, str]]:
    """The gain arms ``"(a − b)" -> (a, b)`` that the interactions among ``contrasts`` compare."""
    return {side: (side.arm, side.reference) for c in contrasts for side in c if isinstance(side, Gain)}


def report_settings(
    section: ReportConfig | None, arms: list[str], baseline: str, *, origin: str = ""
) -> ReportSettings:
    """Resolves the contrasts of a report from a ``[report]`` section (None: each arm vs ``baseline``)."""
    alpha, spending = DEFAULT_ALPHA, "split"
    declared: list[Contrast] = []
    primary: list[Contrast] = []
    if section is not None:
        declared = [contrast_of(p) for p in (section.contrasts or []) + (section.interactions or [])]
        primary = [contrast_of(p) for p in section.primary or []]
        alpha = section.alpha if 0 < section.alpha < 1 else DEFAULT_ALPHA
        spending = section.alpha_spending
    if not declared:
        declared = [Contrast(arm, baseline) for arm in arms if arm != baseline] if baseline in arms else []
        origin = "not declared: every arm against the baseline" if declared else "none (no baseline arm)"
        primary = []
    known = set(arms) | {g for g, parts in gain_arms(declared).items() if set(parts) <= set(arms)}
    usable = [c for c in declared if c[0] in known and c[1] in known and c[0] != c[1]]
    problems = [
        f"{a} − {b}: no COMPLETE trial of {', '.join(x for x in (a, b) if x not in known)}"
        for a, b in declared
        if (a, b) not in usable and a != b
    ]
    primary = [c for c in primary if c in usable] or usable
    ordered = primary + [c for c in usable if c not in primary]
    origin = origin or "declared in the experiment file"
    return ReportSettings(ordered, primary, alpha, origin, problems, alpha_spending=spending)
