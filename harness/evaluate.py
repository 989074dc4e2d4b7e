"""Suites of MTEB tasks and ``evaluate()``: one model on one suite -> a tidy table. Writes nothing.

A suite is data: registered name, description, and its tasks (local ``local:*`` tasks over the data
folder, or hub mteb task names for online users). ``evaluate`` runs every task through
``mteb.evaluate(..., cache=None)`` (fully in memory) with a shared :class:`CachedEncoder`, so each
unique text is embedded once per model per suite; for local suites all of them are embedded up front
in one pass with one progress bar.

    >>> table = evaluate(load_model("all-minilm-l6"), "offline-sts", data_dir="/data")
    >>> category_means(table)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import mteb
import pandas as pd

from harness.embedding_cache import CachedEncoder
from harness.errors import UserError
from harness.registry import Registry
from harness.tasks import TASKS, Role, get_task
from harness.tasks._local import lowercase_words

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

COLUMNS = [
    "model",
    "task",
    "category",
    "split",
    "subset",
    "metric",
    "main_score",
    "mteb_version",
    "task_revision",
    "seconds",
]


@dataclass(frozen=True)
class SuiteTask:
    """One task of a suite.

    Attributes:
        name: a registered local task (``local:STSBenchmark``) or, in a hub suite, an mteb task name.
        splits: the splits scored; ``None`` = the task's own eval splits.
        subsets: the subsets scored (MTEB subset names such as ``deu-eng``, or ISO 639-3 language
            codes such as ``deu``); ``None`` = all of the task's subsets. Local tasks only.
    """

    name: str
    splits: tuple[str, ...] | None = None
    subsets: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Suite:
    """A named set of tasks scored together.

    Attributes:
        name: registered name (``offline-sts``).
        description: one line for ``gist-harness ls suites``.
        tasks: the tasks, in report order.
        hub: ``True`` when the tasks are hub mteb tasks (their data downloads; never run offline).
        disjoint_from: suites whose scored texts this suite must not contain; pairs sharing a
            sentence with them (compared lowercased, word characters only) are dropped before scoring.
    """

    name: str
    description: str
    tasks: tuple[SuiteTask, ...]
    hub: bool = False
    disjoint_from: tuple[str, ...] = ()


def _tasks(*names: str) -> tuple[SuiteTask, ...]:
    return tuple(SuiteTask(n) for n in names)


# MTEB(eng, v1), the 56 tasks of the GISTEmbed paper's tables, by category (checked in tests against
# mteb.get_benchmark("MTEB(eng, v1)")).
MTEB_ENG: dict[str, tuple[str, ...]] = {
    "classification": (
        "AmazonCounterfactualClassification", "AmazonPolarityClassification", "AmazonReviewsClassification",
        "Banking77Classification", "EmotionClassification", "ImdbClassification", "MassiveIntentClassification",
        "MassiveScenarioClassification", "MTOPDomainClassification", "MTOPIntentClassification",
        "ToxicConversationsClassification", "TweetSentimentExtractionClassification",
    ),
    "clustering": (
        "ArxivClusteringP2P", "ArxivClusteringS2S", "BiorxivClusteringP2P", "BiorxivClusteringS2S",
        "MedrxivClusteringP2P", "MedrxivClusteringS2S", "RedditClustering", "RedditClusteringP2P",
        "StackExchangeClustering", "StackExchangeClusteringP2P", "TwentyNewsgroupsClustering",
    ),
    "pair-classification": ("SprintDuplicateQuestions", "TwitterSemEval2015", "TwitterURLCorpus"),
    "reranking": ("AskUbuntuDupQuestions", "MindSmallReranking", "SciDocsRR", "StackOverflowDupQuestions"),
    "retrieval": (
        "ArguAna", "ClimateFEVER", "CQADupstackRetrieval", "DBPedia", "FEVER", "FiQA2018", "HotpotQA",
        "MSMARCO", "NFCorpus", "NQ", "QuoraRetrieval", "SCIDOCS", "SciFact", "Touche2020", "TRECCOVID",
    ),
    "sts": ("BIOSSES", "SICK-R", "STS12", "STS13", "STS14", "STS15", "STS16", "STS17", "STS22", "STSBenchmark"),
    "summarization": ("SummEval",),
}  # fmt: skip

_STS = (
    "local:STS12",
    "local:STS13",
    "local:STS14",
    "local:STS15",
    "local:STS16",
    "local:STSBenchmark",
    "local:SICK-R",
    "local:BIOSSES",
)
_MTEB_LOCAL = (
    *_STS,
    "local:Banking77Classification",
    "local:EmotionClassification",
    "local:AmazonCounterfactualClassification",
    "local:SciFact",
)
_NOT_MTEB = (
    "local:PIT2015",
    "local:MSRP",
    "local:TrecQA",
    "local:Banking77Clustering",
    "local:EmotionClustering",
)
_MULTILINGUAL = (
    "local:STSBenchmarkMultilingualSTS",
    "local:STSBenchmarkCrossLingual",
    "local:Tatoeba",
    "local:AmazonCounterfactualClassification-de-ja",
)
_BY_CATEGORY = sorted((*_MTEB_LOCAL, *_NOT_MTEB), key=lambda n: (TASKS.get(n).metadata.type, n))
# offline-all with each expensive task swapped for its downsampled copy (harness/tasks/lite.py).
_LITE_OF = {cls.downsampled_from: name for name, cls in TASKS.items() if cls.downsampled_from}
_LITE = tuple(_LITE_OF.get(n, n) for n in _BY_CATEGORY)

SUITES: Registry[Suite] = Registry("suite")
for _registered in [
    Suite("offline-sts", "the 8 local copies of MTEB's English STS tasks", _tasks(*_STS)),
    Suite(
        "offline-mteb",
        "the 12 local copies of MTEB tasks (STS, classification, SciFact)",
        _tasks(*_MTEB_LOCAL),
    ),
    Suite(
        "offline-all",
        "every local English task: 12 MTEB copies + 5 non-MTEB tasks, by category",
        _tasks(*_BY_CATEGORY),
    ),
    Suite(
        "offline-lite",
        "offline-all's categories, faster: STS, pair classification and TrecQA whole; SciFact, "
        "classification and clustering downsampled (*-lite tasks, not MTEB tasks)",
        _tasks(*_LITE),
    ),
    Suite(
        "offline-multilingual",
        "STS-B in 10 languages (dev, test), Tatoeba (12 pairs with English), AmazonCounterfactual de/ja, "
        "and the harness's cross-lingual STS-B (<lang>-en; not an MTEB task)",
        _tasks(*_MULTILINGUAL),
    ),
    Suite(
        "dev",
        "HPO objective: STS-B dev, SemEval-2012 STS train, PIT-2015 dev, minus pairs sharing a sentence "
        "with offline-all's scored texts",
        (
            SuiteTask("local:STSBenchmark", ("validation",)),
            SuiteTask("local:STS12-train"),
            SuiteTask("local:PIT2015", ("validation",)),
        ),
        disjoint_from=("offline-all",),
    ),
    Suite(
        "multilingual-dev",
        "HPO objective for multilingual studies: held-out stsb-multi-mt train lines in 10 languages and "
        "crossed with English, minus pairs sharing a sentence with offline-multilingual's scored texts",
        (SuiteTask("local:STSBenchmarkMultilingualSTS-heldout", ("validation",)),),
        disjoint_from=("offline-multilingual",),
    ),
    *(
        Suite(
            f"mteb-eng-{category}",
            f"hub: MTEB(eng, v1) {category} ({len(names)} tasks)",
            _tasks(*names),
            True,
        )
        for category, names in MTEB_ENG.items()
    ),
    Suite(
        "paper",
        "hub: all 56 MTEB(eng, v1) tasks, the GISTEmbed paper's categories",
        _tasks(*(n for names in MTEB_ENG.values() for n in names)),
        hub=True,
    ),
]:
    SUITES.register(_registered.name, _registered)


def overlapping_tasks(tuning: Any, final: Any) -> list[str]:
    """The tasks of selection ``final`` that selection ``tuning`` may score too (both ``SuiteRef``-like).

    None when ``tuning``'s suite is made disjoint (``disjoint_from``) from suites holding every final
    task; otherwise the final tasks ``tuning`` scores on the same dataset and splits. A task is named by
    its dataset (``local:STS12`` and the hub's ``STS12`` are one; a lite task counts as its full one),
    so a hub suite cannot choose settings on the test sets a local final suite scores. A final task
    that scores another dataset's sentences (``shares_texts_with``: the multilingual STS-B holds STS-B
    and its translations) overlaps any tuning task on that dataset, whatever the split.
    """
    tuning_suite, final_suite = SUITES.get(tuning.suite), SUITES.get(final.suite)
    finals = [t for t in final_suite.tasks if final.tasks is None or t.name in final.tasks]
    covered = {_dataset(t.name) for name in tuning_suite.disjoint_from for t in SUITES.get(name).tasks}
    if all(_dataset(t.name) in covered for t in finals):
        return []
    tuned = {
        (_dataset(t.name), t.splits)
        for t in tuning_suite.tasks
        if tuning.tasks is None or t.name in tuning.tasks
    }
    tuned_datasets = {dataset for dataset, _ in tuned}
    return [
        t.name
        for t in finals
        if (_dataset(t.name), t.splits) in tuned or _shared_datasets(t.name) & tuned_datasets
    ]


def _dataset(name: str) -> str:
    """The dataset a task scores: a lite task's full task, without the ``local:`` prefix."""
    full = (TASKS.get(name).downsampled_from or name) if name in TASKS else name
    return full.removeprefix("local:")


