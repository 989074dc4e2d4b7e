"""Checks pydantic cannot do alone: sections that must agree, and every registered name.

Each check reads the raw TOML dict defensively (a field of the wrong type is pydantic's error, not
ours) and returns ``(location, message)`` pairs, so one run reports every problem in the file.
Registries are imported lazily; a registry whose module is not installed is not checked.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import ValidationError

from harness.config.schema import PRUNERS, SAMPLERS, TrainConfig

Error = tuple[tuple, str]
_REGISTRIES = {
    "pair": ("harness.pairs", "PAIRS"),
    "model": ("harness.models", "MODELS"),
    "guide": ("harness.guides", "GUIDES"),
    "strategy": ("harness.masking", "STRATEGIES"),
    "objective": ("harness.loss.objectives", "OBJECTIVES"),
    "dataset": ("harness.data", "DATASETS"),
    "mixture": ("harness.data", "MIXTURES"),
    "suite": ("harness.evaluate", "SUITES"),
}


def registry(kind: str) -> Any | None:
    """The registry of ``kind`` or None while its module does not exist."""
    module_name, attr = _REGISTRIES[kind]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            return None
        raise
    return getattr(module, attr, None)


def check_experiment(data: dict[str, Any]) -> list[Error]:
    """Every consistency and name error in a parsed experiment (empty when it is fine)."""
    checks: list[Callable[[dict[str, Any]], Iterator[Error]]] = [
        _check_study,
        _check_model,
        _check_data,
        _check_train,
        _check_arms,
        _check_search_space,
        _check_suites,
        _check_cotraining,
        _check_objective_negatives,
        _check_report,
    ]
    return [error for check in checks for error in check(data)]


def _table(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None  # type: ignore[assignment]
    return data if isinstance(data, dict) else {}


def _name(kind: str, value: Any, loc: tuple, *, also: str | None = None) -> Iterator[Error]:
    """An error when ``value`` is a string that is not registered as ``kind`` (nor as ``also``)."""
    reg = registry(kind)
    if reg is None or not isinstance(value, str) or value in reg:
        return
    other = registry(also) if also else None
    if other is not None and value in other:
        return
    yield loc, reg.unknown_message(value)


def _check_study(data: dict[str, Any]) -> Iterator[Error]:
    study = _table(data, "study")
    arms = _table(data, "ablation").get("arms")
    for key, classes in (("sampler", SAMPLERS), ("pruner", PRUNERS)):
        name, params = study.get(key, "tpe" if key == "sampler" else "median"), study.get(f"{key}_params", {})
        if name in classes and isinstance(params, dict):
            yield from _bind(classes[name], params, ("study", f"{key}_params"), skip={"seed", "search_space"})
    raw_space = data.get("search_space")
    space = raw_space if isinstance(raw_space, dict) else {}
    if study.get("sampler") == "grid" and any(_table(space, k).get("type") != "categorical" for k in space):
        yield ("study", "sampler"), "the grid sampler needs every search_space entry to be categorical"
    if arms and "n_trials" in study:
        yield ("study", "n_trials"), "an ablation runs every arm x seed once; remove n_trials"
    if data.get("search_space") and not arms and not ({"n_trials", "timeout_s"} & set(study)):
        yield ("study", "n_trials"), "a search needs study.n_trials or study.timeout_s"


def _bind(target: str, params: dict[str, Any], loc: tuple, skip: set[str]) -> Iterator[Error]:
    module_name, cls_name = target.split(":")
    signature = inspect.signature(getattr(importlib.import_module(module_name), cls_name))
    valid = [p for p in signature.parameters if p not in skip and p != "self"]
    for key in params:
        if key not in valid:
            yield (*loc, key), f"{cls_name} has no parameter {key!r}. Valid: {', '.join(valid)}"


def _check_model(data: dict[str, Any]) -> Iterator[Error]:
    model = _table(data, "model")
    if "model" not in data:
        return  # pydantic reports the missing section
    if "pair" in model and ({"student", "guide"} & set(model)):
        yield ("model",), "give either pair or student + guide, not both"
    elif "pair" not in model and "student" not in model:
        yield ("model",), "give pair, or student and guide"
    elif "student" in model and "guide" not in model:
        yield ("model", "guide"), "a student needs a guide (a model name, or 'none' for plain InfoNCE)"
    pair = model.get("pair")
    if isinstance(pair, str) and registry("pair") is not None:
        from harness.pairs import resolve_pair

        try:
            resolve_pair(pair)  # registered, or any STUDENT__GUIDE of zoo models
        except KeyError as exc:
            yield ("model", "pair"), f"{str(exc).rstrip('.')} (or STUDENT__GUIDE of two zoo models)"
    yield from _name("model", model.get("student"), ("model", "student"))
    yield from _name("guide", model.get("guide"), ("model", "guide"), also="model")


def _check_data(data: dict[str, Any]) -> Iterator[Error]:
    section = _table(data, "data")
    if "data" in data and ("mixture" in section) == ("sources" in section):
        yield ("data",), "give exactly one of mixture or sources"
    yield from _name("mixture", section.get("mixture"), ("data", "mixture"), also="dataset")
    sources = section.get("sources")
    for i, source in enumerate(sources if isinstance(sources, list) else []):
        if isinstance(source, dict):
            yield from _name("dataset", source.get("source"), ("data", "sources", i, "source"))
        else:
            yield from _name("dataset", source, ("data", "sources", i))


def _check_train(data: dict[str, Any]) -> Iterator[Error]:
    yield from _check_overrides(_table(data, "train"), ("train",))


def _check_overrides(
    values: dict[str, Any], loc: tuple, base: dict[str, Any] | None = None
) -> Iterator[Error]:
    """Names in a set of training fields: strategy, its parameters (names and ranges), guide."""
    merged = {**(base or {}), **values}
    yield from _name("strategy", values.get("strategy"), (*loc, "strategy"))
    yield from _name("guide", values.get("guide"), (*loc, "guide"), also="model")
    touched = {"strategy", "strategy_params", "margin", "margin_strategy"} & set(values)
    if touched:
        message = strategy_problem(merged)
        if message:
            field = "strategy_params" if "strategy_params" in values else sorted(touched)[0]
            yield (*loc, field), message
    yield from _name("objective", values.get("objective"), (*loc, "objective"))
    if {"objective", "objective_params"} & set(values):
        message = objective_problem(merged)
        if message:
            yield (*loc, "objective_params" if "objective_params" in values else "objective"), message


def objective_problem(train: dict[str, Any]) -> str | None:
    """Why the loss objective's parameters (``objective_params``) do not fit, or None."""
    reg = registry("objective")
    objective, params = train.get("objective", "infonce"), train.get("objective_params", {})
    if reg is None or objective not in reg or not isinstance(params, dict):
        return None
    from harness.loss.objectives import resolve_objective

    try:
        resolve_objective(objective, params)
    except Exception as exc:  # UserError naming the parameter and its valid range
        return str(exc)
    return None


