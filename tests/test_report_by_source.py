"""The report's "Guide quality by source and block" table, from the run records' ``by_source``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

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
    markdown = render_markdown(build_report(results))
    assert "## Guide quality by source and block" in markdown
