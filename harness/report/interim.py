"""An interim record: a study's trials as files to commit, computing and showing no result.

A study longer than one working stint goes on elsewhere (a fresh machine, where ``runs/<study>/`` is
gone) from a committed record of what it has done so far. A report would do, but a report rendered
from the run folder is a look (:mod:`harness.report.looks`) and spends alpha. The interim record holds
the same inputs as a report (``results.csv``, ``inputs/``; see :mod:`harness.report.inputs`), so
``gist-harness run EXPERIMENT --from-report interim/<study>`` continues from it as from a report, and a
``README.md`` that lists, per arm and seed, only the trials' states and wall times: no scores by arm, no
contrasts, no intervals, no p-values. Writing it records no look; ``inputs/interim.json`` marks the
folder, so ``gist-harness report`` refuses to render contrasts from it::

    files = interim_files(load_study_dir("runs/my-study"), datetime.now(timezone.utc))

Pure: nothing here writes a file.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from pathlib import Path

from harness.report.inputs import INPUTS_DIR, RESULTS_CSV, input_files
from harness.report.load import arm_of, results_frame
from harness.report.looks import completed_seeds
from harness.report.provenance import wall_time
from harness.results import StudyResults, TrialResult

INTERIM_FILE = f"{INPUTS_DIR}/interim.json"
"""The marker of an interim record: when it was written and how many trials it holds."""


def is_interim_dir(path: str | Path) -> bool:
    """True for a folder written by :func:`interim_files` (it holds ``inputs/interim.json``)."""
    return (Path(path) / INTERIM_FILE).is_file()


def interim_files(results: StudyResults, written: datetime) -> dict[str, bytes]:
    """Every file of the interim record of ``results`` by path relative to its folder."""
    marker = {"written": written.isoformat(), "trials": len(results.trials)}
    return {
        "README.md": interim_readme(results, written).encode("utf-8"),
        RESULTS_CSV: results_frame(results).to_csv(index=False, lineterminator="\n").encode("utf-8"),
        **input_files(results),
        INTERIM_FILE: (json.dumps(marker, indent=2) + "\n").encode("utf-8"),
    }


def interim_readme(results: StudyResults, written: datetime) -> str:
    """What is done per arm and seed (trial states, wall time), what is left, and what the record is."""
    study = results.manifest.study
    k = len(results.looks)
    lines = [
        f"# Interim record of study `{study}`",
        "",
        f"Written {written:%Y-%m-%d %H:%M} UTC. An interim record, not a report: it keeps the study's "
        f"trials so that `gist-harness run EXPERIMENT --from-report <this folder>` continues the study "
        "(its COMPLETE trials are not run again). It shows no result: no scores aggregated by arm, no "
        "contrasts, no confidence intervals, no p-values. Writing it is not a look: looks taken so far: "
        f"{k}{' (their estimates are in inputs/looks/)' if k else ''}.",
        "",
        "## Trials by arm and seed",
        "",
        f"COMPLETE seeds per arm: {_complete_seeds(results)}.",
        "",
        "| arm | seed | trials (number, state) | wall time (s) |",
        "|---|---|---|---|",
        *_cell_rows(results),
        "",
        f"Study wall time: {wall_time(results)}.",
        *_tuning_lines(results),
        *_left_to_run(results),
    ]
    return "\n".join(lines) + "\n"


def _complete_seeds(results: StudyResults) -> str:
    seeds = completed_seeds(results)
    return ", ".join(f"{arm} {n}" for arm, n in seeds.items()) or "none"


def _cell_rows(results: StudyResults) -> list[str]:
    cells: dict[tuple[str, int | None], list[TrialResult]] = defaultdict(list)
    for r in results.trials:
        cells[(arm_of(r), r.trial.seed)].append(r)
    arms = list(dict.fromkeys(arm for arm, _ in cells))  # in the order the arms first ran
    rows = []
    for arm, seed in sorted(cells, key=lambda c: (arms.index(c[0]), -1 if c[1] is None else c[1])):
        trials = cells[(arm, seed)]
        states = ", ".join(f"#{r.trial.number} {r.trial.state}" for r in trials)
        seconds = sum(r.trial.wall_seconds or 0.0 for r in trials)
        rows.append(f"| {arm} | {'—' if seed is None else seed} | {states} | {seconds:.0f} |")
    return rows


def _left_to_run(results: StudyResults) -> list[str]:
    """The declared arm and seed pairs with no COMPLETE trial yet (nothing without a declaration)."""
    if not results.declarations:
        return []
    declared = results.declarations[-1]
    done = {(r.trial.arm, r.trial.seed) for r in results.trials if r.trial.state == "COMPLETE"}
    left = [f"{a} seed {s}" for a in declared.arms for s in declared.seeds if (a, s) not in done]
    what = ", ".join(left) if left else "none"
    return [
        "",
        f"Left to run (declaration {declared.number}: arms × seeds without a COMPLETE trial): {what}.",
    ]


def _tuning_lines(results: StudyResults) -> list[str]:
    """How far each arm's tuning search got (trial counts by state; no tuning score is shown)."""
    record = results.tuning
    if record is None:
        return []
    parts = []
    for arm in record.arms:
        failed = sum(t.state == "FAIL" for t in arm.trials)
        parts.append(f"`{arm.arm}` {record.counted(arm)} of {record.budget} ({failed} failed)")
    return ["", f"Tuning stage (`inputs/tuning.json`; trials finished per arm): {'; '.join(parts)}."]
