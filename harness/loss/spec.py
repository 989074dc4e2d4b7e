"""What one arm's loss is (``LossConfig``) and what it reads besides the student (``Needs``).

``LossConfig`` holds the loss's settings as an experiment's ``[train]`` table names them and checks
the choices on construction; ``LossConfig.of`` reads them by name from any record that has them (a
``harness.config.TrainConfig``), so the loss needs no import of the config layer above it.

``requirements`` is the one place that decides whether an arm needs a guide (its masking strategy or
its loss objective reads guide similarities), labels or a negative column; ``needs_guide`` answers the
first question for the study pipeline, which builds no guide for an arm that reads none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from harness.errors import UserError
from harness.loss.blocks import DIRECTIONS, DUPLICATES, PARTITIONS, VARIANTS
from harness.loss.objectives import objective_needs
from harness.masking import STRATEGIES, needs, resolve_params

GUIDE_MODES = ("cached", "online")
_RUNTIME = ("gather_across_devices", "show_progress_bar")
"""``LossConfig`` fields that are no experiment settings: ``of`` leaves them at their defaults."""


@dataclass(frozen=True)
class LossConfig:
    """The settings of one ``GuidedInBatchLoss``; choices and ranges are checked on construction.

    Attributes:
        temperature: logits are cosine / temperature (``scale = 1 / temperature``).
        margin_strategy: ``gist``'s "absolute" or "relative" margin (None = the strategy default).
        margin: the strategy's ``margin`` parameter, where it has one (None = its default).
        contrast_anchors: add the anchor-anchor block (``variant="st"``).
        contrast_positives: add the positive-positive block (``variant="st"``).
        strategy: registered masking strategy (``gist-harness ls strategies``).
        strategy_params: the strategy's parameters; override ``margin``/``margin_strategy``.
        variant: "st" (sentence-transformers 6 blocks), "official" (the paper code's
            qp, qn, qq, pp blocks; combine with ``strategy="gist_hard"`` for its hard mode) or
            "mnrl" (the blocks of ``directions``, as ``MultipleNegativesRankingLoss``).
        directions: ``variant="mnrl"``: MNRL's interaction terms, "query_to_doc" (ap, an*, always),
            "query_to_query" (aa), "doc_to_query" (pa), "doc_to_doc" (pp, pn*); GTE's improved
            contrastive loss (Li et al. 2023, arXiv 2308.03281) is all four.
        partition: ``variant="mnrl"``: "joint" (one softmax over every direction) or
            "per_direction" (one per direction, averaged; query_to_doc and doc_to_query only).
        guide_mode: "cached" (guide vectors from the collator's cache lookup by exact text) or
            "online" (the guide re-run on every batch, retokenised like ``GISTEmbedLoss``).
        mini_batch_size: when set, GradCache with mini-batches of this many texts.
        seed: seed of the generator used by random strategies (``seed + rank`` on rank ``rank``).
        objective: registered loss objective applied after the mask (``gist-harness ls objectives``):
            "infonce" (cross-entropy, the default), "hardness", "debiased", "distill_kl", "margin_mse",
            "relabel_positive".
        objective_params: the objective's parameters (defaults and ranges in ``ls objectives``).
        duplicates: "drop" (default) removes candidates with the text of the row's anchor or
            positive; "keep" leaves exact duplicates to the strategy, as ``GISTEmbedLoss`` does.
        gather_across_devices: score each rank's anchors against the whole batch of every rank
            (see ``harness.loss.distributed``); None: whenever a process group of several
            processes is initialised. Off, each process is its own small batch.
        show_progress_bar: GradCache mini-batch progress bars.
    """

    temperature: float = 0.01
    margin_strategy: str | None = None
    margin: float | None = None
    contrast_anchors: bool = True
    contrast_positives: bool = True
    strategy: str = "gist"
    strategy_params: Mapping[str, Any] | None = field(default_factory=dict)
    variant: str = "st"
    directions: tuple[str, ...] = ("query_to_doc",)
    partition: str = "joint"
    guide_mode: str = "cached"
    mini_batch_size: int | None = None
    seed: int = 0
    objective: str = "infonce"
    objective_params: Mapping[str, Any] | None = field(default_factory=dict)
    duplicates: str = "drop"
    gather_across_devices: bool | None = None
    show_progress_bar: bool = False

    def __post_init__(self) -> None:
        _check_choice("variant", self.variant, VARIANTS)
        _check_choice("duplicates", self.duplicates, DUPLICATES)
        _check_choice("guide_mode", self.guide_mode, GUIDE_MODES)
        if not self.temperature > 0:
            raise UserError(f"temperature must be > 0, got {self.temperature!r}")
        if self.mini_batch_size is not None and self.mini_batch_size < 1:
            raise UserError(
                f"mini_batch_size must be a positive integer or None, got {self.mini_batch_size!r}"
            )
        if self.variant == "official" and not (self.contrast_anchors and self.contrast_positives):
            raise UserError("variant='official' always uses the qp, qn, qq, pp blocks: leave contrast_* True")
        _check_directions(self)

    @property
    def per_direction(self) -> bool:
        """Whether each direction of a row has its own softmax (``blocks.partitions``)."""
        return self.partition == "per_direction"

    @classmethod
    def of(cls, record: Any) -> LossConfig:
        """The settings of ``record`` (a ``harness.config.TrainConfig``), read by attribute name."""
        values = {f.name: getattr(record, f.name) for f in fields(cls) if f.name not in _RUNTIME}
        for key in ("strategy_params", "objective_params"):
            values[key] = dict(values[key])
        values["directions"] = tuple(values["directions"])
        return cls(**values)

    def resolved_strategy_params(self) -> dict[str, Any]:
        """The strategy's parameters: its defaults, ``margin``/``margin_strategy``, ``strategy_params``."""
        if self.strategy not in STRATEGIES:
            raise UserError(STRATEGIES.unknown_message(self.strategy))
        known = STRATEGIES.get(self.strategy).params
        merged: dict[str, Any] = {}
        # GISTEmbedLoss-style margin arguments feed the strategy's parameters of the same name. Passing
        # GISTEmbedLoss's defaults (absolute, 0.0) to a strategy without them is harmless; other
        # values are errors.
        for key, value, default in (
            ("margin", self.margin, 0.0),
            ("margin_strategy", self.margin_strategy, "absolute"),
        ):
            if value is not None and key in known:
                merged[key] = value
            elif value is not None and value != default:
                raise UserError(f"strategy {self.strategy!r} has no parameter {key!r}; got {key}={value!r}")
        merged.update(self.strategy_params or {})
        return resolve_params(self.strategy, merged)


@dataclass(frozen=True)
class Needs:
    """What a loss reads besides the student's embeddings.

    Attributes:
        strategy_guide: the masking strategy reads guide similarities.
        objective_guide: the loss objective reads guide similarities.
        labels: the strategy needs an integer ``label`` column.
        negatives: the objective needs an explicit negative column.
    """

    strategy_guide: bool
    objective_guide: bool
    labels: bool
    negatives: bool

    @property
    def guide(self) -> bool:
        """Whether anything reads guide similarities: without that, no guide is built or run."""
        return self.strategy_guide or self.objective_guide


def requirements(
    strategy: str,
    strategy_params: Mapping[str, Any] | None,
    objective: str,
    objective_params: Mapping[str, Any] | None,
) -> Needs:
    """What an arm with this strategy and objective reads (parameters checked against their ranges).

    Raises:
        UserError: an unknown strategy or objective, or a parameter that does not fit.
    """
    strategy_guide, labels = needs(strategy, strategy_params)
    objective_guide, negatives = objective_needs(objective, objective_params)
    return Needs(strategy_guide, objective_guide, labels, negatives)


def needs_guide(
    strategy: str,
    strategy_params: Mapping[str, Any] | None,
    objective: str,
    objective_params: Mapping[str, Any] | None,
) -> bool:
    """Whether the strategy or the loss objective reads guide similarities (InfoNCE, oracle... do not)."""
    return requirements(strategy, strategy_params, objective, objective_params).guide


def _check_choice(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise UserError(f"{name} must be one of {', '.join(valid)}, got {value!r}")


def _check_directions(config: LossConfig) -> None:
    """``directions`` and ``partition``: valid names, as ``MultipleNegativesRankingLoss`` checks them."""
    _check_choice("partition", config.partition, PARTITIONS)
    bad = [d for d in config.directions if d not in DIRECTIONS]
    if bad:
        raise UserError(f"directions: unknown direction {bad[0]!r}; valid: {', '.join(DIRECTIONS)}")
    if config.variant != "mnrl":
        if tuple(config.directions) != ("query_to_doc",) or config.partition != "joint":
            raise UserError(
                f"directions and partition apply to variant='mnrl', got variant={config.variant!r}"
            )
        return
    if "query_to_doc" not in config.directions:
        raise UserError("directions must include 'query_to_doc' (it holds the positive pair)")
    if len(set(config.directions)) != len(config.directions):
        raise UserError(f"directions: each direction once, got {list(config.directions)}")
    if not (config.contrast_anchors and config.contrast_positives):
        raise UserError("variant='mnrl' takes its blocks from directions: leave contrast_* True")
    same_type = sorted(set(config.directions) & {"query_to_query", "doc_to_doc"})
    if config.per_direction and same_type:
        raise UserError(
            f"partition='per_direction' needs every direction to hold the positive pair; {same_type[0]} "
            "does not: use partition='joint'"
        )
