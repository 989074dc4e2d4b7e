"""``relabel_positive``: the candidates a strategy flags become extra positives (multi-positive InfoNCE).

A hand-worked row, parity with a plain loop-by-loop reference on fixed tensors (loss and gradients,
both numerator forms), and composition: whatever a strategy drops (gist, random, oracle, self_filter)
is what becomes a positive, while identical texts stay out.
"""

from __future__ import annotations

import math

import pytest
import torch
from test_objectives import row_scores, value

from harness.loss.blocks import RowScores, layout, score_rows
from harness.loss.objectives import OBJECTIVES, infonce, relabel_positive

T_LN2 = 1.0 / math.log(2.0)  # e^{s/t} = 2^s


def reference(sims, target, drop, identical, temperature, numerator):
    """One row at a time, candidate by candidate, in float64: the multi-positive InfoNCE by its formula."""
    total = 0.0
    for i in range(len(sims)):
        kept = [j for j in range(len(sims[i])) if j == target[i] or not identical[i][j]]
        positives = [j for j in kept if j == target[i] or drop[i][j]]
        z = sum(math.exp(sims[i][j] / temperature) for j in kept)
        if numerator == "sum":
            total += -math.log(sum(math.exp(sims[i][p] / temperature) for p in positives) / z)
        else:
            terms = [math.log(math.exp(sims[i][p] / temperature) / z) for p in positives]
            total += -sum(terms) / len(terms)
    return total / len(sims)


def reference_grad(sims, target, drop, identical, temperature, numerator):
    """d loss / d sims of ``reference`` by central differences in float64, (b, N)."""
    grad = [[0.0] * len(row) for row in sims]
    h = 1e-6
    for i, row in enumerate(sims):
        for j in range(len(row)):
            up = [list(r) for r in sims]
            down = [list(r) for r in sims]
            up[i][j] += h
            down[i][j] -= h
            diff = reference(up, target, drop, identical, temperature, numerator)
            grad[i][j] = (diff - reference(down, target, drop, identical, temperature, numerator)) / (2 * h)
    return torch.tensor(grad)


def row_scores64(sims, temperature, drop, identical, targets) -> RowScores:
    """``test_objectives.row_scores`` in float64: the reference sums in float64, and a float32 loss
    of ~10 is good to ~1e-6 only."""
    sims = torch.tensor(sims, dtype=torch.float64, requires_grad=True)  # (b, N)
    targets = torch.tensor(targets)
    positive = torch.nn.functional.one_hot(targets, sims.shape[1]).bool()  # (b, N)
    logits = sims.masked_fill(drop | identical, -torch.inf) / temperature  # (b, N)
    return RowScores(logits, targets, drop, identical, positive, None, [sims.shape[1]], sims)


def test_hand_worked_row():
    """The docstring's row: positive s = 1, flagged s = 0, kept negative s = -1 at t = 1/ln 2."""
    drop = [[False, True, False]]
    scores = row_scores([[1.0, 0.0, -1.0]], T_LN2, drop=drop, targets=[0])
    assert value(relabel_positive(scores, temperature=T_LN2)) == pytest.approx(math.log(7 / 6), abs=1e-6)
    mean = relabel_positive(scores, temperature=T_LN2, numerator="mean")
    assert value(mean) == pytest.approx(math.log(3.5 / math.sqrt(2.0)), abs=1e-6)
    assert value(infonce(scores, temperature=T_LN2)) == pytest.approx(math.log(1.25), abs=1e-6)


