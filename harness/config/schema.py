"""The experiment schema: frozen pydantic records, one per TOML section (``extra="forbid"``).

Example (``experiments/quickstart.toml`` is a complete one)::

    [study]
    name = "quickstart"

    [model]
    pair = "all-minilm-l6__all-mpnet-base"

    [data]
    mixture = "mini-medi"
    max_examples = 512

    [train]
    batch_size = 32
    lr = 2e-5

    [objective]
    suite = "dev"

    [ablation]
    seeds = [0, 1]
    baseline = "infonce"

    [[ablation.arms]]
    name = "infonce"
    strategy = "none"

Search spaces map a training field (or ``strategy_params.NAME``, ``objective_params.NAME``, or
``mine.NAME`` where the trial mines) to a distribution::

    [search_space.lr]
    type = "float"
    low = 1e-5
    high = 1e-4
    log = true
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator
from pydantic_core import PydanticCustomError

from harness.errors import UserError
from harness.results import ReportConfig

# Samplers and pruners stay Optuna's own classes, picked by these names ("module:class").
SAMPLERS = {
    "tpe": "optuna.samplers:TPESampler",
    "random": "optuna.samplers:RandomSampler",
    "cmaes": "optuna.samplers:CmaEsSampler",
    "qmc": "optuna.samplers:QMCSampler",
    "gp": "optuna.samplers:GPSampler",
    "grid": "optuna.samplers:GridSampler",
}
PRUNERS = {
    "none": "optuna.pruners:NopPruner",
    "median": "optuna.pruners:MedianPruner",
    "percentile": "optuna.pruners:PercentilePruner",
    "hyperband": "optuna.pruners:HyperbandPruner",
    "successive_halving": "optuna.pruners:SuccessiveHalvingPruner",
    "threshold": "optuna.pruners:ThresholdPruner",
}


def optuna_class(target: str) -> Any:
    """Optuna's class named by a ``SAMPLERS`` / ``PRUNERS`` entry ("optuna.samplers:TPESampler")."""
    import optuna

    module_name, name = target.split(":")
    return getattr({"optuna.samplers": optuna.samplers, "optuna.pruners": optuna.pruners}[module_name], name)


Scalar = float | int | str | bool
Negatives = Literal[True, False, "keep", "shared", "drop", "require"]
"""A ``negatives`` setting: true = "require", false = "drop" (``harness.data.NEGATIVE_POLICIES``)."""
DEFAULT_BATCHING = "per_source"
"""The GISTEmbed paper's regime: each batch from one MEDI task (see ``harness.data.batching``)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StudyConfig(_Frozen):
    """How the Optuna study runs and where it is stored."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)
    """Study name; also the folder ``runs/<name>/`` and ``reports/<name>/``."""
    direction: Literal["maximize", "minimize"] = "maximize"
    """Whether Optuna maximises or minimises the objective (the mean main score: maximise)."""
    sampler: Literal["tpe", "random", "cmaes", "qmc", "gp", "grid"] = "tpe"
    """Optuna sampler choosing each trial's parameters (``SAMPLERS``)."""
    sampler_params: dict[str, Any] = {}
    """Keyword arguments of the Optuna sampler class (``seed`` is filled from ``seed``)."""
    pruner: Literal["none", "median", "percentile", "hyperband", "successive_halving", "threshold"] = "median"
    """Optuna pruner stopping unpromising trials of a search on their intermediate scores (``PRUNERS``);
    an ablation is never pruned (every arm x seed runs to the end). Left unset: median where trials
    report a score before their last step (``eval_every_steps``, or several epochs), else none."""
    pruner_params: dict[str, Any] = {}
    """Keyword arguments of the Optuna pruner class."""
    n_trials: int | None = Field(default=None, ge=1)
    """Trials to run in total (over all workers); an ablation runs arms x seeds when unset."""
    timeout_s: float | None = Field(default=None, gt=0)
    """Stop starting new trials after this many seconds; unset: no time limit."""
    seed: int = 0
    """Sampler seed."""
    storage: str | None = None
    """SQLAlchemy URL, ``journal:PATH`` (an Optuna journal file) or unset: SQLite in ``runs/<name>/``."""
    heartbeat_interval_s: int = Field(default=10, ge=1)
    """Seconds between heartbeats of a running trial (SQLite and PostgreSQL storage)."""
    grace_period_s: int = Field(default=60, ge=2)
    """A running trial whose heartbeat is older than this is failed and retried."""
    max_retry: int = Field(default=2, ge=0)
    """How many times a trial whose worker died is run again."""
    save_model: bool = False
    """Also save each trained model under ``runs/<study>/<trial>/model/``."""
    tensorboard: bool = False
    """Write each trial's training curves (loss, learning rate, the loss's diagnostics) as TensorBoard
    event files, one run per trial: ``runs/<name>/tensorboard/<trial>-<arm>-seed<seed>/`` (needs
    ``pip install gist-harness[tensorboard]``; watch with ``tensorboard --logdir runs/<name>/tensorboard``)."""
    report: bool = True
    """Write the report when ``gist-harness run`` finishes (``runs/<name>/report/``; ``--publish``:
    ``reports/<name>/``)."""


