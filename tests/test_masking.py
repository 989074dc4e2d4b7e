"""Masking strategies: a contract test over every registered strategy plus hand-checked rules."""

from __future__ import annotations

import pytest
import torch

from harness.errors import UserError
from harness.masking import STRATEGIES, Candidates, drop_mask, listing, needs, resolve_params


def make_candidates(seed: int = 0, batch: int = 4, width: int = 12, labels: bool = True) -> Candidates:
    g = torch.Generator().manual_seed(seed)
    student = torch.rand(batch, width, generator=g) * 2 - 1  # (B, N)
    guide = torch.rand(batch, width, generator=g) * 2 - 1  # (B, N)
    positive = torch.zeros(batch, width, dtype=torch.bool)
    positive[torch.arange(batch), torch.arange(batch)] = True
    same = torch.rand(batch, width, generator=g) < 0.3 if labels else None
    return Candidates(
        student=student,
        student_pos=student.diagonal().unsqueeze(1),
        positive=positive,
        guide=guide,
        guide_pos=guide.diagonal().unsqueeze(1),
        same_label=same,
        generator=torch.Generator().manual_seed(123),
    )


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_strategy_contract(name):
    """Every strategy: bool (B, N) mask, inputs untouched, deterministic under a seed."""
    c = make_candidates()
    before = {k: v.clone() for k, v in vars(c).items() if isinstance(v, torch.Tensor)}
    mask = drop_mask(name, c)
    assert mask.dtype == torch.bool and mask.shape == c.student.shape
    for key, value in before.items():
        assert torch.equal(getattr(c, key), value), f"{name} modified {key}"
    again = drop_mask(name, make_candidates())
    assert torch.equal(mask, again)


def test_gist_absolute_and_relative_by_hand():
    # guide_pos = 0.8: absolute margin 0.1 drops g > 0.7; relative 0.5 drops g > 0.8 - 0.4 = 0.4.
    guide = torch.tensor([[0.8, 0.75, 0.5, 0.3]])
    c = Candidates(
        student=torch.zeros(1, 4),
        student_pos=torch.zeros(1, 1),
        positive=torch.tensor([[True, False, False, False]]),
        guide=guide,
        guide_pos=torch.tensor([[0.8]]),
    )
    assert drop_mask("gist", c, {"margin": 0.1}).tolist() == [[True, True, False, False]]
    assert drop_mask("gist", c, {"margin": 0.5, "margin_strategy": "relative"}).tolist() == [
        [True, True, True, False]
    ]
    assert drop_mask("perc_pos", c, {"pct": 0.9}).tolist() == [[True, True, False, False]]
    assert drop_mask("threshold", c, {"max_guide_sim": 0.6}).tolist() == [[True, True, False, False]]
    assert drop_mask("topk", c, {"k": 2}).tolist() == [[False, True, True, False]]


def test_gist_hard_drops_easy_negatives():
    c = Candidates(
        student=torch.tensor([[0.5, 0.7, 0.2]]),
        student_pos=torch.tensor([[0.5]]),
        positive=torch.tensor([[True, False, False]]),
        guide=torch.tensor([[0.9, 0.1, 0.1]]),
        guide_pos=torch.tensor([[0.9]]),
    )
    # column 1: student 0.7 >= 0.5 (hard) and guide 0.1 < 0.9 -> kept; column 2 is easy -> dropped
    assert drop_mask("gist_hard", c).tolist() == [[False, False, True]]


def test_random_matches_rate_of_named_strategy():
    c = make_candidates(width=200, batch=16)
    target = (drop_mask("gist", c) & ~c.positive).float().sum() / (~c.positive).sum()
    got = (drop_mask("random", c, {"match": "gist"}) & ~c.positive).float().sum() / (~c.positive).sum()
    assert abs(float(target) - float(got)) < 0.05


def test_random_match_counts_real_candidates_only():
    """Self/duplicate columns are removed by the loss anyway: gist always 'drops' them (guide sim 1),
    so counting them would make the random control drop more real negatives than gist does."""
    c = make_candidates(width=200, batch=16)
    identical = torch.zeros_like(c.positive)
    identical[:, 100:116] = torch.eye(16, dtype=torch.bool)  # the self column of an anchor-anchor block
    guide = c.guide.clone()
    guide[identical] = 1.0  # a text is its own nearest neighbour
    c = Candidates(**{**vars(c), "guide": guide, "identical": identical})
    real = ~c.positive & ~identical
    target = (drop_mask("gist", c) & real).float().sum() / real.sum()
    random = drop_mask("random", c, {"match": "gist"})
    assert not (random & identical).any()
    assert abs(float((random & real).float().sum() / real.sum()) - float(target)) < 0.02


def test_topk_skips_the_rows_own_texts():
    """The self column has guide sim 1: top-1 must pick the best real candidate, not the anchor itself."""
    c = make_candidates(width=12, batch=4)
    identical = torch.zeros_like(c.positive)
    identical[torch.arange(4), torch.arange(4) + 4] = True
    guide = c.guide.clone()
    guide[identical] = 1.0
    c = Candidates(**{**vars(c), "guide": guide, "identical": identical})
    drop = drop_mask("topk", c, {"k": 1})
    real = guide.masked_fill(c.positive | identical, -torch.inf)
    assert drop.sum() == 4 and not (drop & identical).any()
    assert drop.nonzero()[:, 1].tolist() == real.argmax(dim=1).tolist()


def test_bad_params_name_the_param_and_range():
    with pytest.raises(UserError, match=r"strategy 'perc_pos': pct must be in \[0, 1\], got 1.5"):
        resolve_params("perc_pos", {"pct": 1.5})
    with pytest.raises(UserError, match="has no parameter 'k'"):
        resolve_params("gist", {"k": 3})
    with pytest.raises(UserError, match="margin_strategy must be one of absolute, relative"):
        resolve_params("gist", {"margin_strategy": "percent"})
    with pytest.raises(UserError, match="Did you mean 'gist'"):
        resolve_params("gits")


def test_needs_and_listing():
    assert needs("gist") == (True, False)
    assert needs("oracle") == (False, True)
    assert needs("random", {"match": "oracle"}) == (False, True)
    rows = listing()
    assert [r["name"] for r in rows] == STRATEGIES.names()
    assert all(set(r) == set(rows[0]) for r in rows)
