"""Interaction contrasts (Δ = (a − b) − (c − d), and three-way ones), the STS aggregate, arm − untrained and
the Holm family over (primary contrast, aggregate) pairs: each equals scipy/statsmodels on values worked here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from harness.report.contrast_tables import contrast_label, contrast_table, headline_sentences
from harness.report.contrasts import contrast_results, with_gain_arms
from harness.report.load import ScoreIndex
from harness.report.settings import (
    ReportConfig,
    arms_of,
    contrast_of,
    gain_arms,
    report_settings,
    untrained_arm_names,
)

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


# --- three-way interactions, the STS aggregate, arm − untrained, Holm over (contrast, aggregate) -----

CELLS = ("g_t1_neg", "i_t1_neg", "g_t1_pos", "i_t1_pos", "g_t5_neg", "i_t5_neg", "g_t5_pos", "i_t5_pos")
SEEDS5 = (0, 1, 2, 3, 4)
TASKS = {"s1": "STS", "s2": "STS", "s3": "STS", "c1": "Clustering", "p1": "PairClassification"}
UNTRAINED = {"s1": 0.70, "s2": 0.66, "s3": 0.72, "c1": 0.40, "p1": 0.75}


def _factorial() -> ScoreIndex:
    """A 2×2×2 factorial (loss × temperature × negatives), 5 seeds, 5 tasks in 3 categories."""
    rng = np.random.default_rng(30)
    scores = {arm: {t: {s: float(0.6 + 0.05 * i / 8 + rng.normal(0, 0.01)) for s in SEEDS5} for t in TASKS}
              for i, arm in enumerate(CELLS)}  # fmt: skip
    return ScoreIndex(scores=scores, untrained=UNTRAINED, categories=TASKS, arms=list(CELLS), in_domain={})


def _by_seed(index: ScoreIndex, value, tasks) -> list[float]:
    """Per seed: the mean over categories of ``value(arm scores at task t, seed s)`` over ``tasks``."""
    out = []
    for s in SEEDS5:
        by_category: dict[str, list[float]] = {}
        for t in tasks:
            by_category.setdefault(TASKS[t], []).append(value({a: index.scores[a][t][s] for a in CELLS}, t))
        out.append(float(np.mean([np.mean(v) for v in by_category.values()])))
    return out


def _three_way(x: dict[str, float], _task: str) -> float:
    a, b, c, d, e, f, g, h = (x[arm] for arm in CELLS)
    return ((a - b) - (c - d)) - ((e - f) - (g - h))


def test_a_three_way_interaction_is_the_paired_difference_of_two_interactions():
    section = ReportConfig.model_validate({"interactions": [list(CELLS)], "primary_on": ["category", "sts"]})
    settings = report_settings(section, list(CELLS), "i_t1_neg")
    (contrast,) = settings.contrasts
    assert contrast_label(contrast) == (
        "((g_t1_neg − i_t1_neg) − (g_t1_pos − i_t1_pos)) − ((g_t5_neg − i_t5_neg) − (g_t5_pos − i_t5_pos))"
    )
    assert arms_of(contrast) == list(CELLS) and contrast_of(tuple(CELLS)) == contrast
    index = _factorial()
    results = contrast_results(index, settings)
    for key, tasks in (("category", list(TASKS)), ("sts", ["s1", "s2", "s3"])):
        row = next(r for r in results.rows if r.aggregate.key == key)
        per_seed = _by_seed(index, _three_way, tasks)
        ref = stats.ttest_1samp(per_seed, 0.0)
        low, high = stats.t.interval(0.95, 4, loc=np.mean(per_seed), scale=stats.sem(per_seed))
        assert row.delta.n == 5
        assert row.delta.mean == pytest.approx(np.mean(per_seed), abs=1e-12)
        assert row.delta.p == pytest.approx(ref.pvalue, abs=1e-9)
        assert (row.delta.low, row.delta.high) == (
            pytest.approx(low, abs=1e-9),
            pytest.approx(high, abs=1e-9),
        )
    assert "((g_t1_neg − i_t1_neg) − (g_t1_pos − i_t1_pos)) − " in contrast_table(results).rows[0][0].text


def test_the_sts_aggregate_is_the_mean_over_the_sts_tasks_with_the_same_tests():
    settings = report_settings(
        ReportConfig.model_validate({"contrasts": [["g_t1_neg", "i_t1_neg"]]}), list(CELLS), ""
    )
    index = _factorial()
    results = contrast_results(index, settings)
    assert [a.key for a in results.aggregates] == ["category", "task", "sts"]
    row = next(r for r in results.rows if r.aggregate.key == "sts")
    arm = [np.mean([index.scores["g_t1_neg"][t][s] for t in ("s1", "s2", "s3")]) for s in SEEDS5]
    ref = [np.mean([index.scores["i_t1_neg"][t][s] for t in ("s1", "s2", "s3")]) for s in SEEDS5]
    assert row.aggregate.label == "mean over the STS tasks"
    assert row.delta.p == pytest.approx(stats.ttest_rel(arm, ref).pvalue, abs=1e-9)
    assert row.p_holm == row.delta.p  # a family of one on this aggregate
    assert row.bootstrap is not None and row.signs.wins + row.signs.ties + row.signs.losses == 3
    only_sts = ScoreIndex(index.scores, {}, {t: c for t, c in TASKS.items() if c == "STS"}, list(CELLS), {})
    assert [a.key for a in contrast_results(only_sts, settings).aggregates] == ["category", "task"]
    declared = report_settings(
        ReportConfig.model_validate(
            {"contrasts": [["g_t1_neg", "i_t1_neg"]], "primary_on": ["category", "sts"]}
        ),
        list(CELLS),
        "",
    )
    assert [a.key for a in contrast_results(only_sts, declared).aggregates] == ["category", "task", "sts"]
    no_sts = ScoreIndex(index.scores, {}, {"c1": "Clustering", "p1": "PairClassification"}, list(CELLS), {})
    notes = contrast_table(contrast_results(no_sts, declared)).notes
    assert "Left out: the primary contrasts on the mean over the STS tasks: no such task was scored." in notes


def test_holm_counts_every_declared_primary_contrast_and_aggregate():
    """Two primary contrasts on the category and STS means: one Holm family of 4 tests; on the task mean
    (not declared) the two are adjusted among themselves; the secondary contrast is a family of one."""
    section = ReportConfig.model_validate({
        "contrasts": [["g_t1_neg", "i_t1_neg"], ["g_t5_neg", "i_t5_neg"], ["g_t1_pos", "i_t1_pos"]],
        "primary": [["g_t1_neg", "i_t1_neg"], ["g_t5_neg", "i_t5_neg"]],
        "primary_on": ["category", "sts"],
    })  # fmt: skip
    settings = report_settings(section, list(CELLS), "")
    results = contrast_results(_factorial(), settings)
    family = [r for r in results.rows if r.primary and r.aggregate.key in ("category", "sts")]
    assert len(family) == 4
    expected = multipletests([r.delta.p for r in family], method="holm")[1]
    assert [r.p_holm for r in family] == pytest.approx(list(expected), abs=1e-12)
    task = [r for r in results.rows if r.primary and r.aggregate.key == "task"]
    assert [r.p_holm for r in task] == pytest.approx(
        list(multipletests([r.delta.p for r in task], method="holm")[1])
    )
    assert all(r.p_holm == r.delta.p for r in results.rows if not r.primary)
    note = contrast_table(results).notes[0]
    assert "on the mean over categories and the mean over the STS tasks, 4 tests adjusted together" in note
    sentences = headline_sentences(results)
    assert len(sentences) == 4 and sum("on the mean over the STS tasks" in s for s in sentences) == 2


def test_an_arm_against_the_untrained_student_pairs_each_seed_with_its_one_score():
    section = ReportConfig.model_validate({"contrasts": [["g_t1_neg", "untrained"]]})
    settings = report_settings(section, list(CELLS), "", untrained=["untrained"])
    assert settings.contrasts == [("g_t1_neg", "untrained")] and settings.untrained == {"untrained"}
    index = _factorial()
    results = contrast_results(index, settings)
    row = next(r for r in results.rows if r.aggregate.key == "category")
    arm = _by_seed(index, lambda x, t: x["g_t1_neg"], list(TASKS))
    constant = _by_seed(index, lambda x, t: UNTRAINED[t], list(TASKS))[0]
    ref = stats.ttest_1samp(np.subtract(arm, constant), 0.0)
    assert row.delta.n == 5 and row.reference_mean == pytest.approx(constant, abs=1e-12)
    assert row.delta.mean == pytest.approx(np.mean(arm) - constant, abs=1e-12)
    assert row.delta.sd == pytest.approx(np.std(arm, ddof=1), abs=1e-12)  # the arm's seed variance alone
    assert row.delta.p == pytest.approx(ref.pvalue, abs=1e-9)
    assert any("scored once (no seeds)" in n and "only the trained arm's seed variance" in n
               for n in contrast_table(results).notes)  # fmt: skip
    without = report_settings(section, list(CELLS), "")  # no untrained scores: left out and said
    assert without.contrasts == [] and "no COMPLETE trial of untrained" in without.problems[0]


def test_the_untrained_arms_are_read_from_the_experiment_text():
    text = (Path(__file__).parents[1] / "experiments" / "tuned_gist_vs_infonce.toml").read_text(
        encoding="utf-8"
    )
    assert untrained_arm_names(text) == ["untrained"]
    assert untrained_arm_names("[ablation\n") == [] and untrained_arm_names("") == []


def test_a_malformed_entry_beside_a_report_is_left_out_and_said():
    section = ReportConfig.model_validate({"interactions": [list(CELLS[:3]), list(CELLS[:4])]})
    settings = report_settings(section, list(CELLS), "")
    assert len(settings.contrasts) == 1 and "a contrast names 2, 4 or 8 arms" in settings.problems[0]