class ModelConfig(_Frozen):
    """Student and guide, by pair name or each by name."""

    pair: str | None = None
    """A registered student/guide pair (``gist-harness ls pairs``); ``student`` and ``guide``
    override its halves."""
    student: str | None = None
    """The model trained: a zoo name (``gist-harness ls models``) or a model folder."""
    guide: str | None = None
    """A zoo model name or a guide kind (``tfidf``, ``bm25``, ``self``, ``none``)."""
    guide_device: str | None = Field(default=None, pattern=r"^(cpu|cuda(:\d+)?|mps)$")
    """Where a neural guide runs (it fills the cache, or runs every batch online): ``cpu``, ``cuda``,
    ``cuda:N`` or ``mps``; unset: the student's device. A guide on the CPU leaves a GPU to the student."""


class SourceRef(_Frozen):
    """One source of an inline mixture (``sources = [{source = "banking77-pairs", cap = 4000}]``)."""

    source: str
    """A registered training source (``gist-harness ls datasets``)."""
    cap: int | None = Field(default=None, ge=1)
    """At most this many examples of the source (a seeded random subset)."""
    weight: float = Field(default=1.0, gt=0)
    """Share of ``max_examples`` when that limits the mixture."""


class DataConfig(_Frozen):
    """The training data: one registered mixture or a list of registered sources."""

    mixture: str | None = None
    """A registered mixture of training sources (``gist-harness ls mixtures``)."""
    sources: list[str | SourceRef] | None = None
    """An inline mixture: source names, or tables with a ``cap`` and a ``weight``."""
    max_examples: int | None = Field(default=None, ge=2)
    """At most this many training examples (a seeded subset, shared in proportion to the sources' weights)."""
    dev_fraction: float = Field(default=0.0, ge=0.0, lt=1.0)
    """Share of each source held out as a dev split, in [0, 1)."""
    seed: int = 0
    """Seed of the subsets, the dev split and the shuffling of the data."""
    negatives: Negatives | None = None
    """Sources' negative (hard-negative) columns: "keep" each source's own, "shared" only those
    every source has, "drop" (false) all, "require" (true) them of every source. Unset: "keep"
    with per-source batching, "shared" with mixed batches. Arms may override it."""
    batching: Literal["per_source", "mixed"] | None = None
    """Batch composition: every batch from one source, keeping its columns ("per_source", the
    GISTEmbed paper's MEDI regime and the default), or all sources shuffled together ("mixed").
    Arms may override it."""
    source_order: Literal["proportional", "round_robin"] = "proportional"
    """Per-source batching: which source the next batch comes from, sentence-transformers'
    ``MultiDatasetBatchSamplers``: in proportion to the sources' sizes (every row used), or in turn
    until the smallest source runs out."""
    leakage: Literal["error", "drop", "warn"] = "error"
    """A training text found in a scored test split: fail, drop those rows, or only warn."""
    data_dir: str | None = None
    """The offline data folder; unset: ``GIST_HARNESS_DATA``."""

    @property
    def source_refs(self) -> list[SourceRef]:
        """``sources`` as ``SourceRef`` records (names get no cap and weight 1)."""
        return [s if isinstance(s, SourceRef) else SourceRef(source=s) for s in self.sources or []]


