"""Checks of the study's shape: sampler and pruner, arms and ``follows``, suites, and ``[tuning]``."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

from pydantic import ValidationError

from harness.config.checks.training import check_space
from harness.config.checks.trials import Error, Trial, buildable, check_name, registry
from harness.config.schema import (
    PRUNERS,
    SAMPLERS,
    CategoricalParam,
    Experiment,
    matched_strategy,
    optuna_class,
)


def check_study(experiment: Experiment, found: list[Trial]) -> Iterator[Error]:
    study, arms, space = experiment.study, experiment.ablation.arms, experiment.search_space
    if study is None:
        return  # pydantic reports the section
    for key, name, params in (
        ("sampler", study.sampler, study.sampler_params),
        ("pruner", study.pruner, study.pruner_params),
    ):
        target = (SAMPLERS if key == "sampler" else PRUNERS)[name]
        yield from _bind(target, params, ("study", f"{key}_params"), skip={"seed", "search_space"})
    if study.sampler == "grid" and any(not isinstance(s, CategoricalParam) for s in space.values()):
        yield ("study", "sampler"), "the grid sampler needs every search_space entry to be categorical"
    if arms and "n_trials" in study.model_fields_set:
        yield ("study", "n_trials"), "an ablation runs every arm x seed once; remove n_trials"
    if arms and (study.pruner_params or "pruner" in study.model_fields_set and study.pruner != "none"):
        yield (
            ("study", "pruner"),
            f"an ablation runs every arm x seed to the end ({study.pruner!r} would drop weaker arms' seeds): "
            "set pruner = 'none' or leave it out (a [tuning] search has its own pruner)",
        )
    if space and not arms and {"pruner", "pruner_params"} & study.model_fields_set:
        yield from _check_pruner(experiment, study.pruner, study.pruner_params, {}, ("study", "pruner"))
    if space and not arms and not ({"n_trials", "timeout_s"} & study.model_fields_set):
        yield ("study", "n_trials"), "a search needs study.n_trials or study.timeout_s"


def _check_pruner(
    experiment: Experiment, pruner: str, params: dict[str, Any], overrides: dict[str, Any], loc: tuple
) -> Iterator[Error]:
    """A pruner that would see no score before a trial's last step (``harness.config.pruning``)."""
    from harness.config.pruning import blind_pruner

    try:
        train = buildable(experiment).trial_config(overrides)
    except (ValidationError, KeyError, StopIteration):
        return  # the trial's own checks report it
    reason = blind_pruner(pruner, params, train)
    if reason:
        yield loc, reason


def _bind(target: str, params: dict[str, Any], loc: tuple, skip: set[str]) -> Iterator[Error]:
    cls_name = target.split(":")[1]
    signature = inspect.signature(optuna_class(target))
    valid = [p for p in signature.parameters if p not in skip and p != "self"]
    for key in params:
        if key not in valid:
            yield (*loc, key), f"{cls_name} has no parameter {key!r}. Valid: {', '.join(valid)}"


def check_arms(experiment: Experiment, found: list[Trial]) -> Iterator[Error]:
    ablation = experiment.ablation
    names = [arm.name for arm in ablation.arms]
    for i, name in enumerate(names):
        if names.count(name) > 1:
            yield ("ablation", "arms", i, "name"), f"arm name {name!r} is used twice"
    if ablation.baseline is not None and ablation.baseline not in names:
        yield ("ablation", "baseline"), f"no arm named {ablation.baseline!r}. Arms: {', '.join(names)}"
    if len(set(map(str, ablation.seeds))) != len(ablation.seeds):
        yield ("ablation", "seeds"), "seeds repeat"
    if names and experiment.search_space:
        yield ("search_space",), "an ablation fixes each trial's configuration: use arms or a search space"
    if not names and not experiment.search_space and experiment.study is not None:
        yield ("ablation", "arms"), "nothing to run: add [[ablation.arms]] or a [search_space.FIELD]"


