"""The bidirectional loss (``variant="mnrl"``): GTE's improved contrastive loss (Li et al. 2023, arXiv
2308.03281) as sentence-transformers' ``MultipleNegativesRankingLoss(directions=..., partition_mode=...)``.

Parity with the installed MNRL for every direction set and both partitions (tiny models here, the
packaged all-MiniLM-L6-v2 on real training rows in the slow tests), a GIST mask on doc->query rows
worked by hand, GradCache, and the experiment-file fields. The 2-process path is in
``test_objectives_distributed`` (its ``gte`` and ``sym`` cases).
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
from test_loss import ANCHORS, NEGATIVES, POSITIVES, TableGuide, batch_for, st_features, tiny_model

from harness.data import load_source
from harness.errors import UserError
from harness.loss import GuidedInBatchLoss, cosine_matrix
from harness.loss.blocks import layout, partitions, score_rows
from harness.loss.objectives import infonce
from harness.loss.spec import LossConfig

T = 0.05
EXTRA = ("query_to_query", "doc_to_query", "doc_to_doc")
SETTINGS = [
    (("query_to_doc", *extra), partition)
    for k in range(len(EXTRA) + 1)
    for extra in itertools.combinations(EXTRA, k)
    for partition in ("joint", "per_direction")
    if partition == "joint" or not set(extra) & {"query_to_query", "doc_to_doc"}
]
"""Every direction set MNRL accepts (query_to_doc always) with each partition it accepts: 10 settings."""


def setting_id(setting) -> str:
    directions, partition = setting
    return "+".join(d.replace("query", "q").replace("doc", "d").replace("_to_", "") for d in directions) + (
        "-" + partition
    )


def mnrl_loss(model, columns, directions, partition):
    """MNRL's loss and the model's gradients; MNRL gets the loss's cosine (see ``test_objectives_loss``)."""
    model.zero_grad()
    reference = MultipleNegativesRankingLoss(
        model, scale=1 / T, similarity_fct=cosine_matrix, directions=directions, partition_mode=partition
    )
    value = reference(st_features(model, columns), None)
    value.backward()
    return float(value.detach()), {
        n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None
    }


def harness_loss(model, columns, directions, partition, **settings):
    model.zero_grad()
    loss = GuidedInBatchLoss(
        model,
        None,
        temperature=T,
        strategy="none",
        variant="mnrl",
        directions=directions,
        partition=partition,
        **settings,
    )
    features, _ = batch_for(loss, columns)
    value = loss(features, None)
    value.backward()
    return float(value.detach()), {
        n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None
    }


@pytest.fixture(scope="module")
def student():
    return tiny_model(0)


@pytest.mark.parametrize("duplicates", ["keep", "drop"])
@pytest.mark.parametrize("n_columns", [2, 3])
@pytest.mark.parametrize("setting", SETTINGS, ids=setting_id)
def test_matches_mnrl_directions_and_partition(student, setting, n_columns, duplicates):
    """Loss <= 1e-6 and gradients for every direction set, both partitions, pairs and triplets."""
    columns = [ANCHORS, POSITIVES, NEGATIVES][:n_columns]
    expected, expected_grads = mnrl_loss(student, columns, *setting)
    got, grads = harness_loss(student, columns, *setting, duplicates=duplicates)
    assert abs(got - expected) <= 1e-6
    assert grads.keys() == expected_grads.keys() and grads
    for name, grad in grads.items():
        torch.testing.assert_close(grad, expected_grads[name], atol=1e-5, rtol=1e-4, msg=name)


def test_directions_map_onto_blocks():
    gte = ("query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc")
    assert [b.name for b in layout("mnrl", 3, directions=gte)] == ["ap", "an1", "aa", "pa", "pp", "pn1"]
    assert [(b.row, b.col) for b in layout("mnrl", 3, directions=gte)] == [
        (0, 1),
        (0, 2),
        (0, 0),
        (1, 0),
        (1, 1),
        (1, 2),
    ]
    assert [b.name for b in layout("mnrl", 2)] == ["ap"]


# -- a GIST mask on doc->query rows, by hand -------------------------------------------------------
# Unit 2-d vectors, the same for student and guide. Guide positive pair g(a_i, p_i) = 0.8, -0.28, 0.
A = [(1.0, 0.0), (0.6, 0.8), (0.0, 1.0)]
P = [(0.8, 0.6), (0.6, -0.8), (-1.0, 0.0)]
T_LN2 = 1.0 / math.log(2.0)  # e^{s/t} = 2^s