class MineConfig(_Frozen):
    """Hard negatives mined offline for a trial (``[train] mine``), with sentence-transformers'
    ``mine_hard_negatives`` names and meanings (``harness.data.mining``, as ``gist-harness mine``).

    Example: ``mine = { num_negatives = 1, absolute_margin = 0.0 }`` (the guide's positive-aware
    filter) and, as its control, ``mine = { num_negatives = 1, absolute_margin = 0.0, filters = "count" }``
    (the same number of negatives on the same rows, chosen without the filter).
    """

    num_negatives: int = Field(default=3, ge=1)
    """Negatives mined per anchor; every source then trains with exactly this many negative columns."""
    range_min: int = Field(default=0, ge=0)
    """Skip this many of each anchor's best remaining candidates."""
    range_max: int | None = Field(default=None, ge=1)
    """Consider at most this many best remaining candidates; unset: ``range_min + num_negatives``
    plus the anchor's positives, times 10 negatives when a filter is set (sentence-transformers')."""
    absolute_margin: float | None = None
    """Remove a candidate when ``s_neg + margin > s_pos`` (0: those the guide scores above the positive)."""
    relative_margin: float | None = None
    """Remove a candidate when ``s_neg > s_pos - |s_pos| * margin`` (0.05: NV-Retriever's TopK-PercPos)."""
    margin_quantile: float | None = None
    """An absolute margin set to this quantile of the guide's gaps ``s_pos - s_cand``, in [0, 1]."""
    rank_margin: int | None = Field(default=None, ge=0)
    """Keep a candidate only if it ranks more than this many places below the positive."""
    max_score: float | None = None
    """Remove candidates the guide scores above this."""
    min_score: float | None = None
    """Remove candidates the guide scores below this."""
    sampling_strategy: Literal["top", "random"] = "top"
    """``top``: the hardest remaining candidates; ``random``: drawn uniformly from the remaining window."""
    seed: int = 0
    """Seed of ``random`` sampling (the mined data is the same for every training seed)."""
    filters: Literal["remove", "count"] = "remove"
    """What the filters above do: ``remove`` the candidates they flag (sentence-transformers'), or only
    ``count``: each anchor gets as many negatives as the filters would leave it, picked with the filters
    ignored (the same window and sampling). ``count`` is the control of a filtered arm: the same rows
    get a negative, so the filter's choice of negative is separated from having one."""

    @field_validator("margin_quantile")
    @classmethod
    def _quantile(cls, value: float | None) -> float | None:
        if value is not None and not 0.0 <= value <= 1.0:
            raise PydanticCustomError("quantile", "Input should be a quantile in [0, 1]")
        return value

    @model_validator(mode="after")
    def _count_needs_a_filter(self) -> MineConfig:
        filters = (
            "absolute_margin",
            "relative_margin",
            "margin_quantile",
            "rank_margin",
            "max_score",
            "min_score",
        )
        if self.filters == "count" and all(getattr(self, f) is None for f in filters):
            raise PydanticCustomError(
                "count_without_filter",
                "filters = 'count' needs a filter to count with (one of {names})",
                {"names": ", ".join(filters)},
            )
        return self


