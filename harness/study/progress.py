"""A progress bar over a study's trials and one summary line per finished trial."""

from __future__ import annotations

import sys
from collections.abc import Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from harness.study.artifacts import SPARE


class TrialProgress:
    """A trial progress bar and one summary line per finished trial."""

    def __init__(
        self, total: int | None, study: optuna.Study, *, enabled: bool, log: Callable | None
    ) -> None:
        from tqdm.auto import tqdm

        done = [
            t
            for t in study.get_trials(deepcopy=False)
            if t.state.is_finished() and not t.user_attrs.get(SPARE)
        ]
        self._bar = tqdm(
            total=total,
            initial=min(len(done), total or len(done)),
            desc="trials",
            unit="trial",
            disable=not enabled,
            position=0,
        )
        self._log = log or (lambda line: self._bar.write(line, file=sys.stderr))

    def finished(self, frozen: FrozenTrial) -> None:
        self._bar.update(1)
        self._log(summary_line(frozen))

    def close(self) -> None:
        self._bar.close()


def summary_line(frozen: FrozenTrial) -> str:
    """E.g. ``trial 3 gist seed=1: COMPLETE objective=0.8123 final=0.8010 (120 steps, train 45s)``."""
    attrs = frozen.user_attrs
    who = f"{attrs.get('arm')} seed={attrs.get('seed')}" if attrs.get("arm") else str(frozen.params)
    parts = [f"trial {frozen.number} {who}: {frozen.state.name}"]
    if frozen.state == TrialState.COMPLETE:
        parts.append(f"objective={frozen.value:.4f}")
        if attrs.get("final_mean") is not None:
            parts.append(f"final={attrs['final_mean']:.4f}")
    if attrs.get("steps") is not None:
        parts.append(f"({attrs['steps']} steps, train {attrs.get('train_seconds') or 0:.0f}s)")
    if attrs.get("error") and frozen.state != TrialState.COMPLETE:
        parts.append(f"- {attrs['error']}")
    return " ".join(parts)
