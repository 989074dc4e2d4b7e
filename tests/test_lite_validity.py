"""The lite suite's validity check: rank agreement, contrast agreement, and ``gist-harness bench lite``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from harness.bench.lite_validity import (
    _same_conclusion,
    contrast_agreement,
    pair_agreement,
    table_of,
    validity,
    with_scores,
)
from harness.cli import main
from harness.results import load_study_dir

FIXTURE = Path(__file__).parent / "fixtures" / "report_study"
B77, B77_LITE = "local:Banking77Classification", "local:Banking77Classification-lite"


def _rows(model: str, suite: str, scores: dict[str, float]) -> list[dict]:
    return [
        {
            "model": model,
            "suite": suite,
            "task": task,
            "stands_for": task.removesuffix("-lite"),
            "category": "Classification" if "Classification" in task else "STS",
            "split": "test",
            "subset": "default",
            "main_score": value,
            "seconds": 1.0,
        }
        for task, value in scores.items()
    ]


def _frame(full: dict[str, list[float]], lite: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for i in range(len(next(iter(full.values())))):
        rows += _rows(f"m{i}", "full", {t: v[i] for t, v in full.items()})
        rows += _rows(f"m{i}", "lite", {t: v[i] for t, v in lite.items()})
    return pd.DataFrame(rows)


def test_whole_tasks_agree_and_a_reversed_lite_task_disagrees():
    sts = [0.5, 0.625, 0.75, 0.875]  # exact in binary, so the lite category means tie exactly
    frame = _frame(
        {"local:STS12": sts, B77: [0.125, 0.25, 0.375, 0.5]},
        {"local:STS12": sts, B77_LITE: [0.5, 0.375, 0.25, 0.125]},
    )
    result = validity(frame, "full", "lite")
    per_task = result.per_task.set_index("task")
    assert result.models == ["m0", "m1", "m2", "m3"]
    assert per_task.loc["local:STS12", "rho"] == pytest.approx(1.0)
    assert per_task.loc["local:STS12", "max_abs_diff"] == 0
    assert per_task.loc[B77, "rho"] == pytest.approx(-1.0)
    assert per_task.loc[B77, "lite_task"] == B77_LITE
    assert per_task.loc[B77, "pair_agreement"] == 0
    # category mean: STS rises by 1/8 a model, the classification stand-in falls by 1/8: all tied on lite
    aggregates = result.aggregates.set_index("aggregate")
    assert aggregates.loc["mean over categories", "rho"] is None
    assert aggregates.loc["mean over categories", "pair_agreement"] is None


def test_the_category_mean_weighs_categories_equally():
    frame = _frame(
        {"local:STS12": [0.5, 0.6, 0.7], "local:STS13": [0.5, 0.6, 0.7], B77: [0.9, 0.5, 0.1]},
        {"local:STS12": [0.5, 0.6, 0.7], "local:STS13": [0.5, 0.6, 0.7], B77_LITE: [0.8, 0.5, 0.2]},
    )
    scores = validity(frame, "full", "lite").scores.set_index("model")
    # (mean STS + classification) / 2, not the mean of three tasks
    assert scores.loc["m0", "category_mean (full)"] == pytest.approx((0.5 + 0.9) / 2)
    assert scores.loc["m0", "task_mean (full)"] == pytest.approx((0.5 + 0.5 + 0.9) / 3)
    assert scores.loc["m2", "category_mean (lite)"] == pytest.approx((0.7 + 0.2) / 2)


def test_a_model_missing_a_task_on_either_suite_is_left_out():
    frame = _frame({"local:STS12": [0.5, 0.6, 0.7, 0.8]}, {"local:STS12": [0.5, 0.6, 0.7, 0.8]})
    extra = pd.DataFrame(_rows("m4", "full", {"local:STS12": 0.9}))  # never scored on lite
    assert validity(pd.concat([frame, extra]), "full", "lite").models == ["m0", "m1", "m2", "m3"]


def test_pair_agreement_leaves_ties_out():
    full = pd.Series([1.0, 2.0, 3.0, 3.0])
    lite = pd.Series([1.0, 3.0, 2.0, 5.0])
    # pairs: (0,1)+ (0,2)+ (0,3)+ (1,2)- (1,3)+ ; (2,3) tied on full: left out
    assert pair_agreement(full, lite) == pytest.approx(4 / 5)


def _lite_twin(study, shift: dict[str, float]):
    """Each trial's scores with Banking77 replaced by a lite stand-in shifted per arm."""
    tables = {}
    for t in study.trials:
        if t.trial.state != "COMPLETE" or not t.scores:
            continue
        rows = [{**r.model_dump(), "task": B77_LITE if r.task == B77 else r.task} for r in t.scores.rows]
        for r in rows:
            if r["task"] == B77_LITE:
                r["main_score"] += shift.get(t.trial.arm, 0.0)
        tables[t.trial.number] = table_of(pd.DataFrame(rows))
    return with_scores(study, tables, None, {B77: B77_LITE})


