"""Checks of what each trial trains: model, data, strategy, objective, loss layout and the fields that
must agree with the training data (negatives, labels, mining, co-training)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from harness.config.checks.trials import Error, Trial, check_name, registry, trial
from harness.config.schema import (
    NESTED_FIELDS,
    PARAM_TABLES,
    CategoricalParam,
    DataConfig,
    Experiment,
    SourceRef,
    TrainConfig,
)

_STRATEGY_FIELDS = {"strategy", "strategy_params", "margin", "margin_strategy"}


_OBJECTIVE_FIELDS = {"objective", "objective_params"}


_LAYOUT_FIELDS = ("directions", "partition", "variant", "contrast_anchors", "contrast_positives")


def check_model(experiment: Experiment, found: list[Trial]) -> Iterator[Error]:
    model = experiment.model
    if model is None:
        return  # pydantic reports the missing section
    if model.pair is not None and ({"student", "guide"} & model.model_fields_set):
        yield ("model",), "give either pair or student + guide, not both"
    elif model.pair is None and model.student is None:
        yield ("model",), "give pair, or student and guide"
    elif model.student is not None and model.guide is None:
        yield ("model", "guide"), "a student needs a guide (a model name, or 'none' for plain InfoNCE)"
    if model.pair is not None:
        from harness.models.pairs import resolve_pair

        try:
            resolve_pair(model.pair)  # registered, or any STUDENT__GUIDE of zoo models
        except KeyError as exc:
            yield ("model", "pair"), f"{str(exc).rstrip('.')} (or STUDENT__GUIDE of two zoo models)"
    yield from check_name("model", model.student, ("model", "student"))
    if isinstance(model.student, str) and model.student in registry("model"):
        from harness.models import untrainable_message

        message = untrainable_message(model.student)
        if message:
            yield ("model", "student"), message
    yield from check_name("guide", model.guide, ("model", "guide"), also="model")


def check_data(experiment: Experiment, found: list[Trial]) -> Iterator[Error]:
    data = experiment.data
    if data is None:
        return
    if (data.mixture is None) == (data.sources is None):
        yield ("data",), "give exactly one of mixture or sources"
    yield from check_name("mixture", data.mixture, ("data", "mixture"), also="dataset")
    for i, source in enumerate(data.sources or []):
        if isinstance(source, SourceRef):
            yield from check_name("dataset", source.source, ("data", "sources", i, "source"))
        else:
            yield from check_name("dataset", source, ("data", "sources", i))


def check_trials(experiment: Experiment, found: list[Trial]) -> Iterator[Error]:
    """``[train]`` and every arm: the types of the fields each sets, then their names and parameters."""
    for one in found:
        yield from one.errors
        yield from _check_given(one, one.loc)


def _check_given(one: Trial, loc: tuple) -> Iterator[Error]:
    """Names in the fields a trial sets: strategy, its parameters (names and ranges), guide, objective."""
    given = one.given
    fields = {key.split(".", 1)[0] for key in given}
    yield from check_name("strategy", given.get("strategy"), (*loc, "strategy"))
    yield from check_name("guide", given.get("guide"), (*loc, "guide"), also="model")
    touched = _STRATEGY_FIELDS & fields
    if touched and not touched & one.refused:
        message = strategy_problem(one.config)
        if message:
            yield (*loc, "strategy_params" if "strategy_params" in fields else sorted(touched)[0]), message
    yield from check_name("objective", given.get("objective"), (*loc, "objective"))
    if _OBJECTIVE_FIELDS & fields and not _OBJECTIVE_FIELDS & one.refused:
        message = objective_problem(one.config)
        if message:
            yield (*loc, "objective_params" if "objective_params" in fields else "objective"), message
    layout = [f for f in _LAYOUT_FIELDS if f in fields]
    if layout and not set(layout) & one.refused:
        message = layout_problem(one.config)
        if message:
            yield (*loc, layout[0]), message


def layout_problem(config: TrainConfig) -> str | None:
    """Why the loss's blocks (variant, directions, partition, contrast_*) do not fit together, or None."""
    from harness.loss.spec import LossConfig

    try:
        LossConfig.of(config)
    except Exception as exc:  # UserError naming the field and the valid choices
        return str(exc)
    return None


