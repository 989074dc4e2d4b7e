"""Checks of ``[report]``: contrasts, interactions and primary entries name arms that can be compared."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from harness.config.checks.trials import Error, Trial
from harness.config.schema import (
    Experiment,
)


def check_report(experiment: Experiment, found: list[Trial]) -> Iterator[Error]:
    """``[report]``: contrasts name two different trained arms (an untrained one only as a reference),
    interactions 4 or 8 trained arms, primary ones are among them, aggregates once each, 0 < alpha < 1."""
    report = experiment.report
    if report is None:
        return
    names = [a.name for a in experiment.ablation.arms if not a.untrained]
    untrained = [a.name for a in experiment.ablation.arms if a.untrained]
    valid = f"trained arms: {', '.join(names) or 'none (a search has no arms to contrast)'}"
    for key in ("contrasts", "interactions", "primary"):
        yield from _check_pairs(key, getattr(report, key), names, valid, untrained)
    baseline = experiment.ablation.baseline
    if report.contrasts:
        allowed = [list(p) for p in report.contrasts]
        where = "report.contrasts"
    else:
        allowed = [[n, baseline] for n in names if n != baseline] if baseline else []
        where = "the default contrasts (each arm against the baseline)"
    allowed += [list(p) for p in report.interactions or []]
    for i, pair in enumerate(list(p) for p in report.primary or []):
        if pair not in allowed:
            choices = ", ".join(repr(p) for p in allowed) or "none"
            yield ("report", "primary", i), f"{pair!r} is not among {where}: {choices}"
    repeated = sorted({k for k in report.primary_on if report.primary_on.count(k) > 1})
    if not report.primary_on or repeated:
        yield (
            ("report", "primary_on"),
            (
                f"name each aggregate once ({'repeated: ' + ', '.join(repeated) if repeated else 'empty list'}); "
                "choose from category, task, sts, out-of-domain, or leave primary_on unset (category)"
            ),
        )
    if not 0 < report.alpha < 1:
        alpha = int(report.alpha) if report.alpha.is_integer() else report.alpha
        yield ("report", "alpha"), f"alpha must lie strictly between 0 and 1, e.g. 0.05 (got {alpha})"


ENTRY_SIZES = {"contrasts": (2,), "interactions": (4, 8), "primary": (2, 4, 8)}


"""How many arms an entry of each ``[report]`` list names."""


THREE_WAY = "[a, b, c, d, e, f, g, h] = ((a − b) − (c − d)) − ((e − f) − (g − h))"


def _check_pairs(
    key: str, pairs: list[tuple[str, ...]] | None, names: list[str], valid: str, untrained: Sequence[str] = ()
) -> Iterator[Error]:
    """The arms of each pair or interaction of ``[report] key``: trained (an untrained arm only as a
    pair's reference), as many as the entry needs, and not compared with themselves."""
    if pairs == []:
        yield ("report", key), f"empty list: give pairs [ARM, REFERENCE] of {valid}, or leave {key} unset"
    for i, pair in enumerate(list(p) for p in pairs or []):
        loc = ("report", key, i)
        if len(pair) not in ENTRY_SIZES[key]:
            *most, last = map(str, ENTRY_SIZES[key])
            sizes = f"{', '.join(most)} or {last}" if most else last
            yield loc, f"{pair!r} names {len(pair)} arms; an entry of {key} names {sizes}"
            continue
        yield from _unknown_arms(loc, pair, names, valid, untrained)
        yield from _compared_with_itself(loc, pair, valid)


def _unknown_arms(
    loc: tuple, pair: list[str], names: list[str], valid: str, untrained: Sequence[str]
) -> Iterator[Error]:
    for position, name in enumerate(pair):
        if name in names:
            continue
        if name not in untrained:
            yield loc, f"unknown arm {name!r}; {valid}"
        elif len(pair) != 2 or position == 0:
            yield (
                loc,
                (
                    f"{name!r} is untrained: scored once, without seeds, it can only be a pair's reference "
                    f"(right-hand side), e.g. [{(names or ['ARM'])[0]!r}, {name!r}]"
                ),
            )


def _compared_with_itself(loc: tuple, pair: list[str], valid: str) -> Iterator[Error]:
    if len(pair) == 8 and len(set(pair)) < 8:
        twice = next(a for a in pair if pair.count(a) > 1)
        yield (
            loc,
            f"three-way interaction names {twice!r} more than once; name each of its 8 arms once: {THREE_WAY}",
        )
    if len(pair) == 4 and (pair[0] == pair[1] or pair[2] == pair[3] or pair[:2] == pair[2:]):
        yield (
            loc,
            f"interaction {pair!r} compares a gain with itself or an arm with itself; give [a, b, c, d] "
            "with a != b, c != d and (a, b) != (c, d)",
        )
    if len(pair) == 2 and pair[0] == pair[1]:
        yield loc, f"contrast of arm {pair[0]!r} with itself; pick two different {valid}"