def _full(study):
    tables = {t.trial.number: t.scores for t in study.trials if t.trial.state == "COMPLETE" and t.scores}
    return with_scores(study, tables, None)


def test_contrast_agreement_uses_the_studys_own_contrasts():
    study = load_study_dir(FIXTURE)
    same = contrast_agreement(_full(study), _lite_twin(study, {}))
    assert set(same.contrast) == {"gist − infonce", "random_drop − infonce"}
    assert set(same.summary) >= {"mean over categories", "mean over tasks"}
    assert same.same_winner.all()
    assert (same.delta_full - same.delta_lite).abs().max() < 1e-12
    assert (same.seeds == 3).all()


def test_contrast_agreement_flags_a_reversed_winner():
    study = load_study_dir(FIXTURE)
    full = contrast_agreement(_full(study), _lite_twin(study, {}))
    gist = full[(full.contrast == "gist − infonce") & (full.summary == "mean over categories")].iloc[0]
    # lower gist's lite classification score by 4× its category-mean lead (categories weigh 1/2 each)
    flipped = contrast_agreement(_full(study), _lite_twin(study, {"gist": -4 * abs(gist.delta_full) - 0.01}))
    row = flipped[(flipped.contrast == "gist − infonce") & (flipped.summary == "mean over categories")].iloc[
        0
    ]
    assert not row.same_winner
    assert row.delta_lite * row.delta_full < 0


def test_same_conclusion_asks_whether_both_suites_find_the_same_winner_or_neither_finds_one():
    study = load_study_dir(FIXTURE)
    same = contrast_agreement(_full(study), _lite_twin(study, {}))
    assert same.same_conclusion.eq(True).all()  # identical scores: identical tests

    def row(delta: float, p_holm: float | None, n: int = 3) -> SimpleNamespace:
        return SimpleNamespace(delta=SimpleNamespace(mean=delta, n=n), p_holm=p_holm)

    assert _same_conclusion(row(-0.0001, 1.0), row(0.0004, 1.0), 0.05)  # a tie both ways: no winner
    assert not _same_conclusion(row(0.002, 0.139), row(0.002, 0.045), 0.05)  # significant on one only
    assert not _same_conclusion(row(0.02, 0.01), row(-0.02, 0.01), 0.05)  # opposite winners
    assert _same_conclusion(row(0.02, 0.01), row(0.01, 0.04), 0.05)
    assert _same_conclusion(row(0.02, None, n=1), row(0.02, None, n=1), 0.05) is None  # no test