class TrainConfig(_Frozen):
    """Training parameters of one trial; arms and search spaces override these fields."""

    epochs: float = Field(default=1.0, gt=0)
    """Passes over the training data (fractions allowed)."""
    max_steps: int | None = Field(default=None, ge=1)
    """Optimizer steps; overrides ``epochs`` when set."""
    batch_size: int = Field(default=32, ge=2)
    """Pairs per batch; every other pair in the batch is an in-batch negative."""
    lr: float = Field(default=2e-5, gt=0)
    """Peak learning rate of AdamW."""
    warmup_ratio: float = Field(default=0.1, ge=0, le=1)
    """Share of the optimizer steps spent warming the learning rate up linearly."""
    weight_decay: float = Field(default=0.01, ge=0)
    """AdamW weight decay."""
    temperature: float = Field(default=0.01, gt=0)
    """Logits are cosine / temperature (the GISTEmbed paper: 0.01)."""
    max_seq_len: int | None = Field(default=None, ge=4)
    """Student (and guide) truncation in tokens; unset: the model's own."""
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    """Training precision: fp32, or bf16 / fp16 mixed precision (GPU)."""
    strategy: str = "gist"
    """Masking strategy: which in-batch candidates stop being negatives (``gist-harness ls strategies``)."""
    strategy_params: dict[str, Scalar] = {}
    """The strategy's parameters (defaults and ranges in ``gist-harness ls strategies``)."""
    margin_strategy: Literal["absolute", "relative"] | None = None
    """``gist`` only: margin ``pos - margin`` (absolute) or ``pos - |pos| * margin`` (relative)."""
    margin: float | None = None
    """The strategy's ``margin`` parameter (``gist``, ``margin_pos``, ``self_filter``); unset: its default."""
    contrast_anchors: bool = True
    """Add the anchor-anchor block ``aa`` (qq in the paper) to each row's candidates."""
    contrast_positives: bool = True
    """Add the positive-positive block ``pp`` to each row's candidates."""
    objective: str = "infonce"
    """Loss objective applied after the strategy's mask (``gist-harness ls objectives``): "infonce",
    "hardness", "debiased", "distill_kl", "margin_mse", "relabel_positive"."""
    objective_params: dict[str, Scalar] = {}
    """The objective's parameters (``alpha``, ``tau_plus``, ``guide_temperature``, ``weight``...)."""
    duplicates: Literal["drop", "keep"] = "drop"
    """Candidates with the text of the row's anchor or positive: removed ("drop"), or left to the
    strategy ("keep": sentence-transformers' ``GISTEmbedLoss``, a duplicate of the positive stays a
    negative at margin 0)."""
    variant: Literal["st", "official", "mnrl"] = "st"
    """Block layout: "st" (sentence-transformers' ``GISTEmbedLoss``), "official" (the paper code's
    ap, an, aa, pp: the paper's qp, qn, qq, pp) or "mnrl" (the blocks of ``directions``)."""
    directions: list[Literal["query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc"]] = [
        "query_to_doc"
    ]
    """``variant = "mnrl"``: sentence-transformers' ``MultipleNegativesRankingLoss`` directions, query_to_doc
    always; all four is GTE's improved contrastive loss (arXiv 2308.03281)."""
    partition: Literal["joint", "per_direction"] = "joint"
    """``variant = "mnrl"``: one softmax over all directions, or one per direction averaged (MNRL's
    ``partition_mode``; per_direction takes query_to_doc and doc_to_query only)."""
    guide: str | None = None
    """Overrides the model section's guide (e.g. an arm with ``guide = "bm25"``)."""
    guide_mode: Literal["cached", "online"] = "cached"
    """Guide vectors "cached" (each unique text embedded once, then looked up) or "online" (the guide
    runs on every batch)."""
    mini_batch_size: int | None = Field(default=None, ge=1)
    """GradCache mini-batch size; unset: the plain loss."""
    batch_sampler: Literal["no_duplicates", "batch_sampler"] = "no_duplicates"
    """sentence-transformers' batch sampler: "no_duplicates" (no text twice in a batch) or the plain
    "batch_sampler"."""
    batching: Literal["per_source", "mixed"] | None = None
    """Batch composition for this trial; unset: ``[data] batching`` (see ``DataConfig``)."""
    negatives: Negatives | None = None
    """Negative columns for this trial; unset: ``[data] negatives`` (see ``DataConfig``)."""
    mine: MineConfig | None = None
    """Hard negatives mined offline with this trial's guide, per source from the source's own
    positives (``harness.data.mined``); unset: none mined, every source keeps its own columns. They
    replace a source's own negative columns (SNLI's contradictions too), so every source trains with
    exactly ``num_negatives`` mined ones. Every row is kept: where the filters leave an anchor short of
    ``num_negatives``, the missing columns hold the row's own anchor, which the loss reads as "no
    negative" (the row trains on its in-batch negatives alone), so a filtered arm and its unfiltered
    control train on the same rows in the same batches; the count is recorded per source
    (``RunRecord.mining``). Needs a guide (a model, ``tfidf`` or ``bm25``), read through the same
    cache as training; ``negatives = "drop"`` would remove the mined columns and is refused."""
    eval_every_steps: int | None = Field(default=None, ge=1)
    """Score the objective suite (and report to the pruner) every N steps; unset: each epoch."""
    logging_steps: int = Field(default=10, ge=1)
    """Record the training loss every N optimizer steps."""
    seed: int = 0
    """Training seed (data order, random strategies, any new layers); an ablation sets it per trial."""
    rounds: int = Field(default=1, ge=1)
    """Train in this many consecutive rounds of ``epochs / rounds`` each, every round with a fresh
    optimiser and schedule. Between rounds the ``self`` guide is re-taken from the student and the
    ``partner`` guide from the partner student (``[cotraining]``), which trains in turn."""


