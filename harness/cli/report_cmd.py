"""``gist-harness report STUDY_OR_RUN_DIR | STORAGE_URL --study NAME``: write a study's report.

Writes ``<out>/<study>/index.html`` (self-contained), ``README.md`` (figures as relative PNG files),
``results.csv`` (one row per trial × task), ``figures/*.png`` and ``inputs/`` (manifest and trial
records: every input the report needs, so ``gist-harness report reports/<study>`` re-renders it from
the repository alone; see :mod:`harness.report.inputs`). A ``FINDINGS.md`` already in the output
folder (what a person concluded from the numbers) is kept and shown under "Findings". From a run
folder it reads only the stored JSON files; from an Optuna storage URL it converts the stored trials
into the same records (scores and run records come from the trials' user attributes ``scores`` and
``run`` when present).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.results import (
    LOOKS_DIR,
    HistoryTrial,
    Look,
    RunRecord,
    ScoreTable,
    StudyManifest,
    StudyResults,
    TrialRecord,
    TrialResult,
    TrialState,
    load_study_dir,
    numbered_path,
    write_new_record,
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write the HTML/Markdown report of a study (arms vs InfoNCE, CIs, plots, provenance)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument(
        "source",
        help="study folder runs/<study>/, one trial folder in it, a report folder reports/<study>/ "
        "(re-rendered in place from its inputs/), or an Optuna storage URL",
    )
    parser.add_argument("--study", help="study name (required with a storage URL)")
    parser.add_argument(
        "--out", default="reports", help="output folder; the report goes to OUT/<study>/ (default: reports)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.report import build_report, render_files  # matplotlib/scipy only when reporting
    from harness.report.inputs import declared_beside, guide_score_files, is_report_dir, load_report_dir
    from harness.report.interim import is_interim_dir

    report_toml, recovered, look_time = "", None, None
    if is_interim_dir(args.source):
        raise UserError(
            f"{args.source}: an interim record (no contrasts, not a look); continue the study with "
            "gist-harness run EXPERIMENT --from-report, then report its run folder"
        )
    if "://" in args.source:
        if not args.study:
            raise UserError(f"{args.source}: a storage URL needs --study NAME")
        results = results_from_storage(args.source, args.study)
    elif is_report_dir(args.source):  # reports/<study>/ with its inputs: re-render in place
        inputs = load_report_dir(args.source)
        results, report_toml, recovered = inputs.results, inputs.report_toml, inputs.recovered
    else:
        results = load_study_dir(args.source)
        look_time = datetime.now(timezone.utc)  # rendered from the run folder: a look at its data
    if args.study and args.study != results.manifest.study:
        raise UserError(f"{args.source}: holds study {results.manifest.study!r}, not {args.study!r}")
    target = Path(args.source) if is_report_dir(args.source) else Path(args.out) / results.manifest.study
    report_toml = report_toml or declared_beside(target, results.folder)
    guide_files = guide_score_files(results, report_toml)  # [report] guide_scores: a missing file stops here
    report = build_report(
        results, read_findings(target), report_toml, recovered, look_time=look_time, guide_files=guide_files
    )
    store_look(results, report.new_look)
    write_files(target, render_files(report))
    n = len(results.trials)
    print(
        f"report of {results.manifest.study} ({n} trial{'s' * (n != 1)}): {target / 'index.html'}, {target / 'README.md'}"
    )
    return 0


def store_look(results: StudyResults, look: Look | None) -> None:
    """Records a new look in the run folder (``looks/NNNN.json``, never overwritten) before the report."""
    if look is not None and results.folder is not None:
        write_new_record(numbered_path(results.folder / LOOKS_DIR, look.number), look)


def read_findings(target: Path) -> str:
    """The person-written ``FINDINGS.md`` of a report folder (kept across re-renders), or ""."""
    from harness.report.build import FINDINGS_FILE

    path = target / FINDINGS_FILE
    return path.read_text(encoding="utf-8") if path.exists() else ""


def write_files(target: Path, files: dict[str, bytes]) -> None:
    """Writes every file atomically; figures and inputs left over from an earlier report are removed.

    ``inputs/report.toml`` (contrasts declared beside a report by a person) is kept.
    """
    stale = [*(target / "figures").glob("*.png"), *(target / "inputs").rglob("*")]
    for old in stale:
        relative = old.relative_to(target).as_posix()
        if old.is_file() and relative not in files and relative != "inputs/report.toml":
            old.unlink()
    for relative, data in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)


def results_from_storage(url: str, study_name: str) -> StudyResults:
    """Reads a study from an Optuna storage and converts it into the stored-result records.

    The study's user attribute ``manifest`` (a :class:`StudyManifest` dict) is used when present; trial
    user attributes ``arm``, ``seed``, ``scores`` (list of ScoreRow dicts), ``run`` (RunRecord dict) and
    ``in_domain_tasks`` fill the trial records.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=study_name, storage=url)
    except KeyError:
        names = optuna.study.get_all_study_names(storage=url)
        raise UserError(
            f"{url}: no study {study_name!r}; studies there: {', '.join(names) or 'none'}"
        ) from None
    except Exception as exc:  # SQLAlchemy/journal errors: bad URL, unreachable server, ...
        raise UserError(f"{url}: cannot open the Optuna storage ({type(exc).__name__}: {exc})") from None
    trials = [_trial_result(study_name, t) for t in study.get_trials(deepcopy=False)]
    history = [
        HistoryTrial(
            number=t.number,
            state=_state(t),
            value=t.value if _state(t) == "COMPLETE" else None,
            params=dict(t.params),
            intermediate_values=dict(t.intermediate_values),
            started=t.datetime_start,
            finished=t.datetime_complete,
        )  # fmt: skip
        for t in study.get_trials(deepcopy=False)
    ]
    stored: dict[str, Any] = dict(study.user_attrs.get("manifest") or {})
    stored.update(study=study_name, storage_url=url, history=history)
    if len(study.directions) == 1:
        stored.setdefault("direction", study.direction.name.lower())
    return StudyResults(manifest=StudyManifest.model_validate(stored), trials=trials)


def _state(trial) -> TrialState:
    name = trial.state.name
    return name if name in ("COMPLETE", "RUNNING", "FAIL", "PRUNED") else "WAITING"


def _trial_result(study_name: str, t) -> TrialResult:
    attrs = t.user_attrs
    seconds = (
        (t.datetime_complete - t.datetime_start).total_seconds()
        if t.datetime_complete and t.datetime_start
        else None
    )
    record = TrialRecord(
        study=study_name, number=t.number, state=_state(t), arm=attrs.get("arm", t.params.get("arm")),
        seed=attrs.get("seed", t.params.get("seed")), params=dict(t.params), config=attrs.get("config", {}),
        guide=attrs.get("guide"), strategy=attrs.get("strategy"),
        value=t.value if _state(t) == "COMPLETE" else None, started=t.datetime_start,
        finished=t.datetime_complete, wall_seconds=seconds, in_domain_tasks=attrs.get("in_domain_tasks", []),
        error=attrs.get("error"),
    )  # fmt: skip
    scores = ScoreTable(rows=attrs["scores"]) if attrs.get("scores") else None
    run = RunRecord.model_validate(attrs["run"]) if attrs.get("run") else None
    return TrialResult(trial=record, scores=scores, run=run)
