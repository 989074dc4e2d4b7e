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


def test_readme_is_a_newcomers_page():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 200, "reference material belongs in docs/, findings in the reports"
    quickstart, tests = (c.strip() for c in _readme_commands()[:2])
    assert quickstart.endswith("tox -e quickstart"), "the first command runs the quickstart"
    assert "tox -e py" in tests, "the second command runs the tests"


def test_readme_links_point_at_files_that_exist():
    text = (REPO / "README.md").read_text()
    links = re.findall(r"\]\(((?!https?://)[^)#]+)", text)
    assert links, "the README links the reports, the reports index and the docs"
    assert [link for link in links if not (REPO / link).exists()] == []