def strategy_problem(train: dict[str, Any]) -> str | None:
    """Why the strategy and its parameters (``strategy_params``, ``margin``...) do not fit, or None."""
    reg = registry("strategy")
    strategy, params = train.get("strategy", "gist"), train.get("strategy_params", {})
    if reg is None or strategy not in reg or not isinstance(params, dict):
        return None
    from harness.masking import resolve_params

    known = reg.get(strategy).params
    merged = dict(params)
    for key in ("margin", "margin_strategy"):
        value = train.get(key)
        if value is not None and key in known:
            merged.setdefault(key, value)
        elif value is not None and key == "margin_strategy":
            return f"margin_strategy applies to strategy 'gist' only, not {strategy!r}"
    try:
        resolve_params(strategy, merged)
    except Exception as exc:  # UserError with the valid names or range
        return str(exc)
    return None


def _check_arms(data: dict[str, Any]) -> Iterator[Error]:
    ablation = _table(data, "ablation")
    raw_arms = ablation.get("arms")
    arms = raw_arms if isinstance(raw_arms, list) else []
    train = _table(data, "train")
    names = [arm.get("name") for arm in arms if isinstance(arm, dict)]
    for i, arm in enumerate(arms):
        if not isinstance(arm, dict):
            continue
        if names.count(arm.get("name")) > 1:
            yield ("ablation", "arms", i, "name"), f"arm name {arm.get('name')!r} is used twice"
        overrides = {k: v for k, v in arm.items() if k in TrainConfig.model_fields}
        yield from _validate_train({**train, **overrides}, ("ablation", "arms", i), only=set(overrides))
        yield from _check_overrides(overrides, ("ablation", "arms", i), base=train)
    baseline = ablation.get("baseline")
    if baseline is not None and baseline not in names:
        yield ("ablation", "baseline"), f"no arm named {baseline!r}. Arms: {', '.join(map(str, names))}"
    seeds = ablation.get("seeds")
    if isinstance(seeds, list) and len(set(map(str, seeds))) != len(seeds):
        yield ("ablation", "seeds"), "seeds repeat"
    if arms and data.get("search_space"):
        yield ("search_space",), "an ablation fixes each trial's configuration: use arms or a search space"
    if not arms and not data.get("search_space") and "study" in data:
        yield ("ablation", "arms"), "nothing to run: add [[ablation.arms]] or a [search_space.FIELD]"


