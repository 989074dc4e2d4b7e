"""Training in rounds (``rounds > 1``) and co-training (``guide = "partner"``).

``config.rounds`` consecutive runs, round r with seed ``config.seed + r`` and a share of the epochs
(and of ``max_steps``). ``self`` and ``partner`` guides are re-taken at the start of every round
(``harness.guides.GuideFactory.for_trial``). With ``guide = "partner"`` the partner (``[cotraining]``)
trains after the student in every round, guided by a frozen copy of the student.

The record joins the student's rounds (steps continue); ``train_seconds`` counts the partner's
training and the guide snapshots too (they are the cost of the method), scoring excluded. With a
TensorBoard folder, each round is a sub-run of the trial's run (``round0``, ``round1``, ...; the
partner's ``partner-round0``, ...): every round's Trainer counts its steps from zero again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.config import Experiment, TrainConfig
from harness.errors import UserError
from harness.results import RunRecord
from harness.study.trial import Report

GuideFor = Callable[[TrainConfig, Any, Any], tuple[Any, float | None]]
"""``(config, model, other) -> (guide, seconds)``: the guide ``model`` trains with this round."""
TrainRun = Callable[..., tuple[Any, RunRecord]]
"""``(round_config, model, guide, eval_fn=None, report=None[, logging_dir]) -> (model, RunRecord)``."""


@dataclass
class _Totals:
    """What the rounds measured so far, joined into one ``RunRecord`` at the end."""

    steps: int = 0
    guide_seconds: float = 0.0
    train_seconds: float = 0.0
    loss_curve: list[tuple[int, float]] = field(default_factory=list)
    diagnostics: list[Any] = field(default_factory=list)
    peak: float | None = None

    def add(self, run: RunRecord, offset: int) -> None:
        """Adds one round of the student, its steps shifted by the steps of the rounds before."""
        self.loss_curve += [(offset + step, loss) for step, loss in run.loss_curve]
        self.diagnostics += [d.model_copy(update={"step": offset + d.step}) for d in run.diagnostics]
        self.steps += run.steps or 0
        self.train_seconds += run.train_seconds or 0.0
        self.peak = max(self.peak or 0.0, run.peak_memory_mb or 0.0)

    def record(self, guided: bool) -> RunRecord:
        """The joined record; ``guide_cache_seconds`` only when the trial has a guide."""
        return RunRecord(
            loss_curve=self.loss_curve,
            diagnostics=self.diagnostics,
            steps=self.steps,
            train_seconds=round(self.train_seconds + self.guide_seconds, 3),
            peak_memory_mb=self.peak or None,
            guide_cache_seconds=round(self.guide_seconds, 3) if guided else None,
        )


def fit_rounds(
    config: TrainConfig,
    student: Any,
    *,
    partner: Any,
    guide_for: GuideFor,
    train_run: TrainRun,
    eval_fn: Callable[[Any], float],
    report: Report,
    logging_dir: Path | None = None,
) -> tuple[Any, RunRecord]:
    """Trains ``student`` (and ``partner``, when not None) in ``config.rounds`` rounds.

    Args:
        config: the trial's configuration (``rounds > 1``).
        student: the model the trial scores.
        partner: the co-training partner (``load_partner``), or None.
        guide_for: the guide of one model for one round (``GuideFactory.for_trial``).
        train_run: one ``train()`` run over the trial's data.
        eval_fn: scores a model on the objective.
        report: the trial's report-and-maybe-prune; hears of every round but the last, which the
            caller scores.
        logging_dir: the trial's TensorBoard folder (each round a sub-run of it), or None.

    Returns:
        ``(student, RunRecord)``.
    """
    totals = _Totals()
    for r in range(config.rounds):
        round_config = config.model_copy(update={**_per_round(config), "seed": config.seed + r})
        offset = totals.steps

        def round_report(value: float, step: int, offset: int = offset) -> None:
            report(value, offset + step)

        guide, seconds = guide_for(config, student, partner)
        totals.guide_seconds += seconds or 0.0
        logs = _sub_run(logging_dir, f"round{r}")
        student, run = train_run(round_config, student, guide, eval_fn=eval_fn, report=round_report, **logs)
        totals.add(run, offset)
        if partner is not None:
            logs = _sub_run(logging_dir, f"partner-round{r}")
            partner = _train_partner(
                config, round_config, partner, student, totals, guide_for, train_run, logs
            )
        if r < config.rounds - 1:  # the last round is scored by the caller
            report(eval_fn(student), totals.steps)
    return student, totals.record(guided=config.guide not in (None, "none"))


def _per_round(config: TrainConfig) -> dict[str, Any]:
    """Each round's share of the schedule: the epochs split evenly, ``max_steps`` rounded up."""
    per_round: dict[str, Any] = {"epochs": config.epochs / config.rounds, "rounds": 1}
    if config.max_steps is not None:
        per_round["max_steps"] = max(1, -(-config.max_steps // config.rounds))
    return per_round


def _sub_run(logging_dir: Path | None, name: str) -> dict[str, Path]:
    """``train_run``'s TensorBoard argument for one round: a sub-run of the trial's (none without one)."""
    return {} if logging_dir is None else {"logging_dir": Path(logging_dir) / name}


def _train_partner(
    config: TrainConfig,
    round_config: TrainConfig,
    partner: Any,
    student: Any,
    totals: _Totals,
    guide_for: GuideFor,
    train_run: TrainRun,
    logs: dict[str, Path],
) -> Any:
    """One round of the partner, guided by a frozen copy of the student; counts its seconds."""
    guide, seconds = guide_for(config, partner, student)
    totals.guide_seconds += seconds or 0.0
    partner, run = train_run(round_config, partner, guide, **logs)
    totals.train_seconds += run.train_seconds or 0.0
    return partner


def load_partner(experiment: Experiment, config: TrainConfig, device: str | None) -> Any:
    """The ``[cotraining]`` partner of a ``guide = "partner"`` trial (None for any other guide).

    Truncated to the trial's ``max_seq_len`` at once: its first snapshot guides before it has trained.
    """
    from harness.models import load_model, truncate

    if config.guide != "partner":
        return None
    if experiment.cotraining is None:  # the config checks make this unreachable
        raise UserError('guide "partner" needs a [cotraining] section naming the partner')
    partner = load_model(experiment.cotraining.partner, device=device)
    if config.max_seq_len:
        truncate(partner, config.max_seq_len)
    return partner
