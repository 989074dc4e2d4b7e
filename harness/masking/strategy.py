"""What a masking strategy is: the candidate record it reads, its registry entry, and running one.

``Candidates`` holds what a strategy sees of a row slice (similarities, the positive, labels, the
seeded generator, each column's block); ``Strategy`` is a registry entry; ``drop_mask`` runs one by
name with checked parameters. The rules themselves live in ``harness.masking.rules`` (GIST and the
literature's filters) and ``harness.masking.controls`` (controls matched to GIST's counts).
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
        block: the block of each candidate column (``ap``, ``aa``, ``pp``, ``an1``...; see
            ``harness.loss.blocks.layout``), ``N`` names, or None when unknown (strategies that
            work per block then treat the whole row as one block).
    """

    student: Tensor
    student_pos: Tensor
    positive: Tensor
    guide: Tensor | None = None
    guide_pos: Tensor | None = None
    same_label: Tensor | None = None
    generator: torch.Generator | None = None
    identical: Tensor | None = None
    block: tuple[str, ...] | None = None


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


def register(name: str, fn: Callable[..., Tensor], summary: str, reference: str, **kwargs: Any) -> None:
    """Registers strategy ``name`` (``Strategy``'s fields as keywords)."""
    STRATEGIES.register(name, Strategy(name, fn, summary=summary, reference=reference, **kwargs))


def eligible(c: Candidates) -> Tensor:
    """(B, N) True at the real negatives: not the positive, not an ``identical`` text.

    Rates and matched counts count these only: the loss removes the others whatever a strategy says.
    """
    out = ~c.positive  # (B, N)
    if c.identical is not None:
        out = out & ~c.identical
    return out


def block_columns(c: Candidates) -> dict[str, Tensor]:
    """Each block's columns as an ``(N,)`` bool mask, in layout order; one block ``all`` without names."""
    width = c.positive.shape[1]
    names = c.block if c.block is not None else ("all",) * width
    assert len(names) == width, f"{len(names)} block names for {width} candidate columns"
    out: dict[str, Tensor] = {}
    for name in dict.fromkeys(names):
        out[name] = torch.tensor([n == name for n in names], dtype=torch.bool, device=c.positive.device)
    return out


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
    if resolved.get("unlabelled") == "random":  # labels used where present, never required
        return strategy.needs_guide, False
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
