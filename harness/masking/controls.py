"""Controls matched to GIST's counts: they drop exactly as many candidates as GIST, chosen otherwise.

GIST (``harness.masking.rules.drop_gist``) drops, on each row, the candidates its guide rates above
the row's positive. Each control here first computes GIST's mask with the same ``margin`` and
``margin_strategy`` to get its count, ``k`` per row (or per row and block), then picks that many
candidates by another rule, so that a difference in training tells *which* candidates matter, not
how many (issue 29, section 3):

* ``oracle_at_rate``: the same-class candidates (the label oracle), cut or filled to ``k``;
* ``student_topk_at_rate``: the ``k`` candidates the student itself rates highest (the hardest
  negatives, whatever the guide thinks of them);
* ``random_per_block``: ``k`` random candidates in each block, per row.

Counts and picks cover the real negatives only (``harness.masking.strategy.eligible``): never the
positive, never an ``identical`` text, which the loss removes anyway. Random picks read one
``(rows, N)`` draw of the loss's generator per call, each row its own numbers, like ``random``: a
row's picks do not depend on how GradCache chunks the rows, and rank ``r`` draws from ``seed + r``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from harness.masking.rules import MARGIN, MARGIN_STRATEGY, drop_gist
from harness.masking.strategy import Candidates, block_columns, eligible, register
from harness.params import ParamSpec

UNLABELLED = ParamSpec(
    "refuse",
    choices=("refuse", "random"),
    help="rows without a label: refuse the run, or drop GIST's count there at random",
)
"""``oracle_at_rate(unlabelled=...)``: what the oracle does where it knows no labels.

``"refuse"`` (the default) makes validation refuse a study with an unlabelled training source, since
the oracle would act on some rows and not others. ``"random"`` is the declared policy for a study that
mixes labelled and unlabelled sources (SNLI, MSRP beside the classification pairs): a row whose
anchor has no label (label -1, or a batch without a label column) has no same-class candidates, so the
oracle fills all of GIST's count at random from the row's real negatives, exactly ``random_per_row``
matched to GIST there; on labelled rows it is the oracle. Drop logs and reports separate the two by
source."""


def gist_counts(c: Candidates, *, margin: float = 0.0, margin_strategy: str = "absolute") -> Tensor:
    """GIST's number of dropped real negatives per row, ``(B,)`` int64."""
    return (drop_gist(c, margin=margin, margin_strategy=margin_strategy) & eligible(c)).sum(1)  # (B,)


def lowest(keys: Tensor, k: Tensor) -> Tensor:
    """(B, N) True at the ``k[i]`` smallest ``keys`` of each row ``i`` (ties: lower column first).

    Columns that must never be picked carry ``+inf``; ``k`` never exceeds a row's finite keys.
    """
    order = keys.argsort(dim=1, stable=True)  # (B, N)
    columns = torch.arange(keys.shape[1], device=keys.device).expand_as(order)  # (B, N)
    rank = torch.empty_like(order).scatter_(1, order, columns)  # (B, N) each column's place in the order
    return rank < k.unsqueeze(1)  # (B, N)


def _draws(c: Candidates) -> Tensor:
    """One uniform number per candidate, ``(B, N)``, from the loss's generator (as ``random`` draws)."""
    return torch.rand(c.positive.shape, generator=c.generator).to(c.positive.device)  # (B, N)


def drop_oracle_at_rate(
    c: Candidates, *, margin: float = 0.0, margin_strategy: str = "absolute", unlabelled: str = "refuse"
) -> Tensor:
    """The label oracle at GIST's per-row count: same-class candidates, cut or filled at random.

    Row ``i`` drops exactly ``k_i`` real negatives, ``k_i`` being GIST's count on the row. With
    ``S_i`` the row's real negatives that share its label:

    * cut, ``k_i <= |S_i|``: a uniformly random subset of ``k_i`` of ``S_i`` (only same-class drops);
    * fill, ``k_i > |S_i|``: all of ``S_i``, plus ``k_i - |S_i|`` real negatives drawn uniformly
      from the row's other-class ones.

    It tells "the guide drops false negatives" from "the guide drops as many, chosen by labels".
    With ``unlabelled="random"`` a batch without labels is all "other class" (``UNLABELLED``).
    """
    same_label = c.same_label
    if same_label is None:
        assert unlabelled == "random", "strategy needs labels"
        same_label = torch.zeros_like(c.positive)  # (B, N) no label known: no candidate shares one
    real = eligible(c)  # (B, N)
    other_class = (~(same_label & real)).float()  # (B, N) 0 same-class, 1 other: same-class first
    keys = (_draws(c) + other_class).masked_fill(~real, torch.inf)  # (B, N)
    return lowest(keys, gist_counts(c, margin=margin, margin_strategy=margin_strategy))


def drop_student_topk_at_rate(
    c: Candidates, *, margin: float = 0.0, margin_strategy: str = "absolute"
) -> Tensor:
    """The ``k_i`` real negatives the student rates highest on row ``i``, ``k_i`` = GIST's count.

    The guide only sets how many; the choice is the student's own hardest negatives (ties: lower
    column first). Against GIST it tells "false negatives" from "merely the hardest negatives".
    """
    keys = (-c.student).masked_fill(~eligible(c), torch.inf)  # (B, N) most similar first
    return lowest(keys, gist_counts(c, margin=margin, margin_strategy=margin_strategy))


def drop_random_per_block(c: Candidates, *, margin: float = 0.0, margin_strategy: str = "absolute") -> Tensor:
    """Random drops matched to GIST per row **and** per block (ap, aa, pp, an1...).

    In each block of row ``i`` it drops a uniformly random subset of the block's real negatives,
    as many as GIST drops there. Without block names the row is one block (matched per row).
    """
    real = eligible(c)  # (B, N)
    gist = drop_gist(c, margin=margin, margin_strategy=margin_strategy) & real  # (B, N)
    draws = _draws(c)  # (B, N), one draw for every block: the blocks are disjoint
    drop = torch.zeros_like(real)  # (B, N)
    for columns in block_columns(c).values():
        here = real & columns.unsqueeze(0)  # (B, N)
        drop |= lowest(draws.masked_fill(~here, torch.inf), (gist & here).sum(1))
    return drop


_MATCHED = {"margin": MARGIN, "margin_strategy": MARGIN_STRATEGY}
_SOURCE = "issue 29, section 3; GISTEmbed, arXiv 2402.16829"

register(
    "oracle_at_rate",
    drop_oracle_at_rate,
    "the label oracle cut or filled at random to GIST's per-row count (needs labels and a guide)",
    f"control: false negatives by label at GIST's count per row ({_SOURCE})",
    params={**_MATCHED, "unlabelled": UNLABELLED},
    needs_guide=True,
    needs_labels=True,
)
register(
    "student_topk_at_rate",
    drop_student_topk_at_rate,
    "drop the student's k most similar candidates per row, k = GIST's count on that row",
    f"control: the hardest negatives at GIST's count per row ({_SOURCE})",
    params=_MATCHED,
    needs_guide=True,
)
register(
    "random_per_block",
    drop_random_per_block,
    "drop random candidates, as many as GIST drops in each block of each row",
    f"control: GIST's count per row and block, random picks ({_SOURCE})",
    params=_MATCHED,
    needs_guide=True,
)