def objective_problem(config: TrainConfig) -> str | None:
    """Why the loss objective's parameters (``objective_params``) do not fit, or None."""
    if config.objective not in registry("objective"):
        return None
    from harness.loss.objectives import resolve_objective

    try:
        resolve_objective(config.objective, config.objective_params)
    except Exception as exc:  # UserError naming the parameter and its valid range
        return str(exc)
    return None


def strategy_problem(config: TrainConfig) -> str | None:
    """Why the strategy and its parameters (``strategy_params``, ``margin``...) do not fit, or None."""
    reg = registry("strategy")
    if config.strategy not in reg:
        return None
    from harness.masking import resolve_params

    known = reg.get(config.strategy).params
    merged = dict(config.strategy_params)
    for key in ("margin", "margin_strategy"):
        value = getattr(config, key)
        if value is not None and key in known:
            merged.setdefault(key, value)
        elif value is not None and key == "margin_strategy":
            return f"margin_strategy applies to strategy 'gist' only, not {config.strategy!r}"
    try:
        resolve_params(config.strategy, merged)
    except Exception as exc:  # UserError with the valid names or range
        return str(exc)
    return None


def check_search_space(experiment: Experiment, found: list[Trial]) -> Iterator[Error]:
    """Each entry names a training field, has a valid range, and every value it can take checks out."""
    yield from check_space(experiment, experiment.search_space, ("search_space",), {})


def check_space(
    experiment: Experiment, space: dict[str, Any], where: tuple, base: dict[str, Any]
) -> Iterator[Error]:
    """The entries of ``space`` (at ``where``) over the overrides ``base`` (an arm's, or none)."""
    for key, spec in space.items():
        loc = (*where, key)
        field = key.split(".", 1)[0]
        dotted = "." in key
        if (
            field not in TrainConfig.model_fields
            or (field in PARAM_TABLES and not dotted)
            or (dotted and field not in NESTED_FIELDS)
        ):
            valid = ", ".join(f for f in TrainConfig.model_fields if f not in PARAM_TABLES)
            named = ", ".join(f"{f}.NAME" for f in NESTED_FIELDS)
            yield loc, f"not a training field. Valid: {valid}, {named}"
            continue
        if field == "mine" and dotted and trial(experiment, base, ()).config.mine is None:
            yield (
                loc,
                "this trial mines nothing: set [train] mine (or the arm's) to search one of its options",
            )
            continue
        if isinstance(spec, CategoricalParam):
            values: list[Any] = list(spec.choices)
        else:
            if spec.low >= spec.high:
                yield (*loc, "low"), f"low ({spec.low}) must be below high ({spec.high})"
            if spec.log and spec.low <= 0:
                yield (*loc, "low"), "a log scale needs low > 0"
            values = [spec.low, spec.high]
        for value in values:
            one = trial(experiment, {**base, key: value}, ())
            yield from ((loc, message) for _, message in (*one.errors, *_check_given(one, ())))


def _users(found: list[Trial], field: str) -> list[Trial]:
    """The trials that train (every trained arm, else ``[train]``), each located where ``field`` is set:
    at the arm that sets it, otherwise at ``[train]``."""
    train, arms = found[0], found[1:]
    if not arms:
        return [train]
    return [
        Trial(arm.loc if field in arm.given else train.loc, {**train.given, **arm.given}, arm.config)
        for arm in arms
        if arm.trained
    ]


