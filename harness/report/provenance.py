"""The trials table, the partial-study notice and the reproducibility section."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from harness.report.load import arm_of
from harness.report.tables import Cell, Table
from harness.results import StudyResults

_STATE_WORDS = {
    "COMPLETE": "complete",
    "RUNNING": "running",
    "FAIL": "failed",
    "PRUNED": "pruned",
    "WAITING": "waiting",
}


def redact_url(url: str) -> str:
    """Hides the password of a storage URL: ``postgresql://u:secret@h/db`` -> ``postgresql://u:***@h/db``."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def _time(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "—"


def trials_table(results: StudyResults) -> Table:
    """Every trial, whatever its state, in trial order."""
    rows = []
    for r in results.trials:
        t = r.trial
        rows.append([
            Cell(str(t.number)), Cell(arm_of(r), numeric=False),
            Cell("—" if t.seed is None else str(t.seed)), Cell(t.state, numeric=False, kind=f"state-{t.state}"),
            Cell("—" if t.value is None else f"{t.value:.4f}"),
            Cell("—" if t.wall_seconds is None else f"{t.wall_seconds:.0f}"),
            Cell(_time(t.started)), Cell(_time(t.finished)), Cell(t.error or "", numeric=False),
        ])  # fmt: skip
    columns = [
        "#",
        "Arm",
        "Seed",
        "State",
        "Objective",
        "Wall (s)",
        "Started (UTC)",
        "Finished (UTC)",
        "Note",
    ]
    return Table("trials", "Trials", columns, rows)


def status_line(results: StudyResults) -> str | None:
    """A notice for partial studies (any trial not COMPLETE), or None when every trial completed."""
    counts = Counter(r.trial.state for r in results.trials)
    if set(counts) <= {"COMPLETE"}:
        return None
    parts = ", ".join(f"{n} {_STATE_WORDS[state]}" for state, n in sorted(counts.items()))
    return (
        f"Partial study: {parts} of {len(results.trials)} trials. "
        "Statistics use COMPLETE trials only; the others are listed under Trials."
    )


@dataclass
class Reproducibility:
    """What the reproducibility section shows (plain key/value lists and the experiment text)."""

    facts: list[tuple[str, str]]
    packages: list[tuple[str, str]]
    hardware: list[tuple[str, str]]
    checksums: list[tuple[str, str]]
    experiment_path: str
    experiment_toml: str
    command: str


def wall_time(results: StudyResults) -> str:
    """Study creation to the last trial's end, and the trials' own summed wall time ("—" if unknown)."""
    created = results.manifest.created
    finished = [r.trial.finished for r in results.trials if r.trial.finished]
    if created is None or not finished:
        return "—"
    elapsed = (_naive_utc(max(finished)) - _naive_utc(created)).total_seconds()
    summed = sum(r.trial.wall_seconds or 0.0 for r in results.trials)
    return f"{_duration(elapsed)} from creation to the last trial's end ({_duration(summed)} in trials)"


def _naive_utc(value):
    from datetime import timezone

    return value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min {secs:02d} s" if hours else f"{minutes} min {secs:02d} s"


def reproducibility(results: StudyResults) -> Reproducibility:
    m = results.manifest
    facts = [
        ("Study", m.study),
        ("Objective", f"{m.objective or '—'} ({m.direction})"),
        ("Baseline arm", m.baseline_arm),
        ("Student", m.student or "—"),
        ("Final suite", m.final_suite or "—"),
        ("Git commit", m.git_commit or "—"),
        ("gist-harness", m.harness_version or "—"),
        ("Storage", redact_url(m.storage_url) if m.storage_url else "—"),
        ("Created (UTC)", _time(m.created)),
        ("Wall time", wall_time(results)),
    ]
    return Reproducibility(
        facts=facts,
        packages=sorted(m.package_versions.items()),
        hardware=list(m.hardware.items()),
        checksums=sorted(m.data_checksums.items()),
        experiment_path=m.experiment_path,
        experiment_toml=m.experiment_toml,
        command=redact_url(m.command),
    )
