"""Masking strategies: which in-batch candidates stop being negatives (GISTEmbed, arXiv 2402.16829).

A strategy is a pure tensor function registered by name. It reads the similarities of every anchor
row to every in-batch candidate (all loss blocks side by side, see ``harness.loss``) and returns a
bool mask of candidates to **drop** (True = not a negative). It never fills ``-inf`` and never
protects the true positive or identical texts: the loss does both, once, for every strategy.

Parameters are keyword-only with defaults and a valid range (``harness.params.ParamSpec``);
``resolve_params`` checks user values and raises a one-line ``UserError`` naming the parameter and
its range.

Modules: ``strategy`` (the ``Candidates`` record, the registry, ``drop_mask``), ``rules`` (GIST, the
literature's filters, ``oracle``, ``random``), ``controls`` (controls that drop exactly GIST's
count per row, or per row and block: ``oracle_at_rate``, ``student_topk_at_rate``,
``random_per_block``).
"""

from harness.masking.controls import (
    drop_oracle_at_rate,
    drop_random_per_block,
    drop_student_topk_at_rate,
    gist_counts,
)
from harness.masking.rules import (
    drop_gist,
    drop_gist_hard,
    drop_margin_pos,
    drop_none,
    drop_oracle,
    drop_perc_pos,
    drop_random,
    drop_self_filter,
    drop_threshold,
    drop_topk,
)
from harness.masking.strategy import (
    DUPLICATES_NOTE,
    STRATEGIES,
    Candidates,
    Strategy,
    block_columns,
    drop_mask,
    eligible,
    listing,
    needs,
    resolve_params,
)

__all__ = [
    "DUPLICATES_NOTE",
    "STRATEGIES",
    "Candidates",
    "Strategy",
    "block_columns",
    "drop_gist",
    "drop_gist_hard",
    "drop_margin_pos",
    "drop_mask",
    "drop_none",
    "drop_oracle",
    "drop_oracle_at_rate",
    "drop_perc_pos",
    "drop_random",
    "drop_random_per_block",
    "drop_self_filter",
    "drop_student_topk_at_rate",
    "drop_threshold",
    "drop_topk",
    "eligible",
    "gist_counts",
    "listing",
    "needs",
    "resolve_params",
]
