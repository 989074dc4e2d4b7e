"""Static students train with guided negatives: the loss falls, GIST drops candidates, the model reloads.

sentence-transformers' ``GISTEmbedLoss`` refuses a student without a transformers tokenizer; our
guide is looked up by text, so a static student (token table + mean pooling) works like any other.
"""

from __future__ import annotations

import pytest
import torch
from datasets import Dataset

from harness.config import TrainConfig
from harness.config.static_preset import STATIC_DEFAULTS
from harness.guides import build_guide
from harness.models import load_model
from harness.train import train, training_texts

TOPICS = {
    "weather": ["it is raining in the city", "heavy rain fell all day", "the storm brought rain and wind"],
    "football": [
        "the team scored a late goal",
        "the striker kicked the ball in",
        "a football match on sunday",
    ],
    "cooking": ["she baked bread in the oven", "the chef cooked a pasta dinner", "a recipe for tomato soup"],
    "finance": [
        "stocks fell on the market today",
        "the bank raised interest rates",
        "investors sold their shares",
    ],
}


def _topic_pairs(repeats: int = 8) -> Dataset:
    """Pairs of two texts on the same topic; many batch-mates share the anchor's topic (false negatives)."""
    rows = []
    for r in range(repeats):
        for label, (topic, texts) in enumerate(TOPICS.items()):
            for i, anchor in enumerate(texts):
                rows.append(
                    {
                        "anchor": f"{anchor} {r}",
                        "positive": texts[(i + 1) % 3] + f" ({topic} {r})",
                        "label": label,
                    }
                )
    return Dataset.from_list(rows)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GIST_HARNESS_CACHE", str(tmp_path))
    return tmp_path


def _config(**overrides) -> TrainConfig:
    base = {"epochs": 4, "batch_size": 16, "logging_steps": 1, "warmup_ratio": 0.0, "temperature": 0.05}
    return TrainConfig(**{**base, "lr": 0.2, **overrides})  # a random table's rate


def test_random_static_student_trains_with_gist_and_reloads(cache, tmp_path):
    data = _topic_pairs()
    student = load_model("static-random-32", device="cpu")
    guide = build_guide("tfidf", corpus=sorted(training_texts(data)), progress=False)
    student, record = train(
        _config(strategy="gist", guide="tfidf"),
        student=student,
        guide=guide,
        train_dataset=data,
        progress=False,
    )
    losses = [loss for _, loss in record.loss_curve]
    assert len(losses) >= 8 and sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3
    assert any(point.drop_rate > 0 for point in record.diagnostics)  # the guide did drop candidates
    assert all(point.fn_precision is not None for point in record.diagnostics)  # labels reach diagnostics
    student.save(str(tmp_path / "saved"))
    again = load_model(str(tmp_path / "saved"), device="cpu")
    texts = ["rain in the city", "a late goal"]
    assert torch.allclose(
        student.encode(texts, convert_to_tensor=True), again.encode(texts, convert_to_tensor=True)
    )


def test_static_student_with_gradcache_matches_the_plain_loss_step(cache):
    """GradCache on a static student: one step from the same start gives the same table."""
    data = _topic_pairs(repeats=2)
    guide = build_guide("tfidf", corpus=sorted(training_texts(data)), progress=False)
    tables = []
    for mini in (None, 4):
        student = load_model("static-random-16", device="cpu")
        cfg = _config(strategy="gist", guide="tfidf", max_steps=1, mini_batch_size=mini, epochs=1)
        student, _ = train(cfg, student=student, guide=guide, train_dataset=data, progress=False)
        tables.append(student[0].embedding.weight.detach().clone())
    assert torch.allclose(tables[0], tables[1], atol=1e-5)


@pytest.mark.slow
def test_static_minilm_trains_with_the_packaged_guide_through_the_cache(cache):
    data = _topic_pairs()
    student = load_model("static-minilm", device="cpu")
    guide = build_guide("all-minilm-l6", corpus=sorted(training_texts(data)), progress=False)
    student, record = train(
        _config(strategy="gist", guide="all-minilm-l6", lr=STATIC_DEFAULTS["lr"]),
        student=student,
        guide=guide,
        train_dataset=data,
        progress=False,
    )
    losses = [loss for _, loss in record.loss_curve]
    assert losses[-1] < losses[0]
    assert any(point.drop_rate > 0 for point in record.diagnostics)