def _shared_datasets(name: str) -> set[str]:
    """The datasets whose sentences a local task scores too (translated or not), by ``_dataset`` name."""
    shared = TASKS.get(name).shares_texts_with if name in TASKS else ()
    return {_dataset(other) for other in shared}


def listing() -> list[dict[str, Any]]:
    """One row per suite, for ``gist-harness ls suites``."""
    return [
        {
            "name": name,
            "source": "hub" if s.hub else "local",
            "tasks": len(s.tasks),
            "description": s.description,
        }
        for name, s in SUITES.items()
    ]


def _suite(suite: str | Suite) -> Suite:
    return SUITES.get(suite) if isinstance(suite, str) else suite


def suite_tasks(suite: str | Suite, data_dir: str | Path | None = None) -> list[Any]:
    """The suite's mteb task objects, eval splits set; local ones loaded (and made disjoint if asked)."""
    suite = _suite(suite)
    if suite.hub:
        # The benchmark's task objects carry MTEB(eng, v1)'s own splits and subsets (MSMARCO dev, English
        # subsets of multilingual tasks), so a hub suite scores what the leaderboard reports.
        benchmark = {t.metadata.name: t for t in mteb.get_benchmark("MTEB(eng, v1)").tasks}
        hub = [benchmark.get(t.name) or mteb.get_task(t.name) for t in suite.tasks]
        return [
            task.filter_eval_splits(list(t.splits)) if t.splits else task
            for t, task in zip(suite.tasks, hub, strict=True)
        ]
    tasks = []
    for entry in suite.tasks:
        task = get_task(entry.name, data_dir)
        if entry.splits:
            task.filter_eval_splits(list(entry.splits))
        if entry.subsets:
            task.select_subsets(entry.subsets)
        task.load_data()
        tasks.append(task)
    if suite.disjoint_from:
        banned = {lowercase_words(t) for name in suite.disjoint_from for t in _scored_texts(name, data_dir)}
        for task in tasks:
            for split in task.eval_splits:
                dropped = task.drop_pairs_with(split, banned)
                logger.info("%s %s: %d pairs dropped (shared a sentence)", task.metadata.name, split, dropped)
    return tasks


