"""Pairs registry and the thin CLI (ls, --version, --help, error lines)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness import __version__
from harness.cli import main
from harness.models.pairs import DEFAULT_PAIR, PAIRS, resolve_pair
from harness.registry import UnknownNameError


def test_pairs_point_at_zoo_models():
    assert DEFAULT_PAIR in PAIRS
    pair = PAIRS.get(DEFAULT_PAIR)
    assert (pair.student, pair.guide) == ("all-minilm-l6", "all-mpnet-base") and pair.offline
    assert PAIRS.get("all-minilm-l6__all-minilm-l6").offline
    assert not PAIRS.get("bge-small__uae-large").offline
    for name in [
        "all-minilm-l6__uae-large",
        "bge-base__uae-large",
        "bge-large__uae-large",
        "bge-small__bge-large",
    ]:
        assert name in PAIRS


def test_ad_hoc_pairs_and_unknown_names():
    assert resolve_pair("gte-small__all-mpnet-base").guide == "all-mpnet-base"
    with pytest.raises(UnknownNameError, match="Did you mean"):
        resolve_pair("all-minilm-l6__all-mpnet-bse")


def test_ls_models_and_pairs_print_tables(capsys):
    assert main(["ls", "models"]) == 0
    assert "all-mpnet-base" in capsys.readouterr().out
    assert main(["ls", "pairs", "--json"]) == 0
    assert DEFAULT_PAIR in capsys.readouterr().out


def test_unknown_model_is_one_line_exit_2(capsys):
    assert main(["models", "fetch", "all-mpnet-bse"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: unknown model 'all-mpnet-bse'")


def test_version_and_help_via_python_dash_m():
    out = subprocess.run([sys.executable, "-m", "harness", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"gist-harness {__version__}"
    helptext = subprocess.run(
        [sys.executable, "-m", "harness", "--help"], capture_output=True, text=True
    ).stdout
    for command in ["ls", "models"]:
        assert command in helptext
