"""Absent negatives: a mixed batch's rows without a negative of their own add no candidate."""

from __future__ import annotations

import torch

from harness.loss.blocks import layout, score_rows


def _batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    columns = [torch.randn(4, 6, generator=g) for _ in range(3)]  # anchor, positive, negative: (4, 6)
    ids = [torch.arange(4) + 10 * c for c in range(3)]
    return columns, ids


def test_all_absent_negatives_equal_no_negative_column():
    columns, ids = _batch()
    with_neg = score_rows(
        columns, None, ids, layout("st", 3), slice(0, 4), strategy="none", strategy_params={}, temperature=0.05,
        present=[None, None, torch.zeros(4, dtype=torch.bool)],
    )  # fmt: skip
    without = score_rows(
        columns[:2], None, ids[:2], layout("st", 2), slice(0, 4), strategy="none", strategy_params={},
        temperature=0.05,
    )  # fmt: skip
    n = without.logits.shape[1]
    assert torch.equal(with_neg.logits[:, :n], without.logits)
    assert torch.isneginf(with_neg.logits[:, n:]).all()
    loss = torch.nn.functional.cross_entropy
    assert torch.allclose(loss(with_neg.logits, with_neg.targets), loss(without.logits, without.targets))


def test_absent_candidates_are_not_counted_as_negatives():
    columns, ids = _batch(1)
    present = torch.tensor([True, False, True, False])
    scores = score_rows(
        columns, None, ids, layout("st", 3), slice(0, 4), strategy="none", strategy_params={}, temperature=0.05,
        present=[None, None, present],
    )  # fmt: skip
    negative_block = scores.identical[:, -4:]  # (4, 4): rows x negatives of rows 0..3
    assert torch.equal(negative_block, (~present).expand(4, 4))
    assert torch.isneginf(scores.logits[:, -4:][:, ~present]).all()
    assert torch.isfinite(scores.logits[:, -4:][:, present]).all()