def test_a_declared_primary_that_cannot_be_computed_is_counted_and_named():
    """Only gist and infonce were scored on both suites: the declared primary random_drop − infonce
    cannot be computed, and the verdict counts it (1 of 2) and says why instead of reporting 1 of 1."""
    from dataclasses import replace

    from harness.bench.lite_validity import markdown

    study = load_study_dir(FIXTURE)
    toml = study.manifest.experiment_toml + (
        '\n[report]\ncontrasts = [["gist", "infonce"], ["random_drop", "infonce"]]\n'
        'primary = [["gist", "infonce"], ["random_drop", "infonce"]]\n'
    )
    study = replace(
        study,
        manifest=study.manifest.model_copy(update={"experiment_toml": toml}),
        trials=[t for t in study.trials if t.trial.arm != "random_drop"],
    )
    agreement = contrast_agreement(_full(study), _lite_twin(study, {}))
    missing = agreement[agreement.not_computed.notna()]
    assert list(missing.contrast) == ["random_drop − infonce"] and missing.primary.all()
    assert "no COMPLETE trial of random_drop" in missing.not_computed.iloc[0]
    scores = _frame({B77: [0.1, 0.2, 0.3]}, {B77_LITE: [0.1, 0.2, 0.3]})
    meta = {"full": "full", "lite": "lite", "target_rho": 0.9, "command": "c", "written": "w"}
    timings = pd.DataFrame(columns=["model", "kind", "suite", "wall_seconds", "task_seconds", "source"])
    text = markdown(validity(scores, "full", "lite"), {"fixture-ablation": agreement}, timings, meta)
    assert "(mean over categories): **1 of 2** (target: all); 1 could not be computed" in text
    assert "`fixture-ablation` random_drop − infonce (no COMPLETE trial of random_drop" in text
    assert "| random_drop − infonce (primary) | — | 0 |" in text


# --- gist-harness bench lite, with the scorer replaced by the fixture's scores ------------------------


def _study_with_models(tmp_path: Path) -> Path:
    runs = tmp_path / "runs" / "fixture-ablation"
    shutil.copytree(FIXTURE, runs)
    for trial in runs.glob("trial-*"):
        if json.loads((trial / "trial.json").read_text())["state"] == "COMPLETE":
            (trial / "model").mkdir()
    return runs


@pytest.fixture
def fake_scorer(monkeypatch):
    """``evaluate`` returns the fixture's full scores with Banking77 as its lite stand-in (+0.01)."""
    import harness.evaluate as evaluate_module
    import harness.models as models_module

    calls: list[tuple[str, str]] = []
    study = load_study_dir(FIXTURE)
    by_key = {f"fixture-ablation/{t.folder.name}": t.scores for t in study.trials if t.scores}
    by_key["untrained:all-minilm-l6"] = study.untrained

    def evaluate(model, suite, *, model_name, **_):
        rows = [r.model_dump() for r in by_key[model_name].rows]
        if not isinstance(suite, str):  # a Suite: the full suite's cut tasks only (--whole-from-lite)
            calls.append((model_name, "cut:" + suite.name))
            return pd.DataFrame([r for r in rows if r["task"] in {t.name for t in suite.tasks}])
        calls.append((model_name, suite))
        for r in rows:
            if r["task"] == B77:
                r["task"], r["main_score"] = B77_LITE, r["main_score"] + 0.01
        return pd.DataFrame(rows)

    monkeypatch.setattr(evaluate_module, "evaluate", evaluate)
    monkeypatch.setattr(evaluate_module, "suite_tasks", lambda *a, **k: [])
    monkeypatch.setattr(models_module, "load_model", lambda name, device=None: object())
    return calls


