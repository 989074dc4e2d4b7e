"""The masking rules: GIST, the literature's false-negative filters, and the first controls.

Each rule is a pure function of ``Candidates`` (``harness.masking.strategy``) with keyword-only
parameters, registered by name with its summary, reference and parameter ranges.
"""

from __future__ import annotations

import torch
from torch import Tensor

from harness.masking.strategy import STRATEGIES, Candidates, register, resolve_params
from harness.params import ParamSpec


def _no_drop(c: Candidates) -> Tensor:
    return torch.zeros_like(c.positive)  # (B, N)


def drop_none(c: Candidates) -> Tensor:
    """Plain InfoNCE: every in-batch candidate stays a negative."""
    return _no_drop(c)


def drop_gist(
    c: Candidates, *, margin: float = 0.0, margin_strategy: str = "absolute", blocks: str = "all"
) -> Tensor:
    """GISTEmbed: drop candidates the guide finds more similar than the positive (minus a margin).

    absolute: drop if ``g > g_pos - margin``; relative: drop if ``g > g_pos - |g_pos| * margin``
    (sentence-transformers 6 ``GISTEmbedLoss``; Solatorio 2024, arXiv 2402.16829, Sec. 3).
    ``blocks`` applies the rule to one block only (``ap``, ``aa``, ``pp``, ``an``: every
    anchor-negative block, or ``pa``: the doc-to-query rows of ``variant = "mnrl"``) and keeps every
    candidate of the others: which block's drops matter.
    """
    assert c.guide is not None and c.guide_pos is not None, "strategy needs a guide"
    if margin_strategy == "absolute":
        threshold = c.guide_pos - margin  # (B, 1)
    else:
        threshold = c.guide_pos - c.guide_pos.abs() * margin  # (B, 1)
    drop = c.guide > threshold  # (B, N)
    if blocks == "all":
        return drop
    return drop & in_block(c, blocks).unsqueeze(0)  # (B, N)


def in_block(c: Candidates, name: str) -> Tensor:
    """(N,) True at the columns of block ``name``; ``an`` is every anchor-negative block (an1, an2...)."""
    assert c.block is not None, (
        f"blocks={name!r} needs the candidates' block names (harness.loss scores them)"
    )
    hits = [b == name or (name == "an" and b.startswith("an")) for b in c.block]
    return torch.tensor(hits, dtype=torch.bool, device=c.positive.device)  # (N,)


def drop_gist_hard(c: Candidates, *, margin: float = 0.0) -> Tensor:
    """The paper code's ``hard`` negative mode: GIST filtering plus dropping the easy negatives.

    A candidate stays a negative only if the guide ranks it below the positive and the student
    still ranks it at or above the positive (``student >= student_pos``), i.e. a hard negative.
    """
    assert c.guide is not None and c.guide_pos is not None, "strategy needs a guide"
    guide_drop = c.guide > c.guide_pos - margin  # (B, N)
    easy = c.student < c.student_pos  # (B, N)
    return guide_drop | easy


def drop_threshold(c: Candidates, *, max_guide_sim: float = 0.9) -> Tensor:
    """Drop candidates whose guide similarity to the row's text exceeds a fixed cut."""
    assert c.guide is not None, "strategy needs a guide"
    return c.guide > max_guide_sim  # (B, N)


def drop_perc_pos(c: Candidates, *, pct: float = 0.95) -> Tensor:
    """NV-Retriever TopK-PercPos (Moreira et al. 2024, arXiv 2407.15831): drop if ``g > pct * g_pos``."""
    assert c.guide is not None and c.guide_pos is not None, "strategy needs a guide"
    return c.guide > pct * c.guide_pos  # (B, N)


def drop_margin_pos(c: Candidates, *, margin: float = 0.05) -> Tensor:
    """NV-Retriever TopK-MarginPos (arXiv 2407.15831): drop if ``g > g_pos - margin``."""
    assert c.guide is not None and c.guide_pos is not None, "strategy needs a guide"
    return c.guide > c.guide_pos - margin  # (B, N)


def drop_self_filter(c: Candidates, *, margin: float = 0.1) -> Tensor:
    """Qwen3-Embedding (arXiv 2506.05176): drop if the student's own ``s > s_pos + margin``; no guide."""
    return c.student > c.student_pos + margin  # (B, N)


def drop_topk(c: Candidates, *, k: int = 1) -> Tensor:
    """Drop the ``k`` most guide-similar candidates of each row (the positive and ``identical`` texts,
    which the loss removes anyway, are not counted)."""
    assert c.guide is not None, "strategy needs a guide"
    drop = _no_drop(c)  # (B, N)
    k = min(int(k), c.guide.shape[1] - 1)
    if k <= 0:
        return drop
    skip = (
        c.positive if c.identical is None else c.positive | c.identical
    )  # a text's own copy is not a candidate
    ranked = c.guide.masked_fill(skip, -torch.inf)  # (B, N)
    top = ranked.topk(k, dim=1).indices  # (B, k)
    return drop.scatter(1, top, True)


