"""A user's run leaves the checkout clean: the report goes under the git-ignored run folder.

``gist-harness run`` used to write ``reports/<study>/`` in place, so a newcomer's first command
rewrote committed files. Now the report lands in ``runs/<study>/report/`` unless ``--publish``
(or ``--reports-dir``) asks for the committed location.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


@pytest.mark.slow
def test_a_run_in_a_fresh_clone_leaves_git_status_clean(tmp_path):
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and a git checkout")
    clone = tmp_path / "clone"
    _git("clone", "-q", str(REPO), str(clone), cwd=tmp_path)
    experiment = "tests/fixtures/pinned/minilm.toml"  # 3 steps of all-MiniLM-L6-v2, two STS tasks
    command = [sys.executable, "-m", "harness", "run", experiment, "--no-progress"]
    result = subprocess.run(command, cwd=clone, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (clone / "runs" / "pinned-minilm" / "report" / "index.html").is_file()
    assert _git("status", "--porcelain", "--untracked-files=all", cwd=clone) == ""