def check_suites(experiment: Experiment, found: list[Trial]) -> Iterator[Error]:
    suites = registry("suite")
    for section in ("objective", "final", "tuning"):
        ref = getattr(experiment, section)
        if ref is None:
            continue
        yield from check_name("suite", ref.suite, (section, "suite"))
        if ref.suite not in suites or ref.tasks is None:
            continue
        known = [task.name for task in suites.get(ref.suite).tasks]
        for i, task in enumerate(ref.tasks):
            if task not in known:
                yield (
                    (section, "tasks", i),
                    f"suite {ref.suite!r} has no task {task!r}. Tasks: {', '.join(known)}",
                )


def check_follows(experiment: Experiment, found: list[Trial]) -> Iterator[Error]:
    """``follows`` names another trained arm, which itself follows none; an untrained arm follows none."""
    trained = [a.name for a in experiment.ablation.arms if not a.untrained]
    for i, arm in enumerate(experiment.ablation.arms):
        if arm.follows is None:
            continue
        loc = ("ablation", "arms", i, "follows")
        if arm.untrained:
            yield loc, "an untrained arm is not trained: it follows no arm (remove follows)"
        elif arm.follows == arm.name:
            yield loc, f"arm {arm.name!r} follows itself; name another trained arm: {', '.join(trained)}"
        elif arm.follows not in trained:
            yield loc, f"no trained arm named {arm.follows!r}. Trained arms: {', '.join(trained)}"
        elif experiment.arm(arm.follows).follows is not None:
            leader = experiment.arm(arm.follows)
            yield (
                loc,
                f"{leader.name!r} follows {leader.follows!r} itself: follow {leader.follows!r} directly",
            )


_ARM_DEFINING = {"strategy", "objective", "guide", "variant"}


"""Fields that make a different arm, not a setting of one: never in a tuning space."""


def check_tuning(experiment: Experiment, found: list[Trial]) -> Iterator[Error]:
    """``[tuning]``: arms to tune, spaces that fit each arm, fresh seeds, a suite disjoint from the final."""
    tuning = experiment.tuning
    if tuning is None:
        return
    from harness.config.tuning import arm_space, tuned_arms

    arms = {a.name: a for a in experiment.ablation.arms if not a.untrained}
    if not arms:
        yield ("tuning",), "tuning searches each trained arm: add [[ablation.arms]]"
        return
    if experiment.search_space:
        yield (
            ("search_space",),
            "with [tuning], each arm's space is [tuning.space] (shared) or [tuning.arm_space.ARM]",
        )
    valid = ", ".join(n for n, a in arms.items() if a.follows is None)
    if tuning.arms is not None and (not tuning.arms or len(set(tuning.arms)) != len(tuning.arms)):
        yield (
            ("tuning", "arms"),
            f"list each tuned arm once (valid: {valid}), or leave tuning.arms unset for all",
        )
    for i, name in enumerate(tuning.arms or []):
        if name not in arms or arms[name].follows is not None:
            yield ("tuning", "arms", i), f"{name!r} is not a trained arm that follows none. Valid: {valid}"
    tuned = [n for n in tuned_arms(experiment) if n in arms and arms[n].follows is None]
    for name in tuning.arm_space:
        if name not in tuned:
            yield ("tuning", "arm_space", name), f"{name!r} is not a tuned arm. Tuned: {', '.join(tuned)}"
    yield from _bind(PRUNERS[tuning.pruner], tuning.pruner_params, ("tuning", "pruner_params"), skip=set())
    fixed = {
        k: v for k, v in (("max_steps", tuning.max_steps), ("eval_every_steps", tuning.eval_every_steps)) if v
    }
    blind = {
        error
        for name in (tuned if {"pruner", "pruner_params"} & tuning.model_fields_set else [])
        for error in _check_pruner(
            experiment,
            tuning.pruner,
            tuning.pruner_params,
            {**buildable(experiment).arm_overrides(name), **fixed},
            ("tuning", "pruner"),
        )
    }
    yield from sorted(blind)
    for name in tuned:
        space = arm_space(experiment, name)
        if not space:
            yield (
                ("tuning", "space"),
                f"arm {name!r} has nothing to tune: add [tuning.space.FIELD] or [tuning.arm_space.{name}]",
            )
        if "seed" in space:
            yield ("tuning", "space", "seed"), "seeds are not tuned: tuning trials train at tuning.seed"
        for key in sorted(set(space) & _ARM_DEFINING):
            yield (
                ("tuning", "space", key),
                f"{key} defines an arm, it is not tuned: compare it as arms instead",
            )
        own = set(experiment.arm(name).overrides())
        for key in sorted(k for k in space if k in own):
            yield (
                ("tuning", "space", key),
                f"arm {name!r} sets {key} itself, which the search would override: remove one of the two",
            )
        where = ("tuning", "arm_space", name) if name in tuning.arm_space else ("tuning", "space")
        base = buildable(experiment).arm_overrides(name)
        shown = {k: v for k, v in space.items() if k != "seed"}
        yield from (
            (loc, f"arm {name!r}: {message}") for loc, message in check_space(experiment, shown, where, base)
        )
    seeds = experiment.ablation.seeds
    if tuning.seed in seeds:
        yield (
            ("tuning", "seed"),
            f"seed {tuning.seed} is also a confirmation seed {seeds}: the best settings are confirmed on fresh "
            "seeds, pick another",
        )
    yield from _check_tuning_suite(experiment)
    yield from _check_controls_follow(experiment)