def _scored_texts(suite: str, data_dir: str | Path | None) -> set[str]:
    texts, roles = suite_texts(suite, data_dir)
    return {
        t
        for task, splits in texts.items()
        for split, ts in splits.items()
        if roles[task][split] == "test"
        for t in ts
    }


class SuiteTexts(NamedTuple):
    """Texts of a suite's tasks per split, and each split's role (for the data worker's leakage check).

    Attributes:
        texts: ``{task: {split: set of texts}}``.
        roles: ``{task: {split: "test" | "train"}}``: "test" is scored, "train" is read by the
            evaluator (e.g. a classification probe's training split).
    """

    texts: dict[str, dict[str, set[str]]]
    roles: dict[str, dict[str, Role]]


def suite_texts(suite: str | Suite, data_dir: str | Path | None = None) -> SuiteTexts:
    """Every text a local suite scores or trains its evaluators on, per task and split, with roles."""
    suite = _suite(suite)
    if suite.hub:
        raise UserError(f"suite {suite.name!r} is a hub suite: its texts are not in the offline data folder")
    texts: dict[str, dict[str, set[str]]] = {}
    roles: dict[str, dict[str, Role]] = {}
    for task in suite_tasks(suite, data_dir):
        name = task.metadata.name
        used = {s: r for s, r in task.splits_read.items() if r == "train" or s in task.eval_splits}
        texts[name] = {split: task.split_texts(split) for split in used}
        roles[name] = {split: ("test" if split in task.eval_splits else "train") for split in used}
    return SuiteTexts(texts, roles)


