"""``GuidedInBatchLoss``: the guided in-batch contrastive loss (GISTEmbed, arXiv 2402.16829).

The module is glue: it embeds the batch with the student, gets guide vectors (from the collator's
cache lookup, or by re-running the guide online), scores the rows with ``blocks.score_rows`` (all
the maths) and applies cross-entropy. With ``mini_batch_size`` it runs GradCache (Gao et al. 2021,
arXiv 2101.06983) through sentence-transformers' ``CachedLossMixin``: same loss and gradients on
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
from harness.loss.blocks import VARIANTS, Block, layout, score_rows
from harness.loss.collator import GUIDE_EMBEDDING, GUIDE_SECONDS, TEXT_ID
from harness.loss.diagnostics import DiagnosticsLog, StepTally
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
        seed: seed of the generator used by random strategies.
        show_progress_bar: GradCache mini-batch progress bars.
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
    ) -> None:
        super().__init__()
        _check_choice("variant", variant, VARIANTS)
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
        self.variant = variant
        self.guide_mode = guide_mode
        self.mini_batch_size = mini_batch_size
        self.uses_gradient_cache = mini_batch_size is not None
        self.show_progress_bar = show_progress_bar
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self.diagnostics = DiagnosticsLog()
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

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        features, text_ids, cached_guide, guide_seconds = _split_features(sentence_features)
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
        if text_ids is None:
            text_ids = _token_ids(features)
        guide_embeddings, guide_seconds = self._guide_embeddings(features, cached_guide, guide_seconds)
        blocks = layout(self.variant, len(features), self.contrast_anchors, self.contrast_positives)
        tally = StepTally(blocks)
        tally.guide_seconds = guide_seconds
        self._context = {"guide": guide_embeddings, "ids": text_ids, "blocks": blocks, "tally": tally}
        try:
            if self.mini_batch_size is not None:
                loss = self.forward_cached([_padded_if_static(f) for f in features], labels)
            else:
                embeddings = embed_columns(self.model, features)
                loss = self.calculate_loss([[e] for e in embeddings], labels)
        finally:
            self._context = {}
        if torch.is_grad_enabled():
            self.diagnostics.record(tally.summary())
        return loss

    def calculate_loss(
        self, reps: list[list[Tensor]], labels: Tensor | None = None, *, with_backward: bool = False
    ) -> Tensor:
        """Cross-entropy over the whole batch, in row chunks of ``mini_batch_size`` (GradCache step 2)."""
        student = [torch.cat(r) for r in reps]  # columns of (B, D)
        ctx = self._context
        device = student[0].device
        guide = [g.to(device) for g in ctx["guide"]] if ctx["guide"] is not None else None
        ids = [i.to(device) for i in ctx["ids"]]
        labels = labels.to(device) if labels is not None else None
        batch_size = student[0].shape[0]
        chunk = self.mini_batch_size or batch_size
        total = student[0].new_zeros(())
        for begin in range(0, batch_size, chunk):
            rows = slice(begin, min(begin + chunk, batch_size))
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
                generator=self.generator,
            )
            ctx["tally"].add(scores)
            loss = F.cross_entropy(scores.logits, scores.targets) * (rows.stop - rows.start) / batch_size
            if with_backward:
                loss.backward()
                loss = loss.detach()
            total = total + loss
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
            "guide": getattr(self.guide, "fingerprint", type(self.guide).__name__),
        }

    @property
    def citation(self) -> str:
        return (
            "@misc{solatorio2024gistembed, title={GISTEmbed: Guided In-sample Selection of Training "
            "Negatives for Text Embedding Fine-tuning}, author={Aivin V. Solatorio}, year={2024}, "
            "eprint={2402.16829}, archivePrefix={arXiv}}"
        )

    # -- guide --------------------------------------------------------------------------------

    def _check_guide(self) -> None:
        if self.guide is None:
            if self.needs_guide:
                raise UserError(f"strategy {self.strategy!r} needs a guide; got guide=None")
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
        decoded = self.model.tokenizer.batch_decode(feature["input_ids"], skip_special_tokens=True)
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
    mask = torch.arange(width)[None, :] < lengths[:, None]  # (B, L)
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
) -> tuple[list[dict[str, Tensor]], list[Tensor] | None, list[Tensor] | None, float]:
    """Pops the collator's keys (see ``collator``) off shallow copies of the features."""
    features, ids, guide = [], [], []
    seconds = 0.0
    for feature in sentence_features:
        feature = dict(feature)
        ids.append(feature.pop(TEXT_ID, None))
        guide.append(feature.pop(GUIDE_EMBEDDING, None))
        spent = feature.pop(GUIDE_SECONDS, None)
        seconds += float(spent.sum()) if spent is not None else 0.0
        features.append(feature)
    text_ids = cast("list[Tensor]", ids) if all(i is not None for i in ids) else None
    cached = cast("list[Tensor]", guide) if all(g is not None for g in guide) else None
    return features, text_ids, cached, seconds


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
