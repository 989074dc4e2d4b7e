"""Objectives through ``GuidedInBatchLoss`` on tiny models: parity with sentence-transformers' losses,
GradCache parity, composition with strategies, and the duplicate-text setting (GISTEmbedLoss parity)."""

from __future__ import annotations

import pytest
import torch
from sentence_transformers.base.losses.merged_forward import embed_columns
from sentence_transformers.sentence_transformer.losses import (
    DistillKLDivLoss,
    GISTEmbedLoss,
    MarginMSELoss,
    MultipleNegativesRankingLoss,
)
from sentence_transformers.util import pairwise_cos_sim
from test_loss import ANCHORS, NEGATIVES, POSITIVES, TableGuide, batch_for, st_features, tiny_model

from harness.errors import UserError
from harness.loss import GuidedInBatchLoss, cosine_matrix
from harness.loss.objectives import OBJECTIVES

T = 0.05


@pytest.fixture(scope="module")
def student():
    return tiny_model(0)


@pytest.fixture(scope="module")
def guide_model():
    return tiny_model(1)


def plain_loss(student, guide, objective, params, **kwargs):
    """Strategy none, no extra blocks: the setting of the sentence-transformers references."""
    return GuidedInBatchLoss(
        student,
        guide,
        temperature=T,
        strategy="none",
        contrast_anchors=False,
        contrast_positives=False,
        objective=objective,
        objective_params=params,
        **kwargs,
    )


def embeddings_and_guide(student, guide_model, columns):
    """Student embeddings (one merged forward, as the loss does) and guide cosines (B, N) of the batch."""
    features = [student.preprocess(c) for c in columns]
    embeddings = embed_columns(student, features)
    guide = TableGuide(guide_model)
    g = [guide.embed(c) for c in columns]
    return embeddings, cosine_matrix(g[0], torch.cat(g[1:]))  # (B, D) per column, (B, N)


@pytest.mark.parametrize("n_columns", [2, 3])
@pytest.mark.parametrize("mode,negatives", [("in_batch_negatives", "in_batch"), ("all_negatives", "all")])
def test_hardness_matches_mnrl_hardness(student, n_columns, mode, negatives):
    """Student-cosine hardness, no mask, no extra blocks = MNRL(hardness_mode=..., hardness_strength=alpha).

    MNRL is given the loss's own cosine (``cosine_matrix``; its default ``cos_sim`` rounds differently
    by ~1e-7 per cosine, which the scale 20 plus alpha 9 would lift to ~1e-6 on a loss of ~5).
    """
    columns = [ANCHORS, POSITIVES, NEGATIVES][:n_columns]
    reference = MultipleNegativesRankingLoss(
        student, scale=1 / T, similarity_fct=cosine_matrix, hardness_mode=mode, hardness_strength=9.0
    )
    expected = float(reference(st_features(student, columns), None).detach())
    loss = plain_loss(student, None, "hardness", {"alpha": 9.0, "negatives": negatives})
    features, _ = batch_for(loss, columns)
    assert abs(float(loss(features, None).detach()) - expected) <= 1e-6


def test_hardness_hard_negatives_matches_mnrl(student):
    columns = [ANCHORS, POSITIVES, NEGATIVES]
    reference = MultipleNegativesRankingLoss(
        student,
        scale=1 / T,
        similarity_fct=cosine_matrix,
        hardness_mode="hard_negatives",
        hardness_strength=5.0,
    )
    expected = float(reference(st_features(student, columns), None).detach())
    loss = plain_loss(student, None, "hardness", {"alpha": 5.0, "negatives": "hard"})
    features, _ = batch_for(loss, columns)
    assert abs(float(loss(features, None).detach()) - expected) <= 1e-6


