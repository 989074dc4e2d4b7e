"""In-domain tasks: a task that shares a dataset with a training source is not out of domain."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from harness.report.contrasts import aggregates
from harness.report.domain import MIXTURE_SOURCES, SOURCE_TASKS, shared_dataset_tasks, training_sources
from harness.report.load import results_frame, score_index
from harness.results import load_study_dir

FIXTURE = Path(__file__).parent / "fixtures" / "report_study"
CLS_TOML = """
[data]
sources = ["snli-triplets", { source = "banking77-pairs", cap = 4000 }]
"""


def _folder(path: str) -> str:
    return path.split("/")[0]


def test_source_tasks_names_every_source_and_the_tasks_reading_its_data_folder():
    """The mapping agrees with the registries: a source and a task share a dataset when they read the
    same folder of the data folder (lite and dev-only copies are not separate datasets)."""
    from harness.data.sources import DATASETS
    from harness.tasks import TASKS

    assert set(SOURCE_TASKS) == set(DATASETS.names())
    scored = {name.removeprefix("local:"): cls for name, cls in TASKS.items()
              if not cls.downsampled_from and not cls.dev_only}  # fmt: skip
    for name, spec in DATASETS.items():
        if spec.kind != "offline":  # hub sets read no folder of the data folder: mapped by hand
            continue
        expected = {t for t, cls in scored.items() if _folder(spec.origin) in {_folder(f) for f in cls.files}}
        assert set(SOURCE_TASKS[name]) == expected, name


def test_mixture_sources_match_the_registered_mixtures():
    from harness.data.mixtures import MIXTURES

    assert set(MIXTURE_SOURCES) == set(MIXTURES.names())
    for name, spec in MIXTURES.items():
        assert MIXTURE_SOURCES[name] == tuple(c.source for c in spec.components), name


def test_shared_dataset_tasks_from_sources_and_mixtures():
    tasks = ["local:Banking77Classification-lite", "local:Banking77Clustering", "local:STS12", "local:MSRP"]
    assert training_sources(CLS_TOML) == ["snli-triplets", "banking77-pairs"]
    assert shared_dataset_tasks(CLS_TOML, tasks) == tasks[:2]
    assert shared_dataset_tasks('[data]\nmixture = "mini-medi"\n', tasks) == ["local:MSRP"]
    assert shared_dataset_tasks("not toml [", tasks) == []


def test_a_clustering_task_of_a_trained_dataset_is_marked_and_left_out_of_the_out_of_domain_mean():
    """The leakage check records only Banking77Classification (its train split overlaps the training
    texts); Banking77Clustering scores Banking77 test, in domain too since Banking77 pairs were trained."""
    study = load_study_dir(FIXTURE)
    manifest = study.manifest.model_copy(update={"experiment_toml": CLS_TOML})
    trials = [replace(t, trial=t.trial.model_copy(update={"in_domain_tasks": ["local:Banking77Classification"]}))
              for t in study.trials]  # fmt: skip
    index = score_index(replace(study, manifest=manifest, trials=trials))
    assert set(index.in_domain) == {"local:Banking77Classification"}  # the fixture scores no clustering task
    clustering = replace(study, manifest=manifest, trials=[_with_clustering(t) for t in trials])
    index = score_index(clustering)
    assert set(index.in_domain) == {"local:Banking77Classification", "local:Banking77Clustering"}
    outside = next(a for a in aggregates(index) if a.key == "out-of-domain")
    assert "local:Banking77Clustering" not in outside.tasks and "local:STSBenchmark" in outside.tasks
    frame = results_frame(clustering)
    assert frame.loc[frame.task == "local:Banking77Clustering", "in_domain"].all()
    assert not frame.loc[frame.task == "local:STSBenchmark", "in_domain"].any()


def _with_clustering(trial):
    """The trial with a Banking77Clustering score (a copy of its Banking77Classification row)."""
    if trial.scores is None:
        return trial
    rows = list(trial.scores.rows)
    extra = [r.model_copy(update={"task": "local:Banking77Clustering", "category": "Clustering"})
             for r in rows if r.task == "local:Banking77Classification"]  # fmt: skip
    return replace(trial, scores=trial.scores.model_copy(update={"rows": rows + extra}))
