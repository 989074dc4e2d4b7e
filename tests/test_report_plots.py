"""Figures: a single logged point is a marker with a caption saying so; deltas keep the untrained off scale."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from harness.report.load import score_index
from harness.report.plots import category_deltas, loss_curves
from harness.results import RunRecord, StudyManifest, StudyResults, TrialRecord, TrialResult, load_study_dir

FIXTURE = Path(__file__).parent / "fixtures" / "report_study"


def test_one_logged_point_is_drawn_and_named():
    run = RunRecord(loss_curve=[(9, 2.31)])
    trial = TrialRecord(study="s", number=0, state="COMPLETE", arm="gist", seed=0)
    results = StudyResults(manifest=StudyManifest(study="s"), trials=[TrialResult(trial=trial, run=run)])
    figure = loss_curves(results, score_index(results))
    assert figure is not None and "one logged point" in figure.caption
    with Image.open(io.BytesIO(figure.png)) as image:
        grey = image.convert("L")
        assert grey.getextrema()[0] < 100  # something dark (the marker, axes) is drawn


def test_category_deltas_are_1400_px_wide_without_the_untrained_series():
    results = load_study_dir(FIXTURE)
    figure = category_deltas(results, score_index(results))
    assert figure is not None and "untrained student is left off this scale" in figure.caption
    with Image.open(io.BytesIO(figure.png)) as image:
        assert image.size[0] == 1400
