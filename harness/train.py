"""``train()``: one fine-tuning run with the guided loss over sentence-transformers' Trainer.

No hand-written loop: ``SentenceTransformerTrainer`` runs the optimisation with
``harness.loss.GuidedInBatchLoss`` (and its collator, which hands the loss text ids and cached guide
vectors). A ``TrainerCallback`` records the loss curve, mask diagnostics and step times, and every
``eval_every_steps`` (or each epoch) scores the objective through ``eval_fn`` and passes the value to
``report`` (an Optuna trial's report-and-maybe-prune). A pruned run stops the Trainer cleanly at the
end of that step and ``train()`` re-raises ``optuna.TrialPruned`` once the Trainer has returned.

``train()`` writes nothing: the Trainer's ``output_dir`` is a temporary folder removed afterwards,
checkpoints are off (``save_strategy="no"``) and no logger is attached (``report_to=[]``).
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from harness.config import TrainConfig
from harness.results import DiagnosticsPoint, RunRecord

if TYPE_CHECKING:
    from harness.data.leakage import Policy

EvalFn = Callable[[Any], float]
Report = Callable[[float, int], None]

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

    Returns:
        ``(student, RunRecord)``.
    """
    import torch
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from transformers import set_seed

    from harness.loss import DiagnosticsCallback, GuidedInBatchLoss, make_data_collator
    from harness.loss.distributed import rank_aligned_sampler, trainer_arguments

    set_seed(cfg.seed)
    if cfg.max_seq_len:
        set_max_seq_len(student, cfg.max_seq_len)
    loss = GuidedInBatchLoss(
        student,
        guide,
        temperature=cfg.temperature,
        margin_strategy=cfg.margin_strategy,
        margin=cfg.margin,
        contrast_anchors=cfg.contrast_anchors,
        contrast_positives=cfg.contrast_positives,
        strategy=cfg.strategy,
        strategy_params=dict(cfg.strategy_params),
        variant=cfg.variant,
        guide_mode=cfg.guide_mode,
        mini_batch_size=cfg.mini_batch_size,
        seed=cfg.seed,
        objective=cfg.objective,
        objective_params=dict(cfg.objective_params),
        duplicates=cfg.duplicates,
    )
    names, source_of = source_index(train_dataset, sources)
    loss.source_names = names
    loss.drop_log = drop_log
    if drop_log is not None:
        drop_log.source_names = names
    recorder = RunRecorder(eval_fn=eval_fn, report=report, eval_every_steps=cfg.eval_every_steps)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory(prefix="gist-harness-trainer-") as output_dir:
        args = SentenceTransformerTrainingArguments(
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
            report_to=[],
            disable_tqdm=not progress,
            dataloader_drop_last=True,  # a short last batch has fewer negatives than the rest
            multi_dataset_batch_sampler=rank_aligned_sampler(source_order),  # N processes: one source a step
            dataloader_pin_memory=torch.cuda.is_available(),
            **trainer_arguments(),  # several processes: DDP on NCCL (CUDA) or gloo (CPU)
        )
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
        if progress:
            trainer.add_callback(StepBar())
        trainer.train()
    if recorder.pruned is not None:
        raise recorder.pruned
    record = recorder.record(peak_memory_mb())
    return student, record.model_copy(update={"by_source": loss.diagnostics_by_source()})


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


def set_max_seq_len(student: Any, max_seq_len: int) -> None:
    """Truncates the student's inputs to ``max_seq_len`` tokens.

    A static-embedding student has no position limit (``max_seq_length`` is read-only there), so
    its tokenizer truncates instead.
    """
    first = student[0]
    if hasattr(first, "tokenizer") and type(first).__name__ == "StaticEmbedding":
        first.tokenizer.enable_truncation(max_seq_len)
    else:
        student.max_seq_length = max_seq_len


def peak_memory_mb() -> float:
    """Peak memory in MiB: CUDA max allocated on a GPU, else the process's max resident set."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes on macOS, KiB on Linux


class StepBar(ProgressCallback):
    """The Trainer's step progress bar without the log dicts it would print at every logging step."""

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001 - transformers' signature
        return control