def hand_scores(directions, blocks="all"):
    a, p = torch.tensor(A), torch.tensor(P)
    return score_rows(
        [a, p],
        [a, p],
        [torch.arange(3), torch.arange(3) + 10],
        layout("mnrl", 2, directions=directions),
        slice(0, 3),
        strategy="gist",
        strategy_params={"margin": 0.1, "margin_strategy": "absolute", "blocks": blocks},
        temperature=T_LN2,
    )


def test_gist_on_doc_to_query_rows_is_thresholded_by_the_same_positive_pair():
    """Row i of ``pa`` is positive i against every anchor j: drop j when g(p_i, a_j) > g(a_i, p_i) - 0.1.

    pa cosines g(p_i, a_j): row 0: 0.8 (pair), 0.96, 0.6 -> threshold 0.7 drops a_1;
    row 1: 0.6, -0.28 (pair), -0.8 -> threshold -0.38 drops a_0; row 2: -1, -0.6, 0 (pair) -> -0.1 drops
    none. The pair itself (at the threshold + 0.1) is protected like the positive. ap as usual: row 1
    drops p_0 (0.96), row 2 drops p_0 (0.6).
    """
    scores = hand_scores(("query_to_doc", "doc_to_query"))
    #                       ap: p0     p1     p2   | pa: a0     a1     a2
    expected = torch.tensor([[False, False, False, False, True, False],
                             [True, False, False, True, False, False],
                             [True, False, False, False, False, False]])  # fmt: skip
    assert torch.equal(scores.drop, expected)
    assert torch.equal(
        scores.pair, torch.eye(3, dtype=torch.bool).repeat(1, 2) & ~torch.eye(3, 6, dtype=torch.bool)
    )
    assert not scores.identical.any()  # the pair's copy is no identical text, though a_i is the anchor


def test_gist_on_the_doc_to_query_block_alone_keeps_every_query_to_doc_candidate():
    """``blocks = "pa"``: the drops of the test above inside pa, none in ap."""
    directions = ("query_to_doc", "doc_to_query")
    full, pa = hand_scores(directions).drop, hand_scores(directions, blocks="pa").drop
    assert torch.equal(pa[:, 3:], full[:, 3:]) and pa[:, 3:].any()
    assert not pa[:, :3].any()


def test_gist_doc_to_query_loss_by_hand_joint_and_per_direction():
    """The kept cosines of each row from the test above, at e^{s/t} = 2^s."""
    kept = {  # row: (positive, other kept query_to_doc cosines, kept doc_to_query cosines incl. the pair)
        0: (0.8, [0.6, -1.0], [0.8, 0.6]),
        1: (-0.28, [-0.6], [-0.28, -0.8]),
        2: (0.0, [-0.8], [-1.0, -0.6, 0.0]),
    }
    e = [2.0**pos for pos, _, _ in kept.values()]
    qd = [e[i] + sum(2.0**s for s in kept[i][1]) for i in range(3)]
    dq = [sum(2.0**s for s in kept[i][2]) for i in range(3)]
    joint = sum(-math.log(e[i] / (qd[i] + dq[i])) for i in range(3)) / 3
    per_direction = sum(-math.log(e[i] / qd[i]) / 2 - math.log(e[i] / dq[i]) / 2 for i in range(3)) / 3
    scores = hand_scores(("query_to_doc", "doc_to_query"))
    assert float(infonce(scores, temperature=T_LN2)) == pytest.approx(joint, abs=1e-6)
    blocks = layout("mnrl", 2, directions=("query_to_doc", "doc_to_query"))
    parts = partitions(scores, blocks)
    assert [p.widths for p in parts] == [[3], [3]]
    got = sum(float(infonce(p, temperature=T_LN2)) for p in parts) / 2
    assert got == pytest.approx(per_direction, abs=1e-6)


