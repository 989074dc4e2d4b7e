"""Every input a report needs, as plain files beside it, so ``reports/<study>/`` rebuilds on its own.

Layout (written by ``gist-harness report`` next to the rendered files)::

    reports/<study>/
        results.csv             every score (one row per trial × task × split × subset), full precision
        inputs/manifest.json    StudyManifest: provenance, experiment text, Optuna history
        inputs/trials.jsonl     one line per trial: {"trial": TrialRecord, "run": RunRecord | null}
        inputs/report.toml      optional: a [report] section declared beside the report
        inputs/recovered.json   optional: what an older report kept only as rendered text (see below)
        inputs/declarations/0001.json   Declaration: what the study declared, one file per declaration
        inputs/looks/0001.json          Look: each look at the data (see harness.report.looks)
        inputs/figures/*.png    optional: figures an older report kept only as images
        inputs/guide_scores/ARM.json    optional: a guide's own scores ([report] guide_scores)

Scores are read back from ``results.csv`` (floats written with Python's shortest round-trip repr, so
they come back bit for bit). ``recovered.json`` exists only for reports made before this layout, whose
raw run folders were not committed: it holds the guide-quality table as rendered and the names of the
figures kept as images, with a note of what could not be recovered; the report says so at the top.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import UserError
from harness.report.settings import declared_section, unrecorded_looks
from harness.results import (
    DECLARATIONS_DIR,
    LOOKS_DIR,
    TUNING_FILE,
    UNTRAINED_DIR,
    Declaration,
    Look,
    RunRecord,
    ScoreRow,
    ScoreTable,
    StudyManifest,
    StudyResults,
    TrialRecord,
    TrialResult,
    TuningRecord,
    numbered_path,
    read_numbered,
    read_record,
)

INPUTS_DIR = "inputs"
GUIDE_SCORES_DIR = "guide_scores"
RESULTS_CSV = "results.csv"
_UNTRAINED = UNTRAINED_DIR


@dataclass
class Recovered:
    """What an older report kept only as rendered output (see the module docstring)."""

    note: str = ""
    guide_columns: list[str] = field(default_factory=list)
    guide_rows: list[list[str]] = field(default_factory=list)
    figures: list[dict[str, str]] = field(default_factory=list)
    """``{"name", "title", "caption"}`` of each image in ``inputs/figures/``."""
    images: dict[str, bytes] = field(default_factory=dict)

    def files(self) -> dict[str, bytes]:
        """``inputs/recovered.json`` and ``inputs/figures/*.png``, as :func:`load_report_dir` reads them."""
        data = {
            "note": self.note,
            "guide_table": {"columns": self.guide_columns, "rows": self.guide_rows},
            "figures": self.figures,
        }
        files = {
            f"{INPUTS_DIR}/recovered.json": (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()
        }
        for name, image in self.images.items():
            files[f"{INPUTS_DIR}/figures/{name}.png"] = image
        return files


@dataclass
class ReportInputs:
    results: StudyResults
    report_toml: str = ""
    recovered: Recovered | None = None


def is_report_dir(path: str | Path) -> bool:
    """True for a report folder that holds its own inputs (``inputs/manifest.json`` and ``results.csv``)."""
    path = Path(path)
    return (path / INPUTS_DIR / "manifest.json").is_file() and (path / RESULTS_CSV).is_file()


REPORT_TOML = "report.toml"
"""Declared beside a report by a person (``inputs/report.toml``; in a run folder restored from a report,
``report.toml``): a ``[report]`` section, ``[unrecorded_looks]``."""


def declared_beside(target: Path, run_folder: Path | None = None) -> str:
    """The text of ``target/inputs/report.toml``, else of ``run_folder/report.toml`` (a run folder
    restored from a report keeps it), else ""."""
    for path in (target / INPUTS_DIR / REPORT_TOML, *([run_folder / REPORT_TOML] if run_folder else [])):
        if path.is_file():
            return read_beside(path)
    return ""


def read_beside(path: Path) -> str:
    """The text of a ``report.toml`` declared beside a report, its ``[unrecorded_looks]`` checked (a
    one-line error naming ``path``)."""
    text = path.read_text(encoding="utf-8")
    try:
        unrecorded_looks(text)
    except UserError as e:
        raise UserError(f"{path}: {e}") from None
    return text


def input_files(results: StudyResults) -> dict[str, bytes]:
    """``inputs/manifest.json``, ``inputs/trials.jsonl``, and the declarations and looks of ``results``
    (results.csv is rendered apart)."""
    lines = []
    for r in results.trials:
        record = {
            "trial": json.loads(r.trial.model_dump_json()),
            "run": json.loads(r.run.model_dump_json()) if r.run else None,
        }
        lines.append(json.dumps(record, ensure_ascii=False, sort_keys=True))
    files = {
        f"{INPUTS_DIR}/manifest.json": (results.manifest.model_dump_json(indent=2) + "\n").encode("utf-8"),
        f"{INPUTS_DIR}/trials.jsonl": ("\n".join(lines) + "\n" if lines else "").encode("utf-8"),
    }
    for sub, records in ((DECLARATIONS_DIR, results.declarations), (LOOKS_DIR, results.looks)):
        for record in records:
            path = numbered_path(Path(INPUTS_DIR, sub), record.number).as_posix()
            files[path] = (record.model_dump_json(indent=2) + "\n").encode("utf-8")
    if results.tuning is not None:
        files[f"{INPUTS_DIR}/{TUNING_FILE}"] = (results.tuning.model_dump_json(indent=2) + "\n").encode(
            "utf-8"
        )
    return files


def guide_score_files(results: StudyResults, report_toml: str = "") -> dict[str, bytes]:
    """Arm -> the bytes of its ``[report] guide_scores`` file: the copy in the report's
    ``inputs/guide_scores/ARM.json`` when ``results`` were loaded from a report folder that holds one,
    else the declared path (relative to the working directory).

    Raises:
        UserError: a declared file that is not there, naming the field and the command that writes it.
    """
    section, _ = declared_section(results.manifest.experiment_toml, report_toml)
    files: dict[str, bytes] = {}
    for arm, entry in (section.guide_scores or {}).items() if section else []:
        kept = results.folder / guide_score_path(arm) if results.folder else None
        path = kept if kept is not None and kept.is_file() else Path(entry.scores)
        if not path.is_file():
            guide = next(
                (r.trial.guide for r in results.trials if r.trial.arm == arm and r.trial.guide), None
            )
            raise UserError(
                f"[report] guide_scores.{arm}.scores: no such file {entry.scores!r}; write it with gist-harness "
                f"eval {guide or 'GUIDE'} --suite {results.manifest.final_suite or 'SUITE'} --json {entry.scores}"
            )
        files[arm] = path.read_bytes()
    return files


def guide_score_path(arm: str) -> str:
    """Where a report keeps the copy of an arm's guide-score file, relative to the report folder."""
    return f"{INPUTS_DIR}/{GUIDE_SCORES_DIR}/{arm}.json"


def _score_tables(text: str) -> tuple[dict[int, ScoreTable], ScoreTable | None]:
    """Score tables by trial number, and the untrained student's, from the text of ``results.csv``."""
    by_trial: dict[int, list[ScoreRow]] = defaultdict(list)
    untrained: list[ScoreRow] = []
    for row in csv.DictReader(io.StringIO(text)):
        if row["main_score"] == "":
            continue  # a trial without scores (running, failed, pruned)
        score = ScoreRow(
            model=row["model"], task=row["task"], category=row["category"], split=row["split"],
            subset=row["subset"], metric=row["metric"], main_score=float(row["main_score"]),
            mteb_version=row["mteb_version"], task_revision=row["task_revision"],
            seconds=float(row["seconds"]) if row["seconds"] else None,
        )  # fmt: skip
        if row["trial"] == "":
            untrained.append(score)
        else:
            by_trial[int(row["trial"])].append(score)
    tables = {n: ScoreTable(rows=rows) for n, rows in by_trial.items()}
    return tables, ScoreTable(rows=untrained) if untrained else None


def load_report_dir(path: str | Path) -> ReportInputs:
    """Loads the inputs stored beside a report (see the module docstring).

    Raises:
        UserError: a missing or corrupt input file, named.
    """
    path = Path(path)
    folder = path / INPUTS_DIR
    manifest = read_record(folder / "manifest.json", StudyManifest)
    scores, untrained = _score_tables((path / RESULTS_CSV).read_text(encoding="utf-8"))
    trials = []
    trials_file = folder / "trials.jsonl"
    text = trials_file.read_text(encoding="utf-8") if trials_file.exists() else ""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            trial = TrialRecord.model_validate(data["trial"])
            run = RunRecord.model_validate(data["run"]) if data.get("run") else None
        except (ValueError, KeyError, TypeError) as exc:
            raise UserError(
                f"{trials_file}: line {number}: not a trial record ({type(exc).__name__})"
            ) from None
        trials.append(TrialResult(trial=trial, scores=scores.get(trial.number), run=run))
    trials.sort(key=lambda t: t.trial.number)
    report_toml = folder / REPORT_TOML
    return ReportInputs(
        results=StudyResults(
            manifest=manifest,
            trials=trials,
            untrained=untrained,
            folder=path,
            declarations=read_numbered(folder / DECLARATIONS_DIR, Declaration),
            looks=read_numbered(folder / LOOKS_DIR, Look),
            tuning=read_record(folder / TUNING_FILE, TuningRecord)
            if (folder / TUNING_FILE).exists()
            else None,
        ),
        report_toml=read_beside(report_toml) if report_toml.exists() else "",
        recovered=_recovered(folder),
    )


def _recovered(folder: Path) -> Recovered | None:
    path = folder / "recovered.json"
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None
    guide = data.get("guide_table") or {}
    figures = data.get("figures") or []
    images = {}
    for f in figures:
        image = folder / "figures" / f"{f['name']}.png"
        if not image.is_file():
            raise UserError(f"{image}: missing (named in {path.name})")
        images[f["name"]] = image.read_bytes()
    return Recovered(data.get("note", ""), guide.get("columns", []), guide.get("rows", []), figures, images)