class FloatParam(_Frozen):
    type: Literal["float"]
    """A float distribution."""
    low: float
    """Lower bound."""
    high: float
    """Upper bound."""
    log: bool = False
    """Sample on a log scale."""
    step: float | None = None
    """Discretisation step; unset: continuous."""


class IntParam(_Frozen):
    type: Literal["int"]
    """An integer distribution."""
    low: int
    """Lower bound."""
    high: int
    """Upper bound."""
    log: bool = False
    """Sample on a log scale."""
    step: int = 1
    """Step between values."""


class CategoricalParam(_Frozen):
    type: Literal["categorical"]
    """A choice among values."""
    choices: list[Scalar] = Field(min_length=1)
    """The values to choose from."""


ParamSpec = Annotated[FloatParam | IntParam | CategoricalParam, Field(discriminator="type")]

# An arm names a fixed configuration: any TrainConfig field may be overridden.
_ArmBase = create_model(
    "_ArmBase",
    __base__=_Frozen,
    **{name: (Any, None) for name in TrainConfig.model_fields},  # type: ignore[call-overload]
)


class ArmConfig(_ArmBase):  # type: ignore[valid-type,misc]
    """One ablation arm: a name plus overrides of ``[train]`` fields."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
    """The arm's name, used in trial parameters, tables and contrasts."""
    untrained: bool = False
    """The student as loaded, scored without training (a reference row in the report)."""
    note: str = ""
    """A free-text note shown with the arm in the report."""
    follows: str | None = None
    """Another trained arm whose training settings this arm takes (its tuned ones under ``[tuning]``):
    every field that arm sets, and the margin its strategy uses where this arm's strategy has one, but
    this arm's own strategy. A control (``random`` with ``match``, ``oracle_at_rate``...) thus runs at
    the setting of the arm it is matched to. Fields this arm sets itself win, except the ``mine``
    options its leader's tuning searches (``mine.NAME``), which it takes from the leader."""

    def overrides(self) -> dict[str, Any]:
        return {k: v for k in TrainConfig.model_fields if (v := getattr(self, k)) is not None}


class AblationConfig(_Frozen):
    seeds: list[int] = Field(default=[0], min_length=1)
    """Seeds every arm is trained with; a report's statistics are over seeds."""
    baseline: str | None = None
    """The arm every other arm is compared with (usually plain InfoNCE)."""
    arms: list[ArmConfig] = []
    """The fixed configurations compared (``[[ablation.arms]]``); empty: a search over ``search_space``."""


