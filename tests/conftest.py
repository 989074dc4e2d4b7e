"""Shared fixtures: the data folder, the cache folder and the real packaged models (session-scoped)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Nothing in the tests may reach the Hugging Face Hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]


def _data_dir() -> Path:
    env = os.environ.get("GIST_HARNESS_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The offline data folder (``GIST_HARNESS_DATA`` or ``../shared/data``)."""
    path = _data_dir()
    if not (path / "MANIFEST.md").exists():
        pytest.fail(f"data folder {path} not found: set GIST_HARNESS_DATA or place shared/ beside the repo")
    return path


@pytest.fixture(scope="session")
def minilm():
    """The packaged all-MiniLM-L6-v2 (real weights, offline)."""
    from harness.models import load_model

    return load_model("all-minilm-l6", device="cpu")


@pytest.fixture(scope="session")
def mpnet():
    """The packaged all-mpnet-base-v2 assembled from its five part packages (real weights, offline)."""
    from harness.models import load_model

    return load_model("all-mpnet-base", device="cpu")


# Tests that read the real data folder or load the real packaged models are integration tests:
# they are marked ``slow`` (deselected by default, run by ``pytest -m slow`` / ``tox -e slow``).
_INTEGRATION_FIXTURES = {"data_dir", "minilm", "mpnet"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _INTEGRATION_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
