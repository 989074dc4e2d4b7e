"""Rounds and cotraining: ``rounds`` splits training, ``self``/``partner`` guides are re-taken each round.

The students are tiny 16-dimensional static tables (``tests/test_train.py``), trained for real by the
sentence-transformers Trainer; the guides are real ``harness.guides`` snapshots held in memory.
"""

from __future__ import annotations

import optuna
import pandas as pd
import pytest
import torch
from test_config import errors_of
from test_train import pairs, tiny_student

from harness.config import Experiment, load_experiment
from harness.models import weights_digest
from harness.study.pipeline import RealPipeline

COTRAIN = """\
[study]
name = "cotrain"
sampler = "random"
pruner = "none"

[model]
student = "static-minilm"
guide = "all-mpnet-base"

[data]
mixture = "mini-medi"

[train]
max_steps = 6
rounds = 3
batch_size = 8
lr = 0.05

[objective]
suite = "offline-sts"
tasks = ["local:BIOSSES"]

[cotraining]
partner = "static-mpnet"

[ablation]
seeds = [0]

[[ablation.arms]]
name = "cotrain"
guide = "partner"

[[ablation.arms]]
name = "infonce"
strategy = "none"
guide = "none"
"""


def experiment(text: str = COTRAIN) -> Experiment:
    import tomllib

    return Experiment.model_validate(tomllib.loads(text))