@pytest.mark.parametrize(
    "directions,partition",
    [
        (("query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc"), "joint"),
        (("query_to_doc", "doc_to_query"), "per_direction"),
    ],
)
def test_gradcache_same_loss_and_gradients_for_the_new_layouts(directions, partition):
    student, guide = tiny_model(0), TableGuide(tiny_model(1))
    columns = [ANCHORS, POSITIVES, NEGATIVES]

    def run(mini_batch_size):
        student.zero_grad()
        loss = GuidedInBatchLoss(
            student,
            guide,
            temperature=T,
            strategy="gist",
            variant="mnrl",
            directions=directions,
            partition=partition,
            mini_batch_size=mini_batch_size,
        )
        features, _ = batch_for(loss, columns)
        value = loss(features, None)
        value.backward()
        assert loss.pop_diagnostics()["drop_rate_pa"] > 0  # the mask reaches doc->query rows
        return float(value.detach()), [p.grad.clone() for p in student.parameters() if p.grad is not None]

    plain, plain_grads = run(None)
    cached, cached_grads = run(2)
    assert abs(plain - cached) <= 1e-6
    for a, b in zip(plain_grads, cached_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize(
    "settings,message",
    [
        ({"directions": ("doc_to_query",)}, "directions must include 'query_to_doc'"),
        (
            {"directions": ("query_to_doc", "doc_to_qry")},
            "unknown direction 'doc_to_qry'; valid: query_to_doc",
        ),
        (
            {"directions": ("query_to_doc", "doc_to_doc"), "partition": "per_direction"},
            "partition='per_direction' needs every direction to hold the positive pair; doc_to_doc",
        ),
        ({"partition": "both"}, "partition must be one of joint, per_direction, got 'both'"),
        ({"variant": "st", "directions": ("query_to_doc", "doc_to_query")}, "apply to variant='mnrl'"),
        ({"contrast_anchors": False}, "variant='mnrl' takes its blocks from directions"),
    ],
)
def test_bad_settings_are_one_line_errors(settings, message):
    with pytest.raises(UserError, match=message) as info:
        LossConfig(**{"variant": "mnrl", **settings})
    assert "\n" not in str(info.value)


def test_experiment_fields_reach_the_loss(tmp_path, capsys):
    from test_objectives_config import BASE

    from harness.cli import main
    from harness.config import TrainConfig

    config = TrainConfig(
        variant="mnrl", directions=["query_to_doc", "doc_to_query"], partition="per_direction"
    )
    loss = LossConfig.of(config)
    assert loss.directions == ("query_to_doc", "doc_to_query") and loss.per_direction
    path = tmp_path / "experiment.toml"
    arm = 'variant = "mnrl"\ndirections = ["query_to_doc", "doc_to_doc"]\npartition = "per_direction"\n'
    path.write_text(BASE.replace('strategy = "gist"\n', f'strategy = "gist"\n{arm}'), encoding="utf-8")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "ablation.arms.0.directions: partition='per_direction' needs every direction" in err, err


# -- real rows, the packaged student (slow) ----------------------------------------------------------


@pytest.fixture(scope="module")
def real_columns(data_dir):
    """16 SNLI (premise, entailment, contradiction) rows with no text twice, via the data loaders."""
    rows, seen = [], set()
    for row in load_source("snli-triplets", data_dir):
        texts = (row["anchor"], row["positive"], row["negative"])
        if seen.isdisjoint(texts) and len(set(texts)) == 3:
            seen.update(texts)
            rows.append(texts)
        if len(rows) == 16:
            break
    return [list(column) for column in zip(*rows, strict=True)]


@pytest.mark.slow
@pytest.mark.parametrize("n_columns", [2, 3])
@pytest.mark.parametrize("setting", SETTINGS, ids=setting_id)
def test_matches_mnrl_on_real_rows_with_minilm(minilm, real_columns, setting, n_columns):
    """all-MiniLM-L6-v2 on 16 SNLI rows, MNRL with its own default similarity (``cos_sim``)."""
    directions, partition = setting
    columns = real_columns[:n_columns]
    with torch.no_grad():
        reference = MultipleNegativesRankingLoss(
            minilm, scale=1 / T, directions=directions, partition_mode=partition
        )
        expected = float(reference(st_features(minilm, columns), None))
        loss = GuidedInBatchLoss(
            minilm,
            None,
            temperature=T,
            strategy="none",
            variant="mnrl",
            directions=directions,
            partition=partition,
        )
        features, _ = batch_for(loss, columns)
        got = float(loss(features, None))
    assert abs(got - expected) <= 1e-6
