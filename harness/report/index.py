"""The reports index: one entry per committed report and benchmark, generated from their own files.

``gist-harness index`` writes ``reports/README.md`` and ``reports/index.html``. Every field comes
from a report's ``inputs/`` (the experiment text it ran, its trial records) and from the report
built from them, so the index says what the reports say and is rebuilt, never edited:

* question: the first comment paragraph of the experiment file the study ran;
* student and guide: the experiment's ``[model]`` (and any arm that names another guide);
* seeds: the seeds with a COMPLETE trial;
* verdict: the report's own sentence for each primary contrast on each ``primary_on`` aggregate (by
  default the mean over categories), with its Holm verdict (e.g. "not significant after Holm"), or
  that it declares none;
* date: the day its last trial finished.

A benchmark (``benchmarks/<name>/README.md``) is listed by its title.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from harness.report.build import headline
from harness.report.inputs import is_report_dir, load_report_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

NO_GUIDE = {"none", ""}


@dataclass(frozen=True)
class StudyEntry:
    """One committed report as the index shows it."""

    name: str
    question: str
    student: str
    guides: tuple[str, ...]
    seeds: int
    suite: str
    verdicts: tuple[str, ...]
    date: str


@dataclass(frozen=True)
class BenchmarkEntry:
    """One committed benchmark: its folder and the title of its README."""

    name: str
    title: str


def question(experiment_toml: str) -> str:
    """The first paragraph of the experiment file's leading comment, as one line."""
    lines = []
    for line in experiment_toml.splitlines():
        text = line.strip()
        if not text.startswith("#"):
            break
        text = text.lstrip("#").strip()
        if not text:
            if lines:
                break
            continue
        lines.append(text)
    return " ".join(lines)


def guides(experiment_toml: str) -> tuple[str, ...]:
    """The guides the study used: ``[model] guide`` (or its pair's) and any arm's own guide."""
    config = tomllib.loads(experiment_toml)
    model = config.get("model", {})
    named = [model.get("guide") or model.get("pair", "__").split("__", 1)[-1]]
    named += [arm.get("guide", "") for arm in config.get("ablation", {}).get("arms", [])]
    return tuple(dict.fromkeys(g for g in named if g and g not in NO_GUIDE))


def study_entry(folder: Path) -> StudyEntry:
    """The index entry of the report in ``folder`` (a ``reports/<study>/`` with its inputs)."""
    inputs = load_report_dir(folder)
    results, manifest = inputs.results, inputs.results.manifest
    done = [r.trial for r in results.trials if r.trial.state == "COMPLETE"]
    finished = [t.finished for t in manifest.history if t.finished] or [
        t.finished for t in done if t.finished
    ]
    declared = [
        s for s in headline(results, inputs.report_toml) if not s.startswith(("No contrasts", "Left out"))
    ]
    return StudyEntry(
        name=folder.name,
        question=question(manifest.experiment_toml),
        student=manifest.student or "?",
        guides=guides(manifest.experiment_toml),
        seeds=len({t.seed for t in done if t.seed is not None}),
        suite=manifest.final_suite or "?",
        verdicts=tuple(declared) or ("No primary contrast declared.",),
        date=max(finished).date().isoformat() if finished else "?",
    )


def benchmark_entry(folder: Path) -> BenchmarkEntry:
    """The index entry of ``benchmarks/<name>/``: the first Markdown heading of its README."""
    lines = (folder / "README.md").read_text(encoding="utf-8").splitlines()
    title = next((line.lstrip("#").strip() for line in lines if line.startswith("#")), folder.name)
    return BenchmarkEntry(folder.name, title)


def collect(reports_dir: Path, benchmarks_dir: Path | None) -> tuple[list[StudyEntry], list[BenchmarkEntry]]:
    """Every report under ``reports_dir`` and benchmark under ``benchmarks_dir``, newest report first."""
    studies = [study_entry(p) for p in sorted(reports_dir.iterdir()) if p.is_dir() and is_report_dir(p)]
    studies.sort(key=lambda s: s.date, reverse=True)  # stable: same-day reports keep name order
    benches = []
    if benchmarks_dir is not None and benchmarks_dir.is_dir():
        benches = [
            benchmark_entry(p) for p in sorted(benchmarks_dir.iterdir()) if (p / "README.md").is_file()
        ]
    return studies, benches
