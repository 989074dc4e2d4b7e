"""Hub ids named directly: ``hub:org/name`` or ``hub:org/name@revision`` wherever a model is named.

The ``hub:`` prefix keeps a hub id apart from a folder path (``org/name`` alone is a path, and an
existing folder always wins for plain paths) and from registered names (``hub:all-minilm-l6`` is a
registered spec and stays one). A revision is a commit hash, branch or tag; without one the default
branch is followed. Either way the model is loaded at the *resolved* commit, and that commit is part
of its fingerprint (``hub:org/name@<commit>``, the same form as a registered hub spec's), so two
revisions never share guide-cache rows.

Resolution goes through huggingface_hub itself: its local cache (``refs/<revision>`` to
``snapshots/<commit>/``) first, then, when online, the Hub's API. With ``HF_HUB_OFFLINE=1`` only
models already in the local cache (``HF_HUB_CACHE``) resolve.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import UserError
from harness.models.zoo import MODELS, is_model_name

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

HUB_PREFIX = "hub:"
# huggingface_hub's repo-id rule: ``namespace/name`` of letters, digits, ``-``, ``_``, ``.``.
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}$")
_REVISION = re.compile(r"^[\w.-]+(/[\w.-]+)*$")  # a commit, tag or branch (``refs/pr/1`` included)
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_FORM = "hub:ORG/NAME or hub:ORG/NAME@REVISION"


@dataclass(frozen=True)
class HubRef:
    """A hub model named in an experiment or on the command line.

    Attributes:
        repo_id: the Hub repository (``sentence-transformers/all-MiniLM-L6-v2``).
        revision: the commit, branch or tag asked for; None follows the default branch.
    """

    repo_id: str
    revision: str | None = None

    def __str__(self) -> str:
        return HUB_PREFIX + self.repo_id + (f"@{self.revision}" if self.revision else "")


def is_hub_ref(text: str) -> bool:
    """True when ``text`` names a hub id (``hub:...``) rather than a registered name or a folder."""
    return text.startswith(HUB_PREFIX) and not is_model_name(text)


def hub_ref_error(text: str) -> str | None:
    """Why ``text`` (a ``hub:`` name) is not a valid hub id, or None when it is."""
    repo_id, _, revision = text.removeprefix(HUB_PREFIX).partition("@")
    if not _REPO_ID.match(repo_id) or "--" in repo_id or ".." in repo_id:
        return f"malformed hub id {text!r}: write {_FORM} (registered hub names: {_hub_names()})"
    if "@" in text and not _REVISION.match(revision):
        return f"malformed revision {revision!r} in {text!r}: write {_FORM} with a commit, tag or branch"
    return None


def parse_hub_ref(text: str) -> HubRef:
    """The ``HubRef`` of ``hub:org/name[@revision]`` (``UserError`` for a malformed one)."""
    error = hub_ref_error(text)
    if error:
        raise UserError(error)
    repo_id, _, revision = text.removeprefix(HUB_PREFIX).partition("@")
    return HubRef(repo_id, revision or None)


def resolve_revision(repo_id: str, revision: str | None) -> str:
    """The commit hash that ``revision`` (None: the default branch) of a hub model points at now.

    A full commit hash is returned as given. Online, the Hub answers (a branch may have moved since
    it was cached); offline (``HF_HUB_OFFLINE``), the local Hub cache's ``refs/`` do.
    """
    if revision and _COMMIT.match(revision):
        return revision
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    if not hub_offline():
        try:
            return str(HfApi().model_info(repo_id, revision=revision).sha)
        except Exception as exc:  # noqa: BLE001 (any Hub failure becomes one line)
            why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(
                f"hub model {repo_id}@{revision or 'main'} could not be resolved: {why}"
            ) from None
    try:
        return Path(snapshot_download(repo_id, revision=revision, local_files_only=True)).name
    except LocalEntryNotFoundError:
        raise UserError(
            f"hub model {repo_id}@{revision or 'main'}: HF_HUB_OFFLINE is set and it is not in the local "
            "Hub cache"
        ) from None


def load_hub_model(repo_id: str, revision: str | None, device: str | None, label: str) -> SentenceTransformer:
    """Loads a hub model through sentence-transformers, exactly as an online user would.

    Args:
        repo_id: the Hub repository.
        revision: the commit to load (resolve a branch or tag with ``resolve_revision`` first).
        device: torch device string; None lets sentence-transformers choose.
        label: how the model was named, for the error message.
    """
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(repo_id, revision=revision, device=device)
    except OSError as exc:
        why = "HF_HUB_OFFLINE is set and it is not in the local Hub cache" if hub_offline() else str(exc)
        offline_names = ", ".join(n for n, s in MODELS.items() if s.offline)
        raise UserError(
            f"model {label!r} ({repo_id}@{revision[:8] if revision else '?'}) could not be loaded: {why}. "
            f"Offline models: {offline_names}"
        ) from None


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set."""
    return os.environ.get("HF_HUB_OFFLINE", "0") not in {"", "0", "false", "False"}


def _hub_names() -> str:
    return ", ".join(n for n, s in MODELS.items() if s.source == "hub")