def _validate_train(values: dict[str, Any], loc: tuple, only: set[str]) -> Iterator[Error]:
    """Type errors of ``values`` as a TrainConfig, reported for the fields in ``only``."""
    try:
        TrainConfig.model_validate(values)
    except ValidationError as exc:
        for error in exc.errors():
            if error["loc"] and error["loc"][0] in only:
                yield (*loc, *error["loc"]), f"{error['msg']} (got {error.get('input')!r})"


def _check_search_space(data: dict[str, Any]) -> Iterator[Error]:
    space = data.get("search_space")
    train = _table(data, "train")
    for key, spec in (space if isinstance(space, dict) else {}).items():
        loc = ("search_space", key)
        field = key.split(".", 1)[0]
        nested = ("strategy_params", "objective_params")
        if field not in TrainConfig.model_fields or (field in nested) != ("." in key):
            valid = ", ".join(f for f in TrainConfig.model_fields if f not in nested)
            yield loc, f"not a training field. Valid: {valid}, strategy_params.NAME, objective_params.NAME"
            continue
        if not isinstance(spec, dict):
            continue
        kind = spec.get("type")
        low, high = spec.get("low"), spec.get("high")
        if kind in ("float", "int") and isinstance(low, int | float) and isinstance(high, int | float):
            if low >= high:
                yield (*loc, "low"), f"low ({low}) must be below high ({high})"
            if spec.get("log") and low <= 0:
                yield (*loc, "low"), "a log scale needs low > 0"
            values: list[Any] = [low, high]
        else:
            choices = spec.get("choices")
            values = choices if isinstance(choices, list) else []
        for value in values:
            if field in nested:
                params = {**_table(train, field), key.split(".", 1)[1]: value}
                yield from ((loc, m) for _, m in _check_overrides({field: params}, (), train))
                continue
            yield from ((loc, msg) for _, msg in _validate_train({**train, field: value}, loc, only={field}))
            yield from ((loc, msg) for _, msg in _check_overrides({field: value}, (), base=train))