@pytest.mark.parametrize("numerator", ["sum", "mean"])
def test_matches_the_reference_on_fixed_tensors(numerator):
    """5 rows x 9 candidates, t = 0.05, flags and identical texts overlapping: loss and gradients <= 1e-6."""
    generator = torch.Generator().manual_seed(31)
    b, n, t = 5, 9, 0.05
    sims = (torch.rand(b, n, generator=generator, dtype=torch.float64) * 2 - 1).tolist()
    target = [0, 1, 2, 3, 4]
    positive = torch.nn.functional.one_hot(torch.tensor(target), n).bool()
    drop = (torch.rand(b, n, generator=generator) < 0.35) & ~positive
    identical = (torch.rand(b, n, generator=generator) < 0.2) & ~positive
    assert (drop & identical).any() and (drop & ~identical).any()  # both cases are exercised
    scores = row_scores64(sims, t, drop, identical, target)
    loss = relabel_positive(scores, temperature=t, numerator=numerator)
    expected = reference(sims, target, drop.tolist(), identical.tolist(), t, numerator)
    assert abs(value(loss) - expected) <= 1e-6
    loss.backward()
    grad = reference_grad(sims, target, drop.tolist(), identical.tolist(), t, numerator)
    torch.testing.assert_close(scores.sims.grad, grad.double(), atol=1e-6, rtol=0)
    assert value(scores.sims.grad[identical].abs().sum()) == 0.0  # identical texts stay out
    assert scores.sims.grad[drop & ~identical].abs().min() > 0  # every flagged candidate is pulled


@pytest.mark.parametrize("numerator", ["sum", "mean"])
def test_nothing_flagged_is_infonce(numerator):
    torch.manual_seed(3)
    sims = (torch.rand(4, 7) * 2 - 1).tolist()
    identical = [[j == (i + 3) % 7 for j in range(7)] for i in range(4)]
    scores = row_scores(sims, 0.05, identical=identical)
    got = value(relabel_positive(scores, temperature=0.05, numerator=numerator))
    assert got == pytest.approx(value(infonce(scores, temperature=0.05)), rel=1e-6)  # float32, loss ~26


def test_registered_as_the_relabelling_objective():
    objective = OBJECTIVES.get("relabel_positive")
    assert objective.relabels and objective.params["numerator"].default == "sum"
    assert not any(o.relabels for name, o in OBJECTIVES.items() if name != "relabel_positive")


@pytest.mark.parametrize(
    "strategy,params",
    [
        ("gist", {"margin": 0.0, "margin_strategy": "absolute", "blocks": "all"}),
        ("random", {"rate": 0.3, "match": "none", "margin": None, "margin_strategy": None}),
        ("oracle", {}),
        ("self_filter", {"margin": 0.1}),
    ],
)
def test_what_a_strategy_drops_becomes_a_positive(strategy, params):
    """Through ``score_rows`` with duplicate texts: flagged = the strategy's drop minus identical texts."""
    generator = torch.Generator().manual_seed(5)
    batch, t = 8, 0.05
    student = [torch.randn(batch, 16, generator=generator, requires_grad=True) for _ in range(3)]
    guide = [torch.randn(batch, 12, generator=generator) for _ in range(3)]
    text_ids = [torch.arange(batch), torch.arange(batch) + 100, torch.arange(batch) + 200]
    text_ids[2][3] = 101  # row 3's negative repeats row 1's positive: identical for row 1
    labels = torch.tensor([0, 1, 0, 1, 2, 2, 0, 1])
    blocks = layout("st", 3)
    scores = score_rows(
        student,
        guide,
        text_ids,
        blocks,
        slice(0, batch),
        strategy=strategy,
        strategy_params=params,
        temperature=t,
        labels=labels,
        generator=torch.Generator().manual_seed(0),
    )
    assert scores.drop.any() and scores.identical.any()
    loss = relabel_positive(scores, temperature=t)
    flags = scores.drop.tolist(), scores.identical.tolist()
    expected = reference(scores.sims.detach().tolist(), scores.targets.tolist(), *flags, t, "sum")
    assert value(loss) == pytest.approx(expected, rel=1e-6, abs=1e-6)  # float32 scores
    assert value(loss) != pytest.approx(value(infonce(scores, temperature=t)), abs=1e-3)
