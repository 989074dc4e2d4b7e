"""Report rendering: the Markdown snapshot, the CLI's files, self-contained HTML, storage input, isolation.

Regenerate the snapshot after an intended change with ``UPDATE_SNAPSHOTS=1 pytest tests/test_report_render.py``
and read the diff before committing it.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main
from harness.report import build_report, load_study_dir, render_markdown

TESTS = Path(__file__).parent
FIXTURE = TESTS / "fixtures" / "report_study"
SNAPSHOT = TESTS / "snapshots" / "report_study.md"


def test_markdown_matches_snapshot():
    markdown = render_markdown(build_report(load_study_dir(FIXTURE)))
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(markdown, encoding="utf-8")
    assert SNAPSHOT.exists(), f"{SNAPSHOT} missing: run with UPDATE_SNAPSHOTS=1 once and check it by eye"
    assert markdown == SNAPSHOT.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reports")
    assert main(["report", str(FIXTURE), "--out", str(out)]) == 0
    return out / "fixture-ablation"


def test_cli_writes_every_output(report_dir):
    names = {p.relative_to(report_dir).as_posix() for p in report_dir.rglob("*") if p.is_file()}
    assert {"index.html", "README.md", "results.csv", "figures/category_deltas.png"} <= names
    readme = (report_dir / "README.md").read_text()
    for link in re.findall(r"!\[[^]]*\]\(([^)]+)\)", readme):
        assert (report_dir / link).is_file(), f"README links a missing figure {link}"


def test_results_csv_has_one_row_per_trial_and_task(report_dir):
    rows = list(csv.DictReader((report_dir / "results.csv").open()))
    # 3 untrained + 11 trials × 3 tasks (failed/running trials with an empty main_score)
    assert len(rows) == 3 + 11 * 3
    running = [r for r in rows if r["trial"] == "10"]
    assert {r["state"] for r in running} == {"RUNNING"} and {r["main_score"] for r in running} == {""}
    assert {r["in_domain"] for r in rows if r["task"] == "local:STSBenchmark" and r["trial"]} == {"True"}


def test_html_is_self_contained(report_dir):
    html = (report_dir / "index.html").read_text()
    assert "<script" not in html
    assert not re.search(r"""(src|href)=["'](?!data:|#)""", html), "external resource referenced"
    figures = list((report_dir / "figures").glob("*.png"))
    # 2 forest plots (primary contrasts), deltas, loss, drop rate, history, parallel coordinates,
    # intermediate values; no importances: arm and seed of an ablation are fixed, not searched
    assert html.count('src="data:image/png;base64,') == len(figures) == 8
    assert "s3cret" not in html and "harness:***@" in html  # storage password hidden


def test_partial_study_is_flagged(report_dir):
    readme = (report_dir / "README.md").read_text()
    assert "Partial study: 9 complete, 1 failed, 1 running of 11 trials" in readme
    assert "| 10 | gist | 3 | RUNNING |" in readme


def test_study_with_nothing_complete_yet(tmp_path):
    """A study that has just started: one RUNNING trial, no scores; every table says it has no data."""
    study = tmp_path / "fixture-ablation"
    shutil.copytree(FIXTURE / "trial-0010", study / "trial-0010")
    shutil.copy(FIXTURE / "manifest.json", study)
    markdown = render_markdown(build_report(load_study_dir(study)))
    assert "Partial study: 1 running of 1 trials" in markdown
    assert markdown.count("_No data stored for this table._") == 4  # arms, categories, tasks, guide


def test_bad_input_is_a_one_line_error(tmp_path, capsys):
    shutil.copytree(FIXTURE, tmp_path / "s")
    (tmp_path / "s" / "trial-0001" / "run.json").write_text("{")
    assert main(["report", str(tmp_path / "s"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "trial-0001/run.json: not valid JSON" in err and "\n" not in err


def test_report_from_optuna_storage(tmp_path):
    import optuna

    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="search", storage=url, direction="maximize")
    for lr in (1e-5, 3e-5, 1e-4):
        trial = study.ask({"lr": optuna.distributions.FloatDistribution(1e-5, 1e-3, log=True)})
        trial.report(0.7, 1)
        trial.set_user_attr("scores", [{"model": "m", "task": "local:SICK-R", "category": "STS", "split": "test",
                                        "metric": "cosine_spearman", "main_score": 0.7 + lr}])  # fmt: skip
        study.tell(trial, 0.7 + lr)
    assert main(["report", url, "--study", "search", "--out", str(tmp_path / "out")]) == 0
    readme = (tmp_path / "out" / "search" / "README.md").read_text()
    assert "| 2 | #2 | — | COMPLETE | 0.7001 |" in readme
    assert (tmp_path / "out" / "search" / "figures" / "optimization_history.png").is_file()


def test_report_layer_imports_no_training_stack(tmp_path):
    """Building a report must not pull in torch, mteb, sentence-transformers or transformers."""
    code = (
        "import argparse, sys\n"
        "from harness.cli import report_cmd\n"
        f"args = argparse.Namespace(source={str(FIXTURE)!r}, study=None, out={str(tmp_path)!r})\n"
        "assert report_cmd.run(args) == 0\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'torch', 'mteb', 'sentence_transformers', 'transformers', 'optuna'})\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=TESTS.parent, timeout=120)


def test_findings_beside_the_report_are_shown_and_kept(tmp_path):
    """A person's FINDINGS.md in the report folder appears under Findings and survives a re-render."""
    out = tmp_path / "reports"
    folder = out / "fixture-ablation"
    folder.mkdir(parents=True)
    text = "GIST beats `infonce` on STS only.\n\n- first point\n  continued\n- second <point>\n"
    (folder / "FINDINGS.md").write_text(text, encoding="utf-8")
    for _ in range(2):
        assert main(["report", str(FIXTURE), "--out", str(out)]) == 0
    markdown = (folder / "README.md").read_text(encoding="utf-8")
    assert "## Findings\n\n" + text.strip() + "\n" in markdown  # the Markdown text as written
    html = (folder / "index.html").read_text(encoding="utf-8")  # rendered by markdown-it-py
    assert "<p>GIST beats <code>infonce</code> on STS only.</p>" in html
    assert "<li>first point\ncontinued</li>" in html and "<li>second &lt;point&gt;</li>" in html
    assert (folder / "FINDINGS.md").read_text(encoding="utf-8") == text


def test_reproducibility_gives_the_study_wall_time():
    from harness.report.provenance import reproducibility

    facts = dict(reproducibility(load_study_dir(FIXTURE)).facts)
    assert re.fullmatch(
        r"(\d+ h )?\d+ min \d\d s from creation to the last trial's end \(.* in trials\)|—",
        facts["Wall time"],
    )
