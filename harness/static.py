"""Static-embedding students: a token-embedding table plus mean pooling, built offline.

A static student (sentence-transformers' ``StaticEmbedding``) embeds a text as the mean of its
tokens' rows in a table: no attention, no positions. It trains one to two orders of magnitude faster
than a transformer on a CPU, which makes it the fast track for guided-negative ablations. Its table
can start from the input token embeddings of a packaged transformer (``static-minilm``,
``static-mpnet``), or at random (``static-random``, ``static-random-<dim>``).

The built model is saved once into the cache folder and loaded from there like any
sentence-transformers folder. ``harness.models.load_model`` calls ``build_static_model``; nothing else
loads weights.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from harness.models import ModelSpec, cache_dir, model_path

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

# A static table wants a far larger learning rate than a transformer; these are the defaults the
# experiment schema applies to static students. lr: for a table initialised from a transformer's
# input embeddings (static-minilm), 0.01 was the best of 0.05/0.01/0.003/0.001 on 4,000 mini-medi
# pairs (reports/static-lr-probe/: mean STS 62.0 at 0.01 against 55.9 at 0.05, 54.8 untrained).
# A randomly initialised table wants more (sentence-transformers trains its static models at 0.2).
STATIC_DEFAULTS = {"lr": 0.01, "warmup_ratio": 0.1, "batch_size": 128, "max_seq_len": 256}

# ``search_preset = "static"`` in an experiment: the ranges that matter for a static table.
STATIC_SEARCH_SPACE = {
    "lr": {"type": "float", "low": 1e-3, "high": 0.5, "log": True},
    "batch_size": {"type": "categorical", "choices": [32, 64, 128, 256]},
    "temperature": {"type": "float", "low": 0.01, "high": 0.1, "log": True},
    "warmup_ratio": {"type": "float", "low": 0.0, "high": 0.2},
}

RANDOM_SEED = 0


def build_static_model(spec: ModelSpec, device: str | None = None) -> SentenceTransformer:
    """Builds (once, into the cache folder) and loads the static student ``spec`` describes."""
    from sentence_transformers import SentenceTransformer

    folder = cache_dir() / "models" / f"{spec.name}-{_key(spec)}"
    if not (folder / "modules.json").exists():
        _build_into(spec, folder)
    return SentenceTransformer(str(folder), device=device)


def _key(spec: ModelSpec) -> str:
    from harness.models import model_fingerprint

    if spec.static_base:
        return model_fingerprint(spec.static_base).split(":")[-1][:12]
    return f"d{spec.static_dim}-s{RANDOM_SEED}"


def _build_into(spec: ModelSpec, folder: Path) -> None:
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    from tokenizers import Tokenizer

    base_dir = model_path(spec.static_base or "all-minilm-l6", progress=True)
    tokenizer = Tokenizer.from_file(str(base_dir / "tokenizer.json"))
    tokenizer.no_truncation()  # the table has no positions: no reason to cut texts short
    if spec.static_base:
        weights = _input_token_embeddings(base_dir)  # (V, D)
        module = StaticEmbedding(tokenizer, embedding_weights=weights, base_model=spec.origin)
    else:
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


def _input_token_embeddings(base_dir: Path):
    """The word-embedding matrix ``(V, D)`` of a packaged transformer, read from its safetensors."""
    from safetensors import safe_open

    with safe_open(str(base_dir / "model.safetensors"), framework="pt") as weights:
        keys = [k for k in weights.keys() if k.endswith("word_embeddings.weight")]  # noqa: SIM118
        if len(keys) != 1:
            raise ValueError(f"{base_dir}: expected one word_embeddings.weight tensor, found {keys}")
        return weights.get_tensor(keys[0]).float().clone()