class RunRecorder(TrainerCallback):
    """Collects the loss curve, diagnostics and step times; evaluates and reports for pruning."""

    def __init__(
        self, *, eval_fn: EvalFn | None, report: Report | None, eval_every_steps: int | None
    ) -> None:
        self.eval_fn, self.report, self.eval_every_steps = eval_fn, report, eval_every_steps
        self.loss_curve: list[tuple[int, float]] = []
        self.diagnostics: list[DiagnosticsPoint] = []
        self.step_seconds: list[float] = []
        self.eval_seconds = 0.0
        self.pruned: BaseException | None = None
        self._start = self._step_start = 0.0
        self._logged_steps = 0
        self.steps = 0

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: ANN001 - transformers' signature
        self._start = time.perf_counter()

    def on_step_begin(self, args, state, control, **kwargs):  # noqa: ANN001
        self._step_start = time.perf_counter()

    def on_step_end(self, args, state, control, model=None, **kwargs):  # noqa: ANN001
        self.step_seconds.append(time.perf_counter() - self._step_start)
        self.steps = state.global_step
        if self.eval_every_steps and state.global_step % self.eval_every_steps == 0:
            self._evaluate(model, state.global_step, control)
        return control

    def on_epoch_end(self, args, state, control, model=None, **kwargs):  # noqa: ANN001
        # After the last epoch the caller scores the objective anyway: a report there prunes nothing.
        last = state.global_step >= state.max_steps
        if not self.eval_every_steps and self.pruned is None and not last:
            self._evaluate(model, state.global_step, control)
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
        if not logs or "loss" not in logs:
            return control
        step = state.global_step
        self.loss_curve.append((step, float(logs["loss"])))
        window = self.step_seconds[self._logged_steps :]
        self._logged_steps = len(self.step_seconds)
        point = diagnostics_point(logs, step, sum(window) / len(window) if window else 0.0)
        if point is not None:
            self.diagnostics.append(point)
        return control

    def _evaluate(self, model: Any, step: int, control: Any) -> None:
        if self.eval_fn is None or self.pruned is not None:
            return
        start = time.perf_counter()
        value = self.eval_fn(model)
        self.eval_seconds += time.perf_counter() - start
        if self.report is None:
            return
        import optuna

        try:
            self.report(value, step)
        except optuna.TrialPruned as exc:  # stop the Trainer at the end of this step, re-raise after
            self.pruned = exc
            control.should_training_stop = True

    def record(self, peak_memory: float | None) -> RunRecord:
        """The RunRecord of the finished run (evaluation time is not training time)."""
        return RunRecord(
            loss_curve=self.loss_curve,
            diagnostics=self.diagnostics,
            steps=self.steps,
            train_seconds=round(time.perf_counter() - self._start - self.eval_seconds, 3),
            peak_memory_mb=peak_memory,
        )


def diagnostics_point(logs: dict[str, Any], step: int, step_seconds: float) -> DiagnosticsPoint | None:
    """A DiagnosticsPoint from a training log holding the loss's ``gist_*`` diagnostics (else None)."""
    if "gist_drop_rate" not in logs:
        return None
    return DiagnosticsPoint(
        step=step,
        drop_rate=logs["gist_drop_rate"],
        kept_per_anchor_mean=logs.get("gist_negatives_kept_mean", 0.0),
        kept_per_anchor_min=logs.get("gist_negatives_kept_min", 0.0),
        share_no_negatives=logs.get("gist_anchors_without_negatives", 0.0),
        fn_precision=logs.get("gist_false_negative_precision"),
        fn_recall=logs.get("gist_false_negative_recall"),
        guide_seconds=logs.get("gist_guide_seconds", 0.0),
        step_seconds=step_seconds,
    )


def training_texts(dataset: Any) -> set[str]:
    """Every text of the training columns (the guide cache's corpus and the leakage check's input)."""
    if isinstance(dataset, dict):
        return {text for d in dataset.values() for text in training_texts(d)}
    columns = [c for c in dataset.column_names if c in TRAIN_COLUMNS or c.startswith("negative")]
    return {text for column in columns for text in dataset[column] if isinstance(text, str)}


def check_training_data(
    texts_by_source: dict[str, set[str]], suites: list[Any], data_dir: Any, *, policy: Policy = "error"
) -> Any:
    """The data layer's leakage check of the training texts against every text of ``suites``.

    A training text found in a scored (test) split is an error under ``policy="error"``; texts shared
    with a task's own train split are in-domain and only reported.

    Returns:
        The ``harness.data.LeakageReport`` (its ``in_domain`` overlaps name the tasks).
    """
    from harness.data import check_leakage
    from harness.evaluate import suite_texts

    eval_texts: dict[str, Any] = {}
    eval_roles: dict[str, Any] = {}
    for suite in suites:
        found = suite_texts(suite, data_dir)
        texts, roles = found if isinstance(found, tuple) else (found, None)
        for task, splits in texts.items():  # a task in two suites: union its splits' texts
            for split, split_texts in splits.items():
                eval_texts.setdefault(task, {}).setdefault(split, set()).update(split_texts)
        for task, split_roles in (roles or {}).items():
            eval_roles.setdefault(task, {}).update(split_roles)
    return check_leakage(texts_by_source, eval_texts, eval_roles or None, policy=policy)
