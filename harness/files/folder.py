"""The offline data folder: the one place that resolves it (explicit folder, else the environment)."""

from __future__ import annotations

import os
from pathlib import Path

from harness.errors import UserError

ENV_DATA = "GIST_HARNESS_DATA"
"""The environment variable naming the data folder when none is passed."""


def data_dir(explicit: str | Path | None = None) -> Path:
    """The data folder: ``explicit`` if given, else ``$GIST_HARNESS_DATA``.

    Raises:
        UserError: if neither is set, or the folder does not exist.
    """
    chosen = explicit if explicit is not None else os.environ.get(ENV_DATA)
    if not chosen:
        raise UserError(
            f"no data folder: pass data_dir (experiment field or --data-dir) or set {ENV_DATA} "
            "to the folder holding MANIFEST.md"
        )
    path = Path(chosen).expanduser()
    if not path.is_dir():
        raise UserError(
            f"data folder {path} does not exist (from {'data_dir' if explicit is not None else ENV_DATA})"
        )
    return path
