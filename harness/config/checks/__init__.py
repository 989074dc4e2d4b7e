"""Checks pydantic cannot do alone: sections that must agree, and every registered name.

The checks read the typed :class:`~harness.config.schema.Experiment`: for a file pydantic refused,
the draft of what it accepted (:mod:`harness.config.draft`), whose required sections may be None. Every
trained configuration (``[train]``, each arm, each search-space value) is built by
``Experiment.trial_config``, as the study builds it. Each check returns ``(location, message)``
pairs, so one run reports every problem in the file.

Modules: :mod:`.trials` (the trials a file writes, and the registries names are checked in),
:mod:`.training` (what each trial trains), :mod:`.study` (sampler, pruner, arms, suites, ``[tuning]``),
:mod:`.report` (``[report]``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from harness.config.checks.report import check_report
from harness.config.checks.study import check_arms, check_follows, check_study, check_suites, check_tuning
from harness.config.checks.training import (
    check_cotraining,
    check_data,
    check_gist_blocks,
    check_labels,
    check_mine,
    check_model,
    check_objective_negatives,
    check_search_space,
    check_trials,
)
from harness.config.checks.trials import Error, Trial, trials
from harness.config.schema import Experiment


def check_experiment(experiment: Experiment) -> list[Error]:
    """Every consistency and name error in a (draft) experiment (empty when it is fine)."""
    found = trials(experiment)
    checks: list[Callable[[Experiment, list[Trial]], Iterator[Error]]] = [
        check_study,
        check_model,
        check_data,
        check_trials,
        check_arms,
        check_search_space,
        check_follows,
        check_tuning,
        check_suites,
        check_cotraining,
        check_objective_negatives,
        check_mine,
        check_labels,
        check_gist_blocks,
        check_report,
    ]
    return [error for check in checks for error in check(experiment, found)]
