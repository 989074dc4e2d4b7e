"""The guided in-batch loss over embeddings, its data collator and diagnostics (arXiv 2402.16829).

The maths: ``blocks`` (similarity blocks, drop masks, the protected positive, temperature) and
``objectives`` (InfoNCE's cross-entropy and the other objectives). The glue around it:
``guided`` (the ``GuidedInBatchLoss`` class), ``spec`` (its settings, ``LossConfig``, and what an
arm needs: guide, labels, negatives), ``batch`` (one forward pass's ids, guide vectors, labels),
``guide_vectors`` (cached lookup or the online guide), ``gradcache`` (mini-batches, static
students), ``distributed`` (gathering across processes), ``diagnostics`` and ``drop_log`` (what the
strategy did), ``collator`` (text ids and cached guide vectors per batch), ``st_private`` (the
sentence-transformers internals used, in one place).

Wiring it into ``SentenceTransformerTrainer`` (the collator hands the loss each text's id and,
in cached mode, its guide vector; see ``harness.loss.collator``)::

    from harness.guides import build_guide
    from harness.loss import DiagnosticsCallback, GuidedInBatchLoss, make_data_collator

    corpus = sorted({t for c in ("anchor", "positive", *negatives) for t in train_dataset[c]})
    guide = build_guide("all-mpnet-base", corpus=corpus)  # every text embedded once, persisted
    loss = GuidedInBatchLoss(student, guide, strategy="gist", strategy_params={"margin": 0.05})
    # or, from an experiment's [train] settings: GuidedInBatchLoss.from_config(student, guide, train_config)
    trainer = SentenceTransformerTrainer(
        model=student,
        args=SentenceTransformerTrainingArguments(..., batch_sampler=BatchSamplers.NO_DUPLICATES),
        train_dataset=train_dataset.select_columns(["anchor", "positive", *negatives, *label]),
        loss=loss,
        data_collator=make_data_collator(loss),
        callbacks=[DiagnosticsCallback(loss)],
    )

Columns: anchor, positive, optional negative columns, optional integer ``label`` (any other
column would be tokenised as text, so select the columns first). ``loss.diagnostics_history``
keeps the per-step diagnostics; ``loss.pop_diagnostics()`` averages those since its last call.

Texts missing from the cache are embedded on the fly during training and kept in memory; call
``guide.save()`` after training to persist them.

``guide_mode="cached"`` and ``"online"`` can differ where the student truncates a text the guide
would read in full, and where the student's tokenizer is lossy (lower-casing, ``[UNK]``,
whitespace): online mode decodes the student's tokens for a guide with another vocabulary
(exactly as sentence-transformers does), cached mode embeds the raw text.
"""

from __future__ import annotations

from typing import Any

from harness.loss.blocks import VARIANTS, Block, cosine_matrix, layout, score_rows
from harness.loss.collator import GuidedDataCollator, text_ids
from harness.loss.diagnostics import DiagnosticsCallback
from harness.loss.drop_log import DropLog, Shadow, compare_drops, texts_by_id
from harness.loss.guided import GuidedInBatchLoss
from harness.loss.spec import GUIDE_MODES, LossConfig, Needs, needs_guide, requirements


def make_data_collator(loss: GuidedInBatchLoss, **kwargs: Any) -> GuidedDataCollator:
    """The collator to pass to ``SentenceTransformerTrainer(data_collator=...)`` with this loss.

    Args:
        loss: the loss; its student tokenizes, its guide (cached mode) is looked up.
        **kwargs: passed to ``GuidedDataCollator`` (``source_of``) and
            ``SentenceTransformerDataCollator`` (``prompts``, ``router_mapping``...).
    """
    guide = loss.guide if loss.guide_mode == "cached" and loss.needs_guide else None
    return GuidedDataCollator(preprocess_fn=loss.model.preprocess, guide=guide, **kwargs)


__all__ = [
    "GUIDE_MODES",
    "VARIANTS",
    "Block",
    "DiagnosticsCallback",
    "DropLog",
    "GuidedDataCollator",
    "GuidedInBatchLoss",
    "LossConfig",
    "Needs",
    "Shadow",
    "compare_drops",
    "cosine_matrix",
    "layout",
    "make_data_collator",
    "needs_guide",
    "requirements",
    "score_rows",
    "text_ids",
    "texts_by_id",
]
