"""Checks pydantic cannot do alone: sections that must agree, and every registered name.

The checks read the typed :class:`~harness.config.schema.Experiment`: for a file pydantic refused,
the draft of what it accepted (:mod:`harness.config.draft`), whose required sections may be None. Every
trained configuration (``[train]``, each arm, each search-space value) is built by
``Experiment.trial_config``, as the study builds it. Each check returns ``(location, message)``
pairs, so one run reports every problem in the file.
"""

from __future__ import annotations

import difflib
import inspect
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel, ValidationError

from harness.config.schema import (
    PRUNERS,
    SAMPLERS,
    CategoricalParam,
    DataConfig,
    Experiment,
    ModelConfig,
    SourceRef,
    TrainConfig,
    matched_strategy,
    optuna_class,
)
from harness.registry import Registry

Error = tuple[tuple, str]
_STRATEGY_FIELDS = {"strategy", "strategy_params", "margin", "margin_strategy"}
_OBJECTIVE_FIELDS = {"objective", "objective_params"}
_LAYOUT_FIELDS = ("directions", "partition", "variant", "contrast_anchors", "contrast_positives")
_NESTED = ("strategy_params", "objective_params")


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
    buildable = _buildable(experiment)
    try:
        return Trial(loc, given, buildable.trial_config(given), trained=trained)
    except ValidationError as exc:
        refused = [e for e in exc.errors() if e["loc"] and e["loc"][0] in given]
        errors = tuple(((*loc, *e["loc"]), _refusal(e)) for e in refused)
        bad = {e["loc"][0] for e in exc.errors()}
        kept = {k: v for k, v in given.items() if k.split(".", 1)[0] not in bad}
        return Trial(loc, given, buildable.trial_config(kept), errors, trained)


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


def _buildable(experiment: Experiment) -> Experiment:
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
            _buildable(experiment).arm_overrides(arm.name)
            if _follows_known(experiment, arm)
            else arm.overrides()
        )
        found.append(trial(experiment, given, ("ablation", "arms", i), trained=not arm.untrained))
    return found


def check_experiment(experiment: Experiment) -> list[Error]:
    """Every consistency and name error in a (draft) experiment (empty when it is fine)."""
    found = trials(experiment)
    checks: list[Callable[[Experiment, list[Trial]], Iterator[Error]]] = [
        _check_study,
        _check_model,
        _check_data,
        _check_trials,
        _check_arms,
        _check_search_space,
        _check_follows,
        _check_tuning,
        _check_suites,
        _check_cotraining,
        _check_objective_negatives,
        _check_mine,
        _check_labels,
        _check_gist_blocks,
        _check_report,
    ]
    return [error for check in checks for error in check(experiment, found)]


def _name(kind: str, value: Any, loc: tuple, *, also: str | None = None) -> Iterator[Error]:
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


def _check_study(experiment: Experiment, found: list[Trial]) -> Iterator[Error]:
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
        train = _buildable(experiment).trial_config(overrides)
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


def _check_model(experiment: Experiment, found: list[Trial]) -> Iterator[Error]:
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
    yield from _name("model", model.student, ("model", "student"))
    if isinstance(model.student, str) and model.student in registry("model"):
        from harness.models import untrainable_message

        message = untrainable_message(model.student)
        if message:
            yield ("model", "student"), message
    yield from _name("guide", model.guide, ("model", "guide"), also="model")


def _check_data(experiment: Experiment, found: list[Trial]) -> Iterator[Error]:
    data = experiment.data
    if data is None:
        return
    if (data.mixture is None) == (data.sources is None):
        yield ("data",), "give exactly one of mixture or sources"
    yield from _name("mixture", data.mixture, ("data", "mixture"), also="dataset")
    for i, source in enumerate(data.sources or []):
        if isinstance(source, SourceRef):
            yield from _name("dataset", source.source, ("data", "sources", i, "source"))
        else:
            yield from _name("dataset", source, ("data", "sources", i))


def _check_trials(experiment: Experiment, found: list[Trial]) -> Iterator[Error]:
    """``[train]`` and every arm: the types of the fields each sets, then their names and parameters."""
    for one in found:
        yield from one.errors
        yield from _check_given(one, one.loc)


