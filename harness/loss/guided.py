"""``GuidedInBatchLoss``: the guided in-batch contrastive loss (GISTEmbed, arXiv 2402.16829).

The class is glue, and each piece of glue has its own module: the maths is ``blocks.score_rows``
(similarity blocks, the strategy's drop mask, the protected positive, identical texts removed,
temperature) and ``objectives`` (InfoNCE's cross-entropy by default). Here a forward pass takes the
collator's keys off the features (``batch``), gets the guide vectors (``guide_vectors``: the
collator's cache lookup, or the guide re-run online), gathers every rank's rows where several
processes train (``distributed``), embeds the batch with the student, directly or through GradCache
(``gradcache``, Gao et al. 2021, arXiv 2101.06983: same loss and gradients, bounded memory), then
scores the rows chunk by chunk and records the step's diagnostics (``diagnostics``, ``drop_log``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor, nn

from harness.errors import UserError
from harness.loss import distributed, gradcache
from harness.loss.batch import Batch, Collated, class_labels, gathered, split_features, token_ids
from harness.loss.blocks import Block, layout, partitions, score_rows
from harness.loss.diagnostics import DiagnosticsLog, SourceTotals, StepTally
from harness.loss.drop_log import DropLog
from harness.loss.guide_vectors import OnlineGuide, cached_vectors, check_guide
from harness.loss.objectives import OBJECTIVES, resolve_objective
from harness.loss.spec import GUIDE_MODES, LossConfig, Needs, requirements
from harness.loss.st_private import CachedLossMixin, RandContext, embed_columns


class GuidedInBatchLoss(CachedLossMixin, nn.Module):
    """Guided in-batch negatives loss for ``SentenceTransformerTrainer``.

    Configured like sentence-transformers' ``GISTEmbedLoss`` plus a masking ``strategy``, a block
    ``variant`` and a ``guide_mode`` (every setting: ``LossConfig``). With ``strategy="gist"``,
    ``variant="st"`` and ``guide_mode="online"`` it reproduces ``GISTEmbedLoss`` exactly; with
    ``strategy="none"`` and both contrast toggles off it is
    ``MultipleNegativesRankingLoss(scale=1/temperature)``.

    Args:
        model: the student being trained.
        guide: cached mode: a guide from ``harness.guides.build_guide`` (anything with
            ``embed(texts)``); online mode: a ``SentenceTransformer``; None when nothing reads a
            guide (strategies ``none``, ``self_filter``, ``oracle``, ``random``, with InfoNCE).
        config: the loss's settings (default: ``LossConfig()``).
        **settings: ``LossConfig`` fields overriding ``config`` (``temperature=0.05``,
            ``strategy="gist"``, ``strategy_params={"margin": 0.05}``...).
    """

    # CachedLossMixin declares ``int``; here None means GradCache is off (uses_gradient_cache False).
    mini_batch_size: int | None  # type: ignore[assignment]

    def __init__(
        self, model: Any, guide: Any = None, config: LossConfig | None = None, **settings: Any
    ) -> None:
        super().__init__()
        config = replace(config or LossConfig(), **settings)  # checks the choices
        self.model = model
        self.guide = guide
        self._configure(config)
        self.generator = torch.Generator().manual_seed(distributed.rank_seed(config.seed))
        self._generator_rank = distributed.rank()
        self.diagnostics = DiagnosticsLog()
        self.source_totals = SourceTotals()
        """Run totals by (source, block); names from ``source_names`` (set by the trainer's caller)."""
        self.source_names: tuple[str, ...] = ()
        self.drop_log: DropLog | None = None
        """When set, every training step's dropped candidates (``harness.loss.drop_log``)."""
        check_guide(guide, config.guide_mode, self._guide_reader())
        self.online_guide = (
            OnlineGuide(model, guide) if guide is not None and self.guide_mode == "online" else None
        )
        self._batch: Batch | None = None
        """The batch of the forward pass under way, for ``calculate_loss`` (which the mixin calls)."""

    @classmethod
    def from_config(cls, model: Any, guide: Any, record: Any) -> GuidedInBatchLoss:
        """The loss of a trial: settings read by name from ``record`` (a ``harness.config.TrainConfig``)."""
        return cls(model, guide, LossConfig.of(record))

    def _configure(self, config: LossConfig) -> None:
        """The settings as attributes, the strategy's and objective's parameters resolved."""
        self.config = config
        self.temperature = config.temperature
        self.contrast_anchors = config.contrast_anchors
        self.contrast_positives = config.contrast_positives
        self.strategy = config.strategy
        self.strategy_params = config.resolved_strategy_params()
        self.objective = config.objective
        self.objective_params = resolve_objective(config.objective, config.objective_params)
        self._objective_fn = OBJECTIVES.get(config.objective).fn
        self.needs: Needs = requirements(
            self.strategy, self.strategy_params, self.objective, self.objective_params
        )
        self.needs_guide, self.needs_labels = self.needs.guide, self.needs.labels
        self.strategy_needs_guide, self.needs_negatives = self.needs.strategy_guide, self.needs.negatives
        self.duplicates = config.duplicates
        self.variant = config.variant
        self.directions = config.directions
        self.partition = config.partition
        self.guide_mode = config.guide_mode
        self.mini_batch_size = config.mini_batch_size
        self.uses_gradient_cache = config.mini_batch_size is not None
        self.show_progress_bar = config.show_progress_bar
        self.seed = config.seed
        self.gather_across_devices = config.gather_across_devices

    # -- public -------------------------------------------------------------------------------

    @property
    def diagnostics_history(self) -> list[dict[str, float]]:
        """One dict of diagnostics per training step, in order."""
        return self.diagnostics.history

    def pop_diagnostics(self) -> dict[str, float]:
        """Means of the diagnostics over the steps since the last call (see ``diagnostics``)."""
        return self.diagnostics.pop()

    def diagnostics_by_source(self) -> dict[str, dict[str, float]]:
        """Run totals by training source and block (see ``SourceTotals.summary``)."""
        return self.source_totals.summary(self.source_names)

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        collated = split_features(sentence_features)
        batch = self._batch_of(collated, labels)
        self._batch = batch
        try:
            if self.mini_batch_size is not None:
                features = [gradcache.padded_if_static(f) for f in collated.features]
                loss = self.forward_cached(features, batch.labels)
            else:
                embeddings = embed_columns(self.model, collated.features)
                loss = self.calculate_loss([[e] for e in embeddings], batch.labels)
        finally:
            self._batch = None
        if torch.is_grad_enabled():
            self._record(batch)
        return loss

    def calculate_loss(
        self, reps: list[list[Tensor]], labels: Tensor | None = None, *, with_backward: bool = False
    ) -> Tensor:
        """The mean loss over this rank's anchors, in row chunks of ``mini_batch_size`` (GradCache step 2).

        Args:
            reps: per column, the student's embeddings of each mini-batch (one piece without GradCache).
            labels: the batch's labels, as ``forward`` handed them over.
            with_backward: GradCache: back-propagate each chunk's loss at once, return the detached sum.
        """
        assert self._batch is not None, "calculate_loss runs inside forward"
        local = [torch.cat(r).float() for r in reps]  # columns of (B, D); masks compare in fp32
        student, leaves = distributed.scoring_columns(local, self._batch.gather, with_backward)
        batch = self._batch.on(student[0].device, labels)
        batch_size, chunk = local[0].shape[0], self.mini_batch_size or local[0].shape[0]
        total = student[0].new_zeros(())
        for begin in range(0, batch_size, chunk):
            rows = slice(
                batch.offset + begin, batch.offset + min(begin + chunk, batch_size)
            )  # this rank's anchors
            loss = self._chunk_loss(student, batch, rows) * (rows.stop - rows.start) / batch_size
            if with_backward:
                loss.backward()
                loss = loss.detach()
            total = total + loss
        if leaves is not None:
            distributed.reduce_leaf_grads(local, leaves, batch.offset)
        return total

    def embed_minibatch(
        self,
        sentence_feature: dict[str, Tensor],
        begin: int,
        end: int,
        with_grad: bool,
        copy_random_state: bool,
        random_state: RandContext | None = None,
    ) -> tuple[Tensor, RandContext | None]:
        """``CachedLossMixin.embed_minibatch``, plus static students (``gradcache.padded_if_static``)."""
        return gradcache.embed_minibatch(
            self.model, sentence_feature, begin, end, with_grad, copy_random_state, random_state
        )

    def get_config_dict(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "strategy": self.strategy,
            "strategy_params": dict(self.strategy_params),
            "variant": self.variant,
            "directions": list(self.directions),
            "partition": self.partition,
            "guide_mode": self.guide_mode,
            "contrast_anchors": self.contrast_anchors,
            "contrast_positives": self.contrast_positives,
            "mini_batch_size": self.mini_batch_size,
            "gather_across_devices": self.gather_across_devices,
            "objective": self.objective,
            "objective_params": dict(self.objective_params),
            "duplicates": self.duplicates,
            "guide": getattr(self.guide, "fingerprint", type(self.guide).__name__),
        }

    @property
    def citation(self) -> str:
        return (
            "@misc{solatorio2024gistembed, title={GISTEmbed: Guided In-sample Selection of Training "
            "Negatives for Text Embedding Fine-tuning}, author={Aivin V. Solatorio}, year={2024}, "
            "eprint={2402.16829}, archivePrefix={arXiv}}"
        )

    # -- one forward pass ---------------------------------------------------------------------

    def _batch_of(self, collated: Collated, labels: Tensor | None) -> Batch:
        """What scoring the rows reads: text ids, guide vectors, labels; every rank's when gathering."""
        features = collated.features
        if len(features) < 2:
            raise ValueError(
                f"GuidedInBatchLoss needs (anchor, positive, [negatives...]), got {len(features)} column(s)"
            )
        labels = class_labels(labels)
        if self.needs_labels and labels is None:
            raise UserError(
                f"strategy {self.strategy!r} needs an integer 'label' column in the training data"
            )
        gather = self._gathers()
        text_ids = collated.text_ids
        if text_ids is None:
            text_ids = distributed.token_text_ids(features) if gather else token_ids(features)
        guide, guide_seconds = self._guide_vectors(collated)
        blocks = layout(
            self.variant, len(features), self.contrast_anchors, self.contrast_positives, self.directions
        )
        batch = Batch(text_ids, guide, labels, collated.present, collated.sources, blocks, StepTally(blocks))
        batch.tally.guide_seconds = guide_seconds
        if gather:  # every rank's columns, so masks and logits span the whole batch
            batch = gathered(batch, len(features))
        if self.drop_log is not None and torch.is_grad_enabled():  # a training step: log its drops
            self.drop_log.next_step()
            batch = replace(batch, drop_log=self.drop_log)
        return batch

    def _guide_vectors(self, collated: Collated) -> tuple[list[Tensor] | None, float]:
        """The batch's guide vectors (None when nothing reads them) and the seconds they took."""
        if self.guide is None or not self.needs_guide:
            return None, collated.guide_seconds
        if self.online_guide is None:
            return cached_vectors(collated.guide), collated.guide_seconds
        start = time.perf_counter()
        vectors = self.online_guide.embed(self.model, collated.features, self.mini_batch_size)
        return vectors, time.perf_counter() - start

    def _chunk_loss(self, student: list[Tensor], batch: Batch, rows: slice) -> Tensor:
        """The objective's mean loss over loss rows ``rows``; their masks go to the diagnostics."""
        scores = score_rows(
            student,
            batch.guide,
            batch.text_ids,
            batch.blocks,
            rows,
            strategy=self.strategy,
            strategy_params=self.strategy_params,
            temperature=self.temperature,
            labels=batch.labels,
            generator=self._rank_generator(),
            present=batch.present,
            duplicates=self.duplicates,
        )
        batch.record(scores, rows)
        if not self.config.per_direction:
            return self._objective_fn(scores, temperature=self.temperature, **self.objective_params)
        parts = partitions(scores, batch.blocks)
        losses = [self._objective_fn(p, temperature=self.temperature, **self.objective_params) for p in parts]
        return torch.stack(losses).mean()

    def _record(self, batch: Batch) -> None:
        """A training step's diagnostics: per step, and run totals by training source."""
        if batch.gather:
            distributed.reduce_tally(batch.tally)  # counts of every rank's rows
        self.diagnostics.record(batch.tally.summary())
        self.source_totals.add(batch.tally)

    # -- processes and guide ------------------------------------------------------------------

    def _gathers(self) -> bool:
        if self.gather_across_devices is None:
            return distributed.active()
        return self.gather_across_devices and distributed.active()

    def _rank_generator(self) -> torch.Generator:
        """The random strategies' generator, seeded ``seed + rank`` (the group may start after init)."""
        if self._generator_rank != distributed.rank():
            self._generator_rank = distributed.rank()
            self.generator.manual_seed(distributed.rank_seed(self.seed))
        return self.generator

    def _guide_reader(self) -> str | None:
        """What reads guide similarities, for the error without a guide ("strategy 'gist'"), or None."""
        if not self.needs.guide:
            return None
        return f"strategy {self.strategy!r}" if self.needs.strategy_guide else f"objective {self.objective!r}"


__all__ = ["GUIDE_MODES", "Block", "GuidedInBatchLoss", "LossConfig"]
