"""The real ``Pipeline`` of a study: data, leakage check, models, guides, ``train`` and ``evaluate``.

Built once per worker process. The training mixture is built and checked for leakage once; a
neural guide is built (and its embedding cache filled) once per (guide, max_seq_len) and shared by
every trial of the process (``harness.guides.GuideFactory`` decides every trial's guide); each trial
loads a fresh student. A trial with ``[train] mine`` trains on the mixture with negatives mined by
its guide (``harness.data.mined``, through the same guide object and cache), mined once per setting
in ``prepare`` and recorded in its ``RunRecord.mining``. Training in rounds and co-training are ``harness.study.rounds``. A study
with ``[study] tensorboard`` hands ``fit`` a folder per trial for the Trainer's TensorBoard logger.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.config import Experiment, SuiteRef, TrainConfig
from harness.results import MinedSource, RunRecord
from harness.study.rounds import fit_rounds, load_partner
from harness.study.trial import Report, objective_value


class RealPipeline:
    """Loads and trains for real (see ``harness.study.runner.Pipeline``).

    Args:
        experiment: the validated experiment.
        data_dir: the offline data folder (None: the experiment's ``data.data_dir``, then
            ``GIST_HARNESS_DATA``).
        device: torch device (None: sentence-transformers' choice, CUDA when available).
        progress: progress bars for cache building, training steps and scoring.
    """

    def __init__(
        self,
        experiment: Experiment,
        *,
        data_dir: Any = None,
        device: str | None = None,
        progress: bool = True,
    ):
        from harness.guides import GuideFactory  # torch and friends: only once a pipeline is built

        self.experiment = experiment
        self.device = device
        self.progress = progress
        self._data_dir_arg = data_dir or experiment.data.data_dir
        self.in_domain_tasks: list[str] = []
        self.train_dataset: Any = None
        self.mixture: Any = None
        self._views: dict[tuple[Any, ...], Any] = {}
        self._mined: dict[tuple[Any, ...], tuple[Any, dict[str, MinedSource]]] = {}
        self.guides = GuideFactory(device=self.guide_device, progress=progress)
        """Every trial's guide; ``prepare`` hands it the training corpus."""
        self.drop_log: Any = None
        """A ``harness.loss.DropLog`` that ``fit`` hands to ``train()`` (``gist-harness drops``)."""

    @property
    def data_dir(self) -> Any:
        from harness.data import data_dir

        return data_dir(self._data_dir_arg)

    def prepare(self) -> None:
        """Builds the training mixture and checks it against the objective and final suites."""
        from harness.data import Component, MixtureSpec, build_mixture, check_training_data, drop_leaked
        from harness.evaluate import suite_object, suite_texts
        from harness.train import training_texts

        data = self.experiment.data
        spec: Any = data.mixture
        if data.sources:
            refs = data.source_refs
            spec = MixtureSpec(
                "+".join(r.source for r in refs),
                tuple(Component(r.source, weight=r.weight, cap=r.cap) for r in refs),
            )
        # Every source keeps its negatives here; each trial's view keeps or drops them
        # (``training_sets``), so arms that differ in negatives or batching train on the same rows.
        mixture = build_mixture(
            spec,
            self.data_dir,
            seed=data.seed,
            max_examples=data.max_examples,
            dev_fraction=data.dev_fraction,
            negatives="keep",
        )
        suites = [suite_object(self.experiment.objective)]
        if self.experiment.final is not None:
            suites.append(suite_object(self.experiment.final))
        texts = [suite_texts(suite, self.data_dir) for suite in suites]
        report = check_training_data(mixture.texts_by_source(), texts, policy=data.leakage)
        if data.leakage == "drop":
            mixture = drop_leaked(mixture, report)
        self.in_domain_tasks = sorted({o.task for o in report.in_domain})
        self.mixture = mixture
        configs = planned_configs(self.experiment)
        corpus = set().union(*(training_texts(self.train_set(c)) for c in configs if c.mine is None))
        if any(c.mine is not None for c in configs):  # mined negatives are the sources' own positives
            corpus |= training_texts(mixture.train.select_columns(["anchor", "positive"]))
        self.guides.corpus = sorted(corpus)  # before a mining guide fills its cache with it
        self.train_dataset = self.train_set(configs[0])
        for config in configs:
            self.train_set(config)  # mines now: a source too small for the options stops the run here

    def train_set(self, config: TrainConfig) -> Any:
        """The trial's train set: its batching and negatives (mined ones with ``mine``) over the
        prepared mixture (cached per batching, negatives, batch, sampler and ``mining_key``).

        Raises:
            UserError: a source smaller than a batch under per-source batching, or negatives
                required of a source without them.
        """
        from harness.data import training_sets

        if self.mixture is None:  # a pipeline that set ``train_dataset`` itself: used as it is
            return self.train_dataset
        assert config.batching is not None  # trial_config resolves it
        no_duplicates = config.batch_sampler == "no_duplicates"
        key = (config.batching, config.negatives, config.batch_size, no_duplicates, mining_key(config))
        if key not in self._views:
            self._views[key] = training_sets(
                self.mixture if config.mine is None else self.mined(config)[0],
                batching=config.batching,
                negatives=config.negatives,
                batch_size=config.batch_size,
                no_duplicates=no_duplicates,
            )
        return self._views[key]

    def mined(self, config: TrainConfig) -> tuple[Any, dict[str, MinedSource]]:
        """The mixture with ``config.mine``'s negatives, mined once per (options, guide, max_seq_len)
        with the trial's guide (``GuideFactory.for_mining``), and what mining did to each source."""
        from harness.data.mined import mine_mixture
        from harness.data.mining import MiningOptions

        assert config.mine is not None, "mined() needs a trial with [train] mine"
        key = mining_key(config)
        if key not in self._mined:
            guide = self.guides.for_mining(config)
            options = MiningOptions(**config.mine.model_dump(exclude={"filters"}))
            count_only = config.mine.filters == "count"
            self._mined[key] = mine_mixture(self.mixture, guide.embed, options, count_only=count_only)
            guide.save()  # texts the cache lacked (none when it was filled with the corpus)
        return self._mined[key]

    def mining_record(self, config: TrainConfig) -> dict[str, MinedSource]:
        """What mining did to each source of the trial's data (empty without ``[train] mine``)."""
        if config.mine is None or self.mixture is None:
            return {}
        return self.mined(config)[1]

    def _train_kwargs(self, config: TrainConfig) -> dict[str, Any]:
        """The ``train()`` arguments that describe the data of a trial."""
        dataset = self.train_set(config)
        mixed = self.mixture is not None and config.batching == "mixed"
        sources = self.mixture.train_sources if mixed else None
        return {
            "train_dataset": dataset,
            "sources": sources,
            "source_order": self.experiment.data.source_order,
        }

    @property
    def guide_device(self) -> str | None:
        """The neural guide's device: ``[model] guide_device``, else the student's."""
        return self.experiment.model.guide_device or self.device

    def load_student(self) -> Any:
        from harness.models import load_model

        return load_model(self.experiment.student, device=self.device)

    def guide(self, config: TrainConfig, student: Any, partner: Any = None) -> tuple[Any, float | None]:
        """The guide ``student`` trains with and the seconds spent building it (``GuideFactory.for_trial``)."""
        return self.guides.for_trial(config, student, partner)

    def fit(
        self, config: TrainConfig, report: Report, *, logging_dir: Path | None = None
    ) -> tuple[Any, RunRecord]:
        """Trains a fresh student under ``config`` (in rounds when ``config.rounds > 1``).

        Args:
            config: the trial's configuration.
            report: the trial's report-and-maybe-prune.
            logging_dir: the trial's TensorBoard folder (one run; rounds are sub-runs of it), or None.
        """
        student = self.load_student()
        objective = self.experiment.objective

        def eval_fn(model: Any) -> float:
            return objective_value(self.score(model, objective, progress=False), objective)

        if config.rounds > 1:
            partner = load_partner(self.experiment, config, self.device)
            model, run = fit_rounds(
                config,
                student,
                partner=partner,
                guide_for=self.guide,
                train_run=self._train_run,
                eval_fn=eval_fn,
                report=report,
                logging_dir=logging_dir,
            )
            return model, run.model_copy(update={"mining": self.mining_record(config)})
        guide, guide_seconds = self.guide(config, student)
        model, run = self._train_run(
            config,
            student,
            guide,
            eval_fn=eval_fn,
            report=report,
            drop_log=self.drop_log,
            logging_dir=logging_dir,
        )
        update = {"guide_cache_seconds": guide_seconds, "mining": self.mining_record(config)}
        return model, run.model_copy(update=update)

    def _train_run(
        self,
        config: TrainConfig,
        student: Any,
        guide: Any,
        *,
        eval_fn: Any = None,
        report: Report | None = None,
        drop_log: Any = None,
        logging_dir: Path | None = None,
    ) -> tuple[Any, RunRecord]:
        """One ``train()`` run of ``student`` over the trial's data."""
        from harness.train import train

        return train(
            config,
            student=student,
            guide=guide,
            **self._train_kwargs(config),
            eval_fn=eval_fn,
            report=report,
            progress=self.progress,
            drop_log=drop_log,
            logging_dir=logging_dir,
        )

    def score(self, model: Any, suite: SuiteRef, *, progress: bool | None = None) -> Any:
        """Scores ``model`` on ``suite``; a final suite with ``max_seq_len`` truncates the model first."""
        from harness.evaluate import evaluate, suite_object
        from harness.models import truncate

        limit = getattr(suite, "max_seq_len", None)
        if limit:
            truncate(model, limit)
        return evaluate(
            model,
            suite_object(suite),
            data_dir=self.data_dir,
            model_name=self.experiment.student,
            progress=self.progress if progress is None else progress,
        )


def mining_key(config: TrainConfig) -> tuple[Any, ...] | None:
    """What a trial's mined negatives depend on: the options, the guide and its truncation (None: no mining)."""
    return None if config.mine is None else (config.mine, config.guide, config.max_seq_len)


def planned_configs(experiment: Experiment) -> list[TrainConfig]:
    """The training configs a study will run, as far as known before it starts: ``[train]``, each
    arm's (untrained arms aside), and with ``batching``/``negatives`` searched every choice."""
    configs = [experiment.trial_config({})]
    configs += [
        experiment.trial_config(experiment.arm_overrides(a.name))
        for a in experiment.ablation.arms
        if not a.untrained
    ]
    for field in ("batching", "negatives"):
        spec = experiment.search_space.get(field)
        for choice in getattr(spec, "choices", None) or []:
            configs.append(experiment.trial_config({field: choice}))
    return configs