def _check_given(one: Trial, loc: tuple) -> Iterator[Error]:
    """Names in the fields a trial sets: strategy, its parameters (names and ranges), guide, objective."""
    given = one.given
    fields = {key.split(".", 1)[0] for key in given}
    yield from _name("strategy", given.get("strategy"), (*loc, "strategy"))
    yield from _name("guide", given.get("guide"), (*loc, "guide"), also="model")
    touched = _STRATEGY_FIELDS & fields
    if touched and not touched & one.refused:
        message = strategy_problem(one.config)
        if message:
            yield (*loc, "strategy_params" if "strategy_params" in fields else sorted(touched)[0]), message
    yield from _name("objective", given.get("objective"), (*loc, "objective"))
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


def _check_arms(experiment: Experiment, found: list[Trial]) -> Iterator[Error]:
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


def _check_search_space(experiment: Experiment, found: list[Trial]) -> Iterator[Error]:
    """Each entry names a training field, has a valid range, and every value it can take checks out."""
    yield from _check_space(experiment, experiment.search_space, ("search_space",), {})


def _check_space(
    experiment: Experiment, space: dict[str, Any], where: tuple, base: dict[str, Any]
) -> Iterator[Error]:
    """The entries of ``space`` (at ``where``) over the overrides ``base`` (an arm's, or none)."""
    for key, spec in space.items():
        loc = (*where, key)
        field = key.split(".", 1)[0]
        if field not in TrainConfig.model_fields or (field in _NESTED) != ("." in key):
            valid = ", ".join(f for f in TrainConfig.model_fields if f not in _NESTED)
            yield loc, f"not a training field. Valid: {valid}, strategy_params.NAME, objective_params.NAME"
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


def _check_suites(experiment: Experiment, found: list[Trial]) -> Iterator[Error]:
    suites = registry("suite")
    for section in ("objective", "final", "tuning"):
        ref = getattr(experiment, section)
        if ref is None:
            continue
        yield from _name("suite", ref.suite, (section, "suite"))
        if ref.suite not in suites or ref.tasks is None:
            continue
        known = [task.name for task in suites.get(ref.suite).tasks]
        for i, task in enumerate(ref.tasks):
            if task not in known:
                yield (
                    (section, "tasks", i),
                    f"suite {ref.suite!r} has no task {task!r}. Tasks: {', '.join(known)}",
                )


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


def _check_cotraining(experiment: Experiment, found: list[Trial]) -> Iterator[Error]:
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
    yield from _name("model", experiment.cotraining.partner, ("cotraining", "partner"))
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


def _check_objective_negatives(experiment: Experiment, found: list[Trial]) -> Iterator[Error]:
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


def _check_mine(experiment: Experiment, found: list[Trial]) -> Iterator[Error]:
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


def _check_labels(experiment: Experiment, found: list[Trial]) -> Iterator[Error]:
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


def _check_gist_blocks(experiment: Experiment, found: list[Trial]) -> Iterator[Error]:
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
    except Exception:  # an unknown name or a bad parameter: reported by _check_trials
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


def _check_report(experiment: Experiment, found: list[Trial]) -> Iterator[Error]:
    """``[report]``: contrasts name two different trained arms (an untrained one only as a reference),
    interactions 4 or 8 trained arms, primary ones are among them, aggregates once each, 0 < alpha < 1."""
    report = experiment.report
    if report is None:
        return
    names = [a.name for a in experiment.ablation.arms if not a.untrained]
    untrained = [a.name for a in experiment.ablation.arms if a.untrained]
    valid = f"trained arms: {', '.join(names) or 'none (a search has no arms to contrast)'}"
    for key in ("contrasts", "interactions", "primary"):
        yield from _check_pairs(key, getattr(report, key), names, valid, untrained)
    baseline = experiment.ablation.baseline
    if report.contrasts:
        allowed = [list(p) for p in report.contrasts]
        where = "report.contrasts"
    else:
        allowed = [[n, baseline] for n in names if n != baseline] if baseline else []
        where = "the default contrasts (each arm against the baseline)"
    allowed += [list(p) for p in report.interactions or []]
    for i, pair in enumerate(list(p) for p in report.primary or []):
        if pair not in allowed:
            choices = ", ".join(repr(p) for p in allowed) or "none"
            yield ("report", "primary", i), f"{pair!r} is not among {where}: {choices}"
    repeated = sorted({k for k in report.primary_on if report.primary_on.count(k) > 1})
    if not report.primary_on or repeated:
        yield (
            ("report", "primary_on"),
            (
                f"name each aggregate once ({'repeated: ' + ', '.join(repeated) if repeated else 'empty list'}); "
                "choose from category, task, sts, out-of-domain, or leave primary_on unset (category)"
            ),
        )
    if not 0 < report.alpha < 1:
        alpha = int(report.alpha) if report.alpha.is_integer() else report.alpha
        yield ("report", "alpha"), f"alpha must lie strictly between 0 and 1, e.g. 0.05 (got {alpha})"


