"""The report's "Guide quality by source and block" table, from the run records' ``by_source``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from harness.report import build_report, load_study_dir, render_markdown
from harness.report.by_source import source_table

FIXTURE = Path(__file__).parent / "fixtures" / "report_study"


def _with_sources(results):
    by_source = {
        "snli-triplets": {"rows": 256.0, "negatives_kept_mean": 380.5, "drop_rate": 0.02, "drop_rate_ap": 0.01,
                          "drop_rate_an1": 0.05, "candidates_an1": 32768.0},
        "msrp-train": {"rows": 128.0, "negatives_kept_mean": 250.0, "drop_rate": 0.001, "drop_rate_ap": 0.001},
    }  # fmt: skip
    trials = [
        replace(t, run=t.run.model_copy(update={"by_source": by_source})) if t.run else t
        for t in results.trials
    ]
    return replace(results, trials=trials)


def test_no_by_source_no_table():
    results = load_study_dir(FIXTURE)
    assert source_table(results) is None
    assert "Guide quality by source" not in render_markdown(build_report(results))


def test_by_source_rows_show_block_drop_rates_in_the_codes_names():
    results = _with_sources(load_study_dir(FIXTURE))
    table = source_table(results)
    assert table is not None
    assert table.columns[:8] == [
        "Arm",
        "Source",
        "Rows",
        "Drop rate",
        "Drop ap",
        "Drop aa",
        "Drop pp",
        "Drop an",
    ]
    snli = next(row for row in table.rows if row[1].text == "snli-triplets")
    assert [c.text for c in snli[2:8]] == ["256", "2.00%", "1.00%", "—", "—", "5.00%"]
    msrp = next(row for row in table.rows if row[1].text == "msrp-train")
    assert msrp[7].text == "—"  # no hard-negative block for a pair source
    # sources in name order, whatever order the record holds them in (a run folder keeps the training
    # order, a report's inputs/trials.jsonl its own): the report renders the same from either
    first_arm = [row[1].text for row in table.rows if row[0].text == table.rows[0][0].text]
    assert first_arm == ["msrp-train", "snli-triplets"]
    markdown = render_markdown(build_report(results))
    assert "## Guide quality by source and block" in markdown


# A guide and random drops at the same rate on one labelled source, 1,000 eligible candidates:
# 20% share the anchor's label (200). The guide drops 100 of which 50 same-class: precision 0.5,
# recall 50/200 = 0.25, lift 0.5 / 0.2 = 2.5. Random drops 100 of which 20: precision 0.2, recall 0.1,
# lift 1. Their recall differs only through the drop rate; neither record stores the 0.2 share.
GUIDED = {"rows": 32.0, "negatives_kept_mean": 27.0, "drop_rate": 0.1, "candidates_ap": 1000.0,
          "fn_precision": 0.5, "fn_recall": 0.25}  # fmt: skip
RANDOM = {**GUIDED, "fn_precision": 0.2, "fn_recall": 0.1}


def test_fn_lift_is_precision_over_the_same_class_share_worked_example():
    from harness.report.by_source import fn_lift, label_counts, same_class_share

    assert same_class_share(GUIDED) == pytest.approx(0.2) and same_class_share(RANDOM) == pytest.approx(0.2)
    assert fn_lift([label_counts(GUIDED)]) == pytest.approx(2.5)
    assert fn_lift([label_counts(RANDOM)]) == pytest.approx(1.0)
    # pooled: hits 50 + 20 over the 20 + 20 random drops at each source's rate would expect
    assert fn_lift([label_counts(GUIDED), label_counts(RANDOM)]) == pytest.approx(70 / 40)
    assert label_counts({"rows": 1.0, "drop_rate": 0.0, "candidates_ap": 10.0}) is None  # no labels
    assert fn_lift([label_counts({**GUIDED, "fn_recall": 0.0})]) is None  # share not recoverable


def _labelled(results, by_arm):
    trials = [
        replace(t, run=t.run.model_copy(update={"by_source": {"banking77-pairs": by_arm(t.trial.arm, t.trial.seed)}}))
        if t.run else t
        for t in results.trials
    ]  # fmt: skip
    return replace(results, trials=trials)


def test_tables_show_fn_lift_with_seed_intervals_not_fn_recall():
    """FN recall cannot tell a good guide from random drops; FN lift can, with an interval over seeds."""
    from harness.report.quality import guide_table

    def by_arm(arm, seed):
        return (
            GUIDED
            if arm == "gist"
            else {**RANDOM, "fn_precision": 0.2 + 0.01 * seed, "fn_recall": 0.1 + 0.005 * seed}
        )

    results = _labelled(load_study_dir(FIXTURE), by_arm)
    table = source_table(results)
    assert "FN recall" not in table.columns and table.columns[-3:] == [
        "FN precision",
        "Same-class share",
        "FN lift",
    ]
    gist = next(row for row in table.rows if row[0].text == "gist")
    assert [c.text for c in gist[-3:]] == ["0.500 ± 0.000", "0.200", "2.50 ± 0.00"]
    random = next(row for row in table.rows if row[0].text == "random_drop")
    # seeds 0-2: recall / drop rate = 1.00, 1.05, 1.10 (share 0.2 each): 1.05 ± 4.303 · 0.05 / √3
    assert random[-1].text == "1.05 ± 0.12"
    assert "FN recall is no longer shown" in table.notes[-1]
    guide = guide_table(results)
    assert "FN recall" not in guide.columns
    column = guide.columns.index("FN lift")
    assert {row[0].text: row[column].text for row in guide.rows}["gist"] == "2.50 ± 0.00"
