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


# --- Contrasts: paired differences, multiplicity, sign test, power, bootstrap -------------------------


@dataclass(frozen=True)
class PairedDelta:
    """Paired difference ``arm - baseline`` over the keys (seeds) both completed.

    Attributes:
        n: number of pairs.
        mean: mean difference.
        low, high: two-sided t interval of the mean difference (None when n < 2).
        sd: sample sd of the differences (ddof=1; None when n < 2).
        d_z: standardised effect, mean / sd of the differences (Cohen's d_z; None when sd is 0 or n < 2).
        t, p: paired t statistic and two-sided p-value (None when n < 2 or sd is 0).
    """

    n: int
    mean: float
    low: float | None
    high: float | None
    sd: float | None
    d_z: float | None
    t: float | None
    p: float | None


def paired_delta(arm: Mapping[Any, float], baseline: Mapping[Any, float], level: float = 0.95) -> PairedDelta:
    """Mean paired difference with its t interval, d_z and the paired t-test (as ``scipy.stats.ttest_rel``).

    Worked example: arm {0: 2, 1: 4, 2: 6}, baseline {0: 1, 1: 2, 2: 3} → differences 1, 2, 3: mean 2,
    sd 1, d_z 2, t 3.46410, p 0.07418 (see :func:`paired_t`), interval 2 ± 4.30265/√3 = [-0.48414, 4.48414].
    """
    keys = sorted(set(arm) & set(baseline), key=str)
    diffs = [arm[k] - baseline[k] for k in keys]
    n = len(diffs)
    if n == 0:
        return PairedDelta(0, float("nan"), None, None, None, None, None, None)
    mean = sum(diffs) / n
    if n < 2:
        return PairedDelta(n, mean, None, None, None, None, None, None)
    sd = _sd(diffs)
    half = float(_scipy_stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    test = paired_t([arm[k] for k in keys], [baseline[k] for k in keys])
    return PairedDelta(n, mean, mean - half, mean + half, sd, mean / sd if sd > 0 else None, test.t, test.p)


def _adjust(p_values: Sequence[float | None], method: str) -> list[float | None]:
    from statsmodels.stats.multitest import multipletests

    present = [i for i, p in enumerate(p_values) if p is not None]
    out: list[float | None] = [None] * len(p_values)
    if present:
        adjusted = multipletests([p_values[i] for i in present], method=method)[1]
        for i, q in zip(present, adjusted, strict=True):
            out[i] = float(q)
    return out


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment (``statsmodels multipletests(method="holm")``); None stays None.

    The family is the p-values that exist. Worked example: 0.015, 0.048, 0.033 → sorted
    0.015·3 = 0.045, 0.033·2 = 0.066, 0.048·1 = 0.048 raised to the running maximum 0.066:
    adjusted 0.045, 0.066, 0.066.
    """
    return _adjust(p_values, "holm")


def benjamini_hochberg(p_values: Sequence[float | None]) -> list[float | None]:
    """Benjamini–Hochberg q-values (``multipletests(method="fdr_bh")``); None stays None.

    Worked example: 0.01, 0.04, 0.03 → sorted 0.01·3/1 = 0.03, 0.03·3/2 = 0.045, 0.04·3/3 = 0.04, then the
    running minimum from the top: q = 0.03, 0.04, 0.04 (in input order).
    """
    return _adjust(p_values, "fdr_bh")


@dataclass(frozen=True)
class SignTest:
    """Wins, ties and losses of an arm over tasks, and the two-sided exact binomial (sign) test p."""

    wins: int
    ties: int
    losses: int
    p: float | None


def sign_test(diffs: Sequence[float], tie: float = 0.0) -> SignTest:
    """Sign test on per-task differences: ``|d| <= tie`` is a tie and is dropped (``scipy binomtest``).

    Worked example: 7 wins, 1 tie, 1 loss → binomtest(7, 8, 0.5): p = 2 · (1 + 8) / 2⁸ = 0.0703125.
    """
    wins = sum(d > tie for d in diffs)
    losses = sum(d < -tie for d in diffs)
    ties = len(diffs) - wins - losses
    p = float(_scipy_stats.binomtest(wins, wins + losses, 0.5).pvalue) if wins + losses else None
    return SignTest(wins, ties, losses, p)


def min_detectable_effect(n: int, sd: float | None, alpha: float = 0.05, power: float = 0.8) -> float | None:
    """Smallest true mean difference a two-sided paired t-test over ``n`` pairs detects with ``power``.

    ``statsmodels`` ``TTestPower.solve_power`` gives the standardised effect d for ``n`` pairs; times the
    observed sd of the differences it is in score units. None when n < 2 or the sd is unknown or 0.
    """
    if n < 2 or not sd:
        return None
    from statsmodels.stats.power import TTestPower

    d = TTestPower().solve_power(effect_size=None, nobs=n, alpha=alpha, power=power, alternative="two-sided")
    return float(d) * sd


@dataclass(frozen=True)
class Bootstrap:
    """A bootstrap interval of an aggregate difference over tasks and seeds.

    Attributes:
        estimate: the aggregate of the observed differences.
        low, high: percentile interval (2.5% and 97.5% for level 0.95).
        share_positive: share of resamples whose aggregate is above 0.
        resamples, seed: the number of resamples and the generator seed (the result depends only on them).
    """

    estimate: float
    low: float
    high: float
    share_positive: float
    resamples: int
    seed: int


def _weights(strata: Sequence[str], by_stratum: bool) -> dict[str, float]:
    """Weight of each stratum in the aggregate: equal (mean of stratum means) or by its size (task mean)."""
    sizes: dict[str, int] = {}
    for s in strata:
        sizes[s] = sizes.get(s, 0) + 1
    total = len(strata)
    return {s: (1 / len(sizes) if by_stratum else k / total) for s, k in sizes.items()}


def aggregate(values: Sequence[float], strata: Sequence[str], by_stratum: bool) -> float:
    """Mean of ``values`` (one per task), or the mean of the per-stratum (category) means."""
    weights = _weights(strata, by_stratum)
    groups: dict[str, list[float]] = {}
    for v, s in zip(values, strata, strict=True):
        groups.setdefault(s, []).append(v)
    return sum(weights[s] * sum(g) / len(g) for s, g in groups.items())


def bootstrap_aggregate(
    diffs: Sequence[Sequence[float]],
    strata: Sequence[str],
    *,
    by_stratum: bool,
    resamples: int = 10_000,
    seed: int = 0,
    level: float = 0.95,
) -> Bootstrap:
    """Two-level bootstrap of an aggregate of paired differences ``diffs[task][seed]``.

    Each resample draws tasks with replacement within their stratum (MTEB category), so every category
    keeps its number of tasks, and seeds with replacement (one draw per resample, shared by all tasks:
    a seed is one training run scored on every task). The aggregate is the mean over the drawn tasks
    (``by_stratum=False``) or the mean of the category means (``by_stratum=True``) of each drawn task's
    mean over the drawn seeds. With one seed only tasks vary; a one-task category never varies.
    Deterministic: numpy's ``default_rng(seed)``.
    """
    import numpy as np

    matrix = np.asarray(diffs, dtype=float)  # (T, S)
    n_tasks, n_seeds = matrix.shape
    rng = np.random.default_rng(seed)
    seed_draw = rng.integers(0, n_seeds, size=(resamples, n_seeds))  # (B, S)
    per_task = matrix[:, seed_draw].mean(axis=2)  # (T, B)
    weights = _weights(strata, by_stratum)
    total = np.zeros(resamples)
    for stratum, weight in weights.items():
        members = np.array([i for i, s in enumerate(strata) if s == stratum])
        draw = members[rng.integers(0, len(members), size=(resamples, len(members)))]  # (B, k)
        total += weight * per_task[draw, np.arange(resamples)[:, None]].mean(axis=1)
    lo, hi = np.quantile(total, [(1 - level) / 2, (1 + level) / 2])
    estimate = aggregate(matrix.mean(axis=1).tolist(), strata, by_stratum)
    return Bootstrap(estimate, float(lo), float(hi), float((total > 0).mean()), resamples, seed)


def probability_of_improvement(arm: Sequence[Sequence[float]], baseline: Sequence[Sequence[float]]) -> float:
    """P(X > Y) of Agarwal et al. 2021 (rliable): per task, the share of (arm run, baseline run) pairs the
    arm wins (ties count one half), averaged over tasks. Needs no normality and ignores the pairing.

    Worked example: one task, arm runs 2, 3 and baseline runs 1, 3 → pairs (2>1), (2<3), (3>1), (3=3):
    (1 + 0 + 1 + 0.5) / 4 = 0.625.
    """
    shares = []
    for xs, ys in zip(arm, baseline, strict=True):
        wins = sum(1.0 if x > y else 0.5 if x == y else 0.0 for x in xs for y in ys)
        shares.append(wins / (len(xs) * len(ys)))
    return sum(shares) / len(shares)


def omega_squared(params: Sequence[Mapping[str, object]], values: Sequence[float]) -> dict[str, float]:
    """Chance-corrected share of the objective's variance each parameter explains alone (ω², one-way).

    Trials are grouped as in :func:`variance_importance` (numeric parameters with more than 5 distinct
    values cut into 5 equal-count bins). With k groups and N trials,
    ω² = (SS_between - (k-1)·MS_within) / (SS_total + MS_within), MS_within = SS_within / (N-k); unlike η²
    it is about 0 for a parameter unrelated to the objective, whatever k and N. Negative values are
    reported as 0; parameters with fewer than 2 groups, or N <= k, are left out.
    Worked example: values 1, 2, 3, 4 grouped a, a, b, b → SS_total 5, SS_between 4, SS_within 1,
    MS_within 0.5: ω² = (4 - 0.5) / 5.5 = 0.63636.
    """
    n = len(values)
    if n < 3:
        return {}
    mean = sum(values) / n
    total = sum((v - mean) ** 2 for v in values)
    result: dict[str, float] = {}
    for name in sorted({k for p in params for k in p}):
        keys: list[object] = [_group_key(p.get(name)) for p in params]
        distinct = set(keys)
        if len(distinct) > 5 and all(isinstance(k, int | float) for k in keys):
            keys = list(_bins(keys, 5))
        groups: dict[object, list[float]] = {}
        for key, value in zip(keys, values, strict=True):
            groups.setdefault(key, []).append(value)
        k = len(groups)
        if k < 2 or n <= k or total <= 0:
            continue
        between = sum(len(g) * (sum(g) / len(g) - mean) ** 2 for g in groups.values())
        ms_within = (total - between) / (n - k)
        result[name] = max(0.0, (between - (k - 1) * ms_within) / (total + ms_within))
    return dict(sorted(result.items(), key=lambda kv: (-kv[1], kv[0])))


@dataclass(frozen=True)
class ExpectedMax:
    """Expected best of ``n`` tuning trials and its standard deviation (Dodge et al. 2019)."""

    n: int
    mean: float
    sd: float


def expected_max(values: Sequence[float], *, maximize: bool = True) -> list[ExpectedMax]:
    """The expected best score of ``n`` trials drawn with replacement from ``values``, ``n = 1..len``.

    Dodge et al. 2019 ("Show your work", EMNLP), Eq. 1: with the N scores sorted so that the best is
    last, ``P(best of n = v_(i)) = (i/N)^n - ((i-1)/N)^n``; the mean and variance follow from it. It
    assumes independent draws (a random sampler). Worked example: scores 1, 2, 3, n = 2: the
    probabilities are 1/9, 3/9, 5/9, so E = (1 + 6 + 15)/9 = 2.444 and sd = sqrt(58/9 - 2.444²) = 0.685.
    """
    ordered = sorted(values, reverse=not maximize)
    total = len(ordered)
    out = []
    for n in range(1, total + 1):
        probs = [(i / total) ** n - ((i - 1) / total) ** n for i in range(1, total + 1)]
        mean = sum(p * v for p, v in zip(probs, ordered, strict=True))
        second = sum(p * v * v for p, v in zip(probs, ordered, strict=True))
        out.append(ExpectedMax(n, mean, math.sqrt(max(second - mean * mean, 0.0))))
    return out
