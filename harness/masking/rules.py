"""Masking strategies: which in-batch candidates stop being negatives (GISTEmbed, arXiv 2402.16829).

A strategy is a pure tensor function registered by name. It reads the similarities of every anchor
row to every in-batch candidate (all loss blocks side by side, see ``harness.loss``) and returns a
bool mask of candidates to **drop** (True = not a negative). It never fills ``-inf`` and never
protects the true positive or identical texts: the loss does both, once, for every strategy.

Parameters are keyword-only with defaults and a valid range (``harness.params.ParamSpec``);
``resolve_params`` checks user values and raises a one-line ``UserError`` naming the parameter and
its range.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from harness.params import ParamSpec, listed, resolve
from harness.registry import Registry


@dataclass(frozen=True)
class Candidates:
    """Similarities of each loss row to every in-batch candidate, blocks concatenated.

    Attributes:
        student: student cosine similarities, detached, ``(B, N)``.
        student_pos: student similarity of each anchor to its own positive, ``(B, 1)``.
        positive: True at each row's true positive column, ``(B, N)``.
        guide: guide similarities ``(B, N)``, or None when the loss runs without a guide.
        guide_pos: guide similarity of each anchor to its own positive ``(B, 1)``, or None.
        same_label: True where the candidate shares the anchor's label ``(B, N)``, or None
            when the batch has no ``label`` column.
        generator: the loss's seeded CPU generator, for strategies that draw random numbers.
        identical: True where the candidate is the row's own anchor or positive text (the self
            column of the anchor-anchor block, duplicates), ``(B, N)``, or None. The loss removes
            these whatever the strategy says; they are not negatives, so rates exclude them.
    """

    student: Tensor
    student_pos: Tensor
    positive: Tensor
    guide: Tensor | None = None
    guide_pos: Tensor | None = None
    same_label: Tensor | None = None
    generator: torch.Generator | None = None
    identical: Tensor | None = None


@dataclass(frozen=True)
class Strategy:
    """A registered masking strategy.

    Attributes:
        name: registry name used in experiments.
        fn: ``fn(candidates, **params) -> (B, N) bool`` drop mask.
        params: keyword parameters with defaults and ranges.
        needs_guide: whether ``candidates.guide`` must be present.
        needs_labels: whether ``candidates.same_label`` must be present.
        summary: one line for ``gist-harness ls strategies``.
        reference: where the rule comes from.
    """

    name: str
    fn: Callable[..., Tensor]
    params: Mapping[str, ParamSpec] = field(default_factory=dict)
    needs_guide: bool = False
    needs_labels: bool = False
    summary: str = ""
    reference: str = ""


STRATEGIES: Registry[Strategy] = Registry("strategy")


def _no_drop(c: Candidates) -> Tensor:
    return torch.zeros_like(c.positive)  # (B, N)


def drop_none(c: Candidates) -> Tensor:
    """Plain InfoNCE: every in-batch candidate stays a negative."""
    return _no_drop(c)


def drop_gist(c: Candidates, *, margin: float = 0.0, margin_strategy: str = "absolute") -> Tensor:
    """GISTEmbed: drop candidates the guide finds more similar than the positive (minus a margin).

    absolute: drop if ``g > g_pos - margin``; relative: drop if ``g > g_pos - |g_pos| * margin``
    (sentence-transformers 6 ``GISTEmbedLoss``; Solatorio 2024, arXiv 2402.16829, Sec. 3).
    """
    assert c.guide is not None and c.guide_pos is not None, "strategy needs a guide"
    if margin_strategy == "absolute":
        threshold = c.guide_pos - margin  # (B, 1)
    else:
        threshold = c.guide_pos - c.guide_pos.abs() * margin  # (B, 1)
    return c.guide > threshold  # (B, N)


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


def drop_random(c: Candidates, *, rate: float = 0.1, match: str = "none") -> Tensor:
    """Drop a random subset: at ``rate``, or at the rate strategy ``match`` drops on this batch.

    The control that separates "better negatives" from "fewer negatives": same count, random picks.
    Rates count real candidates only: the positive and ``identical`` texts (which the loss removes
    anyway, and which a guide always rates above the positive) are neither matched nor drawn.
    """
    eligible = ~c.positive  # (B, N)
    if c.identical is not None:
        eligible = eligible & ~c.identical
    if match != "none":
        matched = STRATEGIES.get(match).fn(c)  # (B, N), the matched strategy at its defaults
        rate = float((matched & eligible).sum()) / max(int(eligible.sum()), 1)
    draws = torch.rand(c.positive.shape, generator=c.generator).to(c.positive.device)  # (B, N)
    return (draws < rate) & eligible


def _register(name: str, fn: Callable[..., Tensor], summary: str, reference: str, **kwargs: Any) -> None:
    STRATEGIES.register(name, Strategy(name, fn, summary=summary, reference=reference, **kwargs))


_MARGIN = ParamSpec(0.0, -1.0, 2.0, help="similarity margin below the positive")
_register("none", drop_none, "plain InfoNCE, keep every candidate", "van den Oord et al. 2018")
_register(
    "gist",
    drop_gist,
    "drop if guide sim > positive's guide sim - margin (absolute or relative)",
    "GISTEmbed, arXiv 2402.16829; sentence-transformers 6 GISTEmbedLoss",
    params={"margin": _MARGIN, "margin_strategy": ParamSpec("absolute", choices=("absolute", "relative"))},
    needs_guide=True,
)
_register(
    "gist_hard",
    drop_gist_hard,
    "GIST filtering and drop the negatives the student already ranks below the positive",
    "GISTEmbed paper code, gist_negative_mode='hard'",
    params={"margin": _MARGIN},
    needs_guide=True,
)
_register(
    "threshold",
    drop_threshold,
    "drop if guide sim > a fixed cut",
    "fixed-threshold false-negative filtering",
    params={"max_guide_sim": ParamSpec(0.9, -1.0, 1.0)},
    needs_guide=True,
)
_register(
    "perc_pos",
    drop_perc_pos,
    "drop if guide sim > pct x positive's guide sim",
    "NV-Retriever TopK-PercPos, arXiv 2407.15831",
    params={"pct": ParamSpec(0.95, 0.0, 1.0)},
    needs_guide=True,
)
_register(
    "margin_pos",
    drop_margin_pos,
    "drop if guide sim > positive's guide sim - margin",
    "NV-Retriever TopK-MarginPos, arXiv 2407.15831",
    params={"margin": ParamSpec(0.05, 0.0, 1.0)},
    needs_guide=True,
)
_register(
    "self_filter",
    drop_self_filter,
    "drop if the student's own sim > its positive sim + margin (no guide)",
    "Qwen3-Embedding, arXiv 2506.05176",
    params={"margin": ParamSpec(0.1, -1.0, 2.0)},
)
_register(
    "topk",
    drop_topk,
    "drop the k most guide-similar candidates per anchor",
    "top-k guide filtering",
    params={"k": ParamSpec(1, 0, 65536)},
    needs_guide=True,
)
_register(
    "oracle",
    drop_oracle,
    "drop candidates sharing the anchor's label (needs a label column)",
    "label oracle (upper bound on false-negative removal)",
    needs_labels=True,
)
_register(
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
            help="a strategy whose per-batch drop rate to copy (at its defaults); none = use rate",
        ),
    },
)


DUPLICATES_NOTE = (
    'Identical texts: by default (train.duplicates = "drop") the loss removes every candidate whose '
    "text equals the row's anchor or positive (by text id) before any strategy runs; sentence-transformers' "
    "GISTEmbedLoss has no such rule and keeps an exact duplicate of the positive as a negative at margin 0 "
    "(its guide similarity equals the positive's, not above it). On duplicate-free batches the two agree "
    'exactly; on batches with repeated sentences they differ. duplicates = "keep" removes only each '
    "row's own anchor/positive column (the same text instance) and leaves duplicates to the strategy: "
    "GISTEmbedLoss parity."
)


def resolve_params(name: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Defaults overlaid with ``params``, checked against each parameter's range (``harness.params``).

    Raises:
        UserError: an unknown strategy or parameter, or a value outside its range.
    """
    return resolve(STRATEGIES, name, params)


def needs(name: str, params: Mapping[str, Any] | None = None) -> tuple[bool, bool]:
    """``(needs_guide, needs_labels)`` of a strategy with these parameters (``random`` inherits its match)."""
    strategy = STRATEGIES.get(name)
    resolved = resolve_params(name, params)
    if name == "random" and resolved["match"] != "none":
        return needs(resolved["match"])
    return strategy.needs_guide, strategy.needs_labels


def drop_mask(name: str, candidates: Candidates, params: Mapping[str, Any] | None = None) -> Tensor:
    """Runs strategy ``name`` on ``candidates``: the ``(B, N)`` bool mask of candidates to drop."""
    resolved = resolve_params(name, params)
    return STRATEGIES.get(name).fn(candidates, **resolved)


def listing() -> list[dict[str, Any]]:
    """One row per registered strategy, for ``gist-harness ls strategies``."""
    rows = []
    for name, strategy in STRATEGIES.items():
        rows.append(
            {
                "name": name,
                "needs_guide": strategy.needs_guide,
                "needs_labels": strategy.needs_labels,
                "params": listed(strategy.params),
                "summary": strategy.summary,
                "reference": strategy.reference,
            }
        )
    return rows
