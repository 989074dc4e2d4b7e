"""``[report] by_subset`` and ``guide_scores``: per-subset contrasts and the guide-quality link equal
pandas/scipy/statsmodels on the report's own ``results.csv``; a task without subsets is left out and
said; bad declarations are one-line errors naming the field."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from markupsafe import escape
from scipy import stats
from statsmodels.stats.multitest import multipletests

from harness.cli.report_cmd import write_files
from harness.config import ConfigError, load_experiment
from harness.errors import UserError
from harness.report import build_report, render_files
from harness.report.inputs import guide_score_files, load_report_dir
from harness.report.load import score_index
from harness.report.settings import ReportConfig, report_settings
from harness.report.subsets import guide_rows, spearman, subset_results
from harness.results import ScoreRow, ScoreTable, StudyManifest, StudyResults, TrialRecord, TrialResult

MULTI = "local:STSBenchmarkMultilingualSTS"
CROSS = "local:STSBenchmarkCrossLingual"
PLAIN = "local:STSBenchmark"
SUBSETS = {
    MULTI: ["de", "en", "es", "fr", "it", "zh"],
    CROSS: ["de-en", "es-en", "fr-en"],
    PLAIN: ["default"],
}
SPLITS = {MULTI: ["dev", "test"], CROSS: ["test"], PLAIN: ["test"]}
ARMS = ("infonce", "gist", "random")
SEEDS = (0, 1, 2)
GUIDE_FILE = "guide-e5.json"
EXPERIMENT = """\
[study]
name = "subsets"

[ablation]
seeds = [0, 1, 2]
baseline = "infonce"

[[ablation.arms]]
name = "untrained"
untrained = true

[[ablation.arms]]
name = "infonce"

[[ablation.arms]]
name = "gist"

[[ablation.arms]]
name = "random"