@pytest.mark.parametrize("n_columns", [2, 3])
def test_distill_kl_matches_distillkldivloss_fed_the_same_scores(student, guide_model, n_columns):
    """weight 1: KL(guide || student) = ``DistillKLDivLoss`` at temperature 1 fed the student logits
    cos / T (through its similarity_fct) and the teacher scores guide_cos / guide_temperature."""
    columns = [ANCHORS, POSITIVES, NEGATIVES][:n_columns]
    with torch.no_grad():
        embeddings, guide_cos = embeddings_and_guide(student, guide_model, columns)
        candidates = torch.cat(embeddings[1:])  # (N, D)
        rows = len(ANCHORS)
        repeated = [candidates[j].expand(rows, -1) for j in range(candidates.shape[0])]  # N x (B, D)
        reference = DistillKLDivLoss(student, similarity_fct=lambda a, b: pairwise_cos_sim(a, b) / T)
        expected = float(reference.compute_loss_from_embeddings([embeddings[0], *repeated], guide_cos / 0.1))
        loss = plain_loss(
            student, TableGuide(guide_model), "distill_kl", {"weight": 1.0, "guide_temperature": 0.1}
        )
        features, _ = batch_for(loss, columns)
        got = float(loss(features, None))
    assert abs(got - expected) <= 1e-6


def test_margin_mse_matches_marginmseloss(student, guide_model):
    """weight 1, one negative column, nothing dropped: ``MarginMSELoss`` (cosine) with the guide's margins."""
    columns = [ANCHORS, POSITIVES, NEGATIVES]
    with torch.no_grad():
        embeddings, guide_cos = embeddings_and_guide(student, guide_model, columns)
        rows = torch.arange(len(ANCHORS))
        margins = guide_cos[rows, rows] - guide_cos[rows, len(ANCHORS) + rows]  # (B,)
        reference = MarginMSELoss(student, similarity_fct=pairwise_cos_sim)
        expected = float(reference.compute_loss_from_embeddings(embeddings, margins))
        loss = plain_loss(student, TableGuide(guide_model), "margin_mse", {"weight": 1.0})
        features, _ = batch_for(loss, columns)
        got = float(loss(features, None))
    assert abs(got - expected) <= 1e-6


@pytest.mark.parametrize("objective", OBJECTIVES.names())
def test_gradcache_same_loss_and_gradients(student, guide_model, objective):
    """Each objective is a sum of per-row terms: GradCache row chunks give the plain path's loss and gradients."""
    columns = [ANCHORS, POSITIVES, NEGATIVES]

    def run(mini_batch_size):
        student.zero_grad()
        loss = GuidedInBatchLoss(
            student,
            TableGuide(guide_model),
            temperature=T,
            strategy="gist",
            objective=objective,
            objective_params={"sims": "guide"} if objective == "hardness" else {},
            mini_batch_size=mini_batch_size,
        )
        features, _ = batch_for(loss, columns)
        value = loss(features, None)
        value.backward()
        return float(value.detach()), [p.grad.clone() for p in student.parameters() if p.grad is not None]

    plain, plain_grads = run(None)
    cached, cached_grads = run(2)
    assert abs(plain - cached) <= 1e-6
    assert len(plain_grads) == len(cached_grads) > 0
    for a, b in zip(plain_grads, cached_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5)  # padding widths differ per mini-batch


@pytest.mark.parametrize("objective", OBJECTIVES.names())
@pytest.mark.parametrize("strategy", ["none", "gist", "random"])
def test_every_objective_composes_with_strategies(student, guide_model, objective, strategy):
    loss = GuidedInBatchLoss(student, TableGuide(guide_model), strategy=strategy, objective=objective)
    features, _ = batch_for(loss, [ANCHORS, POSITIVES, NEGATIVES])
    value = loss(features, None)
    assert torch.isfinite(value)
    value.backward()
    student.zero_grad()
    assert "drop_rate" in loss.pop_diagnostics()
    assert loss.get_config_dict()["objective"] == objective


def test_objective_errors(student):
    with pytest.raises(UserError, match="objective 'distill_kl' needs a guide"):
        GuidedInBatchLoss(student, None, strategy="none", objective="distill_kl")
    with pytest.raises(UserError, match=r"objective 'hardness': alpha must be in \[0, 100\], got -1"):
        GuidedInBatchLoss(
            student, None, strategy="none", objective="hardness", objective_params={"alpha": -1}
        )
    with pytest.raises(UserError, match="unknown objective 'kl'"):
        GuidedInBatchLoss(student, None, strategy="none", objective="kl")
    with pytest.raises(UserError, match="duplicates must be one of drop, keep"):
        GuidedInBatchLoss(student, None, strategy="none", duplicates="merge")


