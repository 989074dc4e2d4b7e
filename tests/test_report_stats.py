"""Report statistics against values worked by hand (3 seeds, t distribution with 2 degrees of freedom).

For 2 degrees of freedom the t distribution has closed forms: the two-sided p-value of t is
1 - |t| / sqrt(t² + 2), and t(0.975, 2) = 4.302653. For 1 degree of freedom, p = 1 - (2/π)·atan(|t|).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from harness.report.load import score_index
from harness.report.stats import mean_ci, paired_by_key, paired_t, variance_importance
from harness.report.tables import arm_table, category_table, task_table
from harness.results import load_study_dir

FIXTURE = Path(__file__).parent / "fixtures" / "report_study"


def test_mean_ci_of_three_values():
    """1, 2, 3: mean 2, sd 1, se 1/√3 = 0.577350; half-width 4.302653 · 0.577350 = 2.484138."""
    m = mean_ci([1.0, 2.0, 3.0])
    assert m.mean == pytest.approx(2.0)
    assert m.half_width == pytest.approx(2.484138, abs=1e-6)
    assert m.n == 3


def test_mean_ci_of_one_value_has_no_interval():
    assert mean_ci([0.5]).half_width is None


def test_paired_t_of_three_pairs():
    """Differences 1, 2, 3: mean 2, sd 1, t = 2/(1/√3) = 3.464102; p = 1 - 3.464102/√14 = 0.074180."""
    test = paired_t([2.0, 4.0, 6.0], [1.0, 2.0, 3.0])
    assert test.t == pytest.approx(3.464102, abs=1e-6)
    assert test.p == pytest.approx(1 - 3.464102 / math.sqrt(14), abs=1e-6)
    assert test.p == pytest.approx(0.074180, abs=1e-6)


def test_paired_t_undefined_cases():
    assert paired_t([1.0], [0.5]).p is None  # n < 2
    assert paired_t([2.0, 3.0], [1.0, 2.0]).p is None  # all differences equal: sd 0
    assert paired_by_key({0: 1.0, 1: 2.0}, {1: 1.5, 2: 0.0}).n == 1  # only seed 1 is in both


def test_variance_importance():
    """Values 1, 1, 3, 3 split a, a, b, b by ``x``: η²(x) = 1; ``y`` = u, v, u, v explains nothing."""
    params = [{"x": "a", "y": "u"}, {"x": "a", "y": "v"}, {"x": "b", "y": "u"}, {"x": "b", "y": "v"}]
    assert variance_importance(params, [1.0, 1.0, 3.0, 3.0]) == {
        "x": pytest.approx(1.0),
        "y": pytest.approx(0.0),
    }


@pytest.fixture(scope="module")
def study():
    results = load_study_dir(FIXTURE)
    return results, score_index(results)


def _cells(table, label):
    """Texts of the first row whose label starts with ``label``."""
    return [cell.text for cell in next(r for r in table.rows if r[0].text.startswith(label))]


def _row(table, label):
    """The row as {column: text}; repeated column names (Δ, p) keep their last value, so index those."""
    return dict(zip(table.columns, _cells(table, label), strict=True))


def test_task_row_of_the_fixture(study):
    """STSBenchmark, gist vs infonce over seeds 0, 1, 2.

    infonce 0.8412, 0.8390, 0.8431 → mean 0.841100; gist 0.8475, 0.8461, 0.8502 → mean 0.847933.
    Differences 0.0063, 0.0071, 0.0071: mean 0.0068333, sd 0.00046188, se 0.00026667, t = 25.625;
    p = 1 - 25.625/√(25.625² + 2) = 0.00152. infonce CI: sd 0.0020518, half-width
    4.302653 · 0.0020518/√3 = 0.005097 → "84.11 ± 0.51".
    """
    results, index = study
    row = _row(task_table(results, index), "local:STSBenchmark")
    assert row["Task"] == "local:STSBenchmark †"  # in-domain flag
    assert row["infonce (baseline)"] == "84.11 ± 0.51"
    assert row["gist"] == "84.79 ± 0.52"
    cells = _cells(task_table(results, index), "local:STSBenchmark")
    gist = task_table(results, index).columns.index("gist")
    assert cells[gist + 1 : gist + 3] == ["+0.68", "0.002"]  # Δ and p follow the arm's column
    assert row["untrained (ref)"] == "82.03"


def test_category_row_p_across_tasks(study):
    """STS = STSBenchmark + SICK-R. Per-task seed-mean differences gist - infonce:
    0.847933 - 0.841100 = 0.006833 and 0.790900 - 0.779633 = 0.011267; n = 2, mean 0.00905,
    sd 0.0031349, t = 0.00905/(0.0031349/√2) = 4.0827 with 1 degree of freedom:
    p = 1 - (2/π)·atan(4.0827) = 0.1527.
    infonce per-seed STS means: 0.81065, 0.80775, 0.81270 → mean 0.810367 → "81.04".
    """
    results, index = study
    table = category_table(results, index)
    row = table.rows[[r[0].text for r in table.rows].index("STS (2 tasks)")]
    cells = [c.text for c in row]
    gist = table.columns.index("gist")
    assert cells[gist + 3] == "0.153"  # p (tasks)
    assert cells[table.columns.index("infonce (baseline)")].startswith("81.04 ± ")
    assert row[gist].best


def test_untrained_reference_row(study):
    """Untrained mean over tasks (0.8203 + 0.7758 + 0.8012)/3 = 0.799100; infonce per-seed means
    0.804467, 0.803500, 0.805067 → 0.804344; Δ = -0.005244 → "-0.52" (fine-tuning helps here overall,
    but infonce is below the untrained student on Banking77: 79.23 vs 80.12)."""
    results, index = study
    table = arm_table(results, index)
    assert table.rows[0][0].text == "untrained (reference)"
    row = _row(table, "untrained")
    assert row["All tasks"] == "79.91"
    assert row["Δ all vs baseline"] == "-0.52"
    assert _row(table, "infonce")["Classification"].startswith("79.23")
    best = [r[0].text for r in table.rows if r[table.columns.index("All tasks")].best]
    assert best == ["gist"]
