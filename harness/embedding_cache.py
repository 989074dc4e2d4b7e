"""An mteb encoder that embeds each unique text once per model and serves every later request from memory.

A suite's tasks share many sentences (STS-B and SICK-R test sentences recur, every STS task embeds
both columns, a classification task re-embeds its probe's training rows for each experiment...).
``CachedEncoder`` wraps a SentenceTransformer in mteb's own ``SentenceTransformerEncoderWrapper`` (so
prompts, similarity functions and model metadata stay mteb's) and keys each vector by the exact
encoding call that would produce it: the function (``encode``/``encode_query``/``encode_document``),
the resolved prompt and the text. ``warm()`` embeds a whole suite's texts up front in one pass, with
one progress bar, longest texts first so batches pad little.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
from mteb.models.sentence_transformer_wrapper import (
    SentenceTransformerEncoderWrapper,
    _resolve_prompt,
)
from mteb.types import PromptType
from tqdm.auto import tqdm

if TYPE_CHECKING:
    from mteb.abstasks.task_metadata import TaskMetadata
    from sentence_transformers import SentenceTransformer
    from torch.utils.data import DataLoader

Key = tuple[str, str, str]  # (encode function, prompt, text)


class CachedEncoder(SentenceTransformerEncoderWrapper):
    """mteb encoder over a SentenceTransformer with an in-memory embedding cache (nothing is written).

    Args:
        model: the SentenceTransformer to evaluate.
        batch_size: texts per forward pass.
        progress: show a progress bar while embedding.
        enabled: ``False`` turns the cache off (every request is embedded again), for benchmarks.
        cache_retrieval: ``False`` embeds retrieval corpora and queries without keeping them, for hub
            suites whose corpora (MS MARCO: 8.8M passages) would not fit in memory twice.
    """

    def __init__(
        self,
        model: SentenceTransformer,
        *,
        batch_size: int = 32,
        progress: bool = True,
        enabled: bool = True,
        cache_retrieval: bool = True,
    ) -> None:
        super().__init__(model)
        self.batch_size = batch_size
        self.progress = progress
        self.enabled = enabled
        self.cache_retrieval = cache_retrieval
        self.vectors: dict[Key, np.ndarray] = {}  # (D,) float32 each
        self.texts_embedded = 0  # texts run through the model, for tests and benchmarks
        # Without (non-empty) query/document prompts or a Router, encode_query/encode_document equal
        # encode, so a retrieval corpus is served from the suite-wide warm-up. sentence-transformers
        # gives most models {"query": "", "document": ""}.
        prompts = {name for name, text in (getattr(model, "prompts", None) or {}).items() if text}
        routed = any(type(m).__name__ == "Router" for m in model.modules())
        self.symmetric = not ({"query", "document"} & prompts) and not routed

    def _function(self, prompt_type: PromptType | None) -> str:
        if self.symmetric:
            return "encode"
        if prompt_type == PromptType.query:
            return "encode_query"
        if prompt_type == PromptType.document:
            return "encode_document"
        return "encode"

    def _embed(self, function: str, prompt: str | None, texts: list[str], desc: str) -> np.ndarray:
        """(N, D) float32 embeddings of ``texts``, longest first in batches of ``batch_size``."""
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out: np.ndarray | None = None
        encode = getattr(self.model, function)
        starts = range(0, len(order), self.batch_size)
        bar = tqdm(starts, desc=desc, unit="batch", disable=not self.progress or len(starts) < 2)
        for start in bar:
            idx = order[start : start + self.batch_size]
            batch = encode(
                [texts[i] for i in idx],
                prompt=prompt,
                batch_size=self.batch_size,
                show_progress_bar=False,
                convert_to_numpy=True,
            )  # (B, D)
            if out is None:
                out = np.empty((len(texts), batch.shape[1]), dtype=np.float32)
            out[idx] = batch
        self.texts_embedded += len(texts)
        return out if out is not None else np.empty((0, 0), dtype=np.float32)

    def warm(self, texts: Iterable[str], *, desc: str = "Embedding suite texts") -> int:
        """Embeds every text not cached yet (plain ``encode``, no prompt); returns how many were new."""
        if not self.enabled:
            return 0
        new = sorted({t for t in texts if ("encode", "", t) not in self.vectors})
        if new:
            for text, vector in zip(new, self._embed("encode", None, new, desc), strict=True):
                self.vectors[("encode", "", text)] = vector
        return len(new)

    def encode(
        self,
        inputs: DataLoader,
        *,
        task_metadata: TaskMetadata,
        hf_split: str,
        hf_subset: str,
        prompt_type: PromptType | None = None,
        **kwargs: Any,
    ) -> np.ndarray:
        """The mteb encoder call: (N, D) float32 embeddings of the loader's texts, in order."""
        texts = [text for batch in inputs for text in batch["text"]]
        prompt = _resolve_prompt(self.model_prompts, task_metadata, prompt_type)
        function = self._function(prompt_type)
        desc = f"Embedding {task_metadata.name}"
        if not self.enabled or (
            not self.cache_retrieval and task_metadata.simplified_task_type == "retrieval"
        ):
            return self._embed(function, prompt, texts, desc)
        keys = [(function, prompt or "", t) for t in texts]
        missing = sorted({k[2] for k in keys if k not in self.vectors})
        if missing:
            for text, vector in zip(missing, self._embed(function, prompt, missing, desc), strict=True):
                self.vectors[(function, prompt or "", text)] = vector
        if not keys:
            return np.empty((0, 0), dtype=np.float32)
        return np.stack([self.vectors[k] for k in keys])  # (N, D)
