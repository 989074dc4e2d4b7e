"""What a training run records: ``RunRecorder``, the ``TrainerCallback`` that ``train()`` attaches.

It keeps the loss curve, the loss's mask diagnostics per logging step and the step times, scores the
objective every ``eval_every_steps`` (or each epoch) and reports it for pruning, never at the last step
(the caller scores the trained model there, and a pruner told of that step could only mark a fully
trained trial pruned); ``StepBar`` is the
terminal's step bar without log dicts; ``peak_memory_mb`` is the run's peak memory.
"""

from __future__ import annotations

import math
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import ProgressCallback

from harness.results import DiagnosticsPoint, RunRecord

EvalFn = Callable[[Any], float]
Report = Callable[[float, int], None]


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
        self._epochs = 0
        self.steps = 0

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: ANN001 - transformers' signature
        self._start = time.perf_counter()
        self._epochs = 0

    def on_step_begin(self, args, state, control, **kwargs):  # noqa: ANN001
        self._step_start = time.perf_counter()

    def on_step_end(self, args, state, control, model=None, **kwargs):  # noqa: ANN001
        self.step_seconds.append(time.perf_counter() - self._step_start)
        self.steps = state.global_step
        last = state.global_step >= state.max_steps  # the caller scores the trained model
        if self.eval_every_steps and state.global_step % self.eval_every_steps == 0 and not last:
            self._evaluate(model, state.global_step, control)
        return control

    def on_epoch_end(self, args, state, control, model=None, **kwargs):  # noqa: ANN001
        # After the last epoch the caller scores the objective anyway: a report there prunes nothing.
        # Epochs are counted too: a sampler that yields fewer batches than its length ends the last
        # epoch before max_steps.
        self._epochs += 1
        by_epochs = args.max_steps <= 0 and self._epochs >= math.ceil(args.num_train_epochs)
        last = state.global_step >= state.max_steps or by_epochs
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
