"""The trials table, the partial-study notice and the reproducibility section."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from harness.report.load import arm_of
from harness.report.tables import Cell, Table
from harness.results import HistoryTrial, StudyResults

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


def code_label(code) -> str:
    """``abcdef1234`` or ``abcdef1234+diff 1a2b3c4d`` (dirty: the first 8 hex of the diff's sha256); "—"."""
    if code is None or not code.git_commit:
        return "—"
    return code.git_commit[:10] + (f"+diff {code.diff_sha256[:8]}" if code.dirty else "")


def trials_table(results: StudyResults) -> Table:
    """Every trial, whatever its state, in trial order; trials only in the Optuna history are listed too.

    A trial failed by hand and set aside may have lost its record; it still shows, with its history state.
    """
    rows = []
    recorded = {r.trial.number for r in results.trials}
    orphans = [h for h in results.manifest.history if h.number not in recorded]
    entries = [(r.trial.number, r) for r in results.trials] + [(h.number, h) for h in orphans]
    for _, item in sorted(entries, key=lambda e: e[0]):
        if isinstance(item, HistoryTrial):
            rows.append(_history_row(item))
            continue
        t = item.trial
        rows.append([
            Cell(str(t.number)), Cell(arm_of(item), numeric=False),
            Cell("—" if t.seed is None else str(t.seed)), Cell(t.state, numeric=False, kind=f"state-{t.state}"),
            Cell("—" if t.value is None else f"{t.value:.4f}"),
            Cell("—" if t.wall_seconds is None else f"{t.wall_seconds:.0f}"),
            Cell(_time(t.started)), Cell(_time(t.finished)), Cell(_trial_code(t, results), numeric=False),
            Cell(t.error or "", numeric=False),
        ])  # fmt: skip
    columns = ["#", "Arm", "Seed", "State", "Objective", "Wall (s)", "Started (UTC)", "Finished (UTC)",
               "Code", "Note"]  # fmt: skip
    notes = ["Code: the commit the trial ran from, with the first 8 hex digits of the sha256 of its "
             "uncommitted diff when the checkout was dirty, and any package whose version differs from the "
             "study's (Reproducibility); — where the trial did not record it."]  # fmt: skip
    return Table("trials", "Trials", columns, rows, notes)


def _trial_code(trial, results: StudyResults) -> str:
    """The trial's code label, plus the packages whose versions differ from the study's manifest."""
    label = code_label(trial.provenance)
    if trial.provenance is None:
        return label
    study = results.manifest.package_versions
    changed = {k: v for k, v in trial.provenance.package_versions.items() if k in study and study[k] != v}
    return label + "".join(f"; {k} {v}" for k, v in sorted(changed.items()))


def _history_row(h: HistoryTrial) -> list[Cell]:
    seconds = (h.finished - h.started).total_seconds() if h.started and h.finished else None
    arm = h.params.get("arm")
    return [
        Cell(str(h.number)), Cell(str(arm) if arm else f"#{h.number}", numeric=False),
        Cell(str(h.params.get("seed", "—"))), Cell(h.state, numeric=False, kind=f"state-{h.state}"),
        Cell("—" if h.value is None else f"{h.value:.4f}"), Cell("—" if seconds is None else f"{seconds:.0f}"),
        Cell(_time(h.started)), Cell(_time(h.finished)), Cell("—", numeric=False),
        Cell("in the Optuna history only: no trial record (set aside)", numeric=False),
    ]  # fmt: skip


def status_line(results: StudyResults) -> str | None:
    """A notice for partial studies (any trial not COMPLETE), or None when every trial completed."""
    counts = Counter(r.trial.state for r in results.trials)
    if set(counts) <= {"COMPLETE", "PRUNED"}:
        return None  # pruning is how a search ends trials early: listed under Trials, not a partial study
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
    sessions: Table | None = None
    """Every run, resume or worker process of the study (commit, dirty diff, package changes)."""


def wall_time(results: StudyResults) -> str:
    """Study creation to the last trial's end, and the trials' own summed wall time ("—" if unknown).

    A study run in several sessions (resumed, or continued ``--from-report``) counts each session from
    its start to the end of the last trial that started in it, so the time between sessions is not
    counted.
    """
    created = results.manifest.created
    finished = [r.trial.finished for r in results.trials if r.trial.finished]
    if created is None or not finished:
        return "—"
    summed = sum(r.trial.wall_seconds or 0.0 for r in results.trials)
    starts = sorted(_naive_utc(s.started) for s in results.manifest.sessions if s.started is not None)
    if len(starts) < 2:
        elapsed = (_naive_utc(max(finished)) - _naive_utc(created)).total_seconds()
        return f"{_duration(elapsed)} from creation to the last trial's end ({_duration(summed)} in trials)"
    spans = _session_spans(results, starts)
    elapsed = sum((end - start).total_seconds() for start, end in spans)
    return (
        f"{_duration(elapsed)} in {len(spans)} sessions, each from its start to its last trial's end "
        f"({_duration(summed)} in trials)"
    )


def _session_spans(results: StudyResults, starts: list) -> list[tuple]:
    """Disjoint (start, end) spans: each session until the last end of a trial started in it, merged."""
    ends = list(starts)
    for r in results.trials:
        if r.trial.started is None or r.trial.finished is None:
            continue
        begun = _naive_utc(r.trial.started)
        i = max((k for k, s in enumerate(starts) if s <= begun), default=0)
        ends[i] = max(ends[i], _naive_utc(r.trial.finished))
    spans: list[list] = []
    for start, end in zip(starts, ends, strict=True):
        if spans and start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    return [(a, b) for a, b in spans if b > a]


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
        sessions=_sessions(results),
    )


def _sessions(results: StudyResults) -> Table | None:
    sessions = results.manifest.sessions
    if not sessions:
        return None
    first = sessions[0].package_versions
    machines = any(code.hardware for code in sessions)  # the column only where some session kept it
    rows = []
    for i, code in enumerate(sessions):
        changed = {k: v for k, v in code.package_versions.items() if first.get(k) != v}
        rows.append([
            Cell(str(i + 1)), Cell(_time(code.started)), Cell(code_label(code), numeric=False),
            Cell(", ".join(f"{k} {v}" for k, v in sorted(changed.items())) or "as session 1", numeric=False),
            *([Cell(machine_label(code.hardware), numeric=False)] if machines else []),
            Cell(redact_url(code.command), numeric=False),
        ])  # fmt: skip
    columns = ["#", "Started (UTC)", "Code", "Packages", *(["Machine"] if machines else []), "Command"]
    return Table("sessions", "Sessions (run, resume, workers)", columns, rows)


def machine_label(hardware: dict[str, str]) -> str:
    """``AMD EPYC 7B13, 2 CPUs, 23.5 GiB`` (and the GPU where there is one); "not recorded" for a session
    written before sessions kept their machine. Timings of sessions on different machines do not compare."""
    if not hardware:
        return "not recorded"
    parts = [hardware.get("cpu_model") or hardware.get("processor", "?"), f"{hardware.get('cpus', '?')} CPUs"]
    if hardware.get("memory_gb"):
        parts.append(f"{hardware['memory_gb']} GiB")
    if hardware.get("gpu"):
        parts.append(hardware["gpu"])
    return ", ".join(parts)