class SuiteRef(_Frozen):
    """A registered suite, optionally cut down to some of its tasks (a quick suite for small runs)."""

    suite: str
    """A registered evaluation suite (``gist-harness ls suites``)."""
    tasks: list[str] | None = None
    """Score only these tasks of the suite; unset: all of them."""

    @property
    def label(self) -> str:
        return self.suite + (f"[{', '.join(self.tasks)}]" if self.tasks else "")


class ObjectiveConfig(SuiteRef):
    """What Optuna optimises: the mean ``metric`` over the (selected) tasks of a suite."""

    metric: Literal["main_score"] = "main_score"
    """Column of the tidy score table averaged over tasks (each task's MTEB main score)."""


class CotrainingConfig(_Frozen):
    """Two students guiding each other: arms with ``guide = "partner"`` train in alternating rounds.

    Round r: the student trains with a frozen copy of the partner as its guide, then the partner
    trains with a frozen copy of the student as its guide (same ``[train]`` settings). The trial's
    model, scored and reported, is the student.
    """

    partner: str
    """The second student: a model name (``gist-harness ls models``) or folder."""


class FinalConfig(SuiteRef):
    """The suite every trained arm (and the untrained student) is scored on for the report."""

    max_seq_len: int | None = Field(default=None, ge=4)
    """Truncate every model to this many tokens before scoring the final suite, the untrained student
    too; unset: a trained model keeps ``[train] max_seq_len`` while the untrained one keeps its own
    limit (256 for all-MiniLM-L6-v2), which confounds untrained-vs-trained rows on long-text tasks
    (SciFact). Trained-arm contrasts are unaffected either way. A saved model keeps this limit."""


class TuningConfig(SuiteRef):
    """Per-arm tuning before the comparison (``[tuning]``): every tuned arm searched with the same
    budget on a validation suite disjoint from the final one, then its best setting run on the
    ablation's seeds (the confirmation). ``harness.config.tuning`` builds each arm's search."""

    trials: int = Field(ge=1)
    """Tuning trials per tuned arm (the same budget for each; pruned trials count)."""
    suite: str = "dev"
    """The validation suite the settings are chosen on (``tasks``: some of its tasks); it must not
    overlap the final suite."""
    space: dict[str, ParamSpec] = {}
    """The search space applied to each tuned arm separately (keys as in ``[search_space]``)."""
    arm_space: dict[str, dict[str, ParamSpec]] = {}
    """Extra (or replacing) entries for one arm: ``[tuning.arm_space.gist."strategy_params.margin"]``."""
    arms: list[str] | None = None
    """The arms tuned; unset: every trained arm that follows no other."""
    seed: int = 1000
    """Training seed of every tuning trial; it must not be one of the ablation's (confirmation) seeds."""
    sampler: Literal["random", "tpe", "qmc"] = "random"
    """How each arm's settings are drawn; the expected-maximum curves assume independent draws
    ("random", the default)."""
    pruner: Literal["none", "median", "percentile", "hyperband", "successive_halving"] = "median"
    """Stops a tuning trial whose intermediate validation score is poor (``PRUNERS``). Left unset: median
    where tuning trials report a score before their last step, else none."""
    pruner_params: dict[str, Any] = {}
    """Keyword arguments of the Optuna pruner class."""
    max_steps: int | None = Field(default=None, ge=1)
    """Tuning trials train this many optimizer steps (the schedule fitted to them: the first rows of
    the same data order); unset: a confirmation trial's epochs, on the rows the tuning's own leakage
    check keeps."""
    eval_every_steps: int | None = Field(default=None, ge=1)
    """Score the tuning suite every N steps for the pruner; unset: ``[train] eval_every_steps``."""