def _check_controls_follow(experiment: Experiment) -> Iterator[Error]:
    """In a ``[tuning]`` study a control matched to another strategy's drops follows a tuned arm of that
    strategy (never tuned itself), so it runs at that arm's tuned setting and margin."""
    from harness.config.tuning import tuned_arms

    tuned = tuned_arms(experiment)
    for i, arm in enumerate(experiment.ablation.arms):
        matched = matched_strategy(arm.strategy, arm.strategy_params)
        if arm.untrained or matched is None:
            continue
        leaders = [n for n in tuned if _strategy_of(experiment, n) == matched]
        if arm.follows not in leaders:
            yield (
                ("ablation", "arms", i, "follows"),
                f"control {arm.name!r} copies {matched!r}'s drops: in a [tuning] study it follows a tuned "
                f"{matched!r} arm (valid: {', '.join(leaders) or f'none: tune an arm with strategy {matched!r}'})",
            )


def _strategy_of(experiment: Experiment, name: str) -> str:
    try:
        return buildable(experiment).trial_config(buildable(experiment).arm_overrides(name)).strategy
    except (ValidationError, KeyError, StopIteration):
        return ""


def _disjoint_hint(final: Any) -> str:
    """``, e.g. 'dev'`` where the dev suite is disjoint from ``final``, else nothing."""
    from harness.config.schema import SuiteRef
    from harness.evaluate import overlapping_tasks

    return ", e.g. 'dev'" if not overlapping_tasks(SuiteRef(suite="dev"), final) else ", e.g. held-out tasks"


def _check_tuning_suite(experiment: Experiment) -> Iterator[Error]:
    """Settings are never chosen on final-suite scores: the tuning suite shares no task with the final one."""
    tuning, final = experiment.tuning, experiment.final or experiment.objective
    suites = registry("suite")
    if tuning is None or final is None or tuning.suite not in suites or final.suite not in suites:
        return
    from harness.evaluate import overlapping_tasks

    shared = overlapping_tasks(tuning, final)
    if shared:
        yield (
            ("tuning", "suite"),
            f"tuning suite {tuning.label!r} overlaps the final suite {final.label!r} on {', '.join(shared)}: "
            f"settings would be chosen on final-suite scores (valid: a suite disjoint from it{_disjoint_hint(final)})",
        )
