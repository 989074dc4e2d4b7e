"""Rebuilds the inputs of a report made before :mod:`harness.report.inputs` from its rendered files.

Those reports committed ``README.md``, ``results.csv`` and figures, but not the run folder. Scores come
back exactly from ``results.csv``; the manifest (command, commit, packages, hardware, checksums,
experiment text) and the trial records are parsed back out of the README's tables. What the README
only showed aggregated or drawn cannot come back and is kept as rendered (``recovered.json`` and
``inputs/figures/``), with a note saying so::

    files = recover_inputs(Path("reports/margin-sweep"))   # {"inputs/manifest.json": b"...", ...}
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import cast

from harness.report.inputs import RESULTS_CSV, Recovered, input_files
from harness.results import HistoryTrial, StudyManifest, StudyResults, TrialRecord, TrialResult, TrialState

KEPT_AS_IMAGES = ("loss_curves", "drop_rate", "intermediate_values")
"""Figures drawn from per-step data that the old reports did not commit."""


def _sections(text: str, level: str = "## ") -> dict[str, str]:
    out: dict[str, str] = {}
    current = ""
    for line in text.splitlines():
        if line.startswith(level):
            current = line[len(level) :].strip()
            out[current] = ""
        elif current:
            out[current] += line + "\n"
    return out


def _cells(line: str) -> list[str]:
    parts = re.split(r"(?<!\\)\|", line.strip())[1:-1]
    return [p.strip().replace("\\|", "|").removeprefix("**").removesuffix("**") for p in parts]


def _table(text: str) -> tuple[list[str], list[list[str]]]:
    """The first Markdown table in ``text``: header cells and row cells."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    if len(lines) < 2:
        return [], []
    return _cells(lines[0]), [_cells(line) for line in lines[2:]]


def _time(text: str) -> datetime | None:
    if not text or text == "—":
        return None
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)


def _code_block(text: str, after: str = "") -> str:
    start = text.index(after) if after else 0
    match = re.search(r"```[a-z]*\n(.*?)\n```", text[start:], re.S)
    return match.group(1) if match else ""


def _manifest(readme: str, history: list[HistoryTrial]) -> StudyManifest:
    repro = _sections(readme)["Reproducibility"]
    sub = _sections(repro, "### ")
    facts = dict(_table(repro)[1])
    objective, _, direction = facts.get("Objective", "").rpartition(" (")
    experiment = next((k for k in sub if k.startswith("Experiment file")), "")
    path = re.search(r"`([^`]+)`", experiment)
    return StudyManifest(
        study=facts["Study"],
        direction="minimize" if direction.startswith("minimize") else "maximize",
        objective=objective,
        baseline_arm=facts.get("Baseline arm", ""),
        student=facts.get("Student", "").replace("—", ""),
        final_suite=facts.get("Final suite", "").replace("—", ""),
        experiment_path=path.group(1) if path else "",
        experiment_toml=_code_block(sub.get(experiment, "")) + "\n",
        command=_code_block(repro, "Command:"),
        harness_version=facts.get("gist-harness", ""),
        package_versions=dict(_table(sub.get("Package versions", ""))[1]),
        hardware=dict(_table(sub.get("Hardware", ""))[1]),
        git_commit=facts.get("Git commit", ""),
        data_checksums={
            k.strip("`"): v.strip("`") for k, v in _table(sub.get("Data checksums (sha256)", ""))[1]
        },
        storage_url=facts.get("Storage", "").replace("—", ""),
        created=_time(facts.get("Created (UTC)", "")),
        history=history,
    )


def _trials(readme: str, in_domain: dict[int, list[str]], guides: dict[str, tuple[str, str]]):
    columns, rows = _table(_sections(readme)["Trials"])
    trials, history = [], []
    for cells in rows:
        row = dict(zip(columns, cells, strict=True))
        number, arm = int(row["#"]), row["Arm"]
        searched = arm == f"#{number}"
        seed = None if row["Seed"] == "—" else int(row["Seed"])
        value = None if row["Objective"] == "—" else float(row["Objective"])
        started, finished = _time(row["Started (UTC)"]), _time(row["Finished (UTC)"])
        guide, strategy = guides.get(arm, (None, None))
        state = cast(TrialState, row["State"])  # validated by pydantic below
        trials.append(TrialRecord(
            study="", number=number, state=state, arm=None if searched else arm, seed=seed,
            params={} if searched else {"arm": arm, "seed": seed}, guide=guide, strategy=strategy,
            value=value, started=started, finished=finished,
            wall_seconds=None if row["Wall (s)"] == "—" else float(row["Wall (s)"]),
            in_domain_tasks=in_domain.get(number, []), error=row.get("Note") or None,
        ))  # fmt: skip
        history.append(HistoryTrial(number=number, state=state, value=value,
                                    params={} if searched else {"arm": arm, "seed": seed},
                                    started=started, finished=finished))  # fmt: skip
    return trials, history


def _figures(readme: str, folder: Path, keep: set[str]) -> list[dict[str, str]]:
    found = []
    for title, body in _sections(_sections(readme).get("Figures", ""), "### ").items():
        match = re.search(r"!\[[^]]*\]\(figures/([^)]+)\.png\)", body)
        if not match or match.group(1) not in keep:
            continue
        if not (folder / "figures" / f"{match.group(1)}.png").is_file():
            continue
        caption = body[match.end() :].strip()
        found.append({"name": match.group(1), "title": title, "caption": caption})
    return found


def recover_inputs(
    folder: Path, *, keep: tuple[str, ...] = KEPT_AS_IMAGES, note: str = ""
) -> dict[str, bytes]:
    """The ``inputs/`` files of an older report folder, parsed from its README.md and results.csv.

    ``keep``: names of the figures to keep as images (those the recovered inputs cannot redraw).
    """
    readme = (folder / "README.md").read_text(encoding="utf-8")
    in_domain: dict[int, list[str]] = defaultdict(list)
    with (folder / RESULTS_CSV).open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if (
                row["trial"]
                and row["in_domain"] == "True"
                and row["task"] not in in_domain[int(row["trial"])]
            ):
                in_domain[int(row["trial"])].append(row["task"])
    guide_columns, guide_rows = _table(_sections(readme).get("Guide quality", ""))
    guides = {r[0]: (r[1].removesuffix(" (unused)"), r[2]) for r in guide_rows}
    trials, history = _trials(readme, in_domain, guides)
    manifest = _manifest(readme, history)
    trials = [t.model_copy(update={"study": manifest.study}) for t in trials]
    results = StudyResults(manifest=manifest, trials=[TrialResult(trial=t) for t in trials])
    figures = _figures(readme, folder, set(keep))
    images = {f["name"]: (folder / "figures" / f"{f['name']}.png").read_bytes() for f in figures}
    recovered = Recovered(note, guide_columns, guide_rows, figures, images)
    return {**input_files(results), **recovered.files()}