class Experiment(_Frozen):
    """A whole experiment file."""

    study: StudyConfig
    model: ModelConfig
    data: DataConfig
    train: TrainConfig = TrainConfig()
    search_space: dict[str, ParamSpec] = {}
    ablation: AblationConfig = AblationConfig()
    objective: ObjectiveConfig
    final: FinalConfig | None = None
    cotraining: CotrainingConfig | None = None
    report: ReportConfig | None = None
    tuning: TuningConfig | None = None

    @field_validator("report")
    @classmethod
    def _report_names(cls, report: ReportConfig | None, info: Any) -> ReportConfig | None:
        """``[report] by_subset`` and ``guide_scores`` name tasks of the final suite and arms of
        ``[ablation]`` (the sections validated before it); the other ``[report]`` checks: ``checks``."""
        ablation, final = info.data.get("ablation"), info.data.get("final") or info.data.get("objective")
        if report is None or ablation is None:
            return report
        trained = [a.name for a in ablation.arms if not a.untrained]
        untrained = [a.name for a in ablation.arms if a.untrained]
        errors = report.name_errors(trained, untrained, _suite_tasks(final) if report.by_subset else None)
        if errors:
            from pydantic_core import InitErrorDetails, ValidationError

            details = [
                InitErrorDetails(
                    type=PydanticCustomError("report_name", "{message}", {"message": msg}),
                    loc=loc,
                    input=value,
                )
                for loc, msg, value in errors
            ]
            raise ValidationError.from_exception_data("report", details)
        return report

    @property
    def student(self) -> str:
        return self.model.student or _pair(self.model.pair).student

    @property
    def guide(self) -> str:
        return self.model.guide or _pair(self.model.pair).guide

    @property
    def student_is_static(self) -> bool:
        """True for a static-embedding student (token table + mean pooling)."""
        from harness.models import get_spec, is_model_name

        return is_model_name(self.student) and get_spec(self.student).static

    def trial_config(self, overrides: dict[str, Any]) -> TrainConfig:
        """The training config of one trial: ``[train]``, then ``overrides`` (dotted keys allowed)."""
        data = self.train.model_dump()
        if self.student_is_static:  # a static table's own defaults, where [train] left a field unset
            from harness.config.static_preset import STATIC_DEFAULTS

            data.update({k: v for k, v in STATIC_DEFAULTS.items() if k not in self.train.model_fields_set})
        for key, value in overrides.items():
            if key.startswith(NESTED_PREFIXES):
                field, name = key.split(".", 1)
                if data[field] is None:  # mine.NAME where nothing is mined: checks say so first
                    raise UserError(f"{key}: the trial sets no {field} (set [train] {field} or the arm's)")
                data[field] = {**given_entries(data[field]), name: value}
            else:
                data[key] = value
        if data.get("guide") is None:
            data["guide"] = self.guide
        if data.get("batching") is None:
            data["batching"] = self.data.batching or DEFAULT_BATCHING
        if data.get("negatives") is None:
            data["negatives"] = self.data.negatives
        return TrainConfig.model_validate(data)

    def arm(self, name: str) -> ArmConfig:
        return next(a for a in self.ablation.arms if a.name == name)

    def arm_overrides(self, name: str) -> dict[str, Any]:
        """The ``[train]`` overrides arm ``name`` trains with: its own, over those of the arm it follows."""
        arm = self.arm(name)
        if (
            arm.follows is None
            or arm.follows == name
            or arm.follows not in {a.name for a in self.ablation.arms}
        ):
            return arm.overrides()
        return _followed_overrides(self, arm)


PARAM_TABLES = ("strategy_params", "objective_params")
"""The ``[train]`` tables of a registered item's parameters: an override names their entries only."""
NESTED_FIELDS = (*PARAM_TABLES, "mine")
"""The ``[train]`` tables whose entries an override (a search space, an arm) may set one by one
(``strategy_params.margin``, ``mine.absolute_margin``)."""
NESTED_PREFIXES = tuple(f"{field}." for field in NESTED_FIELDS)


def given_entries(table: Any) -> dict[str, Any]:
    """The entries a nested ``[train]`` value was given: a table's own (``mine``: the keys its TOML set,
    not its defaults), a mapping as it is; none for None or a value that is no table (reported where
    it is written)."""
    if isinstance(table, BaseModel):
        return table.model_dump(exclude_unset=True)
    return dict(table) if isinstance(table, Mapping) else {}


