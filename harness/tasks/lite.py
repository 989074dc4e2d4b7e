"""Downsampled ("lite") copies of the expensive local tasks, for the ``offline-lite`` final suite.

Each lite task reads the same checksummed files as its full task, then keeps a fixed, seeded part of
them, the way MTEB(eng, v2) cut its expensive tasks:

* ``local:SciFact-lite``: ``QUERIES`` seeded test queries, each ranked against its own candidates only
  (mteb's ``top_ranked``): every relevant abstract plus the ``BM25_TOP_K`` best BM25 abstracts for the
  query (``rank_bm25.BM25Okapi`` over lowercased word tokens, ties by corpus order). The corpus is the
  union of the candidates, so only it is embedded.
* ``local:*Classification-lite``: the probe's training split capped at ``4 × samples_per_label`` rows
  per label, the test split at ``TEST_ROWS`` rows stratified by label, and ``EXPERIMENTS`` probe
  experiments instead of 10 (mteb's probe and draw otherwise unchanged).
* ``local:*Clustering-lite``: a fixed stratified subsample of ``CLUSTER_ROWS`` test texts, each of the
  10 k-means rounds on ``CLUSTER_ROWS`` texts drawn from it.

A lite task is never the task it comes from: its name ends in ``-lite``, its description starts with
"Not an MTEB task", ``hub_name`` is unset, and its revision digests the source files' revision with the
seed and parameters (``params``). Every draw uses ``SEED``, not the evaluation seed, so the subsample is
the same for every run.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from datasets import Dataset, DatasetDict
from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData
from mteb.abstasks.task_metadata import TaskMetadata

from harness.errors import UserError
from harness.tasks._local import LocalTask
from harness.tasks.classification import LocalAmazonCounterfactual, LocalBanking77, LocalEmotion
from harness.tasks.clustering import LocalBanking77Clustering, LocalEmotionClustering
from harness.tasks.retrieval import LocalSciFact, document_text

SEED = 42
QUERIES = 150  # SciFact test queries kept (of 300)
BM25_TOP_K = 10  # BM25 candidates per query, besides its relevant abstracts
TEST_ROWS = 2048  # classification test rows (MTEB v2's cap)
TRAIN_PER_LABEL = 4  # × samples_per_label: classification training rows kept per label
EXPERIMENTS = 5  # classification probe experiments (mteb's default: 10)
CLUSTER_ROWS = 1024  # clustering texts kept, and texts per k-means round


def stratified_sample(labels: Sequence[Hashable], n: int, seed: int = SEED) -> list[int]:
    """``n`` indices of ``labels`` (sorted, so file order is kept), each label's share proportional.

    Each label gets ``n × count / total`` rows rounded down, and the rows left over go to the labels with
    the largest remainders (ties by first appearance); within a label the rows are a seeded draw.
    """
    if n <= 0:
        raise UserError(f"a stratified sample needs n > 0, got {n}")
    if n >= len(labels):
        return list(range(len(labels)))
    groups = _by_label(labels)
    exact = {label: n * len(rows) / len(labels) for label, rows in groups.items()}
    quota = {label: int(share) for label, share in exact.items()}
    by_remainder = sorted(groups, key=lambda label: -(exact[label] - quota[label]))
    for label in by_remainder[: n - sum(quota.values())]:
        quota[label] += 1
    return _draw(groups, quota, seed)


def capped_per_label(labels: Sequence[Hashable], cap: int, seed: int = SEED) -> list[int]:
    """Indices (sorted) keeping at most ``cap`` rows of each label, a seeded draw within each label."""
    if cap <= 0:
        raise UserError(f"a per-label cap must be > 0, got {cap}")
    groups = _by_label(labels)
    return _draw(groups, {label: min(cap, len(rows)) for label, rows in groups.items()}, seed)


def _by_label(labels: Sequence[Hashable]) -> dict[Hashable, list[int]]:
    """Row indices of each label, labels in first-appearance order."""
    groups: dict[Hashable, list[int]] = {}
    for i, label in enumerate(labels):
        groups.setdefault(label, []).append(i)
    return groups


def _draw(groups: dict[Hashable, list[int]], quota: dict[Hashable, int], seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    kept: list[int] = []
    for label, rows in groups.items():  # first-appearance order: the draw does not depend on label types
        kept += [rows[j] for j in rng.permutation(len(rows))[: quota[label]]]
    return sorted(kept)


def words(text: str) -> list[str]:
    """BM25's tokens: lowercase word characters."""
    return re.findall(r"\w+", text.lower())


