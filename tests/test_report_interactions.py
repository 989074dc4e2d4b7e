"""Interaction contrasts: Δ = (a − b) − (c − d), paired by seed, equals scipy on the per-seed values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from harness.report.build import with_gain_arms
from harness.report.contrasts import contrast_results
from harness.report.load import ScoreIndex
from harness.report.settings import ReportConfig, gain_arms, report_settings

SEEDS = (0, 1, 2)
# arm -> task -> seed -> score; task t2 is in another category, so category and task means differ.
SCORES = {
    "gist_ps": {"t1": {0: 0.80, 1: 0.82, 2: 0.81}, "t2": {0: 0.60, 1: 0.61, 2: 0.64}, "t3": {0: 0.5, 1: 0.5, 2: 0.52}},
    "infonce_ps": {"t1": {0: 0.78, 1: 0.79, 2: 0.80}, "t2": {0: 0.59, 1: 0.60, 2: 0.61}, "t3": {0: 0.5, 1: 0.49, 2: 0.5}},
    "gist_mx": {"t1": {0: 0.77, 1: 0.78, 2: 0.78}, "t2": {0: 0.58, 1: 0.58, 2: 0.60}, "t3": {0: 0.48, 1: 0.5, 2: 0.5}},
    "infonce_mx": {"t1": {0: 0.77, 1: 0.77, 2: 0.79}, "t2": {0: 0.58, 1: 0.59, 2: 0.59}, "t3": {0: 0.49, 1: 0.5, 2: 0.49}},
}  # fmt: skip
CATEGORIES = {"t1": "STS", "t3": "STS", "t2": "Clustering"}


def _index() -> ScoreIndex:
    return ScoreIndex(scores=SCORES, untrained={}, categories=CATEGORIES, arms=list(SCORES), in_domain={})


def test_an_interaction_is_a_paired_test_of_the_difference_of_gains():
    section = {"interactions": [["gist_ps", "infonce_ps", "gist_mx", "infonce_mx"]]}
    settings = report_settings(ReportConfig.model_validate(section), list(SCORES), "infonce_ps")
    assert settings.contrasts == [("(gist_ps − infonce_ps)", "(gist_mx − infonce_mx)")]
    results = contrast_results(with_gain_arms(_index(), gain_arms(settings.contrasts)), settings)
    row = next(r for r in results.rows if r.aggregate.key == "task")
    # By hand: per seed, the mean over tasks of (a − b) − (c − d).
    per_seed = [
        np.mean([SCORES["gist_ps"][t][s] - SCORES["infonce_ps"][t][s]
                 - SCORES["gist_mx"][t][s] + SCORES["infonce_mx"][t][s] for t in CATEGORIES])
        for s in SEEDS
    ]  # fmt: skip
    ref = stats.ttest_1samp(per_seed, 0.0)
    assert row.delta.n == 3
    assert row.delta.mean == pytest.approx(np.mean(per_seed), abs=1e-12)
    assert row.delta.p == pytest.approx(ref.pvalue, abs=1e-9)
    category = next(r for r in results.rows if r.aggregate.key == "category")
    by_category = [
        np.mean([
            np.mean([SCORES["gist_ps"][t][s] - SCORES["infonce_ps"][t][s]
                     - SCORES["gist_mx"][t][s] + SCORES["infonce_mx"][t][s] for t in ("t1", "t3")]),
            SCORES["gist_ps"]["t2"][s] - SCORES["infonce_ps"]["t2"][s]
            - SCORES["gist_mx"]["t2"][s] + SCORES["infonce_mx"]["t2"][s],
        ])
        for s in SEEDS
    ]  # fmt: skip
    assert category.delta.mean == pytest.approx(np.mean(by_category), abs=1e-12)


def test_interactions_can_be_primary_and_name_missing_arms():
    section = {
        "contrasts": [["gist_ps", "infonce_ps"]],
        "interactions": [
            ["gist_ps", "infonce_ps", "gist_mx", "infonce_mx"],
            ["gist_ps", "infonce_ps", "x", "y"],
        ],
        "primary": [["gist_ps", "infonce_ps", "gist_mx", "infonce_mx"]],
    }
    settings = report_settings(ReportConfig.model_validate(section), list(SCORES), "infonce_ps")
    assert settings.primary == [("(gist_ps − infonce_ps)", "(gist_mx − infonce_mx)")]
    assert settings.contrasts[1] == ("gist_ps", "infonce_ps")
    assert any("(x − y)" in p for p in settings.problems)
