"""Every committed report rebuilds from the files beside it: delete README.md, re-render, same file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.cli import main
from harness.report.inputs import is_report_dir

REPORTS = Path(__file__).resolve().parents[1] / "reports"
COMMITTED = sorted(p for p in REPORTS.iterdir() if p.is_dir()) if REPORTS.is_dir() else []


def test_every_committed_report_holds_its_inputs():
    assert COMMITTED, "no committed reports found"
    missing = [p.name for p in COMMITTED if not is_report_dir(p)]
    assert not missing, f"reports without inputs/manifest.json + results.csv: {missing}"


@pytest.mark.parametrize("folder", COMMITTED, ids=[p.name for p in COMMITTED])
def test_committed_report_rebuilds_to_the_same_markdown(folder, tmp_path):
    copy = tmp_path / folder.name
    rendered = {"README.md", "index.html", "figures"}  # the outputs; inputs/figures/ stays

    def outputs(directory: str, names: list[str]) -> set[str]:
        return rendered & set(names) if Path(directory) == folder else set()

    shutil.copytree(folder, copy, ignore=outputs)
    assert main(["report", str(copy)]) == 0
    rebuilt = (copy / "README.md").read_text(encoding="utf-8")
    assert rebuilt == (folder / "README.md").read_text(encoding="utf-8")
    assert (copy / "results.csv").read_bytes() == (folder / "results.csv").read_bytes()
    assert (copy / "inputs" / "manifest.json").read_bytes() == (
        folder / "inputs" / "manifest.json"
    ).read_bytes()
    linked = {p.name for p in (folder / "figures").glob("*.png")}
    assert {p.name for p in (copy / "figures").glob("*.png")} == linked


def test_a_fresh_run_replaces_recovered_inputs_and_keeps_report_toml(tmp_path):
    """Re-running a study whose report was recovered: its run folder's inputs replace the recovered ones."""
    fixture = Path(__file__).parent / "fixtures" / "report_study"
    target = tmp_path / "fixture-ablation"
    shutil.copytree(REPORTS / "margin-sweep" / "inputs", target / "inputs")
    (target / "inputs" / "report.toml").write_text('[report]\ncontrasts = [["gist", "infonce"]]\n')
    assert main(["report", str(fixture), "--out", str(tmp_path)]) == 0
    left = sorted(p.relative_to(target).as_posix() for p in (target / "inputs").rglob("*") if p.is_file())
    assert left == ["inputs/manifest.json", "inputs/report.toml", "inputs/trials.jsonl"]
    readme = (target / "README.md").read_text(encoding="utf-8")
    assert "Inputs recovered" not in readme
    assert "declared beside the report (inputs/report.toml) after the study ran" in readme
    assert "| gist − infonce (primary) |" in readme and "random_drop − infonce" not in readme