def test_bench_lite_reads_full_scores_from_the_study_scores_lite_and_resumes(tmp_path, fake_scorer, capsys):
    runs = _study_with_models(tmp_path)
    out = tmp_path / "lite-validity"
    args = ["bench", "lite", str(runs), "--out", str(out), "--full", "offline-mteb", "--no-progress"]
    assert main(args) == 0
    # 9 COMPLETE trials + the untrained student; only the lite suite was scored
    assert len(fake_scorer) == 10 and {s for _, s in fake_scorer} == {"offline-lite"}
    scores = pd.read_csv(out / "scores.csv")
    assert set(scores.suite) == {"offline-mteb", "offline-lite"}
    assert scores.model.nunique() == 10
    assert set(scores.loc[scores.task == B77_LITE, "stands_for"]) == {B77}
    timings = pd.read_csv(out / "timings.csv")
    assert set(timings.loc[timings.suite == "offline-mteb", "source"]) == {"study"}
    assert timings.loc[timings.suite == "offline-mteb", "wall_seconds"].isna().all()
    assert set(timings.loc[timings.suite == "offline-lite", "source"]) == {"measured"}
    readme = (out / "README.md").read_text()
    assert "10 models scored on both suites" in readme
    assert "(target ≥ 0.9: met)" in readme  # a constant shift keeps every rank
    assert "**2 of 2** (target: all)" in readme
    payload = json.loads((out / "validity.json").read_text())
    assert payload["command"].startswith("gist-harness bench lite ")
    assert "1 model" not in capsys.readouterr().out

    fake_scorer.clear()
    assert main(args) == 0
    assert fake_scorer == []  # everything was in scores.csv
    assert len(pd.read_csv(out / "scores.csv")) == len(scores)


def test_bench_lite_whole_from_lite_scores_only_the_cut_tasks_on_the_full_suite(tmp_path, fake_scorer):
    runs = _study_with_models(tmp_path)
    out = tmp_path / "lite-validity"
    args = ["bench", "lite", str(runs), "--out", str(out), "--whole-from-lite", "--no-progress"]
    assert main(args) == 0
    # the study scored offline-mteb: both suites are scored here, lite first, then offline-all's cut tasks
    assert len(fake_scorer) == 20
    assert {s for _, s in fake_scorer[::2]} == {"offline-lite"}
    assert {s for _, s in fake_scorer[1::2]} == {"cut:offline-all"}
    scores = pd.read_csv(out / "scores.csv").set_index(["model", "suite", "task"]).main_score
    untrained = "untrained:all-minilm-l6"
    for task in ("local:STSBenchmark", "local:SICK-R"):  # whole tasks: copied from the lite scores
        assert scores[untrained, "offline-all", task] == scores[untrained, "offline-lite", task]
    b77_full, b77_lite = scores[untrained, "offline-all", B77], scores[untrained, "offline-lite", B77_LITE]
    assert b77_lite == pytest.approx(b77_full + 0.01)  # the cut task: scored on its own
    timings = pd.read_csv(out / "timings.csv")
    full = timings[timings.suite == "offline-all"]
    assert set(full.source) == {"cut tasks measured"}
    assert full.wall_seconds.isna().all() and full.task_seconds.isna().all()
    assert "--whole-from-lite" in json.loads((out / "validity.json").read_text())["command"]


def test_bench_lite_reads_lite_scores_from_a_study_that_scored_the_lite_suite(tmp_path, fake_scorer):
    runs = _study_with_models(tmp_path)
    out = tmp_path / "lite-validity"
    # offline-mteb plays the lite suite here: the study's own final suite, so nothing is scored for it
    args = ["bench", "lite", str(runs), "--out", str(out), "--full", "offline-lite"]
    assert main([*args, "--lite", "offline-mteb", "--no-progress"]) == 0
    assert len(fake_scorer) == 10 and {s for _, s in fake_scorer} == {"offline-lite"}
    timings = pd.read_csv(out / "timings.csv")
    assert set(timings.loc[timings.suite == "offline-mteb", "source"]) == {"study"}