class BM25:
    """``rank_bm25.BM25Okapi`` (its idf, ``k1``, ``b``) scored from postings: the same scores, fast.

    ``BM25Okapi.get_scores`` reads every document's term counts for every query term in Python (90 s
    for 150 SciFact claims on a loaded machine); postings touch only the documents holding the term.
    """

    def __init__(self, docs: Sequence[list[str]]) -> None:
        from rank_bm25 import BM25Okapi

        self.okapi = BM25Okapi([d or [""] for d in docs])
        postings: dict[str, tuple[list[int], list[int]]] = {}
        for i, freqs in enumerate(self.okapi.doc_freqs):
            for term, count in freqs.items():
                rows, counts = postings.setdefault(term, ([], []))
                rows.append(i)
                counts.append(count)
        self.postings = {t: (np.array(r), np.array(c, dtype=float)) for t, (r, c) in postings.items()}
        self.doc_len = np.array(self.okapi.doc_len, dtype=float)

    def scores(self, query: list[str]) -> np.ndarray:
        """(N,) BM25 scores of every document for the tokenised ``query``."""
        okapi = self.okapi
        score = np.zeros(okapi.corpus_size)
        for term in query:
            if term not in self.postings:
                continue
            rows, tf = self.postings[term]
            norm = okapi.k1 * (1 - okapi.b + okapi.b * self.doc_len[rows] / okapi.avgdl)
            score[rows] += (okapi.idf.get(term) or 0) * (tf * (okapi.k1 + 1) / (tf + norm))
        return score


def pooled_candidates(
    queries: dict[str, str], docs: dict[str, str], relevant: dict[str, dict[str, int]], k: int
) -> dict[str, list[str]]:
    """Each query's candidates: its relevant docs, then its ``k`` best BM25 docs not already listed.

    BM25 (``rank_bm25.BM25Okapi``'s, see ``BM25``) is fit on all of ``docs``; equal scores keep ``docs``
    order. A relevant doc missing from ``docs`` is a ``UserError``.
    """
    ids = list(docs)
    bm25 = BM25([words(docs[d]) for d in ids])
    pooled = {}
    for qid, text in queries.items():
        candidates = list(relevant.get(qid, {}))
        if missing := [d for d in candidates if d not in docs]:
            raise UserError(f"query {qid}: relevant docs {missing} are not in the corpus")
        order = np.argsort(-bm25.scores(words(text)), kind="stable")
        seen = set(candidates)
        best = [ids[i] for i in order[: k + len(candidates)] if ids[i] not in seen][:k]
        pooled[qid] = candidates + best
    return pooled


def lite_metadata(source: type[LocalTask], params: dict[str, Any], what: str) -> TaskMetadata:
    """The source task's metadata under its ``-lite`` name, with a revision covering ``params``."""
    meta = source.metadata
    digest = hashlib.sha256(
        f"{meta.dataset['revision']} {json.dumps(params, sort_keys=True)}".encode()
    ).hexdigest()[:40]
    fields = meta.model_dump(exclude={"superseded_by", "adapted_from"})
    fields.update(
        name=f"{meta.name}-lite",
        dataset={"path": meta.dataset["path"], "revision": digest},
        description=f"Not an MTEB task. {what} of {meta.name} (parameters {json.dumps(params, sort_keys=True)}).",
        adapted_from=[meta.name],
    )
    return TaskMetadata(**fields)