ENTRY_SIZES = {"contrasts": (2,), "interactions": (4, 8), "primary": (2, 4, 8)}
"""How many arms an entry of each ``[report]`` list names."""
THREE_WAY = "[a, b, c, d, e, f, g, h] = ((a − b) − (c − d)) − ((e − f) − (g − h))"


def _check_pairs(
    key: str, pairs: list[tuple[str, ...]] | None, names: list[str], valid: str, untrained: Sequence[str] = ()
) -> Iterator[Error]:
    """The arms of each pair or interaction of ``[report] key``: trained (an untrained arm only as a
    pair's reference), as many as the entry needs, and not compared with themselves."""
    if pairs == []:
        yield ("report", key), f"empty list: give pairs [ARM, REFERENCE] of {valid}, or leave {key} unset"
    for i, pair in enumerate(list(p) for p in pairs or []):
        loc = ("report", key, i)
        if len(pair) not in ENTRY_SIZES[key]:
            *most, last = map(str, ENTRY_SIZES[key])
            sizes = f"{', '.join(most)} or {last}" if most else last
            yield loc, f"{pair!r} names {len(pair)} arms; an entry of {key} names {sizes}"
            continue
        yield from _unknown_arms(loc, pair, names, valid, untrained)
        yield from _compared_with_itself(loc, pair, valid)


def _unknown_arms(
    loc: tuple, pair: list[str], names: list[str], valid: str, untrained: Sequence[str]
) -> Iterator[Error]:
    for position, name in enumerate(pair):
        if name in names:
            continue
        if name not in untrained:
            yield loc, f"unknown arm {name!r}; {valid}"
        elif len(pair) != 2 or position == 0:
            yield (
                loc,
                (
                    f"{name!r} is untrained: scored once, without seeds, it can only be a pair's reference "
                    f"(right-hand side), e.g. [{(names or ['ARM'])[0]!r}, {name!r}]"
                ),
            )


def _compared_with_itself(loc: tuple, pair: list[str], valid: str) -> Iterator[Error]:
    if len(pair) == 8 and len(set(pair)) < 8:
        twice = next(a for a in pair if pair.count(a) > 1)
        yield (
            loc,
            f"three-way interaction names {twice!r} more than once; name each of its 8 arms once: {THREE_WAY}",
        )
    if len(pair) == 4 and (pair[0] == pair[1] or pair[2] == pair[3] or pair[:2] == pair[2:]):
        yield (
            loc,
            f"interaction {pair!r} compares a gain with itself or an arm with itself; give [a, b, c, d] "
            "with a != b, c != d and (a, b) != (c, d)",
        )
    if len(pair) == 2 and pair[0] == pair[1]:
        yield loc, f"contrast of arm {pair[0]!r} with itself; pick two different {valid}"


def _follows_known(experiment: Experiment, arm: Any) -> bool:
    """Whether ``arm.follows`` names another trained arm that follows no other (else ``_check_follows``)."""
    leaders = {a.name: a for a in experiment.ablation.arms if not a.untrained}
    leader = leaders.get(arm.follows or "")
    return leader is not None and leader.name != arm.name and leader.follows is None


def _check_follows(experiment: Experiment, found: list[Trial]) -> Iterator[Error]:
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


def _check_tuning(experiment: Experiment, found: list[Trial]) -> Iterator[Error]:
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
            {**_buildable(experiment).arm_overrides(name), **fixed},
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
        base = _buildable(experiment).arm_overrides(name)
        shown = {k: v for k, v in space.items() if k != "seed"}
        yield from (
            (loc, f"arm {name!r}: {message}") for loc, message in _check_space(experiment, shown, where, base)
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
        return _buildable(experiment).trial_config(_buildable(experiment).arm_overrides(name)).strategy
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