class ToyPipeline(RealPipeline):
    """The real ``fit`` over toy data and tiny students; scoring is a cosine, not MTEB."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, progress=False, **kwargs)
        self.train_dataset = pairs(32)
        self.guides.corpus = sorted(set(self.train_dataset["anchor"]) | set(self.train_dataset["positive"]))

    def load_student(self):
        return tiny_student()

    def score(self, model, suite, *, progress=None):
        a, b = model.encode(["item 1 is red", "item 1 is painted red"], convert_to_tensor=True)
        return pd.DataFrame(
            [{"task": "local:BIOSSES", "main_score": float(torch.cosine_similarity(a, b, dim=0))}]
        )


@pytest.fixture
def snapshots(monkeypatch):
    """Records every guide snapshot as (kind, weights digest of the copied model)."""
    import harness.guides

    calls: list[tuple[str, str]] = []
    real = harness.guides.build_guide

    def spy(kind, *, student=None, **kwargs):
        calls.append((kind, weights_digest(student)))
        assert kwargs["persist"] is False  # round snapshots never reach the disk cache
        return real(kind, student=student, **kwargs)

    monkeypatch.setattr(harness.guides, "build_guide", spy)
    return calls


def test_cotraining_alternates_student_and_partner(monkeypatch, snapshots):
    import harness.models

    torch.manual_seed(1)
    partner = tiny_student()
    partner_start = weights_digest(partner)
    loaded: list[str] = []
    monkeypatch.setattr(
        harness.models, "load_model", lambda name, device=None: loaded.append(name) or partner
    )
    reports: list[tuple[float, int]] = []
    config = experiment().trial_config({"guide": "partner", "seed": 0})

    student, run = ToyPipeline(experiment()).fit(config, lambda value, step: reports.append((value, step)))

    assert loaded == ["static-mpnet"]
    # round r: the student learns from a copy of the partner, then the partner from a copy of the student
    assert [kind for kind, _ in snapshots] == ["partner"] * 6
    partner_copies, student_copies = [d for _, d in snapshots[::2]], [d for _, d in snapshots[1::2]]
    assert partner_copies[0] == partner_start and len(set(partner_copies)) == 3  # the partner trains too
    assert len(set(student_copies)) == 3 and weights_digest(student) == student_copies[-1]
    assert weights_digest(partner) != partner_start
    # steps continue across rounds; the pruner hears of rounds 1 and 2 (the caller scores round 3)
    assert run.steps == 6 and [step for step, _ in run.loss_curve] == sorted(s for s, _ in run.loss_curve)
    assert [step for _, step in reports] == [2, 4]
    assert run.guide_cache_seconds is not None and run.train_seconds > run.guide_cache_seconds


def test_self_guide_is_retaken_each_round(snapshots):
    config = experiment().trial_config({"guide": "self", "rounds": 2, "seed": 0})
    student, run = ToyPipeline(experiment()).fit(config, lambda value, step: None)
    assert [kind for kind, _ in snapshots] == ["self", "self"]
    assert snapshots[0][1] != snapshots[1][1]  # the second copy is the student after round 1
    assert run.steps == 6


def test_guide_free_rounds_restart_the_schedule_without_guides(snapshots):
    config = experiment().trial_config({"guide": "none", "strategy": "none", "seed": 0})
    _, run = ToyPipeline(experiment()).fit(config, lambda value, step: None)
    assert snapshots == [] and run.steps == 6 and run.guide_cache_seconds is None


def test_a_pruned_round_stops_the_trial(monkeypatch):
    import harness.models

    monkeypatch.setattr(harness.models, "load_model", lambda name, device=None: tiny_student())
    config = experiment().trial_config({"guide": "partner", "seed": 0})

    def prune(value, step):
        raise optuna.TrialPruned(f"pruned at step {step}")

    with pytest.raises(optuna.TrialPruned, match="step 2"):
        ToyPipeline(experiment()).fit(config, prune)


def test_cotraining_config_errors(tmp_path):
    no_section = COTRAIN.replace('[cotraining]\npartner = "static-mpnet"\n', "")
    assert 'ablation.arms.0.guide: guide "partner" is the [cotraining] partner' in "\n".join(
        errors_of(tmp_path, no_section)
    )
    text = "\n".join(errors_of(tmp_path, COTRAIN.replace("rounds = 3", "rounds = 1")))
    assert 'ablation.arms.0.rounds: guide "partner" needs rounds >= 2 (got 1)' in text
    text = "\n".join(
        errors_of(tmp_path, COTRAIN.replace('partner = "static-mpnet"', 'partner = "static-mpent"'))
    )
    assert "cotraining.partner: unknown model 'static-mpent'. Did you mean 'static-mpnet'" in text
    unused = COTRAIN.replace('guide = "partner"', 'guide = "none"\nstrategy = "none"')
    assert 'cotraining: no trial uses the partner: set guide = "partner"' in "\n".join(
        errors_of(tmp_path, unused)
    )
    text = "\n".join(errors_of(tmp_path, COTRAIN.replace("[cotraining]", "[cotraining]\nrounds = 2")))
    assert "cotraining.rounds" in text


def test_cotraining_file_loads(tmp_path):
    from test_config import write

    loaded = load_experiment(write(tmp_path, COTRAIN))
    assert loaded.cotraining is not None and loaded.cotraining.partner == "static-mpnet"
    assert loaded.trial_config(loaded.arm("cotrain").overrides()).rounds == 3


def test_online_guide_mode_hands_the_loss_the_model_itself(monkeypatch):
    """guide_mode = "online": the loss gets the frozen SentenceTransformer (no cache is filled)."""
    import harness.guides
    import harness.models

    guide_model = tiny_student()
    monkeypatch.setattr(harness.models, "load_model", lambda name, device=None: guide_model)
    monkeypatch.setattr(harness.guides, "build_guide", lambda *a, **k: pytest.fail("no cache in online mode"))
    pipeline = ToyPipeline(experiment())
    config = experiment().trial_config({"guide": "all-mpnet-base", "guide_mode": "online", "rounds": 1})
    guide, seconds = pipeline.guide(config, tiny_student())
    assert guide is guide_model and seconds is None
    assert not any(p.requires_grad for p in guide.parameters())
    assert pipeline.guide(config, tiny_student())[0] is guide  # loaded once per process
    with pytest.raises(Exception, match="not a model"):
        pipeline.guide(config.model_copy(update={"guide": "bm25"}), tiny_student())
