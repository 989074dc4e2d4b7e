"""The docs site's reference is generated from the code and documents everything registered."""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import reference
from harness.config.schema import Experiment

REPO = Path(__file__).resolve().parents[1]
DOCUMENTED = ["strategies", "objectives", "models", "pairs", "guides", "datasets", "mixtures", "suites"]


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """Every generated page, built with an empty data folder and with model loading forbidden."""
    from sentence_transformers import SentenceTransformer

    def no_model(*args, **kwargs):
        raise AssertionError("building the reference loaded a model")

    empty = tmp_path_factory.mktemp("no-data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GIST_HARNESS_DATA", str(empty))
        patch.setattr(SentenceTransformer, "__init__", no_model)
        built = reference.pages()
    assert not any(empty.iterdir()), "building the reference wrote into the data folder"
    return built


@pytest.mark.parametrize("kind", DOCUMENTED)
def test_every_registered_item_has_documentation(kind):
    assert reference.undocumented(kind) == [], f"registered {kind} with an empty summary/description"


def test_an_empty_summary_is_caught(monkeypatch):
    rows = [{"name": "documented", "summary": "drops x"}, {"name": "bare", "summary": " "}]
    monkeypatch.setattr(reference, "listing", lambda kind: rows)
    assert reference.undocumented("strategies") == ["bare"]


def test_every_experiment_field_has_a_description():
    fields = reference.schema_fields(Experiment)
    assert len(fields) > 50
    missing = [f"{f.section} {f.name}" for f in fields if not f.description.strip()]
    assert missing == [], "fields without a docstring under them in harness/config/schema.py"


def test_every_train_field_is_documented_once_and_arms_only_add_their_own():
    sections = {
        section: [f.name for f in fields] for section, _, fields in reference.schema_sections(Experiment)
    }
    assert "temperature" in sections["[train]"]
    assert sorted(sections["ablation.arms entries"]) == ["follows", "name", "note", "untrained"]


def test_reference_lists_every_registered_name(pages):
    for kind in reference.LISTED:
        page = pages[f"reference/{kind}.md"]
        names = [str(row["name"]) for row in reference.listing(kind)]
        assert names, kind
        assert [n for n in names if f"`{n}`" not in page] == [], kind


def test_reference_lists_every_command_and_option(pages):
    page = pages["reference/cli.md"]
    commands = reference.commands()
    names = {name for name, _, _ in commands}
    assert {
        "gist-harness run",
        "gist-harness ls",
        "gist-harness bench step",
        "gist-harness validate",
    } <= names
    for name, _, parser in commands:
        assert f"`{name}`" in page, name
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):  # -h is every command's, left out
                continue
            for option in action.option_strings:
                assert option in page, (name, option)


def test_config_page_lists_every_field(pages):
    page = pages["reference/config.md"]
    for field in reference.schema_fields(Experiment):
        assert f"| `{field.name}` |" in page, (field.section, field.name)


def test_navigation_names_every_generated_page(pages):
    nav = (REPO / "mkdocs.yml").read_text()
    assert [path for path in pages if path not in nav] == []


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None, reason="mkdocs is not installed (tox -e docs)"
)
def test_docs_build_strictly(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    assert (tmp_path / "site" / "reference" / "config" / "index.html").exists()
