"""Renders a :class:`~harness.report.build.Report` to Markdown and self-contained HTML with Jinja2."""

from __future__ import annotations

import base64
from pathlib import Path

import jinja2
import markupsafe

from harness.report.build import Report
from harness.report.index import BenchmarkEntry, StudyEntry

TEMPLATES = Path(__file__).parent / "templates"
FIGURE_DIR = "figures"


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown_parser():
    from markdown_it import MarkdownIt

    # CommonMark with raw HTML off: "<x>" in a findings text is shown, never interpreted; GFM tables on.
    return MarkdownIt("commonmark", {"html": False}).enable("table")


def markdown_html(text: str) -> markupsafe.Markup:
    """A Markdown text (FINDINGS.md) as HTML: paragraphs, nested lists, emphasis, code, tables."""
    return markupsafe.Markup(_markdown_parser().render(text))


def inline_markdown_html(text: str) -> markupsafe.Markup:
    """One line of Markdown (a note or summary) as inline HTML: `code`, **bold**."""
    return markupsafe.Markup(_markdown_parser().renderInline(text))


def _environment(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["mdcell"] = _markdown_cell
    env.filters["markdown"] = markdown_html
    env.filters["inline_md"] = inline_markdown_html
    env.filters["b64"] = lambda data: base64.b64encode(data).decode("ascii")
    return env


def render_markdown(report: Report) -> str:
    """GitHub-flavoured Markdown; figures are linked as ``figures/<name>.png`` beside the file."""
    return _environment(False).get_template("report.md.j2").render(r=report, figure_dir=FIGURE_DIR)


def render_html(report: Report) -> str:
    """One self-contained HTML page: inline CSS, figures as base64 PNG, no script, no external request."""
    return _environment(True).get_template("report.html.j2").render(r=report)


def render_files(report: Report) -> dict[str, bytes]:
    """Every output file of the report by path relative to ``reports/<study>/``, its ``inputs/`` included."""
    files = {
        "index.html": render_html(report).encode("utf-8"),
        "README.md": render_markdown(report).encode("utf-8"),
        "results.csv": report.csv.to_csv(index=False, lineterminator="\n").encode("utf-8"),
    }
    for figure in report.figures:
        files[f"{FIGURE_DIR}/{figure.name}.png"] = figure.png
    return {**files, **report.inputs}


def render_index(studies: list[StudyEntry], benchmarks: list[BenchmarkEntry]) -> dict[str, bytes]:
    """``reports/README.md`` and ``reports/index.html`` of the reports index (:mod:`harness.report.index`)."""
    pages = {"README.md": ("index.md.j2", False), "index.html": ("index.html.j2", True)}
    return {
        name: _environment(autoescape)
        .get_template(template)
        .render(studies=studies, benchmarks=benchmarks)
        .encode("utf-8")
        for name, (template, autoescape) in pages.items()
    }
