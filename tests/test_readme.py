"""The README stays true: CI runs exactly the test command it shows, and every command it names exists."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    return re.findall(r"```bash\n(.+?)\n```", text, flags=re.S)


def test_ci_runs_the_readme_test_command():
    commands = _readme_commands()
    assert len(commands) >= 2, "the README shows the quickstart command and the test command"
    ci = (REPO / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci == commands[1].strip()


def test_tox_has_the_envs_the_readme_names():
    tox = (REPO / "tox.ini").read_text()
    for command in _readme_commands():
        for env in re.findall(r"tox -e ([\w,]+)", command):
            for name in env.split(","):
                assert name == "py" or f"[testenv:{name}]" in tox, name