def check_cotraining(experiment: Experiment, found: list[Trial]) -> Iterator[Error]:
    """``guide = "partner"`` needs a ``[cotraining]`` partner and more than one round, and vice versa."""
    if experiment.model is not None and experiment.model.guide == "partner":
        yield ("model", "guide"), 'guide "partner" belongs in [train] or an arm, with a [cotraining] section'
    users = [u for u in _users(found, "guide") if u.given.get("guide") == "partner"]
    users = list({(u.loc, u.config.rounds): u for u in users}.values())
    if experiment.cotraining is None:
        for loc in dict.fromkeys(u.loc for u in users):
            yield (
                (*loc, "guide"),
                'guide "partner" is the [cotraining] partner: add [cotraining] partner = MODEL',
            )
        return
    yield from check_name("model", experiment.cotraining.partner, ("cotraining", "partner"))
    if not users:
        yield ("cotraining",), 'no trial uses the partner: set guide = "partner" in [train] or an arm'
    for user in users:
        if user.config.rounds < 2:
            yield (
                (*user.loc, "rounds"),
                (
                    f'guide "partner" needs rounds >= 2 (got {user.config.rounds}): one round is only a '
                    "guide of the untrained partner (name that model as the guide instead)"
                ),
            )


def check_objective_negatives(experiment: Experiment, found: list[Trial]) -> Iterator[Error]:
    """An objective that needs hard negatives (``margin_mse``) on training data that has none."""
    objectives = registry("objective")
    reported: set[tuple] = set()
    for user in _users(found, "objective"):
        objective = user.config.objective
        if (
            objective not in objectives
            or not objectives.get(objective).needs_negatives
            or user.loc in reported
        ):
            continue
        why = (
            None
            if user.config.mine is not None
            else _why_no_negatives(experiment.data, user.config.negatives)
        )
        if why:
            reported.add(user.loc)
            yield (*user.loc, "objective"), f"objective {objective!r} needs a negative column, but {why}"


def check_mine(experiment: Experiment, found: list[Trial]) -> Iterator[Error]:
    """``mine`` needs a guide that exists before training, and a negatives policy that keeps columns."""
    reported: set[tuple] = set()
    for user in _users(found, "mine"):
        config = user.config
        if config.mine is None or user.loc in reported:
            continue
        guide = config.guide or "none"
        if guide in ("none", "self", "partner"):
            reported.add(user.loc)
            yield (
                (*user.loc, "mine"),
                f"mine ranks candidates with the trial's guide, and guide {guide!r} has none before training "
                "(valid: a model, gist-harness ls models; tfidf; bm25)",
            )
        elif config.negatives in (False, "drop"):
            reported.add(user.loc)
            yield (
                (*user.loc, "mine"),
                f"negatives = {config.negatives!r} would drop the mined negative columns (valid with mine: "
                "unset, 'keep', 'shared' or true; mined negatives replace each source's own)",
            )


def _why_no_negatives(data: DataConfig | None, policy: Any) -> str | None:
    """Why no training row can have a negative column (None when some can, or when it cannot be told)."""
    if policy in (False, "drop"):
        return f"negatives = {policy!r} drops them; use a source with negatives (e.g. snli-triplets)"
    if data is None:
        return None
    datasets, mixtures = registry("dataset"), registry("mixture")
    components: list[tuple[str, dict[str, Any]]] = [(n, {}) for n in data.sources or [] if isinstance(n, str)]
    if data.mixture is not None:
        if data.mixture in mixtures:
            components = [(c.source, dict(c.options)) for c in mixtures.get(data.mixture).components]
        else:
            components = [(data.mixture, {})]
    if not components or any(name not in datasets for name, _ in components):
        return None  # unknown or file sources: their columns are only known once read
    if any(
        "negative" in datasets.get(n).columns or options.get("with_negative") for n, options in components
    ):
        return None
    where = f"mixture {data.mixture!r}" if data.mixture is not None else "the sources"
    return f"{where} has pairs only (valid: a source with a negative column, e.g. snli-triplets)"


