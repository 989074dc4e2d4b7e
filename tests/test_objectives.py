"""Loss objectives as pure tensor functions: hand-worked values, the registry contract, parameter checks."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from harness.errors import UserError
from harness.loss.blocks import RowScores
from harness.loss.objectives import (
    OBJECTIVES,
    debiased,
    distill_kl,
    hardness,
    infonce,
    listing,
    margin_mse,
    objective_loss,
    objective_needs,
    resolve_objective,
)

LN2 = math.log(2.0)


def value(loss):
    """A scalar loss as a Python float (detached)."""
    return float(loss.detach())


def row_scores(sims, temperature, *, guide=None, drop=None, identical=None, hard_negative=None, targets=None):
    """A ``RowScores`` built by hand: one row per anchor, its positive in column ``targets`` (default: i)."""
    sims = torch.tensor(sims, dtype=torch.float32, requires_grad=True)  # (b, N)
    b, n = sims.shape
    targets = torch.tensor(targets) if targets is not None else torch.arange(b)
    positive = F.one_hot(targets, n).bool()  # (b, N)
    drop = torch.tensor(drop) if drop is not None else torch.zeros(b, n, dtype=torch.bool)
    identical = torch.tensor(identical) if identical is not None else torch.zeros(b, n, dtype=torch.bool)
    logits = sims.masked_fill(drop | identical, -torch.inf) / temperature
    return RowScores(
        logits,
        targets,
        drop,
        identical,
        positive,
        None,
        [n],
        sims=sims,
        guide=torch.tensor(guide, dtype=torch.float32) if guide is not None else None,
        hard_negative=torch.tensor(hard_negative) if hard_negative is not None else None,
    )


def test_debiased_hand_worked_3x3():
    """Chuang et al. 2020 (arXiv 2007.00224) Eq. 6 on three anchors x three positives, tau+ = 1/4.

    Temperature t = 1/ln 2, so e(s) = exp(s / t) = 2^s and the floor exp(-1/t) = 1/2. N = 2 negatives.
    Ng = max((sum_neg e - tau+ N e(pos)) / (1 - tau+), N / 2); loss = -log(e(pos) / (e(pos) + Ng)).

    row 0: cos [1, 0, 0], positive col 0: e = [2, 1, 1]; Ng = max((2 - 1/4*2*2) / (3/4), 1) = 4/3;
           loss = -log(2 / (2 + 4/3)) = log(5/3).
    row 1: cos [-1, 1, -1], positive col 1: e = [1/2, 2, 1/2]; (1 - 1) / (3/4) = 0 < 1, so Ng = 1
           (the floor acts); loss = -log(2 / 3) = log(3/2).
    row 2: cos [-1, 0, 0], positive col 2: e = [1/2, 1, 1]; Ng = max((3/2 - 1/4*2*1) / (3/4), 1) = 4/3;
           loss = -log(1 / (1 + 4/3)) = log(7/3).
    mean = (log(5/3) + log(3/2) + log(7/3)) / 3 = log(35/6) / 3 = 0.587862...
    """
    scores = row_scores([[1.0, 0.0, 0.0], [-1.0, 1.0, -1.0], [-1.0, 0.0, 0.0]], 1 / LN2)
    got = debiased(scores, temperature=1 / LN2, tau_plus=0.25)
    assert value(got) == pytest.approx(math.log(35 / 6) / 3, abs=1e-6)
    got.backward()
    assert torch.isfinite(scores.sims.grad).all()


def test_debiased_at_tau_zero_is_infonce_and_survives_temperature_001():
    """tau+ = 0: Ng = sum of the negatives, never below the floor, so the loss is InfoNCE. At t = 0.01
    exp(logit) would overflow float32 (exp(100)); the row-max shift keeps it finite."""
    torch.manual_seed(0)
    sims = (torch.rand(5, 12) * 2 - 1).tolist()
    drop = (torch.rand(5, 12) < 0.2) & ~F.one_hot(torch.arange(5), 12).bool()
    scores = row_scores(sims, 0.01, drop=drop.tolist())
    assert value(debiased(scores, temperature=0.01, tau_plus=0.0)) == pytest.approx(
        value(infonce(scores, temperature=0.01)), abs=1e-5
    )
    assert torch.isfinite(debiased(scores, temperature=0.01, tau_plus=0.5))


def test_hardness_hand_worked():
    """Two anchors, candidates [p0, p1, n0, n1] (n_i is row i's own hard negative), t = 1, alpha = 2.

    Row 0 cos [.5, .2, .3, .1]. in_batch re-weights other rows' texts only (p1, n1):
    logits [.5, .2 + 2*.2, .3, .1 + 2*.1] = [.5, .6, .3, .3]; loss0 = -log(e^.5 / (e^.5 + e^.6 + 2 e^.3)).
    Row 1 cos [.4, .9, .0, .6], n1 (col 3) is its own: logits [.4 + .8, .9, 0, .6] = [1.2, .9, 0, .6];
    loss1 = -log(e^.9 / (e^1.2 + e^.9 + e^0 + e^.6)).
    """
    own = [[False, False, True, False], [False, False, False, True]]
    scores = row_scores([[0.5, 0.2, 0.3, 0.1], [0.4, 0.9, 0.0, 0.6]], 1.0, hard_negative=own)
    e = math.exp
    loss0 = -math.log(e(0.5) / (e(0.5) + e(0.6) + 2 * e(0.3)))
    loss1 = -math.log(e(0.9) / (e(1.2) + e(0.9) + e(0) + e(0.6)))
    got = hardness(scores, temperature=1.0, alpha=2.0)
    assert value(got) == pytest.approx((loss0 + loss1) / 2, abs=1e-6)
    # negatives="all": row 0's own n0 is re-weighted too (.3 -> .9)
    loss0_all = -math.log(e(0.5) / (e(0.5) + e(0.6) + e(0.9) + e(0.3)))
    loss1_all = -math.log(e(0.9) / (e(1.2) + e(0.9) + e(0) + e(1.8)))
    got_all = hardness(scores, temperature=1.0, alpha=2.0, negatives="all")
    assert value(got_all) == pytest.approx((loss0_all + loss1_all) / 2, abs=1e-6)


def test_hardness_reads_the_guide_and_leaves_dropped_candidates_out():
    """sims="guide": the guide's cosine weights the negatives; a dropped candidate stays at -inf.

    One row, cos [.5, .2, .4], guide [.9, .8, .1], col 1 dropped, t = 1, alpha = 1:
    logits [.5, -inf, .4 + .1]; loss = -log(e^.5 / (e^.5 + e^.5)) = log 2.
    """
    scores = row_scores([[0.5, 0.2, 0.4]], 1.0, guide=[[0.9, 0.8, 0.1]], drop=[[False, True, False]])
    got = hardness(scores, temperature=1.0, alpha=1.0, sims="guide")
    assert value(got) == pytest.approx(LN2, abs=1e-6)
    got.backward()
    assert value(scores.sims.grad[0, 1]) == 0.0


def test_distill_kl_hand_worked():
    """One row, two candidates: cos [.5, 0] at t = .5 gives student logits [1, 0]; guide [.1, .1] at
    guide temperature 1 gives p_guide = [1/2, 1/2]. p_student = [e, 1] / (1 + e).
    KL(p_guide || p_student) = sum p_g log(p_g / p_s) = -log 2 - (1/2)(1 - 2 log(1 + e))
    = log(1 + e) - 1/2 - log 2 = 0.120114...
    weight 1/2 mixes it half and half with InfoNCE = -log(e / (1 + e)) = log(1 + e) - 1.
    """
    scores = row_scores([[0.5, 0.0]], 0.5, guide=[[0.1, 0.1]])
    kl = math.log(1 + math.e) - 0.5 - LN2
    got = distill_kl(scores, temperature=0.5, guide_temperature=1.0, weight=1.0)
    assert value(got) == pytest.approx(kl, abs=1e-6)
    mixed = distill_kl(scores, temperature=0.5, guide_temperature=1.0, weight=0.5)
    assert value(mixed) == pytest.approx(0.5 * kl + 0.5 * (math.log(1 + math.e) - 1), abs=1e-6)


def test_distill_kl_ignores_masked_candidates():
    """A dropped candidate has probability 0 for both: the KL is that of the kept ones (finite gradients)."""
    scores = row_scores([[0.5, 0.9, 0.0]], 0.5, guide=[[0.1, 0.9, 0.1]], drop=[[False, True, False]])
    got = distill_kl(scores, temperature=0.5, guide_temperature=1.0, weight=1.0)
    assert value(got) == pytest.approx(math.log(1 + math.e) - 0.5 - LN2, abs=1e-6)
    got.backward()
    assert torch.isfinite(scores.sims.grad).all() and value(scores.sims.grad[0, 1]) == 0.0


def test_margin_mse_hand_worked():
    """Two rows, candidates [p0, p1, n0, n1]; each row's own negative is n_i (MarginMSE, arXiv 2010.02666).

    Row 0: student pos .8, own neg .3 -> margin .5; guide .9 - .6 = .3; error (.5 - .3)^2 = .04.
    Row 1: student .7 - .5 = .2; guide .8 - .2 = .6; error (.2 - .6)^2 = .16. Mean = .1.
    Other rows' candidates (p1, n1 for row 0) are not margins; weight 1 is MarginMSE alone.
    """
    own = [[False, False, True, False], [False, False, False, True]]
    scores = row_scores(
        [[0.8, 0.1, 0.3, 0.0], [0.0, 0.7, 0.4, 0.5]],
        0.05,
        guide=[[0.9, 0.0, 0.6, 0.0], [0.0, 0.8, 0.0, 0.2]],
        hard_negative=own,
    )
    assert value(margin_mse(scores, temperature=0.05, weight=1.0)) == pytest.approx(0.1, abs=1e-6)
    # the strategy dropped row 1's own negative (a suspected false negative): only row 0 is distilled
    dropped = row_scores(
        [[0.8, 0.1, 0.3, 0.0], [0.0, 0.7, 0.4, 0.5]],
        0.05,
        guide=[[0.9, 0.0, 0.6, 0.0], [0.0, 0.8, 0.0, 0.2]],
        hard_negative=own,
        drop=[[False] * 4, [False, False, False, True]],
    )
    assert value(margin_mse(dropped, temperature=0.05, weight=1.0)) == pytest.approx(0.02, abs=1e-6)


def test_margin_mse_on_a_batch_without_negatives_is_the_infonce_share():
    """A pair source's batch (no negative column) has no margins: (1 - weight) * InfoNCE."""
    no_own = [[False, False], [False, False]]
    scores = row_scores([[0.8, 0.1], [0.0, 0.7]], 0.05, guide=[[0.9, 0.0], [0.0, 0.8]], hard_negative=no_own)
    expected = 0.75 * value(infonce(scores, temperature=0.05))
    assert value(margin_mse(scores, temperature=0.05, weight=0.25)) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("name", OBJECTIVES.names())
def test_objective_contract(name):
    """Every objective: defaults in range, a finite scalar with finite gradients on masked scores,
    no gradient into dropped candidates (a relabelling objective: a gradient into each), a listing row."""
    torch.manual_seed(1)
    b, n = 4, 12
    own = torch.zeros(b, n, dtype=torch.bool)
    own[torch.arange(b), 8 + torch.arange(b)] = True  # columns 8..11: each row's own negative
    drop = (torch.rand(b, n) < 0.25) & ~F.one_hot(torch.arange(b), n).bool()
    scores = row_scores(
        (torch.rand(b, n) * 2 - 1).tolist(),
        0.05,
        guide=(torch.rand(b, n) * 2 - 1).tolist(),
        drop=drop.tolist(),
        hard_negative=own.tolist(),
    )
    loss = objective_loss(name, scores, temperature=0.05)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(scores.sims.grad).all()
    if OBJECTIVES.get(name).relabels:
        assert scores.sims.grad[drop].abs().min() > 0.0
    else:
        assert value(scores.sims.grad[drop].abs().sum()) == 0.0
    assert any(row["name"] == name and row["reference"] for row in listing())


def test_objectives_at_zero_strength_are_infonce():
    torch.manual_seed(2)
    scores = row_scores((torch.rand(3, 6) * 2 - 1).tolist(), 0.05, guide=torch.rand(3, 6).tolist())
    reference = value(infonce(scores, temperature=0.05))
    for name, params in (
        ("hardness", {"alpha": 0.0}),
        ("debiased", {"tau_plus": 0.0}),
        ("distill_kl", {"weight": 0.0}),
    ):
        assert value(objective_loss(name, scores, temperature=0.05, params=params)) == pytest.approx(
            reference, abs=1e-6
        )


@pytest.mark.parametrize(
    "name,params,message",
    [
        ("hardness", {"alpha": -1.0}, r"objective 'hardness': alpha must be in \[0, 100\], got -1.0"),
        ("debiased", {"tau_plus": 1.0}, r"objective 'debiased': tau_plus must be in \[0, 1\), got 1.0"),
        ("debiased", {"tau_plus": -0.1}, r"tau_plus must be in \[0, 1\)"),
        ("distill_kl", {"weight": 2}, r"objective 'distill_kl': weight must be in \[0, 1\]"),
        ("hardness", {"sims": "teacher"}, r"objective 'hardness': sims must be one of student, guide"),
        ("debiased", {"tau": 0.1}, r"objective 'debiased' has no parameter 'tau' \(valid: tau_plus\)"),
        ("distil_kl", {}, r"unknown objective 'distil_kl'. Did you mean 'distill_kl'"),
    ],
)
def test_bad_parameters_name_the_objective_field_and_range(name, params, message):
    with pytest.raises(UserError, match=message) as info:
        resolve_objective(name, params)
    assert "\n" not in str(info.value)


def test_needs():
    assert objective_needs("infonce") == (False, False)
    assert objective_needs("hardness") == (False, False)
    assert objective_needs("hardness", {"sims": "guide"}) == (True, False)
    assert objective_needs("distill_kl") == (True, False)
    assert objective_needs("margin_mse") == (True, True)


def test_ls_objectives_and_strategies_print_the_notes(capsys):
    from harness.cli import main

    assert main(["ls", "objectives"]) == 0
    out = capsys.readouterr().out
    assert "debiased" in out and "2007.00224" in out and "compose with every masking strategy" in out
    assert main(["ls", "strategies"]) == 0
    assert "GISTEmbedLoss" in capsys.readouterr().out
