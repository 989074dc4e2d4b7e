"""The trials an experiment file writes (``[train]`` and each arm, as the study builds them), and the
registries every name in it is checked against."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel, ValidationError

from harness.config.schema import (
    DataConfig,
    Experiment,
    ModelConfig,
    TrainConfig,
)
from harness.registry import Registry

Error = tuple[tuple, str]


@cache
def registries() -> dict[str, Registry[Any]]:
    """Every registry an experiment names things in, by kind (imported on first use, not with the schema)."""
    from harness.data import DATASETS, MIXTURES
    from harness.evaluate import SUITES
    from harness.guides import GUIDES
    from harness.loss.objectives import OBJECTIVES
    from harness.masking import STRATEGIES
    from harness.models import MODELS
    from harness.models.pairs import PAIRS

    return {
        "pair": PAIRS, "model": MODELS, "guide": GUIDES, "strategy": STRATEGIES, "objective": OBJECTIVES,
        "dataset": DATASETS, "mixture": MIXTURES, "suite": SUITES,
    }  # fmt: skip


def registry(kind: str) -> Registry[Any]:
    """The registry of ``kind`` (``model``, ``strategy``, ``suite``...)."""
    return registries()[kind]


@dataclass(frozen=True)
class Trial:
    """One trained configuration as the experiment file writes it.

    Attributes:
        loc: where it is written (``("train",)`` or ``("ablation", "arms", i)``).
        given: the fields it sets itself (an arm's overrides; the fields ``[train]`` sets).
        config: its validated config (``Experiment.trial_config``); refused fields keep ``[train]``'s value.
        errors: type errors of the fields it sets.
        trained: False for an untrained arm.
    """

    loc: tuple
    given: dict[str, Any]
    config: TrainConfig
    errors: tuple[Error, ...] = ()
    trained: bool = True

    @property
    def refused(self) -> set[str]:
        """The fields whose values did not validate."""
        return {loc[len(self.loc)] for loc, _ in self.errors if len(loc) > len(self.loc)}


def trial(experiment: Experiment, given: dict[str, Any], loc: tuple, *, trained: bool = True) -> Trial:
    """The trial that ``given`` (overrides, dotted keys allowed) makes of ``experiment``."""
    base = buildable(experiment)
    try:
        return Trial(loc, given, base.trial_config(given), trained=trained)
    except ValidationError as exc:
        refused = [e for e in exc.errors() if e["loc"] and e["loc"][0] in given]
        errors = tuple(((*loc, *e["loc"]), _refusal(e)) for e in refused)
        bad = {e["loc"][0] for e in exc.errors()}
        kept = {k: v for k, v in given.items() if k.split(".", 1)[0] not in bad}
        return Trial(loc, given, base.trial_config(kept), errors, trained)


def _refusal(error: Any) -> str:
    """One line for a value pydantic refused; an unknown key of a table field (``mine``) lists the valid keys."""
    if error["type"] == "extra_forbidden" and len(error["loc"]) == 2:
        annotation = TrainConfig.model_fields[error["loc"][0]].annotation
        tables = [
            a for a in getattr(annotation, "__args__", ()) if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        if tables:
            valid = list(tables[0].model_fields)
            close = difflib.get_close_matches(str(error["loc"][1]), valid, n=1, cutoff=0.5)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            return f"unknown field.{hint} Valid: {', '.join(valid)}"
    return f"{error['msg']} (got {error.get('input')!r})"


def buildable(experiment: Experiment) -> Experiment:
    """``experiment``, with stand-ins where a draft lacks ``[data]`` or its model does not resolve (both
    reported by their own checks), so that every trial config can still be built and checked."""
    update: dict[str, Any] = {}
    if experiment.data is None:
        update["data"] = DataConfig()
    try:
        experiment.guide, experiment.student_is_static  # noqa: B018  (a pair name may not resolve)
    except (AttributeError, KeyError):
        update["model"] = ModelConfig(student="(unresolved)", guide="none")
    return experiment.model_copy(update=update) if update else experiment


def trials(experiment: Experiment) -> list[Trial]:
    """``[train]`` first, then every arm, in file order."""
    train = experiment.train
    found = [trial(experiment, {k: getattr(train, k) for k in train.model_fields_set}, ("train",))]
    for i, arm in enumerate(experiment.ablation.arms):
        given = (
            buildable(experiment).arm_overrides(arm.name)
            if follows_known(experiment, arm)
            else arm.overrides()
        )
        found.append(trial(experiment, given, ("ablation", "arms", i), trained=not arm.untrained))
    return found


def check_name(kind: str, value: Any, loc: tuple, *, also: str | None = None) -> Iterator[Error]:
    """An error when ``value`` is a string that is not registered as ``kind`` (nor as ``also``).

    Where a model is named, a hub id (``hub:org/name@revision``) is accepted too; a malformed one
    gets its own one-line error.
    """
    if not isinstance(value, str) or value in registry(kind) or (also and value in registry(also)):
        return
    if "dataset" in (kind, also) and value.startswith("file:"):  # a user file (``gist-harness mine``'s)
        path = value[len("file:") :]
        if not os.path.isfile(path):
            yield loc, f"no such training file {path!r} (file:PATH: a .jsonl, .csv, .tsv or .parquet file)"
        return
    if "model" in (kind, also) and value.startswith("hub:"):
        from harness.models.hub import hub_ref_error

        error = hub_ref_error(value)
        if error:
            yield loc, error
        return
    yield loc, registry(kind).unknown_message(value)


def follows_known(experiment: Experiment, arm: Any) -> bool:
    """Whether ``arm.follows`` names another trained arm that follows no other (else ``check_follows``)."""
    leaders = {a.name: a for a in experiment.ablation.arms if not a.untrained}
    leader = leaders.get(arm.follows or "")
    return leader is not None and leader.name != arm.name and leader.follows is None