def _suite_tasks(selection: SuiteRef | None) -> list[str] | None:
    """The task names a suite selection scores; None for an unknown suite (reported by ``checks``)."""
    from harness.evaluate import SUITES

    if selection is None or selection.suite not in SUITES:
        return None
    return list(selection.tasks or [t.name for t in SUITES.get(selection.suite).tasks])


STRATEGY_FIELDS = ("strategy", "strategy_params", "margin", "margin_strategy")
"""The fields a follower never takes from its leader: it keeps its own strategy."""
FOLLOWED_PARAMS = ("margin", "margin_strategy")
"""The leader's strategy parameters a control that follows it takes (``MATCHED_CONTROLS``, ``random``)."""
MATCHED_CONTROLS = ("oracle_at_rate", "student_topk_at_rate", "random_per_block")
"""Strategies that drop as many candidates as GIST on each row (``harness.masking.controls``)."""


def matched_strategy(strategy: str | None, strategy_params: dict[str, Any] | None) -> str | None:
    """The strategy whose drops a control copies: ``gist`` for the matched controls, ``match`` for
    ``random`` with one; None for any other strategy."""
    if strategy in MATCHED_CONTROLS:
        return "gist"
    match = dict(strategy_params or {}).get("match", "none")
    return str(match) if strategy == "random" and match != "none" else None


def _followed_overrides(experiment: Experiment, arm: ArmConfig) -> dict[str, Any]:
    """The overrides of follower ``arm``: its leader's, less the strategy, plus the leader's margin
    where the follower's strategy has one (a matched control, or the leader's own strategy with other
    parameters, e.g. ``gist`` in one block), under the follower's own."""
    from harness.loss.spec import LossConfig
    from harness.masking import STRATEGIES

    assert arm.follows is not None, "followed_overrides needs an arm that follows another"
    leader = experiment.arm_overrides(arm.follows)
    own = arm.overrides()
    out = {k: v for k, v in leader.items() if k not in STRATEGY_FIELDS}
    strategy = own.get("strategy", experiment.train.strategy)
    accepted = STRATEGIES.get(strategy).params if strategy in STRATEGIES else {}
    same = strategy == leader.get("strategy", experiment.train.strategy)  # e.g. gist in one block
    if matched_strategy(strategy, own.get("strategy_params")) is None and not same:
        accepted = {}  # another strategy's margin means something else (self_filter, margin_pos)
    try:
        resolved = LossConfig.of(experiment.trial_config(leader)).resolved_strategy_params()
    except Exception:  # the leader's own strategy error is reported where the leader is written
        resolved = {}
    given = {**dict(own.get("strategy_params") or {}), **{k: own[k] for k in FOLLOWED_PARAMS if k in own}}
    params = {k: resolved[k] for k in FOLLOWED_PARAMS if k in resolved and k in accepted and k not in given}
    out.update(own)
    if leader.get("mine") is not None and own.get("mine") is not None:
        out["mine"] = _followed_mining(experiment, arm.follows, leader["mine"], own["mine"])
    if params:
        out["strategy_params"] = {**params, **dict(own.get("strategy_params") or {})}
    return out


def _followed_mining(experiment: Experiment, leader_name: str, leader: Any, own: Any) -> dict[str, Any]:
    """A follower's ``mine``: its own table, as any field it sets, but with the options its leader's
    tuning searches (``mine.NAME`` in ``[tuning] space`` or the leader's ``arm_space``) taken from the
    leader, so a control (``filters = "count"``) counts with the filter its arm was tuned to."""
    tuning = experiment.tuning
    if tuning is None or (tuning.arms is not None and leader_name not in tuning.arms):
        return given_entries(own)
    searched = {*tuning.space, *tuning.arm_space.get(leader_name, {})}
    names = [key.split(".", 1)[1] for key in searched if key.startswith("mine.")]
    lead = given_entries(leader)
    return {**given_entries(own), **{k: lead[k] for k in names if k in lead}}


def _pair(name: str | None):
    from harness.models.pairs import resolve_pair

    return resolve_pair(name or "")