class LiteSciFact(LocalSciFact):
    """SciFact queries ranked against their pooled candidates (relevant + BM25 top-k) only."""

    hub_name = None
    downsampled_from = LocalSciFact.metadata.name
    params: ClassVar[dict[str, Any]] = {"seed": SEED, "queries": QUERIES, "bm25_top_k": BM25_TOP_K}
    metadata = lite_metadata(
        LocalSciFact, params, "Each sampled query ranked against every relevant abstract plus BM25's top k"
    )

    def read(self, data_dir: Path) -> dict[str, dict[str, RetrievalSplitData]]:
        full = super().read(data_dir)["default"]["test"]
        rng = np.random.default_rng(SEED)
        all_ids = list(full["queries"]["id"])
        chosen = sorted(rng.choice(len(all_ids), size=min(QUERIES, len(all_ids)), replace=False))
        texts = dict(zip(full["queries"]["id"], full["queries"]["text"], strict=True))
        queries = {all_ids[i]: texts[all_ids[i]] for i in chosen}
        corpus = full["corpus"]
        docs = {
            d: document_text(t, x)
            for d, t, x in zip(corpus["id"], corpus["title"], corpus["text"], strict=True)
        }
        top_ranked = pooled_candidates(queries, docs, full["relevant_docs"], BM25_TOP_K)
        kept = {d for candidates in top_ranked.values() for d in candidates}
        split = RetrievalSplitData(
            corpus=corpus.select([i for i, d in enumerate(corpus["id"]) if d in kept]),
            queries=Dataset.from_dict({"id": list(queries), "text": list(queries.values())}),
            relevant_docs={q: full["relevant_docs"][q] for q in queries},
            top_ranked=top_ranked,
        )
        return {"default": {"test": split}}


def _cut_classification(splits: DatasetDict, per_label: int) -> DatasetDict:
    train, test = splits["train"], splits["test"]
    return DatasetDict(
        {
            "train": train.select(capped_per_label(train["label"], per_label)),
            "test": test.select(stratified_sample(test["label"], TEST_ROWS)),
        }
    )


def _lite_classification(source: type[LocalTask]) -> type[LocalTask]:
    per_label = TRAIN_PER_LABEL * source.samples_per_label  # type: ignore[attr-defined]
    params = {
        "seed": SEED,
        "train_rows_per_label": per_label,
        "test_rows": TEST_ROWS,
        "experiments": EXPERIMENTS,
    }

    class Lite(source):  # type: ignore[valid-type,misc]
        __doc__ = f"{source.__name__} with capped (stratified, seeded) training and test splits."
        hub_name = None
        downsampled_from = source.metadata.name
        n_experiments = EXPERIMENTS

        def read(self, data_dir: Path) -> Any:
            data = super().read(data_dir)
            if "test" in data:
                return _cut_classification(data, per_label)
            return {subset: _cut_classification(splits, per_label) for subset, splits in data.items()}

    Lite.params = params  # type: ignore[attr-defined]
    Lite.metadata = lite_metadata(source, params, "Capped training rows per label and stratified test rows")
    Lite.__name__ = Lite.__qualname__ = f"Lite{source.__name__.removeprefix('Local')}"
    return Lite


def _lite_clustering(source: type[LocalTask]) -> type[LocalTask]:
    params = {"seed": SEED, "rows": CLUSTER_ROWS, "rows_per_round": CLUSTER_ROWS}

    class Lite(source):  # type: ignore[valid-type,misc]
        __doc__ = f"{source.__name__} on a fixed stratified subsample."
        downsampled_from = source.metadata.name
        max_documents_per_cluster = CLUSTER_ROWS

        def read(self, data_dir: Path) -> DatasetDict:
            test = super().read(data_dir)["test"]
            return DatasetDict({"test": test.select(stratified_sample(test["labels"], CLUSTER_ROWS))})

    Lite.params = params  # type: ignore[attr-defined]
    Lite.metadata = lite_metadata(source, params, "A fixed stratified subsample")
    Lite.__name__ = Lite.__qualname__ = f"Lite{source.__name__.removeprefix('Local')}"
    return Lite


LITE_TASKS: list[type[LocalTask]] = [
    LiteSciFact,
    *(_lite_classification(c) for c in (LocalBanking77, LocalEmotion, LocalAmazonCounterfactual)),
    *(_lite_clustering(c) for c in (LocalBanking77Clustering, LocalEmotionClustering)),
]