def _check_suites(data: dict[str, Any]) -> Iterator[Error]:
    reg = registry("suite")
    for section in ("objective", "final"):
        table = _table(data, section)
        suite, tasks = table.get("suite"), table.get("tasks")
        yield from _name("suite", suite, (section, "suite"))
        if reg is None or suite not in reg or not isinstance(tasks, list):
            continue
        known = suite_tasks(reg.get(suite))
        for i, task in enumerate(tasks):
            if known is not None and task not in known:
                yield (
                    (section, "tasks", i),
                    f"suite {suite!r} has no task {task!r}. Tasks: {', '.join(known)}",
                )


def suite_tasks(suite: Any) -> list[str] | None:
    """Task names of a registered suite, or None when they cannot be read."""
    tasks = getattr(suite, "tasks", None) or getattr(suite, "task_names", None)
    if tasks is None:
        return None
    return [t if isinstance(t, str) else getattr(t, "name", str(t)) for t in tasks]


def _check_cotraining(data: dict[str, Any]) -> Iterator[Error]:
    """``guide = "partner"`` needs a ``[cotraining]`` partner and more than one round, and vice versa."""
    section = data.get("cotraining")
    train = _table(data, "train")
    arms = [a for a in (_table(data, "ablation").get("arms") or []) if isinstance(a, dict)]
    model_guide = _table(data, "model").get("guide")
    if model_guide == "partner":
        yield ("model", "guide"), 'guide "partner" belongs in [train] or an arm, with a [cotraining] section'
    users: list[tuple[tuple, dict[str, Any]]] = []  # (where the guide is named, merged train fields)
    trained = [(i, a) for i, a in enumerate(arms) if not a.get("untrained")]
    for i, arm in trained:
        if {**train, **arm}.get("guide") == "partner":
            users.append(((("ablation", "arms", i) if "guide" in arm else ("train",)), {**train, **arm}))
    if not arms and train.get("guide") == "partner":
        users.append((("train",), train))
    users = list({(loc, str(merged.get("rounds"))): (loc, merged) for loc, merged in users}.values())
    if section is None:
        for loc in dict.fromkeys(loc for loc, _ in users):
            yield (
                (*loc, "guide"),
                'guide "partner" is the [cotraining] partner: add [cotraining] partner = MODEL',
            )
        return
    if isinstance(section, dict):
        yield from _name("model", section.get("partner"), ("cotraining", "partner"))
    if not users:
        yield ("cotraining",), 'no trial uses the partner: set guide = "partner" in [train] or an arm'
    for loc, merged in users:
        rounds = merged.get("rounds", 1)
        if isinstance(rounds, int) and rounds < 2:
            yield (
                (*loc, "rounds"),
                (
                    f'guide "partner" needs rounds >= 2 (got {rounds}): one round is only a guide of the '
                    "untrained partner (name that model as the guide instead)"
                ),
            )


