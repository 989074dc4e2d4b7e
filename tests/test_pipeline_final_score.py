"""A trial scored on its objective after its last step is not scored there again (tuning cost)."""

from __future__ import annotations

import pytest
from test_config import GOOD

import harness.evaluate
from harness.config import load_experiment
from harness.study.pipeline import RealPipeline


@pytest.fixture
def pipeline(tmp_path, monkeypatch):
    path = tmp_path / "exp.toml"
    path.write_text(GOOD, encoding="utf-8")
    pipeline = RealPipeline(load_experiment(path), progress=False)
    monkeypatch.setattr(RealPipeline, "data_dir", property(lambda self: tmp_path))
    calls = []

    def fake_evaluate(model, suite, **kwargs):
        calls.append(model["step"])
        return {"step": model["step"]}

    monkeypatch.setattr(harness.evaluate, "evaluate", fake_evaluate)
    monkeypatch.setattr(harness.evaluate, "suite_object", lambda suite: suite)
    monkeypatch.setattr(
        "harness.study.pipeline.objective_value", lambda scores, objective: scores["step"] / 100
    )
    monkeypatch.setattr(pipeline, "load_student", lambda: {"step": 0})
    monkeypatch.setattr(pipeline, "guide", lambda config, student: (None, None))
    pipeline.calls = calls
    return pipeline


def _fake_train(last_step: int, every: int):
    """A stand-in for ``train()``: steps the 'model' to ``last_step``, scoring every ``every`` steps."""

    def train_run(config, student, guide, *, eval_fn, report, **kwargs):
        from harness.results import RunRecord

        for step in range(1, last_step + 1):
            student["step"] = step
            if step % every == 0:
                report(eval_fn(student), step)
        return student, RunRecord(steps=last_step)

    return train_run


@pytest.mark.parametrize(("last_step", "every", "scored"), [(40, 20, [20, 40]), (45, 20, [20, 40, 45])])
def test_the_objective_after_the_last_step_reuses_the_last_intermediate_score(
    pipeline, monkeypatch, last_step, every, scored
):
    monkeypatch.setattr(pipeline, "_train_run", _fake_train(last_step, every))
    reported = []
    config = pipeline.experiment.trial_config({})
    model, _ = pipeline.fit(config, lambda value, step: reported.append((step, value)))
    final = pipeline.score(model, pipeline.experiment.objective)
    assert final == {"step": last_step}  # the scores of the model as it ended
    assert pipeline.calls == scored  # 40 = 2 x 20: scored twice, not three times
    assert [s for s, _ in reported] == [s for s in scored if s % every == 0]
    pipeline.score(model, pipeline.experiment.objective)  # reused once only: a second call scores again
    assert pipeline.calls == [*scored, last_step]


def test_another_suite_or_model_is_scored(pipeline, monkeypatch):
    monkeypatch.setattr(pipeline, "_train_run", _fake_train(40, 20))
    model, _ = pipeline.fit(pipeline.experiment.trial_config({}), lambda value, step: None)
    pipeline.score({"step": 40}, pipeline.experiment.objective)  # an equal but other model
    assert pipeline.calls == [20, 40, 40]
