"""The real ``Pipeline`` of a study: data, leakage check, models, guides, ``train`` and ``evaluate``.

Built once per worker process. The training mixture is built and checked for leakage once; a
neural guide is built (and its embedding cache filled) once per (guide, max_seq_len) and shared by
every trial of the process; each trial loads a fresh student.
"""

from __future__ import annotations

import time
from typing import Any

from harness.config import Experiment, SuiteRef, TrainConfig
from harness.errors import UserError
from harness.results import RunRecord
from harness.study.objective import Report, objective_value


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
        self.experiment = experiment
        self.device = device
        self.progress = progress
        self._data_dir_arg = data_dir or experiment.data.data_dir
        self.in_domain_tasks: list[str] = []
        self.train_dataset: Any = None
        self.mixture: Any = None
        self._views: dict[tuple[Any, ...], Any] = {}
        self._corpus: list[str] = []
        self._guides: dict[tuple[Any, ...], tuple[Any, float]] = {}
        self.drop_log: Any = None
        """A ``harness.loss.DropLog`` that ``fit`` hands to ``train()`` (``gist-harness drops``)."""

    @property
    def data_dir(self) -> Any:
        from harness.data import data_dir

        return data_dir(self._data_dir_arg)

    def prepare(self) -> None:
        """Builds the training mixture and checks it against the objective and final suites."""
        from harness.data import Component, MixtureSpec, build_mixture, drop_leaked
        from harness.train import check_training_data, training_texts

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
        report = check_training_data(mixture.texts_by_source(), suites, self.data_dir, policy=data.leakage)
        if data.leakage == "drop":
            mixture = drop_leaked(mixture, report)
        self.in_domain_tasks = sorted({o.task for o in report.in_domain})
        self.mixture = mixture
        views = [self.train_set(config) for config in planned_configs(self.experiment)]
        self.train_dataset = views[0]
        self._corpus = sorted(set().union(*(training_texts(v) for v in views)))

    def train_set(self, config: TrainConfig) -> Any:
        """The trial's train set: its batching and negatives over the prepared mixture (cached).

        Raises:
            UserError: a source smaller than a batch under per-source batching, or negatives
                required of a source without them.
        """
        from harness.data import training_sets

        if self.mixture is None:  # a pipeline that set ``train_dataset`` itself: used as it is
            return self.train_dataset
        assert config.batching is not None  # trial_config resolves it
        no_duplicates = config.batch_sampler == "no_duplicates"
        key = (config.batching, config.negatives, config.batch_size, no_duplicates)
        if key not in self._views:
            self._views[key] = training_sets(
                self.mixture,
                batching=config.batching,
                negatives=config.negatives,
                batch_size=config.batch_size,
                no_duplicates=no_duplicates,
            )
        return self._views[key]

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

    def guide(self, config: TrainConfig, student: Any) -> tuple[Any, float | None]:
        """The trial's guide and the seconds spent building it (None when no guide is used)."""
        from harness.guides import build_guide

        name = config.guide or "none"
        if name == "none" or not _needs_guide(config):
            return None, None
        if name == "self":  # a frozen copy of this trial's student: never shared
            start = time.perf_counter()
            guide = build_guide(  # truncated as train() will truncate the student
                "self",
                student=student,
                corpus=self._corpus,
                max_seq_len=config.max_seq_len,
                progress=self.progress,
            )
            return guide, time.perf_counter() - start
        if config.guide_mode == "online":  # the model itself, run on every batch: no cache to fill
            return self._online_guide(name, config.max_seq_len), None
        key = (name, config.max_seq_len)
        if key not in self._guides:
            start = time.perf_counter()
            guide = build_guide(
                name,
                corpus=self._corpus,
                max_seq_len=config.max_seq_len,
                progress=self.progress,
                device=self.guide_device,
            )
            self._guides[key] = (guide, time.perf_counter() - start)
            return self._guides[key]
        return self._guides[key][0], 0.0  # already built in this process

    def _online_guide(self, name: str, max_seq_len: int | None) -> Any:
        """The guide model for ``guide_mode = "online"`` (a SentenceTransformer, frozen), shared."""
        from harness.guides import GUIDES
        from harness.models import load_model
        from harness.train import set_max_seq_len

        if name in GUIDES:
            raise UserError(
                f'guide_mode = "online" runs a model on every batch; guide {name!r} is not a model'
            )
        key = (name, max_seq_len, "online")
        if key not in self._guides:
            model = load_model(name, device=self.guide_device).eval().requires_grad_(False)
            if max_seq_len:
                set_max_seq_len(model, max_seq_len)
            self._guides[key] = (model, 0.0)
        return self._guides[key][0]

    def fit(self, config: TrainConfig, report: Report) -> tuple[Any, RunRecord]:
        from harness.train import train

        student = self.load_student()
        objective = self.experiment.objective

        def eval_fn(model: Any) -> float:
            return objective_value(self.score(model, objective, progress=False), objective)

        if config.rounds > 1:
            return self._fit_rounds(config, student, eval_fn, report)
        guide, guide_seconds = self.guide(config, student)
        model, run = train(
            config,
            student=student,
            guide=guide,
            **self._train_kwargs(config),
            eval_fn=eval_fn,
            report=report,
            progress=self.progress,
            drop_log=self.drop_log,
        )
        return model, run.model_copy(update={"guide_cache_seconds": guide_seconds})

    def _fit_rounds(
        self, config: TrainConfig, student: Any, eval_fn: Any, report: Report
    ) -> tuple[Any, RunRecord]:
        """``config.rounds`` consecutive runs; ``self``/``partner`` guides are re-taken each round.

        With ``guide = "partner"`` the partner (``[cotraining]``) trains after the student in every
        round, guided by a frozen copy of the student. Round r uses seed ``config.seed + r``. The
        record joins the student's rounds (steps continue); ``train_seconds`` counts the partner's
        training and the guide snapshots too (they are the cost of the method), scoring excluded.
        """
        from harness.guides import build_guide
        from harness.models import load_model
        from harness.train import set_max_seq_len, train

        rounds = config.rounds
        per_round = {"epochs": config.epochs / rounds, "rounds": 1}
        if config.max_steps is not None:
            per_round["max_steps"] = max(1, -(-config.max_steps // rounds))
        partner = None
        if config.guide == "partner":
            if self.experiment.cotraining is None:  # the config checks make this unreachable
                raise UserError('guide "partner" needs a [cotraining] section naming the partner')
            partner = load_model(self.experiment.cotraining.partner, device=self.device)
            if config.max_seq_len:  # its first snapshot guides before it has trained
                set_max_seq_len(partner, config.max_seq_len)

        def snapshot(kind: str, model: Any) -> Any:
            return build_guide(
                kind,
                student=model,
                corpus=self._corpus,
                max_seq_len=config.max_seq_len,  # round 0 is copied before train() truncates
                progress=self.progress,
                persist=False,
            )

        steps, guide_seconds, train_seconds = 0, 0.0, 0.0
        loss_curve: list[tuple[int, float]] = []
        diagnostics: list[Any] = []
        peak: float | None = None
        for r in range(rounds):
            round_config = config.model_copy(update={**per_round, "seed": config.seed + r})
            built = time.perf_counter()
            if config.guide in ("self", "partner"):
                guide = snapshot(config.guide, student if config.guide == "self" else partner)
                seconds: float | None = time.perf_counter() - built
            else:
                guide, seconds = self.guide(config, student)
            guide_seconds += seconds or 0.0
            offset = steps

            def round_report(value: float, step: int, offset: int = offset) -> None:
                report(value, offset + step)

            student, run = train(
                round_config,
                student=student,
                guide=guide,
                **self._train_kwargs(round_config),
                eval_fn=eval_fn,
                report=round_report,
                progress=self.progress,
            )
            loss_curve += [(offset + step, loss) for step, loss in run.loss_curve]
            diagnostics += [d.model_copy(update={"step": offset + d.step}) for d in run.diagnostics]
            steps += run.steps or 0
            train_seconds += run.train_seconds or 0.0
            peak = max(peak or 0.0, run.peak_memory_mb or 0.0)
            if partner is not None:
                built = time.perf_counter()
                partner_guide = snapshot("partner", student)
                guide_seconds += time.perf_counter() - built
                partner, partner_run = train(
                    round_config,
                    student=partner,
                    guide=partner_guide,
                    **self._train_kwargs(round_config),
                    progress=self.progress,
                )
                train_seconds += partner_run.train_seconds or 0.0
            if r < rounds - 1:  # the last round is scored by the caller
                report(eval_fn(student), steps)
        record = RunRecord(
            loss_curve=loss_curve,
            diagnostics=diagnostics,
            steps=steps,
            train_seconds=round(train_seconds + guide_seconds, 3),
            peak_memory_mb=peak or None,
            guide_cache_seconds=round(guide_seconds, 3) if config.guide not in (None, "none") else None,
        )
        return student, record

    def score(self, model: Any, suite: SuiteRef, *, progress: bool | None = None) -> Any:
        """Scores ``model`` on ``suite``; a final suite with ``max_seq_len`` truncates the model first."""
        from harness.evaluate import evaluate
        from harness.train import set_max_seq_len

        limit = getattr(suite, "max_seq_len", None)
        if limit:
            set_max_seq_len(model, limit)
        return evaluate(
            model,
            suite_object(suite),
            data_dir=self.data_dir,
            model_name=self.experiment.student,
            progress=self.progress if progress is None else progress,
        )


def planned_configs(experiment: Experiment) -> list[TrainConfig]:
    """The training configs a study will run, as far as known before it starts: ``[train]``, each
    arm's (untrained arms aside), and with ``batching``/``negatives`` searched every choice."""
    configs = [experiment.trial_config({})]
    configs += [experiment.trial_config(a.overrides()) for a in experiment.ablation.arms if not a.untrained]
    for field in ("batching", "negatives"):
        spec = experiment.search_space.get(field)
        for choice in getattr(spec, "choices", None) or []:
            configs.append(experiment.trial_config({field: choice}))
    return configs


def suite_object(ref: SuiteRef) -> Any:
    """The registered suite, or a copy holding only ``ref.tasks`` (same name, so reports group it)."""
    from dataclasses import replace

    from harness.evaluate import SUITES

    suite = SUITES.get(ref.suite)
    if not ref.tasks:
        return suite
    return replace(suite, tasks=tuple(t for t in suite.tasks if t.name in ref.tasks))


def _needs_guide(config: TrainConfig) -> bool:
    """Whether the strategy or the loss objective reads guide similarities (InfoNCE, oracle... do not)."""
    try:
        from harness.loss.guided import needs
        from harness.loss.objectives import objective_needs
    except ImportError:  # pragma: no cover - older loss module
        return True
    strategy_guide = needs(config.strategy, dict(config.strategy_params))[0]
    return strategy_guide or objective_needs(config.objective, dict(config.objective_params))[0]