def _check_report(data: dict[str, Any]) -> Iterator[Error]:
    """``[report]``: contrasts name two different trained arms, primary ones are among them, 0 < alpha < 1."""
    section = data.get("report")
    if not isinstance(section, dict):
        return
    ablation = _table(data, "ablation")
    arms = [a for a in (ablation.get("arms") or []) if isinstance(a, dict)]
    names = [str(a.get("name")) for a in arms if not a.get("untrained")]
    valid = f"trained arms: {', '.join(names) or 'none (a search has no arms to contrast)'}"
    declared = section.get("contrasts")
    for key in ("contrasts", "interactions", "primary"):
        pairs = section.get(key)
        if pairs == []:
            yield (
                ("report", key),
                f"empty list: give pairs [ARM, REFERENCE] of {valid}, or leave {key} unset",
            )
        for i, pair in enumerate(pairs if isinstance(pairs, list) else []):
            if not (isinstance(pair, list) and len(pair) in (2, 4)):
                continue  # pydantic reports the shape
            for name in pair:
                if name not in names:
                    yield (("report", key, i), f"unknown arm {name!r}; {valid}")
            if len(pair) == 4 and (pair[0] == pair[1] or pair[2] == pair[3] or pair[:2] == pair[2:]):
                yield (
                    ("report", key, i),
                    f"interaction {pair!r} compares a gain with itself or an arm with itself; give [a, b, c, d] "
                    "with a != b, c != d and (a, b) != (c, d)",
                )
            if len(pair) == 2 and pair[0] == pair[1]:
                yield (
                    ("report", key, i),
                    f"contrast of arm {pair[0]!r} with itself; pick two different {valid}",
                )
    baseline = ablation.get("baseline")
    if isinstance(declared, list) and declared:
        allowed = [list(p) for p in declared if isinstance(p, list)]
        where = "report.contrasts"
    else:
        allowed = [[n, baseline] for n in names if n != baseline] if baseline else []
        where = "the default contrasts (each arm against the baseline)"
    interactions = section.get("interactions")
    allowed += [
        list(p) for p in (interactions if isinstance(interactions, list) else []) if isinstance(p, list)
    ]
    primary = section.get("primary")
    for i, pair in enumerate(primary if isinstance(primary, list) else []):
        if isinstance(pair, list) and len(pair) in (2, 4) and pair not in allowed:
            choices = ", ".join(repr(list(p)) for p in allowed) or "none"
            yield (("report", "primary", i), f"{pair!r} is not among {where}: {choices}")
    alpha = section.get("alpha")
    if isinstance(alpha, int | float) and not isinstance(alpha, bool) and not 0 < alpha < 1:
        yield (("report", "alpha"), f"alpha must lie strictly between 0 and 1, e.g. 0.05 (got {alpha})")


def _check_objective_negatives(data: dict[str, Any]) -> Iterator[Error]:
    """An objective that needs hard negatives (``margin_mse``) on training data that has none."""
    reg = registry("objective")
    if reg is None:
        return
    train = _table(data, "train")
    arms = [a for a in (_table(data, "ablation").get("arms") or []) if isinstance(a, dict)]
    # An arm that names the objective is reported at the arm, one that inherits it at [train].
    users: list[tuple[tuple, dict[str, Any]]] = [
        ((("ablation", "arms", i) if "objective" in a else ("train",)), {**train, **a})
        for i, a in enumerate(arms)
        if not a.get("untrained")
    ]
    if not arms:
        users = [(("train",), train)]
    reported: set[tuple] = set()
    for loc, merged in users:
        objective = merged.get("objective", "infonce")
        if objective not in reg or not reg.get(objective).needs_negatives or loc in reported:
            continue
        policy = merged.get("negatives", _table(data, "data").get("negatives"))
        why = _why_no_negatives(_table(data, "data"), policy)
        if why:
            reported.add(loc)
            yield (*loc, "objective"), f"objective {objective!r} needs a negative column, but {why}"


def _why_no_negatives(data: dict[str, Any], policy: Any) -> str | None:
    """Why no training row can have a negative column (None when some can, or when it cannot be told)."""
    if policy in (False, "drop"):
        return f"negatives = {policy!r} drops them; use a source with negatives (e.g. snli-triplets)"
    datasets, mixtures = registry("dataset"), registry("mixture")
    if datasets is None or mixtures is None:
        return None
    names = data.get("sources") if isinstance(data.get("sources"), list) else None
    components: list[tuple[str, dict[str, Any]]] = [(n, {}) for n in names or [] if isinstance(n, str)]
    mixture = data.get("mixture")
    if isinstance(mixture, str):
        if mixture in mixtures:
            components = [(c.source, dict(c.options)) for c in mixtures.get(mixture).components]
        else:
            components = [(mixture, {})]
    if not components or any(name not in datasets for name, _ in components):
        return None  # unknown or file sources: their columns are only known once read
    has = [
        name
        for name, options in components
        if "negative" in datasets.get(name).columns or options.get("with_negative")
    ]
    if has:
        return None
    where = f"mixture {mixture!r}" if isinstance(mixture, str) else "the sources"
    return f"{where} has pairs only (valid: a source with a negative column, e.g. snli-triplets)"
