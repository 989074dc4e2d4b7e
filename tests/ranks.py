"""Launching a test worker on 2 CPU processes: ``python -m torch.distributed.run`` with gloo.

One place for the command the multi-process tests share (``--standalone``, one BLAS thread per rank so
two ranks do not oversubscribe 2 cores, tokenizers without their own threads).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORLD = 2  # ranks: 2 CPU processes


def launch(worker: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """Runs ``tests/<worker>`` on ``WORLD`` ranks from the repository root; its output is captured."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={WORLD}",
        str(HERE / worker),
        *args,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(command, cwd=HERE.parent, env=env, capture_output=True, text=True, timeout=timeout)
