"""Training data: offline sources, hub sources, user files, mixtures and leakage checks.

Public API (implementation in private-ish modules, re-exported here):

* :data:`DATASETS`, :func:`load_source`, :func:`listing` — registered sources
  (``gist-harness ls datasets``); ``file:PATH`` names load user files; the multilingual STS-B
  sources (``stsb-multi-<lang>``, ``stsb-translation-<l1>-<l2>``) in :mod:`harness.data.multilingual`.
* :data:`MIXTURES`, :func:`build_mixture`, :func:`mixture_listing` — mixtures with caps, weights,
  duplicate removal, seeded shuffling, ``max_examples`` and a dev split.
* :func:`training_sets` — the trainer's train set: per-source batches (the paper's regime, a
  ``DatasetDict``) or mixed, and which negative columns are kept (``NEGATIVE_POLICIES``).
* :func:`check_leakage`, :func:`check_training_data`, :func:`drop_leaked` — training/evaluation
  overlap.
* :func:`data_dir` — the data folder (explicit > ``$GIST_HARNESS_DATA``), re-exported from
  :mod:`harness.files`, the layer below that also holds the readers for every file format of the
  data folder (shared with the evaluation tasks).
"""

from harness.data import hub as _hub  # noqa: F401  (registers the hub sources)
from harness.data import multilingual as _multilingual  # noqa: F401  (registers stsb-multi-*, stsb-translation-*)
from harness.data.batching import BATCHING, SOURCE_ORDERS, kept_negatives, negative_columns, training_sets
from harness.data.examples import to_dataset
from harness.data.hub import HubSpec, load_hub_examples, register_hub
from harness.data.leakage import (
    LeakageReport,
    Overlap,
    check_leakage,
    check_training_data,
    exact_key,
    find_overlaps,
    token_key,
)
from harness.data.mixtures import (
    MIXTURES,
    NEGATIVE_POLICIES,
    Component,
    Mixture,
    MixtureSpec,
    build_mixture,
    drop_leaked,
    mixture_listing,
    negative_policy,
)
from harness.data.sources import DATASETS, SourceSpec, listing, load_source, source_examples
from harness.data.userfiles import read_user_file
from harness.files import data_dir

__all__ = [
    "BATCHING",
    "DATASETS",
    "MIXTURES",
    "NEGATIVE_POLICIES",
    "SOURCE_ORDERS",
    "Component",
    "HubSpec",
    "LeakageReport",
    "Mixture",
    "MixtureSpec",
    "Overlap",
    "SourceSpec",
    "build_mixture",
    "check_leakage",
    "check_training_data",
    "data_dir",
    "drop_leaked",
    "exact_key",
    "find_overlaps",
    "kept_negatives",
    "negative_columns",
    "negative_policy",
    "listing",
    "load_hub_examples",
    "load_source",
    "mixture_listing",
    "read_user_file",
    "register_hub",
    "source_examples",
    "to_dataset",
    "token_key",
    "training_sets",
]
