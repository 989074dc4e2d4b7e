"""A study on N processes (one per device), launched by ``torch.distributed.run``.

Rank 0 is the study's only Optuna client: it opens the storage, asks for trials, evaluates, and
writes ``runs/<study>/`` (and the CLI the report). For each trial it broadcasts the training config
to the other ranks, which train the same trial with it: the Trainer's DDP shards the data, the loss
gathers negatives across ranks (``harness.loss.distributed``). After each intermediate evaluation
(on rank 0 only) rank 0 broadcasts whether Optuna pruned, so every rank stops at the same step.
Before each study it runs (a ``[tuning]`` study runs one search per arm, then the confirmation) rank 0
broadcasts the experiment its pipeline prepares, and the other ranks prepare the same one, so every
rank shards the same rows (a tuning search's leakage check differs from the confirmation's).
This is the idea of optuna-integration's ``TorchDistributedTrial`` without its per-call
collectives: the other ranks never touch the trial, they only need its config and the prune flag.

A failure on any rank ends the run on every rank, without hanging: a rank that raises exits, and
the others' next collective fails at once (gloo and NCCL raise when a peer's connection closes;
``torch.distributed.run`` stops what is left). Rank 0 records the trial as FAIL first when it can
(``stop_on_failure``); a killed rank 0 leaves it RUNNING until its heartbeat goes stale. Either
way the same command resumes the study and runs that trial again.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import optuna

from harness.config import TrainConfig
from harness.results import RunRecord

PREPARE, FIT, PRUNE, STOP = "prepare", "fit", "prune", "stop"


def launched() -> bool:
    """Whether this process is one of several started by ``torch.distributed.run``."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_process_group(timeout_min: float = 120.0) -> str:
    """Joins the launcher's process group (NCCL on CUDA, gloo on the CPU); returns this rank's device.

    The timeout bounds how long a rank waits in a collective while rank 0 works alone (untrained
    and final scoring, a slow guide fill): keep it above the longest evaluation.
    """
    import torch
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(minutes=timeout_min))
    return f"cuda:{local_rank}" if cuda else "cpu"


def rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_initialized() else 0


def barrier() -> None:
    """Waits until every rank gets here."""
    import torch.distributed as dist

    dist.barrier()


def finish() -> None:
    """A rank's clean end after a run that succeeded: waits for every rank, then leaves the group.

    Without it the ranks exit at different times with the group still up, and gloo's teardown aborted
    one rank ("terminate called without an active exception") in about one two-process run in ten on
    a loaded CPU. A failed run does not come here: the launcher ends the other ranks.
    """
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _broadcast(message: tuple[str, Any] | None) -> tuple[str, Any]:
    """Rank 0's ``message`` on every rank (the others pass None)."""
    import torch.distributed as dist

    box = [message]
    dist.broadcast_object_list(box, src=0)
    assert box[0] is not None
    return box[0]


class RankZeroPipeline:
    """Rank 0's side: the pipeline, plus a broadcast of each trial's config and prune decisions.

    Args:
        pipeline: the real pipeline (``harness.study.runner.Pipeline``); everything but ``fit``
            is passed through.
    """

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pipeline, name)

    @property
    def in_domain_tasks(self) -> list[str]:
        return self.pipeline.in_domain_tasks

    @in_domain_tasks.setter
    def in_domain_tasks(self, tasks: list[str]) -> None:
        self.pipeline.in_domain_tasks = tasks

    def prepare(self) -> None:
        """Broadcasts the experiment the pipeline prepares (None where it has none), then prepares."""
        experiment = getattr(self.pipeline, "experiment", None)
        _broadcast((PREPARE, experiment.model_dump(mode="json") if experiment is not None else None))
        self.pipeline.prepare()

    def fit(self, config: TrainConfig, report: Any, **kwargs: Any) -> tuple[Any, RunRecord]:
        """Broadcasts ``config``, then fits; ``kwargs`` (a TensorBoard ``logging_dir``) stay on rank 0."""
        _broadcast((FIT, config.model_dump(mode="json")))

        def report_to_all(value: float, step: int) -> None:
            try:
                report(value, step)
            except optuna.TrialPruned:
                _broadcast((PRUNE, True))
                raise
            _broadcast((PRUNE, False))

        return self.pipeline.fit(config, report_to_all, **kwargs)


def follow(pipeline: Any, rebuild: Callable[[Any], Any] | None = None) -> int:
    """The other ranks' side: prepares what rank 0 prepares, trains each trial rank 0 broadcasts, until
    it says stop.

    Evaluation is rank 0's: this rank's ``pipeline.score`` returns a placeholder (NaN) table, so
    the intermediate evaluations inside training cost nothing here.

    Args:
        pipeline: the pipeline of the experiment as given.
        rebuild: the pipeline of another experiment (a tuning search's), built when rank 0 prepares
            one that differs from the current pipeline's; None: ``pipeline`` prepares it all.

    Returns:
        How many trials this rank trained.
    """
    from harness.config import Experiment

    trained = 0
    while True:
        kind, payload = _broadcast(None)
        if kind == STOP:
            return trained
        if kind == PREPARE:
            if payload is not None and rebuild is not None:
                experiment = Experiment.model_validate(payload)
                if experiment != getattr(pipeline, "experiment", None):
                    pipeline = rebuild(experiment)
            pipeline.prepare()
            pipeline.score = _placeholder_score
            continue
        if kind != FIT:
            raise RuntimeError(f"rank {rank()}: expected a trial from rank 0, got {kind!r}")
        config = TrainConfig.model_validate(payload)
        with contextlib.suppress(optuna.TrialPruned):  # rank 0 records it; nothing to do here
            pipeline.fit(config, _follow_report)
        trained += 1


def stop_followers() -> None:
    """Rank 0: tells the other ranks that no trial is left."""
    _broadcast((STOP, None))


def _follow_report(value: float, step: int) -> None:
    kind, pruned = _broadcast(None)
    if kind != PRUNE:
        raise RuntimeError(f"rank {rank()}: expected rank 0's prune decision, got {kind!r}")
    if pruned:
        raise optuna.TrialPruned(f"pruned by rank 0 at step {step}")


def _placeholder_score(model: Any, suite: Any, **kwargs: Any) -> Any:
    import pandas as pd

    tasks = list(getattr(suite, "tasks", None) or ["-"])
    metric = getattr(suite, "metric", "main_score")
    return pd.DataFrame({"task": tasks, "main_score": float("nan"), metric: float("nan")})


def run_on_ranks(experiment: Any, pipeline: Any, **run_study_kwargs: Any) -> optuna.Study | None:
    """``run_study`` on rank 0 (trials broadcast to the other ranks), ``follow`` on the others.

    Returns:
        The study on rank 0, None on the other ranks.
    """
    from harness.study.runner import run_study

    if rank() != 0:
        follow(pipeline)
        return None
    study = run_study(experiment, RankZeroPipeline(pipeline), stop_on_failure=True, **run_study_kwargs)
    stop_followers()
    return study