[report]
contrasts = [["gist", "infonce"], ["gist", "random"], ["gist", "untrained"]]
primary = [["gist", "infonce"]]
by_subset = [{tasks}]
guide_scores = {{ gist = {{ reference = "infonce", scores = "{guide}" }} }}
"""


def _rows(model: str, rng: np.random.Generator, shift: dict[str, float]) -> list[ScoreRow]:
    """One row per task × split × subset; ``shift`` moves a subset's scores (an arm's per-language gain)."""
    return [
        ScoreRow(model=model, task=task, category="STS", split=split, subset=subset, metric="cosine_spearman",
                 main_score=float(0.5 + shift.get(subset, 0.0) + rng.uniform(0, 0.05)))
        for task, subsets in SUBSETS.items()
        for split in SPLITS[task]
        for subset in subsets
    ]  # fmt: skip


def _gains(arm: str) -> dict[str, float]:
    """GIST gains more where the guide is better (the guide's score rises with the index below)."""
    subsets = SUBSETS[MULTI] + SUBSETS[CROSS]
    return {s: 0.01 * i for i, s in enumerate(subsets)} if arm == "gist" else {}


def study(tmp_path: Path, tasks=(MULTI, CROSS), guide: str | None = None) -> StudyResults:
    rng = np.random.default_rng(0)
    trials = []
    for number, (arm, seed) in enumerate((a, s) for a in ARMS for s in SEEDS):
        record = TrialRecord(study="subsets", number=number, state="COMPLETE", arm=arm, seed=seed)
        trials.append(TrialResult(record, ScoreTable(rows=_rows(f"{arm}-{seed}", rng, _gains(arm)))))
    toml = EXPERIMENT.format(tasks=", ".join(f'"{t}"' for t in tasks), guide=guide or tmp_path / GUIDE_FILE)
    manifest = StudyManifest(study="subsets", baseline_arm="infonce", final_suite="offline-multilingual",
                             experiment_toml=toml)  # fmt: skip
    return StudyResults(manifest, trials, ScoreTable(rows=_rows("untrained", rng, {})))


def guide_file(tmp_path: Path) -> Path:
    """The list ``gist-harness eval --json`` writes: the guide better on later subsets, plus noise."""
    rng = np.random.default_rng(1)
    subsets = SUBSETS[MULTI] + SUBSETS[CROSS]
    rows = [
        {
            **row.model_dump(),
            "main_score": 0.7 + 0.02 * subsets.index(row.subset) + float(rng.uniform(0, 0.03)),
        }
        for row in _rows("multilingual-e5-small-q4", rng, {})
        if row.task != PLAIN
    ]
    path = tmp_path / GUIDE_FILE
    path.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return path


def _subset_frame(frame: pd.DataFrame, task: str) -> pd.DataFrame:
    """arm × seed × subset scores of ``task`` (mean over splits), from the rows of ``results.csv``."""
    rows = frame[(frame.task == task) & (frame.arm != "untrained")]
    return rows.groupby(["arm", "seed", "subset"]).main_score.mean().unstack("subset")


def results_csv(results: StudyResults) -> pd.DataFrame:
    """The report's ``results.csv``, read back as a reader of the committed report would."""
    return pd.read_csv(io.StringIO(render_files(build_report(results))["results.csv"].decode()))


def test_per_subset_contrasts_equal_a_hand_computation_from_results_csv(tmp_path):
    results = study(tmp_path)
    frame = results_csv(results)
    section = ReportConfig.model_validate({"contrasts": [["gist", "infonce"]], "by_subset": [MULTI]})
    settings = report_settings(section, score_index(results).arms, "infonce")
    view = subset_results(results, section, settings, [], {}).tasks[0]
    by_subset = _subset_frame(frame, MULTI)
    diffs = by_subset.loc["gist"].to_numpy() - by_subset.loc["infonce"].to_numpy()  # (seeds, subsets)
    p_values = [
        stats.ttest_rel(by_subset.loc["gist"][s], by_subset.loc["infonce"][s]).pvalue for s in SUBSETS[MULTI]
    ]
    found = view.contrasts[("gist", "infonce")]
    assert [c.subset for c in found] == SUBSETS[MULTI] == list(by_subset.columns)
    for i, c in enumerate(found):
        low, high = stats.t.interval(0.95, 2, loc=diffs[:, i].mean(), scale=stats.sem(diffs[:, i]))
        assert c.delta.n == 3
        assert c.delta.mean == pytest.approx(diffs[:, i].mean(), abs=1e-12)
        assert (c.delta.low, c.delta.high) == (pytest.approx(low, abs=1e-9), pytest.approx(high, abs=1e-9))
        assert c.delta.p == pytest.approx(p_values[i], abs=1e-9)
    holm = multipletests(p_values, method="holm")[1]
    assert [c.p_holm for c in found] == pytest.approx(list(holm), abs=1e-9)


def test_against_the_untrained_student_each_seed_pairs_with_its_one_score(tmp_path):
    results = study(tmp_path)
    section = ReportConfig.model_validate({"contrasts": [["gist", "untrained"]], "by_subset": [CROSS]})
    settings = report_settings(section, score_index(results).arms, "infonce", untrained=["untrained"])
    view = subset_results(results, section, settings, ["untrained"], {}).tasks[0]
    frame = results_csv(results)
    rows = frame[(frame.task == CROSS) & (frame.arm == "untrained")]
    untrained = rows.groupby("subset").main_score.mean()
    gist = _subset_frame(frame, CROSS).loc["gist"]
    for c in view.contrasts[("gist", "untrained")]:
        expected = gist[c.subset] - untrained[c.subset]
        assert c.delta.mean == pytest.approx(expected.mean(), abs=1e-12)
        assert c.delta.p == pytest.approx(stats.ttest_1samp(expected, 0.0).pvalue, abs=1e-9)


def test_the_guide_link_is_scipys_spearman_on_the_same_vectors(tmp_path):
    path = guide_file(tmp_path)
    results = study(tmp_path)
    frame = results_csv(results)
    guide = pd.DataFrame(json.loads(path.read_text()))
    section = ReportConfig.model_validate(
        {"by_subset": [MULTI, CROSS], "guide_scores": {"gist": {"reference": "infonce", "scores": str(path)}}}
    )
    settings = report_settings(section, score_index(results).arms, "infonce")
    links = subset_results(results, section, settings, [], {"gist": path.read_bytes()}).links
    assert [k.task for k in links] == [MULTI, CROSS]
    for link in links:
        by_subset = _subset_frame(frame, link.task)
        gain = (by_subset.loc["gist"] - by_subset.loc["infonce"]).mean()  # mean over seeds, per subset
        own = guide[guide.task == link.task].groupby("subset").main_score.mean()
        subsets = SUBSETS[link.task]
        x, y = own[subsets].to_numpy(), gain[subsets].to_numpy()
        method = stats.PermutationMethod(n_resamples=9_999, random_state=0)
        assert link.subsets == subsets and link.guide_model == "multilingual-e5-small-q4"
        assert link.gain == pytest.approx(list(gain[subsets]), abs=1e-12)
        assert link.rho == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
        assert link.p == pytest.approx(
            stats.pearsonr(stats.rankdata(x), stats.rankdata(y), method=method).pvalue
        )


def test_the_permutation_p_is_exact_for_few_subsets():
    """n = 3, ρ = 1: of the 3! = 6 pairings of the ranks, 1 gives ρ = 1 and 1 gives ρ = −1, so the
    two-sided p is 2/6 (spearmanr's t approximation would say 0); n = 4, ranks 1 3 2 4: ρ = 1 − Σd²/10 =
    0.8; of the 24 pairings the identity and the 3 adjacent swaps reach ρ >= 0.8 and their 4 reversals
    ρ <= −0.8, so p = 8/24. A constant input has no ρ."""
    assert spearman([1.0, 2.0, 3.0], [0.1, 0.2, 0.3]) == (pytest.approx(1.0), pytest.approx(1 / 3))
    assert spearman([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0]) == (pytest.approx(0.8), pytest.approx(1 / 3))
    assert spearman([1.0, 1.0, 1.0], [0.1, 0.2, 0.3]) == (None, None)


def test_the_report_renders_both_views_and_rebuilds_from_its_own_inputs(tmp_path):
    guide_file(tmp_path)
    results = study(tmp_path, tasks=(MULTI, CROSS, PLAIN))
    files = render_files(build_report(results, guide_files=guide_score_files(results)))
    markdown, html = files["README.md"].decode(), files["index.html"].decode()
    assert "## Per subset (exploratory)" in markdown and 'id="subsets"' in html
    for title in (f"Per-subset contrasts: {MULTI} (exploratory)", f"Scores per subset: {CROSS}",
                  "Guide quality and GIST's gain per subset (descriptive)"):  # fmt: skip
        assert title in markdown and escape(title) in html
    assert "Descriptive, with small n" in markdown and "Holm over the 6 subsets of this task" in markdown
    assert (
        f"Left out: by_subset {PLAIN}: scored as one subset ('default'), so it has no per-subset view"
        in markdown
    )
    assert files["inputs/guide_scores/gist.json"] == (tmp_path / GUIDE_FILE).read_bytes()
    folder = tmp_path / "report"
    write_files(folder, files)
    (tmp_path / GUIDE_FILE).unlink()  # the committed report re-renders from its inputs/ alone
    again = load_report_dir(folder)
    rebuilt = build_report(again.results, guide_files=guide_score_files(again.results))
    assert render_files(rebuilt)["README.md"].decode() == markdown


def test_a_declared_guide_file_that_is_missing_or_not_scores_is_one_line_naming_the_field(tmp_path):
    results = study(tmp_path, guide="experiments/scores/nowhere.json")
    with pytest.raises(UserError) as info:
        guide_score_files(results)
    assert str(info.value) == (
        "[report] guide_scores.gist.scores: no such file 'experiments/scores/nowhere.json'; write it with "
        "gist-harness eval GUIDE --suite offline-multilingual --json experiments/scores/nowhere.json"
    )
    for data in (b"{not json", b'[{"task": "x"}]'):
        with pytest.raises(
            UserError, match=r"^\[report\] guide_scores.gist.scores: not a score file"
        ) as info:
            guide_rows(data, "gist")
        assert "\n" not in str(info.value)


def test_a_link_needs_three_subsets(tmp_path):
    path = guide_file(tmp_path)
    rows = [r for r in guide_rows(path.read_bytes(), "gist") if r.subset in ("de", "en")]
    data = ScoreTable(rows=rows).model_dump_json().encode()
    results = study(tmp_path, tasks=(MULTI,))
    report = build_report(results, guide_files={"gist": data})
    assert report.subsets_text[1] == (
        f"Left out: guide_scores gist on {MULTI}: 2 subset(s) with both the guide's score and a gain over "
        "infonce (a rank correlation needs 3)."
    )


BASE = """\
[study]
name = "tiny"

[model]
pair = "all-minilm-l6__all-mpnet-base"

[data]
mixture = "mini-medi"

[objective]
suite = "dev"

[final]
suite = "offline-multilingual"

[ablation]
seeds = [0, 1]
baseline = "infonce"

[[ablation.arms]]
name = "infonce"
strategy = "none"

[[ablation.arms]]
name = "gist"
strategy = "gist"

[[ablation.arms]]
name = "untrained"
untrained = true

[report]
"""


def errors_of(tmp_path: Path, report: str) -> list[str]:
    path = tmp_path / "experiment.toml"
    path.write_text(BASE + textwrap.dedent(report), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    assert all("\n" not in e for e in info.value.errors)
    return info.value.errors


def test_declarations_load(tmp_path):
    path = tmp_path / "experiment.toml"
    declared = f'by_subset = ["{MULTI}"]\nguide_scores = {{ gist = {{ reference = "untrained", scores = "l.json" }} }}'
    path.write_text(BASE + declared + "\n", encoding="utf-8")
    report = load_experiment(path).report
    assert report is not None and report.by_subset == [MULTI]
    assert report.guide_scores is not None and report.guide_scores["gist"].reference == "untrained"


@pytest.mark.parametrize(
    ("report", "expected"),
    [
        ('by_subset = ["local:STS17"]',
         "report.by_subset.0: not a task of the final suite: local:STSBenchmarkMultilingualSTS, "
         "local:STSBenchmarkCrossLingual, local:Tatoeba, local:AmazonCounterfactualClassification-de-ja "
         "(got 'local:STS17')"),
        ("by_subset = []", "report.by_subset: name each task once, or leave by_subset unset"),
        (f'by_subset = ["{MULTI}"]\nguide_scores = {{ gsit = {{ reference = "infonce", scores = "g.json" }} }}',
         "report.guide_scores.gsit: not a trained arm; trained arms: infonce, gist (got 'gsit')"),
        (f'by_subset = ["{MULTI}"]\nguide_scores = {{ gist = {{ reference = "infonc", scores = "g.json" }} }}',
         "report.guide_scores.gist.reference: name another arm: infonce, untrained (got 'infonc')"),
        (f'by_subset = ["{MULTI}"]\nguide_scores = {{ gist = {{ reference = "gist", scores = "g.json" }} }}',
         "report.guide_scores.gist.reference: name another arm"),
        (f'by_subset = ["{MULTI}"]\nguide_scores = {{ gist = {{ reference = "infonce", scores = "g.csv" }} }}',
         "report.guide_scores.gist.scores: a .json file written by gist-harness eval GUIDE --suite SUITE --json "
         "FILE (got 'g.csv')"),
        ('guide_scores = { gist = { reference = "infonce", scores = "g.json" } }',
         "report.guide_scores: needs by_subset"),
        (f'by_subset = ["{MULTI}"]\nguide_scores = {{ gist = {{ reference = "infonce" }} }}',
         "report.guide_scores.gist.scores: Field required"),
    ],
)  # fmt: skip
def test_bad_declarations_are_one_line_errors_naming_the_field(tmp_path, report, expected):
    errors = errors_of(tmp_path, report)
    assert any(expected in e for e in errors), errors
