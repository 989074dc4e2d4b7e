"""The report's "Mined negatives by source" table, from the run records' ``mining``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from harness.report import build_report, load_study_dir, render_html, render_markdown
from harness.report.mined_table import mined_table
from harness.results import MinedSource

FIXTURE = Path(__file__).parent / "fixtures" / "report_study"


def _record(seconds: float) -> MinedSource:
    # 100 rows over 80 anchors; 150 negatives mined (2 asked per anchor, 10 anchors left short);
    # 12 rows hold no mined text; the filters removed 40 of 400 candidates
    return MinedSource(
        rows=100, anchors=80, corpus=90, negatives=150, short_anchors=10, short_rows=12, candidates=400,
        removed={"absolute_margin": 40}, removed_share=0.1, resolved_margin=0.0123,
        same_label_rate=0.05, same_label_rate_unfiltered=0.25, same_label_rate_random=0.1, seconds=seconds,
    )  # fmt: skip


def _with_mining(results):
    trials = []
    for t in results.trials:
        if t.run is not None:
            mining = {"msrp-train": _record(1.0).model_copy(
                update={"same_label_rate": None, "same_label_rate_unfiltered": None,
                        "same_label_rate_random": None, "resolved_margin": None}),
                      "banking77-pairs": _record(2.0 + t.trial.seed)}  # fmt: skip
            t = replace(t, run=t.run.model_copy(update={"mining": mining}))
        trials.append(t)
    return replace(results, trials=trials)


def test_no_mining_no_table():
    results = load_study_dir(FIXTURE)
    assert mined_table(results) is None
    assert "Mined negatives" not in render_markdown(build_report(results))


def test_mined_rows_show_rates_per_arm_and_source():
    results = _with_mining(load_study_dir(FIXTURE))
    table = mined_table(results)
    assert table is not None
    banking = next(row for row in table.rows if row[1].text == "banking77-pairs")
    assert [c.text for c in banking[2:10]] == [
        "100",
        "1.88",
        "12.00%",
        "10.00%",
        "0.0123",
        "5.00%",
        "25.00%",
        "10.00%",
    ]
    msrp = next(row for row in table.rows if row[1].text == "msrp-train")
    assert [c.text for c in msrp[6:10]] == ["—", "—", "—", "—"]  # no labels, no quantile margin
    assert [row[1].text for row in table.rows[:2]] == ["banking77-pairs", "msrp-train"]  # name order
    arms = {row[0].text for row in table.rows}
    assert arms == {t.trial.arm for t in results.trials if t.trial.state == "COMPLETE" and t.run is not None}
    report = build_report(results)
    assert "## Mined negatives by source" in render_markdown(report)
    assert 'id="mined"' in render_html(report)