def _rows(result: Any, model_name: str, seconds: float) -> list[dict[str, Any]]:
    """Tidy rows (one per split and subset) from an mteb ``TaskResult``."""
    task = result.task_name
    meta = TASKS.get(task).metadata if task in TASKS else mteb.get_task(task).metadata
    return [
        {
            "model": model_name,
            "task": task,
            "category": meta.type,
            "split": split,
            "subset": scores["hf_subset"],
            "metric": meta.main_score,
            "main_score": float(scores["main_score"]),
            "mteb_version": result.mteb_version,
            "task_revision": result.dataset_revision,
            "seconds": round(seconds, 3),
        }
        for split, per_subset in result.scores.items()
        for scores in per_subset
    ]


def score_task(encoder: Any, task: Any, batch_size: int) -> Any:
    """mteb's scores of ``task`` through ``encoder`` (no result cache, no CO2 tracking, no bars)."""
    result = mteb.evaluate(
        encoder,
        task,
        cache=None,
        co2_tracker=False,
        show_progress_bar=False,
        encode_kwargs={"batch_size": batch_size, "show_progress_bar": False},
    )
    return result.task_results[0]


def evaluate(
    model: SentenceTransformer,
    suite: str | Suite,
    *,
    data_dir: str | Path | None = None,
    model_name: str | None = None,
    progress: bool = True,
    cache: bool = True,
    batch_size: int = 32,
) -> pd.DataFrame:
    """Scores ``model`` on every task of ``suite`` with mteb's evaluators; writes nothing.

    Args:
        model: a SentenceTransformer (from ``harness.models.load_model``).
        suite: a registered suite name or a ``Suite``.
        data_dir: the offline data folder (default ``$GIST_HARNESS_DATA``); local suites only.
        model_name: the ``model`` column; default the model's own name.
        progress: show progress bars (suite warm-up and tasks).
        cache: share embeddings across the suite's tasks (``False`` only to benchmark without it).
        batch_size: texts per forward pass.

    Returns:
        One row per task, split and subset with columns ``COLUMNS``. ``seconds`` is the task's own
        wall time; the shared warm-up embedding of a local suite is not attributed to any task but
        reported in ``table.attrs``: ``warmup_seconds`` and ``texts_embedded`` (texts run through the
        model in all).
    """
    suite = _suite(suite)
    tasks = suite_tasks(suite, data_dir)
    encoder = CachedEncoder(
        model, batch_size=batch_size, progress=progress, enabled=cache, cache_retrieval=not suite.hub
    )
    name = model_name or encoder.mteb_model_meta.name or "model"
    start = time.perf_counter()
    if cache and not suite.hub:
        encoder.warm(_union(task.embedded_texts() for task in tasks), desc=f"Embedding {suite.name} texts")
    warmup_seconds = time.perf_counter() - start
    rows: list[dict[str, Any]] = []
    for task in tasks:
        start = time.perf_counter()
        result = score_task(encoder, task, batch_size)
        rows += _rows(result, name, time.perf_counter() - start)
    table = pd.DataFrame(rows, columns=COLUMNS)
    table.attrs.update(warmup_seconds=round(warmup_seconds, 3), texts_embedded=encoder.texts_embedded)
    return table


def _union(sets: Iterable[set[str]]) -> set[str]:
    return set().union(*sets)


def category_means(table: pd.DataFrame) -> pd.DataFrame:
    """Mean main score per model and category (each task's scored splits averaged first)."""
    per_task = table.groupby(["model", "category", "task"], as_index=False)["main_score"].mean()
    return per_task.groupby(["model", "category"], as_index=False)["main_score"].mean()


def suite_object(ref: Any) -> Suite:
    """The suite a ``SuiteRef`` names (``ref.suite``), or a copy holding only ``ref.tasks`` (same
    name, so reports group it)."""
    suite = SUITES.get(ref.suite)
    if not ref.tasks:
        return suite
    return replace(suite, tasks=tuple(t for t in suite.tasks if t.name in ref.tasks))
