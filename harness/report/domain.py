"""Which scored tasks are in domain for a study: those built from a dataset its training data draws on.

A task is in domain when it shares a dataset with a training source: training on Banking77 train pairs
puts both Banking77Classification and Banking77Clustering (scored on Banking77 test) in domain, although
no test text was trained on. The leakage check (:mod:`harness.data.leakage`) only finds shared texts
and records, per trial, the tasks whose own train split the training data uses (``in_domain_tasks``);
the report marks the union of both (†) and leaves them out of the out-of-domain aggregate.

``SOURCE_TASKS`` is the one mapping that ties a training source to the tasks of its dataset (a dataset
is a folder of the data folder: ``banking77/``, ``msr-paraphrase/``, ...); ``MIXTURE_SOURCES`` names
the sources of each registered mixture. Both are plain data, so a committed report re-renders from the
experiment text in its manifest without importing the data layer; ``tests/test_report_domain.py``
checks them against the registries of sources, mixtures and tasks. Texts shared across datasets
(STS12's MSRpar pairs come from the MSR paraphrase corpus) are the leakage check's business.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import combinations

from harness.results import experiment_table

SOURCE_TASKS: dict[str, tuple[str, ...] | None] = {
    "stsb-train": ("STSBenchmark",),
    "sick-train": ("SICK-R",),
    "msrp-train": ("MSRP",),
    "snli-triplets": (),
    "trecqa-train": ("TrecQA",),
    "banking77-pairs": ("Banking77Classification", "Banking77Clustering"),
    "emotion-pairs": ("EmotionClassification", "EmotionClustering"),
    "amazon-cf-pairs": ("AmazonCounterfactualClassification", "AmazonCounterfactualClassification-de-ja"),
    "all-nli-triplets": (),  # hub: SNLI + MultiNLI, which no task scores
    "medi-mteb-triplets": None,  # hub: MEDI + MTEB classification train splits, datasets not listed here
}
"""Registered training source -> the scored tasks (plain names) built from the same dataset; None where
the source's datasets are not known here (the report then marks none of its tasks)."""

# The parallel STS-B train files (stsb-multi-mt/): every language's monolingual pairs and every
# translation pair share their dataset with the multilingual and the cross-lingual STS-B tasks.
# The languages and the pair order are harness.data.multilingual's (the test above compares the names).
_STSB_LANGUAGES = ("en", "de", "es", "fr", "it", "nl", "pl", "pt", "ru", "zh")
_STSB_TASKS = ("STSBenchmarkMultilingualSTS", "STSBenchmarkCrossLingual")
SOURCE_TASKS.update({f"stsb-multi-{lang}": _STSB_TASKS for lang in _STSB_LANGUAGES})
SOURCE_TASKS.update(
    {f"stsb-translation-{a}-{b}": _STSB_TASKS for a, b in combinations((*_STSB_LANGUAGES[1:], "en"), 2)}
)

MIXTURE_SOURCES: dict[str, tuple[str, ...]] = {
    "mini-medi": ("snli-triplets", "stsb-train", "msrp-train", "trecqa-train"),
    "mini-medi+cls": (
        "snli-triplets", "stsb-train", "msrp-train", "trecqa-train",
        "banking77-pairs", "emotion-pairs", "amazon-cf-pairs",
    ),
}  # fmt: skip
"""Registered mixture -> its sources (``harness.data.mixtures``)."""


def plain_task(name: str) -> str:
    """A task's name without the ``local:`` prefix and the ``-lite`` suffix: the dataset's task."""
    return name.removeprefix("local:").removesuffix("-lite")


def training_sources(experiment_toml: str) -> list[str]:
    """The training sources an experiment names in ``[data]`` (a mixture expanded); [] if unreadable."""
    data = experiment_table(experiment_toml, "data") or {}
    sources = [s if isinstance(s, str) else s.get("source", "") for s in data.get("sources") or []]
    return list(MIXTURE_SOURCES.get(data.get("mixture") or "", ())) + sources


def shared_dataset_tasks(experiment_toml: str, tasks: Iterable[str]) -> list[str]:
    """The ``tasks`` that share a dataset with a training source of the experiment."""
    plain = {t for s in training_sources(experiment_toml) for t in SOURCE_TASKS.get(s) or ()}
    return [t for t in tasks if plain_task(t) in plain]
