"""HTML details: Findings through markdown-it-py, wide tables that scroll with a fixed first column."""

from __future__ import annotations

import re
from pathlib import Path

from harness.report import build_report, load_study_dir, render_html
from harness.report.render import markdown_html

FIXTURE = Path(__file__).parent / "fixtures" / "report_study"


def test_findings_keep_nested_lists_bold_and_code():
    text = "Intro with **bold**.\n\n- outer\n  - inner one\n  - inner `code`\n- second <b>raw</b>\n"
    html = str(markdown_html(text))
    assert "<p>Intro with <strong>bold</strong>.</p>" in html
    assert re.search(r"<li>outer\s*<ul>\s*<li>inner one</li>\s*<li>inner <code>code</code></li>", html)
    assert "&lt;b&gt;raw&lt;/b&gt;" in html  # raw HTML in a findings text is shown, not interpreted


def test_report_html_renders_findings_markdown_and_sticky_tables():
    html = render_html(build_report(load_study_dir(FIXTURE), findings="- **GIST** wins\n  - on STS\n"))
    assert "<li><strong>GIST</strong> wins" in html and "<li>on STS</li>" in html
    assert "**" not in html.split('id="findings"')[1].split("</div>")[0]
    assert ".scroll { overflow-x: auto;" in html and "position: sticky; left: 0;" in html
    assert html.count('<div class="scroll"><table') >= 5  # every table sits in its scrolling container
    assert not re.search(r"""(src|href)=["'](?!data:|#)""", html)  # no network access


def test_contrasts_open_the_report():
    html = render_html(build_report(load_study_dir(FIXTURE)))
    assert html.index('id="contrasts"') < html.index('id="headline"') < html.index('id="guide"')
    assert '<table id="table-contrasts">' in html and "Holm family" in html