def check_labels(experiment: Experiment, found: list[Trial]) -> Iterator[Error]:
    """A strategy that reads labels (``oracle``, ``oracle_at_rate``...) on a source without a label column.

    Per-source batching gives each source batches of its own, and a mixed batch gives unlabelled rows
    no label: either way the strategy would act on some rows and not others, so it is refused here.
    """
    reported: set[tuple] = set()
    for user in _users(found, "strategy"):
        if user.loc in reported or not _reads_labels(user.config):
            continue
        unlabelled = _unlabelled_sources(experiment.data)
        if unlabelled:
            reported.add(user.loc)
            datasets = registry("dataset")
            labelled = ", ".join(n for n, s in datasets.items() if "label" in s.columns)
            policy = (
                "; or strategy_params.unlabelled = 'random' to drop GIST's count at random on rows without a label"
                if "unlabelled" in _strategy_params(user.config.strategy)
                else ""
            )
            message = (
                f"strategy {user.config.strategy!r} needs labels, but source {', '.join(unlabelled)} "
                f"has no label column (valid: labelled sources {labelled}{policy})"
            )
            yield (*user.loc, "strategy"), message


def check_gist_blocks(experiment: Experiment, found: list[Trial]) -> Iterator[Error]:
    """``gist`` restricted to a block (``strategy_params.blocks``) the trial's loss does not have."""
    reported: set[tuple] = set()
    for user in _users(found, "strategy_params"):
        config = user.config
        block = dict(config.strategy_params).get("blocks", "all")
        if config.strategy != "gist" or block == "all" or user.loc in reported:
            continue
        why = None
        if config.variant == "mnrl" and block in ("aa", "pp", "pa"):  # its blocks come from its directions
            needed = {"aa": "query_to_query", "pp": "doc_to_doc", "pa": "doc_to_query"}[block]
            if needed not in config.directions:
                why = f"variant 'mnrl' has the {block} block only with direction {needed!r} in directions"
        elif block == "pa":
            why = "the pa (doc_to_query) block exists only with variant 'mnrl' and direction 'doc_to_query'"
        elif block == "aa" and not config.contrast_anchors:
            why = "contrast_anchors = false removes the aa block"
        elif block == "pp" and not config.contrast_positives:
            why = "contrast_positives = false removes the pp block"
        elif block == "an" and config.mine is None:  # mined negatives fill the an block of every source
            why = _why_no_negatives(experiment.data, config.negatives)
        if why:
            reported.add(user.loc)
            yield (*user.loc, "strategy_params"), f"gist with blocks = {block!r} would drop nothing: {why}"


def _strategy_params(name: str) -> dict:
    """The registered parameters of strategy ``name`` (none for an unknown name, reported elsewhere)."""
    strategies = registry("strategy")
    return dict(strategies.get(name).params) if name in strategies else {}


def _reads_labels(config: TrainConfig) -> bool:
    """Whether the trial's strategy reads labels (False where its name or parameters are refused)."""
    from harness.masking import needs

    known = _strategy_params(config.strategy)
    params = dict(config.strategy_params)
    for key in ("margin", "margin_strategy"):
        if getattr(config, key) is not None and key in known:
            params.setdefault(key, getattr(config, key))
    try:
        return needs(config.strategy, params)[1]
    except Exception:  # an unknown name or a bad parameter: reported by check_trials
        return False


def _unlabelled_sources(data: DataConfig | None) -> list[str]:
    """The registered training sources of ``data`` without a label column (``file:`` ones are only
    known once read: the loss refuses a batch without labels then)."""
    if data is None:
        return []
    datasets, mixtures = registry("dataset"), registry("mixture")
    names = [ref.source for ref in data.source_refs]
    if data.mixture is not None:
        spec = mixtures.get(data.mixture) if data.mixture in mixtures else None
        names = [c.source for c in spec.components] if spec is not None else [data.mixture]
    return [n for n in dict.fromkeys(names) if n in datasets and "label" not in datasets.get(n).columns]