def test_bench_lite_scores_seed_by_seed_and_summarises_when_interrupted(
    tmp_path, fake_scorer, monkeypatch, capsys
):
    import harness.evaluate as evaluate_module

    runs = _study_with_models(tmp_path)
    out = tmp_path / "lite-validity"
    args = ["bench", "lite", str(runs), "--out", str(out), "--full", "offline-mteb", "--no-progress"]
    scorer = evaluate_module.evaluate

    def interrupted(model, suite, *, model_name, **kwargs):
        if len(fake_scorer) == 5:
            raise KeyboardInterrupt
        return scorer(model, suite, model_name=model_name, **kwargs)

    monkeypatch.setattr(evaluate_module, "evaluate", interrupted)
    assert main(args) == 0
    assert "interrupted: summarising the models scored so far" in capsys.readouterr().err
    study = load_study_dir(runs)
    seed_of = {f"fixture-ablation/{t.folder.name}": t.trial.seed for t in study.trials}
    # the untrained student, then seed 0 of every arm before any seed 1
    assert [seed_of.get(m) for m, _ in fake_scorer] == [None, 0, 0, 0, 1]
    payload = json.loads((out / "validity.json").read_text())
    assert len(payload["models"]) == 5

    monkeypatch.setattr(evaluate_module, "evaluate", scorer)
    fake_scorer.clear()
    assert main(args) == 0
    assert len(fake_scorer) == 5  # the rest
    assert len(json.loads((out / "validity.json").read_text())["models"]) == 10


def test_bench_lite_rebuilds_its_readme_from_a_report_folder_once_runs_are_gone(tmp_path, fake_scorer):
    runs = _study_with_models(tmp_path)
    out = tmp_path / "lite-validity"
    assert (
        main(["bench", "lite", str(runs), "--out", str(out), "--full", "offline-mteb", "--no-progress"]) == 0
    )
    assert main(["report", str(runs), "--out", str(tmp_path / "reports")]) == 0
    before = json.loads((out / "validity.json").read_text())
    shutil.rmtree(runs)
    fake_scorer.clear()
    report = tmp_path / "reports" / "fixture-ablation"
    assert (
        main(["bench", "lite", str(report), "--out", str(out), "--full", "offline-mteb", "--no-progress"])
        == 0
    )
    assert fake_scorer == []  # a report folder scores nothing
    after = json.loads((out / "validity.json").read_text())
    assert after["command"].startswith(f"gist-harness bench lite {report} ")
    assert after["contrasts"] == before["contrasts"]  # the same contrasts, from the report's inputs
    assert after["contrasts"]["fixture-ablation"]  # not an empty table
    assert after["aggregates"] == before["aggregates"]


def test_bench_lite_needs_saved_models(tmp_path, fake_scorer, capsys):
    runs = tmp_path / "runs" / "fixture-ablation"
    shutil.copytree(FIXTURE, runs)
    assert main(["bench", "lite", str(runs), "--out", str(tmp_path / "out"), "--full", "offline-mteb"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {runs}: no saved model (run the study with [study] save_model = true)"]
    assert not (tmp_path / "out").exists()
    assert fake_scorer == []


def test_bench_lite_on_real_models_keeps_whole_tasks_identical(tmp_path, data_dir):
    """Three real static tables (the packaged one and two perturbed copies) on both real suites."""
    import torch

    from harness.models import load_model

    folders = []
    for i, scale in enumerate((0.5, 2.0)):
        model = load_model("static-minilm", device="cpu")
        weights = model[0].embedding.weight
        with torch.no_grad():
            noise = torch.randn(weights.shape, generator=torch.Generator().manual_seed(i))
            weights.add_(scale * weights.std() * noise)
        folder = tmp_path / f"perturbed-{i}"
        model.save(str(folder))
        folders.append(str(folder))
    out = tmp_path / "validity"
    args = ["bench", "lite", "--model", "static-minilm", "--model", folders[0], "--model", folders[1]]
    assert main([*args, "--out", str(out), "--data-dir", str(data_dir), "--no-progress"]) == 0
    payload = json.loads((out / "validity.json").read_text())
    per_task = {row["task"]: row for row in payload["per_task"]}
    assert len(per_task) == 17 and len(payload["models"]) == 3
    for task in ("local:STS12", "local:STSBenchmark", "local:MSRP", "local:TrecQA"):
        assert per_task[task]["lite_task"] == task and per_task[task]["max_abs_diff"] == 0
    assert per_task["local:SciFact"]["lite_task"] == "local:SciFact-lite"
    timings = pd.read_csv(out / "timings.csv")
    assert len(timings) == 6 and (timings.source == "measured").all() and (timings.wall_seconds > 0).all()