def drop_oracle(c: Candidates) -> Tensor:
    """Drop candidates sharing the anchor's label: the true false negatives, where labels exist."""
    assert c.same_label is not None, "strategy needs labels"
    return c.same_label.clone()  # (B, N)


def drop_random(
    c: Candidates,
    *,
    rate: float = 0.1,
    match: str = "none",
    margin: float | None = None,
    margin_strategy: str | None = None,
) -> Tensor:
    """Drop a random subset: at ``rate``, or at the rate strategy ``match`` drops on this batch.

    ``margin`` and ``margin_strategy`` go to the matched strategy where it has them (unset: its
    defaults), so the control runs at the matched arm's setting (an arm that ``follows`` it takes them).

    The control that separates "better negatives" from "fewer negatives": same count, random picks.
    Rates count real candidates only: the positive and ``identical`` texts (which the loss removes
    anyway, and which a guide always rates above the positive) are neither matched nor drawn.
    """
    eligible = ~c.positive  # (B, N)
    if c.identical is not None:
        eligible = eligible & ~c.identical
    if match != "none":
        settings = {"margin": margin, "margin_strategy": margin_strategy}
        known = STRATEGIES.get(match).params
        given = {k: v for k, v in settings.items() if v is not None and k in known}
        matched = STRATEGIES.get(match).fn(c, **resolve_params(match, given))  # (B, N)
        rate = float((matched & eligible).sum()) / max(int(eligible.sum()), 1)
    draws = torch.rand(c.positive.shape, generator=c.generator).to(c.positive.device)  # (B, N)
    return (draws < rate) & eligible


MARGIN = ParamSpec(0.0, -1.0, 2.0, help="similarity margin below the positive")
MARGIN_STRATEGY = ParamSpec("absolute", choices=("absolute", "relative"))
GIST_BLOCKS = ParamSpec(
    "all",
    choices=("all", "ap", "aa", "pp", "an", "pa"),
    help="apply the rule to one block only (an: every anchor-negative block; pa: doc_to_query); all: every block",
)
register("none", drop_none, "plain InfoNCE, keep every candidate", "van den Oord et al. 2018")
register(
    "gist",
    drop_gist,
    "drop if guide sim > positive's guide sim - margin (absolute or relative), in all blocks or one",
    "GISTEmbed, arXiv 2402.16829; sentence-transformers 6 GISTEmbedLoss",
    params={"margin": MARGIN, "margin_strategy": MARGIN_STRATEGY, "blocks": GIST_BLOCKS},
    needs_guide=True,
)
register(
    "gist_hard",
    drop_gist_hard,
    "GIST filtering and drop the negatives the student already ranks below the positive",
    "GISTEmbed paper code, gist_negative_mode='hard'",
    params={"margin": MARGIN},
    needs_guide=True,
)
register(
    "threshold",
    drop_threshold,
    "drop if guide sim > a fixed cut",
    "fixed-threshold false-negative filtering",
    params={"max_guide_sim": ParamSpec(0.9, -1.0, 1.0)},
    needs_guide=True,
)
register(
    "perc_pos",
    drop_perc_pos,
    "drop if guide sim > pct x positive's guide sim",
    "NV-Retriever TopK-PercPos, arXiv 2407.15831",
    params={"pct": ParamSpec(0.95, 0.0, 1.0)},
    needs_guide=True,
)
register(
    "margin_pos",
    drop_margin_pos,
    "drop if guide sim > positive's guide sim - margin",
    "NV-Retriever TopK-MarginPos, arXiv 2407.15831",
    params={"margin": ParamSpec(0.05, 0.0, 1.0)},
    needs_guide=True,
)
register(
    "self_filter",
    drop_self_filter,
    "drop if the student's own sim > its positive sim + margin (no guide)",
    "Qwen3-Embedding, arXiv 2506.05176",
    params={"margin": ParamSpec(0.1, -1.0, 2.0)},
)
register(
    "topk",
    drop_topk,
    "drop the k most guide-similar candidates per anchor",
    "top-k guide filtering",
    params={"k": ParamSpec(1, 0, 65536)},
    needs_guide=True,
)
register(
    "oracle",
    drop_oracle,
    "drop candidates sharing the anchor's label (needs a label column)",
    "label oracle (upper bound on false-negative removal)",
    needs_labels=True,
)
register(
    "random",
    drop_random,
    "drop a random subset at `rate`, or at the rate strategy `match` drops on the batch",
    "control: fewer negatives vs better negatives",
    params={
        "rate": ParamSpec(0.1, 0.0, 1.0),
        "match": ParamSpec(
            "none",
            choices=(
                "none",
                "gist",
                "gist_hard",
                "threshold",
                "perc_pos",
                "margin_pos",
                "self_filter",
                "topk",
                "oracle",
            ),
            help="a strategy whose per-batch drop rate to copy; none = use rate",
        ),
        "margin": ParamSpec(None, -1.0, 2.0, help="the matched strategy's margin (unset: its default)"),
        "margin_strategy": ParamSpec(
            None,
            choices=("absolute", "relative"),
            help="the matched strategy's margin_strategy (unset: its default)",
        ),
    },
)
