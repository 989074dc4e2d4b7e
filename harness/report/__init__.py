"""The report layer: stored study results in, tables, figures, Markdown and HTML out.

It reads only the files described in :mod:`harness.results` and never imports torch, mteb,
sentence-transformers or an Optuna storage, so a report rebuilds in seconds::

    results = load_study_dir("runs/quickstart")
    files = render_files(build_report(results))   # {"index.html": b"...", "README.md": ..., ...}
"""

from harness.report.build import Report, build_report
from harness.report.render import render_files, render_html, render_markdown
from harness.results import load_study_dir

__all__ = ["Report", "build_report", "load_study_dir", "render_files", "render_html", "render_markdown"]