def test_guide_only_objective_gets_guide_vectors_without_a_guided_strategy(student, guide_model):
    """strategy none + distill_kl: the collator still hands the loss cached guide vectors."""
    loss = GuidedInBatchLoss(student, TableGuide(guide_model), strategy="none", objective="distill_kl")
    assert loss.needs_guide
    features, _ = batch_for(loss, [ANCHORS, POSITIVES])
    assert torch.isfinite(loss(features, None))


# -- duplicate texts: drop (default) vs keep (GISTEmbedLoss parity) -----------------------------------

REPEATED_ANCHORS = [ANCHORS[0], ANCHORS[1], ANCHORS[2], ANCHORS[3], ANCHORS[4], ANCHORS[5]]
REPEATED_POSITIVES = [POSITIVES[0], POSITIVES[0], POSITIVES[2], POSITIVES[3], POSITIVES[3], POSITIVES[5]]


@pytest.mark.parametrize("toggles", [(True, True), (False, False)])
def test_duplicates_keep_matches_gistembedloss_on_repeated_texts(student, guide_model, toggles):
    """Rows 0/1 and 3/4 share a positive text. GISTEmbedLoss keeps each twin as a negative at margin 0
    (its guide similarity equals the positive's, not above it); ``duplicates="keep"`` does the same,
    ``"drop"`` (the default) removes it, so the two values differ on this batch."""
    columns = [REPEATED_ANCHORS, REPEATED_POSITIVES]
    kwargs = dict(temperature=T, contrast_anchors=toggles[0], contrast_positives=toggles[1])
    with torch.no_grad():
        expected = float(GISTEmbedLoss(student, guide_model, **kwargs)(st_features(student, columns), None))
        keep = GuidedInBatchLoss(student, TableGuide(guide_model), duplicates="keep", **kwargs)
        drop = GuidedInBatchLoss(student, TableGuide(guide_model), **kwargs)
        got_keep = float(keep(batch_for(keep, columns)[0], None))
        got_drop = float(drop(batch_for(drop, columns)[0], None))
        online = GuidedInBatchLoss(student, guide_model, guide_mode="online", duplicates="keep", **kwargs)
        got_online = float(online(st_features(student, columns), None))
    assert abs(got_keep - expected) <= 1e-6 and abs(got_online - expected) <= 1e-6
    assert abs(got_drop - expected) > 1e-3


def test_duplicates_settings_agree_on_duplicate_free_batches(student, guide_model):
    columns = [ANCHORS, POSITIVES, NEGATIVES]
    with torch.no_grad():
        values = []
        for duplicates in ("drop", "keep"):
            loss = GuidedInBatchLoss(student, TableGuide(guide_model), temperature=T, duplicates=duplicates)
            values.append(float(loss(batch_for(loss, columns)[0], None)))
    assert values[0] == values[1]


@pytest.mark.parametrize("objective,duplicates", [("distill_kl", "drop"), ("debiased", "keep")])
def test_train_passes_objective_and_duplicates_to_the_loss(objective, duplicates):
    """``train()`` with ``[train] objective``/``duplicates``: the Trainer path runs and learns."""
    from test_train import FakeGuide, config, pairs, tiny_student

    from harness.train import train

    student = tiny_student()
    before = student.encode(["item 1"], convert_to_tensor=True).clone()
    model, run = train(
        config(strategy="none", objective=objective, duplicates=duplicates),
        student=student,
        guide=FakeGuide(),
        train_dataset=pairs(),
        progress=False,
    )
    assert run.steps == 6 and all(torch.isfinite(torch.tensor(v)) for _, v in run.loss_curve)
    assert not torch.allclose(before, model.encode(["item 1"], convert_to_tensor=True))


@pytest.mark.parametrize("objective", ["distill_kl", "margin_mse"])
def test_online_guide_feeds_objectives_like_the_cache(student, guide_model, objective):
    """guide_mode="online" (the guide re-run per batch) gives the cached guide's objective value."""
    columns = [ANCHORS, POSITIVES, NEGATIVES]
    with torch.no_grad():
        cached = GuidedInBatchLoss(student, TableGuide(guide_model), temperature=T, objective=objective)
        online = GuidedInBatchLoss(
            student, guide_model, temperature=T, guide_mode="online", objective=objective
        )
        got_cached = float(cached(batch_for(cached, columns)[0], None))
        got_online = float(online(st_features(student, columns), None))
    assert abs(got_cached - got_online) <= 1e-5
