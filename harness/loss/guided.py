"""``GuidedInBatchLoss``: the guided in-batch contrastive loss (GISTEmbed, arXiv 2402.16829).

The module is glue: it embeds the batch with the student, gets guide vectors (from the collator's
cache lookup, or by re-running the guide online), scores the rows with ``blocks.score_rows`` (all
the maths) and applies the loss objective (``objectives``: InfoNCE's cross-entropy by default, or
hardness weighting, the debiased loss, distillation from the guide). With ``mini_batch_size`` it
runs GradCache (Gao et al. 2021, arXiv 2101.06983) through sentence-transformers' ``CachedLossMixin``: same loss and gradients on
the same batch, bounded memory.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from contextlib import nullcontext
from typing import Any, cast

import torch
import torch.nn.functional as F
from sentence_transformers.base.losses.gradcache import CachedLossMixin, RandContext, _create_minibatch
from sentence_transformers.base.losses.merged_forward import embed_columns
from sentence_transformers.util import batch_to_device
from torch import Tensor, nn

from harness.errors import UserError
from harness.loss import distributed
from harness.loss.blocks import DUPLICATES, VARIANTS, Block, layout, score_rows
from harness.loss.collator import GUIDE_EMBEDDING, GUIDE_SECONDS, PRESENT, SOURCE, TEXT_ID
from harness.loss.diagnostics import DiagnosticsLog, SourceTotals, StepTally
from harness.loss.drop_log import DropLog
from harness.loss.objectives import OBJECTIVES, objective_needs, resolve_objective
from harness.masking import STRATEGIES, needs, resolve_params

GUIDE_MODES = ("cached", "online")


class GuidedInBatchLoss(CachedLossMixin, nn.Module):
    """Guided in-batch negatives loss for ``SentenceTransformerTrainer``.

    Constructed like sentence-transformers' ``GISTEmbedLoss`` plus a masking ``strategy``, a block
    ``variant`` and a ``guide_mode``. With ``strategy="gist"``, ``variant="st"`` and
    ``guide_mode="online"`` it reproduces ``GISTEmbedLoss`` exactly; with ``strategy="none"`` and
    both contrast toggles off it is ``MultipleNegativesRankingLoss(scale=1/temperature)``.

    Args:
        model: the student being trained.
        guide: cached mode: a guide from ``harness.guides.build_guide`` (anything with
            ``embed(texts)``); online mode: a ``SentenceTransformer``; None when the strategy
            needs no guide (``none``, ``self_filter``, ``oracle``, ``random``).
        temperature: logits are cosine / temperature (``scale = 1 / temperature``).
        margin_strategy: ``gist``'s "absolute" or "relative" margin (None = the strategy default).
        margin: the strategy's ``margin`` parameter, where it has one (None = its default).
        contrast_anchors: add the anchor-anchor block (``variant="st"``).
        contrast_positives: add the positive-positive block (``variant="st"``).
        strategy: registered masking strategy (``gist-harness ls strategies``).
        strategy_params: the strategy's parameters; override ``margin``/``margin_strategy``.
        variant: "st" (sentence-transformers 6 blocks) or "official" (the paper code's
            qp, qn, qq, pp blocks; combine with ``strategy="gist_hard"`` for its hard mode).
        guide_mode: "cached" (guide vectors from the collator's cache lookup by exact text) or
            "online" (the guide re-run on every batch, retokenised like ``GISTEmbedLoss``).
        mini_batch_size: when set, GradCache with mini-batches of this many texts.
        seed: seed of the generator used by random strategies (``seed + rank`` on rank ``rank``).
        gather_across_devices: score each rank's anchors against the whole batch of every rank
            (see ``harness.loss.distributed``); None: whenever a process group of several
            processes is initialised. Off, each process is its own small batch.
        show_progress_bar: GradCache mini-batch progress bars.
        objective: registered loss objective applied after the mask (``gist-harness ls objectives``):
            "infonce" (cross-entropy, the default), "hardness", "debiased", "distill_kl", "margin_mse".
        objective_params: the objective's parameters (defaults and ranges in ``ls objectives``).
        duplicates: "drop" (default) removes candidates with the text of the row's anchor or
            positive; "keep" leaves exact duplicates to the strategy, as ``GISTEmbedLoss`` does.
    """

    # CachedLossMixin declares ``int``; here None means GradCache is off (uses_gradient_cache False).
    mini_batch_size: int | None  # type: ignore[assignment]

    def __init__(
        self,
        model: Any,
        guide: Any = None,
        temperature: float = 0.01,
        margin_strategy: str | None = None,
        margin: float | None = None,
        contrast_anchors: bool = True,
        contrast_positives: bool = True,
        strategy: str = "gist",
        strategy_params: Mapping[str, Any] | None = None,
        variant: str = "st",
        guide_mode: str = "cached",
        mini_batch_size: int | None = None,
        seed: int = 0,
        show_progress_bar: bool = False,
        gather_across_devices: bool | None = None,
        objective: str = "infonce",
        objective_params: Mapping[str, Any] | None = None,
        duplicates: str = "drop",
    ) -> None:
        super().__init__()
        _check_choice("variant", variant, VARIANTS)
        _check_choice("duplicates", duplicates, DUPLICATES)
        _check_choice("guide_mode", guide_mode, GUIDE_MODES)
        if not temperature > 0:
            raise UserError(f"temperature must be > 0, got {temperature!r}")
        if mini_batch_size is not None and mini_batch_size < 1:
            raise UserError(f"mini_batch_size must be a positive integer or None, got {mini_batch_size!r}")
        if variant == "official" and not (contrast_anchors and contrast_positives):
            raise UserError("variant='official' always uses the qp, qn, qq, pp blocks: leave contrast_* True")
        self.model = model
        self.guide = guide
        self.temperature = temperature
        self.contrast_anchors = contrast_anchors
        self.contrast_positives = contrast_positives
        self.strategy = strategy
        self.strategy_params = _strategy_params(strategy, strategy_params, margin, margin_strategy)
        self.needs_guide, self.needs_labels = needs(strategy, self.strategy_params)
        self.objective = objective
        self.objective_params = resolve_objective(objective, objective_params)
        self._objective_fn = OBJECTIVES.get(objective).fn
        objective_guide, self.needs_negatives = objective_needs(objective, self.objective_params)
        self.strategy_needs_guide = self.needs_guide
        self.needs_guide = self.needs_guide or objective_guide
        self.duplicates = duplicates
        self.variant = variant
        self.guide_mode = guide_mode
        self.mini_batch_size = mini_batch_size
        self.uses_gradient_cache = mini_batch_size is not None
        self.show_progress_bar = show_progress_bar
        self.seed = seed
        self.gather_across_devices = gather_across_devices
        self.generator = torch.Generator().manual_seed(distributed.rank_seed(seed))
        self._generator_rank = distributed.rank()
        self.diagnostics = DiagnosticsLog()
        self.source_totals = SourceTotals()
        """Run totals by (source, block); names from ``source_names`` (set by the trainer's caller)."""
        self.source_names: tuple[str, ...] = ()
        self.drop_log: DropLog | None = None
        """When set, every training step's dropped candidates (``harness.loss.drop_log``)."""
        self._check_guide()
        self._context: dict[str, Any] = {}

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
        features, text_ids, cached_guide, guide_seconds, extra = _split_features(sentence_features)
        if len(features) < 2:
            raise ValueError(
                f"GuidedInBatchLoss needs (anchor, positive, [negatives...]), got {len(features)} column(s)"
            )
        if labels is not None and (labels.is_floating_point() or labels.ndim != 1):
            labels = None  # scores (e.g. STS), not class labels: nothing to compare
        if self.needs_labels and labels is None:
            raise UserError(
                f"strategy {self.strategy!r} needs an integer 'label' column in the training data"
            )
        gather = self._gathers()
        if text_ids is None:
            text_ids = distributed.token_text_ids(features) if gather else _token_ids(features)
        guide_embeddings, guide_seconds = self._guide_embeddings(features, cached_guide, guide_seconds)
        offset = 0
        if gather:  # every rank's columns, so masks and logits span the whole batch
            local_rows = int(text_ids[0].shape[0])
            distributed.check_same_layout(
                local_rows, len(features), text_ids[0].device, labels=labels, guide=guide_embeddings, **extra
            )
            text_ids = [distributed.gather(i) for i in text_ids]
            guide_embeddings = distributed.gather_optional(guide_embeddings)
            labels = distributed.gather(labels) if labels is not None else None
            extra = distributed.gather_extra(extra)
            offset = distributed.rank() * local_rows
        blocks = layout(self.variant, len(features), self.contrast_anchors, self.contrast_positives)
        tally = StepTally(blocks)
        tally.guide_seconds = guide_seconds
        self._context = {
            "guide": guide_embeddings,
            "ids": text_ids,
            "blocks": blocks,
            "tally": tally,
            **extra,
        }
        self._context.update(gather=gather, offset=offset)
        if self.drop_log is not None and torch.is_grad_enabled():  # a training step: log its drops
            self.drop_log.next_step()
            self._context["drop_log"] = self.drop_log
        try:
            if self.mini_batch_size is not None:
                loss = self.forward_cached([_padded_if_static(f) for f in features], labels)
            else:
                embeddings = embed_columns(self.model, features)
                loss = self.calculate_loss([[e] for e in embeddings], labels)
        finally:
            self._context = {}
        if torch.is_grad_enabled():
            if gather:
                distributed.reduce_tally(tally)  # counts of every rank's rows
            self.diagnostics.record(tally.summary())
            self.source_totals.add(tally)
        return loss

    def calculate_loss(
        self, reps: list[list[Tensor]], labels: Tensor | None = None, *, with_backward: bool = False
    ) -> Tensor:
        """Cross-entropy over the whole batch, in row chunks of ``mini_batch_size`` (GradCache step 2)."""
        student = [torch.cat(r).float() for r in reps]  # columns of (B, D); masks compare in fp32
        ctx = self._context
        batch_size, offset, local, leaves = student[0].shape[0], ctx.get("offset", 0), student, None
        if ctx.get("gather"):  # this rank's B anchors against every rank's columns, (N * B, D)
            if with_backward:  # GradCache: per-chunk backward into leaves, summed over ranks below
                student = leaves = distributed.leaf_columns(local)
            elif torch.is_grad_enabled():
                student = [distributed.gather_with_grad(s) for s in local]
            else:
                student = [distributed.gather(s) for s in local]
        device = student[0].device
        guide = [g.to(device) for g in ctx["guide"]] if ctx["guide"] is not None else None
        ids = [i.to(device) for i in ctx["ids"]]
        labels = labels.to(device) if labels is not None else None
        chunk = self.mini_batch_size or batch_size
        total = student[0].new_zeros(())
        for begin in range(0, batch_size, chunk):
            rows = slice(offset + begin, offset + min(begin + chunk, batch_size))  # this rank's anchors
            scores = score_rows(
                student,
                guide,
                ids,
                ctx["blocks"],
                rows,
                strategy=self.strategy,
                strategy_params=self.strategy_params,
                temperature=self.temperature,
                labels=labels,
                generator=self._rank_generator(),
                present=ctx.get("present"),
                duplicates=self.duplicates,
            )
            sources = ctx.get("sources")
            ctx["tally"].add(scores, sources[rows] if sources is not None else None)
            if "drop_log" in ctx:
                ctx["drop_log"].add(
                    scores, ctx["blocks"], ids, rows, sources[rows] if sources is not None else None
                )
            objective = self._objective_fn(scores, temperature=self.temperature, **self.objective_params)
            loss = objective * (rows.stop - rows.start) / batch_size
            if with_backward:
                loss.backward()
                loss = loss.detach()
            total = total + loss
        if leaves is not None:
            distributed.reduce_leaf_grads(local, leaves, offset)
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
        """``CachedLossMixin.embed_minibatch``, plus static students (see ``_padded_if_static``)."""
        grad_context = nullcontext if with_grad else torch.no_grad
        random_state_context = nullcontext() if random_state is None else random_state
        minibatch = _flat_if_static(_create_minibatch(sentence_feature, begin, end))
        with random_state_context, grad_context():
            random_state = RandContext(*minibatch.values()) if copy_random_state else None
            reps = self.model(minibatch)["sentence_embedding"]  # (b, D)
        return reps, random_state

    def get_config_dict(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "strategy": self.strategy,
            "strategy_params": dict(self.strategy_params),
            "variant": self.variant,
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

    # -- processes ----------------------------------------------------------------------------

    def _gathers(self) -> bool:
        if self.gather_across_devices is None:
            return distributed.active()
        return self.gather_across_devices and distributed.active()

    def _rank_generator(self) -> torch.Generator:
        """The random strategies' generator, seeded ``seed + rank`` (the group may start after ``__init__``)."""
        if self._generator_rank != distributed.rank():
            self._generator_rank = distributed.rank()
            self.generator.manual_seed(distributed.rank_seed(self.seed))
        return self.generator

    # -- guide --------------------------------------------------------------------------------

    def _check_guide(self) -> None:
        if self.guide is None:
            if self.needs_guide:
                user = (
                    f"strategy {self.strategy!r}"
                    if self.strategy_needs_guide
                    else f"objective {self.objective!r}"
                )
                raise UserError(f"{user} needs a guide; got guide=None")
            return
        if self.guide_mode == "cached" and not callable(getattr(self.guide, "embed", None)):
            raise UserError(
                "guide_mode='cached' needs a guide from harness.guides.build_guide(...) "
                f"(with .embed(texts)), got {type(self.guide).__name__}; or use guide_mode='online'"
            )
        if self.guide_mode == "online":
            self._setup_online_guide()

    def _setup_online_guide(self) -> None:
        from transformers import PreTrainedTokenizerBase

        student_tokenizer = getattr(self.model, "tokenizer", None)
        guide_tokenizer = getattr(self.guide, "tokenizer", None)
        if not (
            isinstance(student_tokenizer, PreTrainedTokenizerBase)
            and isinstance(guide_tokenizer, PreTrainedTokenizerBase)
        ):
            raise UserError(
                "guide_mode='online' needs a SentenceTransformer guide and student with HF tokenizers"
            )
        # Exactly GISTEmbedLoss's rule: decode the student's tokens when the vocabularies differ or
        # the guide would truncate earlier. Decoding is lossy (casing, [UNK], spacing): see README.
        self.must_retokenize = (
            student_tokenizer.get_vocab() != guide_tokenizer.get_vocab()
            or self.guide.max_seq_length < self.model.max_seq_length
        )

    def _guide_embeddings(
        self, features: list[dict[str, Tensor]], cached: list[Tensor] | None, seconds: float
    ) -> tuple[list[Tensor] | None, float]:
        if self.guide is None or not self.needs_guide:
            return None, seconds
        if self.guide_mode == "cached":
            if cached is None:
                raise UserError(
                    "guide_mode='cached' needs the collator's guide vectors: pass "
                    "data_collator=make_data_collator(loss) to SentenceTransformerTrainer"
                )
            return cached, seconds
        start = time.perf_counter()
        with torch.no_grad():
            guide_features = [self._guide_features(f) for f in features]
            if self.mini_batch_size is None:  # exactly GISTEmbedLoss's call, padding included
                out = embed_columns(self.guide, guide_features)
            else:
                out = [self._run_guide_chunked(f) for f in guide_features]
        return out, time.perf_counter() - start

    def _guide_features(self, feature: dict[str, Tensor]) -> dict[str, Tensor]:
        if not self.must_retokenize:
            return dict(feature)
        tokenizer = distributed.unwrap(self.model).tokenizer  # the Trainer may hand over its DDP wrapper
        decoded = tokenizer.batch_decode(feature["input_ids"], skip_special_tokens=True)
        return batch_to_device(self.guide.preprocess(decoded), self.guide.device)

    def _run_guide_chunked(self, guide_feature: dict[str, Tensor]) -> Tensor:
        size = guide_feature["input_ids"].shape[0]
        step = self.mini_batch_size
        assert step is not None  # only called with GradCache on
        parts = [
            self.guide(_create_minibatch(guide_feature, b, b + step))["sentence_embedding"]
            for b in range(0, size, step)
        ]
        return torch.cat(parts)  # (B, D)


def _check_choice(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise UserError(f"{name} must be one of {', '.join(valid)}, got {value!r}")


def _strategy_params(
    strategy: str, params: Mapping[str, Any] | None, margin: float | None, margin_strategy: str | None
) -> dict[str, Any]:
    if strategy not in STRATEGIES:
        raise UserError(STRATEGIES.unknown_message(strategy))
    known = STRATEGIES.get(strategy).params
    merged: dict[str, Any] = {}
    # GISTEmbedLoss-style margin arguments feed the strategy's parameters of the same name. Passing
    # GISTEmbedLoss's defaults (absolute, 0.0) to a strategy without them is harmless; other values are errors.
    for key, value, default in (("margin", margin, 0.0), ("margin_strategy", margin_strategy, "absolute")):
        if value is not None and key in known:
            merged[key] = value
        elif value is not None and value != default:
            raise UserError(f"strategy {strategy!r} has no parameter {key!r}; got {key}={value!r}")
    merged.update(params or {})
    return resolve_params(strategy, merged)


def _padded_if_static(feature: dict[str, Tensor]) -> dict[str, Tensor]:
    """Static-embedding features (flat ``input_ids`` + per-text ``offsets``) as padded rows.

    GradCache slices features along the batch dimension, which flat token ids do not have; the
    padded form ``(B, L)`` with an attention mask slices like a transformer's, and
    ``_flat_if_static`` turns each mini-batch back before the student sees it.
    """
    if "offsets" not in feature:
        return feature
    ids, offsets = feature["input_ids"], feature["offsets"]  # (T,), (B,)
    lengths = torch.diff(offsets, append=offsets.new_tensor([ids.numel()]))  # (B,)
    width = max(int(lengths.max()), 1) if len(lengths) else 1
    mask = torch.arange(width, device=ids.device)[None, :] < lengths[:, None]  # (B, L)
    padded = ids.new_zeros(len(offsets), width)  # (B, L)
    padded[mask] = ids  # row-major: the texts' tokens in order
    return {
        "input_ids": padded,
        "attention_mask": mask.long(),
        "static_offsets": offsets.new_zeros(len(offsets)),
    }


def _flat_if_static(feature: dict[str, Tensor]) -> dict[str, Tensor]:
    """The inverse of ``_padded_if_static`` for one mini-batch (no-op for other features)."""
    if "static_offsets" not in feature:
        return feature
    mask = feature["attention_mask"].bool()  # (b, L)
    lengths = mask.sum(1)  # (b,)
    offsets = torch.cat([lengths.new_zeros(1), lengths.cumsum(0)[:-1]])  # (b,)
    return {"input_ids": feature["input_ids"][mask], "offsets": offsets}


def _split_features(
    sentence_features: Iterable[dict[str, Tensor]],
) -> tuple[list[dict[str, Tensor]], list[Tensor] | None, list[Tensor] | None, float, dict[str, Any]]:
    """Pops the collator's keys (see ``collator``) off shallow copies of the features.

    Returns:
        features, text ids (or None), cached guide vectors (or None), lookup seconds, and
        ``extra``: ``present`` (one (B,) bool mask or None per column) and ``sources`` ((B,) or None).
    """
    features, ids, guide, present = [], [], [], []
    sources: Tensor | None = None
    seconds = 0.0
    for feature in sentence_features:
        feature = dict(feature)
        ids.append(feature.pop(TEXT_ID, None))
        guide.append(feature.pop(GUIDE_EMBEDDING, None))
        present.append(feature.pop(PRESENT, None))
        found = feature.pop(SOURCE, None)
        sources = found if found is not None else sources
        spent = feature.pop(GUIDE_SECONDS, None)
        seconds += float(spent.sum()) if spent is not None else 0.0
        features.append(feature)
    text_ids = cast("list[Tensor]", ids) if all(i is not None for i in ids) else None
    cached = cast("list[Tensor]", guide) if all(g is not None for g in guide) else None
    extra = {"present": present if any(p is not None for p in present) else None, "sources": sources}
    return features, text_ids, cached, seconds, extra


def _token_ids(features: list[dict[str, Tensor]]) -> list[Tensor]:
    """Without the collator's text ids, identical token sequences count as identical texts."""
    maybe_ids = [f.get("input_ids") for f in features]
    if not all(isinstance(t, Tensor) and t.ndim == 2 for t in maybe_ids):
        sizes = [
            len(f["offsets"]) if "offsets" in f else len(next(v for v in f.values() if isinstance(v, Tensor)))
            for f in features
        ]
        return list(torch.arange(sum(sizes)).split(sizes))  # every text distinct
    input_ids = cast("list[Tensor]", maybe_ids)
    width = max(t.shape[1] for t in input_ids)
    rows = torch.cat(
        [
            F.pad(t * f.get("attention_mask", torch.ones_like(t)), (0, width - t.shape[1]))
            for t, f in zip(input_ids, features, strict=True)
        ]
    )  # (columns * B, L)
    _, inverse = torch.unique(rows, dim=0, return_inverse=True)
    return list(inverse.split([t.shape[0] for t in input_ids]))


__all__ = ["Block", "GuidedInBatchLoss"]
