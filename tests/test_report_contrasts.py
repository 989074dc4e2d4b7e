"""Contrast statistics agree with scipy/statsmodels to 1e-9 and with hand-worked examples."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower

from harness.report.contrasts import contrast_results, per_seed
from harness.report.load import score_index
from harness.report.settings import ReportConfig, report_settings
from harness.report.stats import (
    aggregate,
    benjamini_hochberg,
    bootstrap_aggregate,
    holm,
    min_detectable_effect,
    omega_squared,
    paired_delta,
    probability_of_improvement,
    sign_test,
)
from harness.results import load_study_dir

FIXTURE = Path(__file__).parent / "fixtures" / "report_study"
ARM = {0: 0.8475, 1: 0.8461, 2: 0.8502, 3: 0.8444}
BASE = {0: 0.8412, 1: 0.8390, 2: 0.8431, 4: 0.8000}  # seed 3 / 4 unpaired: left out


def test_paired_delta_matches_scipy_over_shared_seeds():
    d = paired_delta(ARM, BASE)
    a, b = [ARM[s] for s in (0, 1, 2)], [BASE[s] for s in (0, 1, 2)]
    ref = stats.ttest_rel(a, b)
    diffs = np.subtract(a, b)
    low, high = stats.t.interval(0.95, 2, loc=diffs.mean(), scale=stats.sem(diffs))
    assert d.n == 3
    assert d.mean == pytest.approx(diffs.mean(), abs=1e-12)
    assert d.t == pytest.approx(ref.statistic, abs=1e-9)
    assert d.p == pytest.approx(ref.pvalue, abs=1e-9)
    assert (d.low, d.high) == (pytest.approx(low, abs=1e-9), pytest.approx(high, abs=1e-9))
    assert d.d_z == pytest.approx(diffs.mean() / diffs.std(ddof=1), abs=1e-9)


def test_paired_delta_hand_worked():
    """Differences 1, 2, 3: mean 2, sd 1, t = 2/(1/√3) = 3.46410, p = 1 - t/√(t²+2) = 0.07418 (2 df),
    interval 2 ± 4.302653/√3 = 2 ± 2.484138."""
    d = paired_delta({0: 2, 1: 4, 2: 6}, {0: 1, 1: 2, 2: 3})
    t = 2 / (1 / math.sqrt(3))
    assert d.p == pytest.approx(1 - t / math.sqrt(t * t + 2), abs=1e-12)
    assert d.low == pytest.approx(2 - 2.484138, abs=1e-6) and d.d_z == 2


def test_one_seed_has_no_test():
    d = paired_delta({0: 0.5}, {0: 0.4})
    assert d.n == 1 and d.p is None and d.low is None and d.mean == pytest.approx(0.1)


def test_holm_and_bh_match_statsmodels_and_the_worked_examples():
    ps = [0.015, 0.048, 0.033, None, 0.2]
    present = [p for p in ps if p is not None]
    for ours, method in ((holm(ps), "holm"), (benjamini_hochberg(ps), "fdr_bh")):
        ref = multipletests(present, method=method)[1]
        assert ours[3] is None
        assert [ours[i] for i in (0, 1, 2, 4)] == pytest.approx(list(ref), abs=1e-9)
    # issue 14: the three task-mean p-values of gist-vs-infonce-static-cls after Holm
    assert holm([0.015, 0.048, 0.033]) == pytest.approx([0.045, 0.066, 0.066], abs=1e-12)
    assert benjamini_hochberg([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.04, 0.04], abs=1e-12)


def test_sign_test_matches_binomtest():
    result = sign_test([0.1] * 7 + [0.0] + [-0.2])
    assert (result.wins, result.ties, result.losses) == (7, 1, 1)
    assert result.p == pytest.approx(stats.binomtest(7, 8).pvalue, abs=1e-12)
    assert result.p == pytest.approx(2 * 9 / 2**8, abs=1e-12)
    assert sign_test([0.0, 0.0]).p is None


def test_minimum_detectable_effect_has_80_percent_power():
    mde = min_detectable_effect(3, 0.004, alpha=0.05)
    power = TTestPower().power(effect_size=mde / 0.004, nobs=3, alpha=0.05, alternative="two-sided")
    assert power == pytest.approx(0.8, abs=1e-9)
    assert min_detectable_effect(1, 0.004) is None and min_detectable_effect(3, 0.0) is None


def test_aggregate_mean_over_categories_and_tasks():
    """STS tasks 0.6, 0.8 and one classification task 0.2: task mean 0.5333, category mean (0.7 + 0.2)/2."""
    values, strata = [0.6, 0.8, 0.2], ["STS", "STS", "Classification"]
    assert aggregate(values, strata, by_stratum=False) == pytest.approx(1.6 / 3, abs=1e-12)
    assert aggregate(values, strata, by_stratum=True) == pytest.approx(0.45, abs=1e-12)


def test_bootstrap_is_deterministic_for_a_seed_and_covers_the_estimate():
    rng = np.random.default_rng(5)
    diffs = rng.normal(0.01, 0.02, size=(6, 3)).tolist()
    strata = ["a", "a", "a", "b", "b", "c"]
    one = bootstrap_aggregate(diffs, strata, by_stratum=True, resamples=2000, seed=7)
    two = bootstrap_aggregate(diffs, strata, by_stratum=True, resamples=2000, seed=7)
    other = bootstrap_aggregate(diffs, strata, by_stratum=True, resamples=2000, seed=8)
    assert one == two and one != other
    assert one.low <= one.estimate <= one.high
    assert one.estimate == pytest.approx(aggregate(np.mean(diffs, axis=1).tolist(), strata, True), abs=1e-12)


def test_bootstrap_of_constant_differences_has_no_width():
    boot = bootstrap_aggregate([[0.5, 0.5], [0.5, 0.5]], ["a", "b"], by_stratum=True, resamples=100, seed=0)
    assert boot.low == boot.high == boot.estimate == pytest.approx(0.5)
    assert boot.share_positive == 1.0


def test_probability_of_improvement_worked_example():
    """Arm 2, 3 against 1, 3: (1 + 0 + 1 + 0.5) / 4 = 0.625; a second task all won: mean 0.8125."""
    assert probability_of_improvement([[2, 3]], [[1, 3]]) == 0.625
    assert probability_of_improvement([[2, 3], [5]], [[1, 3], [4]]) == pytest.approx(0.8125)


def test_omega_squared_matches_statsmodels_anova():
    import pandas as pd
    from statsmodels.formula.api import ols
    from statsmodels.stats.anova import anova_lm

    values = [0.61, 0.62, 0.60, 0.65, 0.66, 0.64, 0.62, 0.63]
    groups = ["a", "a", "a", "b", "b", "b", "c", "c"]
    table = anova_lm(ols("y ~ C(g)", data=pd.DataFrame({"y": values, "g": groups})).fit())
    ss_b, ss_w = table["sum_sq"].iloc[0], table["sum_sq"].iloc[1]
    ms_w = table["mean_sq"].iloc[1]
    expected = (ss_b - 2 * ms_w) / (ss_b + ss_w + ms_w)
    assert omega_squared([{"m": g} for g in groups], values)["m"] == pytest.approx(expected, abs=1e-9)
    # hand-worked: 1, 2, 3, 4 in groups a, a, b, b → (4 - 0.5) / 5.5
    assert omega_squared([{"x": g} for g in "aabb"], [1, 2, 3, 4])["x"] == pytest.approx(3.5 / 5.5)


def test_unrelated_parameter_gets_about_zero():
    rng = np.random.default_rng(0)
    values = rng.normal(size=7).tolist()
    params = [{"margin": float(m)} for m in rng.uniform(size=7)]
    assert omega_squared(params, values).get("margin", 0.0) < 0.3


@pytest.fixture(scope="module")
def index():
    return score_index(load_study_dir(FIXTURE))


def test_contrasts_of_the_fixture(index):
    """Default contrasts: each arm against infonce; Holm over the two primary contrasts per aggregate."""
    settings = report_settings(None, index.arms, "infonce")
    assert settings.contrasts == [("gist", "infonce"), ("random_drop", "infonce")]
    results = contrast_results(index, settings)
    assert [a.key for a in results.aggregates] == ["category", "task", "sts", "out-of-domain"]
    for agg in results.aggregates:
        rows = [r for r in results.rows if r.aggregate.key == agg.key]
        ref = multipletests([r.delta.p for r in rows], method="holm")[1]
        assert [r.p_holm for r in rows] == pytest.approx(list(ref), abs=1e-12)
        for r in rows:
            a, b = per_seed(index, r.contrast[0], agg), per_seed(index, r.contrast[1], agg)
            shared = sorted(set(a) & set(b))
            assert r.delta.p == pytest.approx(stats.ttest_rel([a[s] for s in shared], [b[s] for s in shared]).pvalue,
                                              abs=1e-9)  # fmt: skip
    outside = next(a for a in results.aggregates if a.key == "out-of-domain")
    assert "local:STSBenchmark" not in outside.tasks  # the † task


def test_declared_contrasts_and_bh_per_task(index):
    section = {"contrasts": [["gist", "random_drop"], ["gist", "infonce"]], "primary": [["gist", "infonce"]]}
    settings = report_settings(ReportConfig.model_validate(section), index.arms, "infonce")
    assert settings.primary == [("gist", "infonce")]
    assert settings.contrasts == [("gist", "infonce"), ("gist", "random_drop")]
    results = contrast_results(index, settings)
    secondary = [r for r in results.rows if r.contrast == ("gist", "random_drop")]
    assert all(r.p_holm == r.delta.p for r in secondary)  # a family of one
    tasks = results.tasks[("gist", "infonce")]
    ref = multipletests([t.delta.p for t in tasks], method="fdr_bh")[1]
    assert [t.q for t in tasks] == pytest.approx(list(ref), abs=1e-12)


def test_unknown_arms_are_left_out_and_said(index):
    section = ReportConfig.model_validate({"contrasts": [["gist", "nope"]]})
    settings = report_settings(section, index.arms, "infonce")
    assert settings.contrasts == [] and "no COMPLETE trial of nope" in settings.problems[0]


def test_importances_only_for_searched_parameters():
    from harness.report.plots import param_importances, searched_parameters
    from harness.results import HistoryTrial, StudyManifest, StudyResults

    history = [
        HistoryTrial(
            number=i, state="COMPLETE", value=0.6 + 0.01 * (i % 2), params={"margin": 0.01 * i, "seed": i}
        )
        for i in range(8)
    ]
    search = StudyResults(
        manifest=StudyManifest(
            study="s", experiment_toml='[search_space.margin]\ntype = "float"\n', history=history
        )
    )
    assert searched_parameters(search) == ["margin"]
    figure = param_importances(search)
    assert figure is not None and "ω²" in figure.caption
    ablation = StudyResults(
        manifest=StudyManifest(study="a", experiment_toml="[ablation]\nseeds = [0]\n", history=history)
    )
    assert param_importances(ablation) is None  # arm × seed is fixed, not searched


def _seeds_kept(index, seeds: set[int]):
    """The index with only ``seeds`` of every arm."""
    from dataclasses import replace

    scores = {a: {t: {s: v for s, v in by_seed.items() if s in seeds} for t, by_seed in tasks.items()}
              for a, tasks in index.scores.items()}  # fmt: skip
    return replace(index, scores=scores)


def test_the_bootstrap_note_says_what_few_seeds_cannot_cover(index):
    """A percentile bootstrap over 2 seeds has 3 distinct seed draws (over 3: 10): the note must not claim
    that it covers training variance, and says the seed count where it is below 5."""
    from harness.report.contrast_tables import task_level_table

    settings = report_settings(None, index.arms, "infonce")
    two = task_level_table(contrast_results(_seeds_kept(index, {0, 1}), settings)).notes[0]
    assert "covers both the choice of tasks and training variance" not in two
    assert "With 2 seeds a seed draw takes one of only 3 distinct compositions" in two
    assert "understates the seed variance" in two
    three = task_level_table(contrast_results(index, settings)).notes[0]
    assert "With 3 seeds a seed draw takes one of only 10 distinct compositions" in three
    one = task_level_table(contrast_results(_seeds_kept(index, {0}), settings)).notes[0]
    assert "With 1 seed only tasks vary" in one
