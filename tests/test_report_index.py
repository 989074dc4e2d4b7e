"""The reports index: generated from the committed reports, current, and rendered in a browser."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.cli import main
from harness.report.index import collect, guides, question
from harness.report.render import render_index

ROOT = Path(__file__).resolve().parents[1]
REPORTS, BENCHMARKS = ROOT / "reports", ROOT / "benchmarks"


@pytest.fixture(scope="module")
def entries():
    return collect(REPORTS, BENCHMARKS)


def test_question_is_the_first_comment_paragraph():
    text = "# Does GIST help\n# a static student?\n#\n#   gist-harness run x.toml\n[study]\nname = 'x'\n"
    assert question(text) == "Does GIST help a static student?"
    assert question("[study]\nname = 'x'\n") == ""


def test_guides_come_from_the_model_section_the_pair_and_the_arms():
    assert guides('[model]\npair = "all-minilm-l6__all-mpnet-base"\n') == ("all-mpnet-base",)
    text = '[model]\nguide = "a"\n[[ablation.arms]]\nguide = "none"\n[[ablation.arms]]\nguide = "tfidf"\n'
    assert guides(text) == ("a", "tfidf")
    assert guides("[model]\nstudent = 's'\n") == ()


def test_every_committed_report_and_benchmark_is_listed(entries):
    studies, benchmarks = entries
    assert {s.name for s in studies} == {p.name for p in REPORTS.iterdir() if (p / "inputs").is_dir()}
    assert {b.name for b in benchmarks} == {
        p.name for p in BENCHMARKS.iterdir() if (p / "README.md").is_file()
    }
    assert [s.date for s in studies] == sorted((s.date for s in studies), reverse=True)


def test_verdicts_are_the_reports_own_sentences(entries):
    studies = {s.name: s for s in entries[0]}
    readme = (REPORTS / "gist-vs-infonce" / "README.md").read_text(encoding="utf-8")
    assert studies["gist-vs-infonce"].verdicts and all(
        f"- {v}" in readme for v in studies["gist-vs-infonce"].verdicts
    )
    assert studies["gist-vs-infonce"].seeds == 5 and studies["gist-vs-infonce"].student == "all-minilm-l6"
    assert any("not significant" in v for s in studies.values() for v in s.verdicts)


def test_the_committed_index_is_current(entries):
    files = render_index(*entries)
    for name, data in files.items():
        assert (REPORTS / name).read_bytes() == data, f"reports/{name} is stale: run gist-harness index"


def test_index_command_writes_both_pages(tmp_path):
    reports = tmp_path / "reports"
    shutil.copytree(REPORTS / "quickstart", reports / "quickstart")
    assert main(["index", "--reports", str(reports), "--benchmarks", str(tmp_path / "none")]) == 0
    text = (reports / "README.md").read_text(encoding="utf-8")
    assert "[quickstart](quickstart/README.md)" in text and "## Benchmarks (0)" in text
    assert '<a href="quickstart/index.html">quickstart</a>' in (reports / "index.html").read_text()


def test_index_command_names_a_missing_folder(tmp_path, capsys):
    assert main(["index", "--reports", str(tmp_path / "nope")]) == 2
    assert "nope: no such reports folder" in capsys.readouterr().err


@pytest.mark.browser
def test_index_page_renders_in_chromium_and_its_links_resolve(tmp_path):
    import re

    from test_report_browser import _console, _run

    page = REPORTS / "index.html"
    result = _run(tmp_path, page, "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    assert _console(result.stderr) == []
    links = re.findall(r'<a href="([^"]+)"', result.stdout)
    assert len(links) == len(list(REPORTS.glob("*/inputs"))) + len(list(BENCHMARKS.glob("*/README.md")))
    assert [link for link in links if not (REPORTS / link).resolve().is_file()] == []
