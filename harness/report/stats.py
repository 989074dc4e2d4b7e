"""The statistics of the report: means with t confidence intervals, paired t-tests, parameter importance.

All functions are pure (lists of floats in, floats out) and use scipy only for the t distribution.
Conventions, stated once in the report too:

* CI: two-sided 95% interval of the mean over seeds from Student's t with n-1 degrees of freedom,
  ``mean ± t(0.975, n-1) · sd / sqrt(n)`` with the sample sd (ddof=1). n < 2 gives no interval.
* Paired test across seeds: paired two-sided t-test on the per-seed differences arm - baseline, over
  the seeds both arms completed. n < 2, or differences that are all equal (sd 0), give no p-value.
* Across tasks (category rows): the same paired t-test, on the per-task seed means (n = tasks in the
  category). Wilcoxon's signed-rank test was considered and not used: with the 2–6 tasks of a category
  its smallest possible two-sided p-value is 0.5–0.03, so it could never say anything at this size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scipy import stats as _scipy_stats


@dataclass(frozen=True)
class MeanCI:
    """A mean over ``n`` values and the half-width of its 95% t interval (None when n < 2)."""

    mean: float
    half_width: float | None
    n: int


@dataclass(frozen=True)
class PairedTest:
    """A paired t-test: mean difference, t statistic, two-sided p-value (None when undefined), n pairs."""

    mean_diff: float
    t: float | None
    p: float | None
    n: int


def _sd(values: Sequence[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def mean_ci(values: Sequence[float], level: float = 0.95) -> MeanCI:
    """Mean and t-interval half-width.

    Worked example: values 1, 2, 3 → mean 2, sd 1, standard error 1/√3 = 0.57735;
    t(0.975, 2) = 4.30265, so the half-width is 4.30265 · 0.57735 = 2.48414.
    """
    if not values:
        raise ValueError("mean_ci needs at least one value")
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return MeanCI(mean, None, n)
    t_crit = float(_scipy_stats.t.ppf(0.5 + level / 2, n - 1))
    return MeanCI(mean, t_crit * _sd(values) / math.sqrt(n), n)


def paired_t(arm: Sequence[float], baseline: Sequence[float]) -> PairedTest:
    """Paired two-sided t-test of ``arm`` against ``baseline`` (same order: seed i with seed i).

    Worked example: arm 2, 4, 6 and baseline 1, 2, 3 → differences 1, 2, 3, mean 2, sd 1,
    t = 2 / (1/√3) = 3.46410 with 2 degrees of freedom. For 2 degrees of freedom the two-sided
    p-value has the closed form 1 - |t| / √(t² + 2) = 1 - 3.46410 / 3.74166 = 0.07418.
    """
    if len(arm) != len(baseline):
        raise ValueError(f"paired_t needs equal lengths, got {len(arm)} and {len(baseline)}")
    diffs = [a - b for a, b in zip(arm, baseline, strict=True)]
    n = len(diffs)
    if n == 0:
        return PairedTest(float("nan"), None, None, 0)
    mean_diff = sum(diffs) / n
    if n < 2:
        return PairedTest(mean_diff, None, None, n)
    sd = _sd(diffs)
    if sd == 0.0:
        return PairedTest(mean_diff, None, None, n)
    t = mean_diff / (sd / math.sqrt(n))
    p = float(2 * _scipy_stats.t.sf(abs(t), n - 1))
    return PairedTest(mean_diff, t, p, n)


def paired_by_key(arm: Mapping[Any, float], baseline: Mapping[Any, float]) -> PairedTest:
    """:func:`paired_t` over the keys (seeds or tasks) present in both mappings, in sorted key order."""
    keys = sorted(set(arm) & set(baseline), key=str)
    return paired_t([arm[k] for k in keys], [baseline[k] for k in keys])


def variance_importance(params: Sequence[Mapping[str, object]], values: Sequence[float]) -> dict[str, float]:
    """Share of the objective's variance each parameter explains on its own (correlation ratio η²).

    For each parameter the trials are grouped by its value (numeric parameters with more than 5
    distinct values are cut into 5 equal-count bins), and η² = between-group sum of squares / total
    sum of squares. It is deterministic and needs no model, unlike Optuna's fANOVA default; it ignores
    interactions. Parameters with one distinct value are left out. Worked example: values 1, 1, 3, 3
    grouped by a parameter a, a, b, b → group means 1 and 3, between-SS = 4 · 1 = 4 = total SS, η² = 1.
    """
    if len(values) < 2:
        return {}
    mean = sum(values) / len(values)
    total = sum((v - mean) ** 2 for v in values)
    names = sorted({k for p in params for k in p})
    result: dict[str, float] = {}
    for name in names:
        keys: list[object] = [_group_key(p.get(name)) for p in params]
        distinct = sorted(set(keys), key=str)
        if len(distinct) < 2:
            continue
        if len(distinct) > 5 and all(isinstance(k, int | float) for k in keys):
            keys = list(_bins(keys, 5))
        groups: dict[object, list[float]] = {}
        for key, value in zip(keys, values, strict=True):
            groups.setdefault(key, []).append(value)
        between = sum(len(g) * (sum(g) / len(g) - mean) ** 2 for g in groups.values())
        result[name] = between / total if total > 0 else 0.0
    return dict(sorted(result.items(), key=lambda kv: (-kv[1], kv[0])))


def _group_key(value: object) -> object:
    return value if isinstance(value, int | float | str | bool) or value is None else str(value)


def _bins(keys: list, n_bins: int) -> list[int]:
    order = sorted(range(len(keys)), key=lambda i: keys[i])
    out = [0] * len(keys)
    for rank, i in enumerate(order):
        out[i] = rank * n_bins // len(keys)
    return out
