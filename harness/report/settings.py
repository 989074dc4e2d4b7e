"""What a report tests: the ``[report]`` section of the experiment file (declared contrasts, alpha).

The report layer reads the section from the experiment text stored in the manifest (the report never
imports :mod:`harness.config`, which ``gist-harness validate`` uses to check the same section), or from
a ``report.toml`` beside a committed report when the contrasts were declared after the study ran.
Unset: every arm against the ablation baseline, all primary, alpha 0.05.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import tomllib

DEFAULT_ALPHA = 0.05
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0

Contrast = tuple[str, str]
"""``(arm, reference)``: Δ is arm minus reference. An interaction ``[a, b, c, d]`` is the contrast of
two *gain* arms, ``("(a − b)", "(c − d)")``: Δ = (a − b) − (c − d), paired by seed (``gain_arms``)."""
GAIN = " − "


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


def report_section(toml_text: str) -> dict[str, Any] | None:
    """The ``[report]`` table of an experiment text, or None (also for text that does not parse)."""
    try:
        section = tomllib.loads(toml_text).get("report") if toml_text else None
    except tomllib.TOMLDecodeError:
        return None
    return section if isinstance(section, dict) else None


def _pairs(raw: Any) -> list[Contrast]:
    """Pairs as they are; four-arm interactions ``[a, b, c, d]`` as the pair of gains ``(a − b, c − d)``."""
    if not isinstance(raw, list):
        return []
    out: list[Contrast] = []
    for p in raw:
        if isinstance(p, list | tuple) and len(p) == 2:
            out.append((str(p[0]), str(p[1])))
        elif isinstance(p, list | tuple) and len(p) == 4:
            out.append((f"({p[0]}{GAIN}{p[1]})", f"({p[2]}{GAIN}{p[3]})"))
    return out


def gain_arms(contrasts: list[Contrast]) -> dict[str, tuple[str, str]]:
    """The gain arms ``"(a − b)" -> (a, b)`` that the interactions among ``contrasts`` compare."""
    return {
        name: tuple(name[1:-1].split(GAIN))  # type: ignore[misc]
        for c in contrasts
        for name in c
        if name.startswith("(") and GAIN in name
    }


def report_settings(
    section: dict[str, Any] | None, arms: list[str], baseline: str, *, origin: str = ""
) -> ReportSettings:
    """Resolves the contrasts of a report from a ``[report]`` section (None: each arm vs ``baseline``)."""
    alpha = DEFAULT_ALPHA
    declared: list[Contrast] = []
    primary: list[Contrast] = []
    if section:
        declared = _pairs(section.get("contrasts")) + _pairs(section.get("interactions"))
        primary = _pairs(section.get("primary"))
        raw_alpha = section.get("alpha", DEFAULT_ALPHA)
        alpha = (
            float(raw_alpha) if isinstance(raw_alpha, int | float) and 0 < raw_alpha < 1 else DEFAULT_ALPHA
        )
    if not declared:
        declared = [(arm, baseline) for arm in arms if arm != baseline] if baseline in arms else []
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
    return ReportSettings(ordered, primary, alpha, origin or "declared in the experiment file", problems)
