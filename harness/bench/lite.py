"""Is the lite suite a valid proxy? ``gist-harness bench lite RUN_DIR... [--model M]... --out DIR``.

Scores every saved model of the given studies (``[study] save_model = true``: ``<trial>/model/``), their
untrained student, and any ``--model``, on the full suite and on the lite suite, seed by seed (every arm
early), then writes to DIR:

* ``scores.csv``: one row per model, suite, task, split and subset (``stands_for``: the full task a lite
  task was cut from). A trial's scores on either suite are read from the study when the study's final
  suite was that suite, not scored again. Written after every model, so an interrupted run resumes
  where it stopped; Ctrl-C (SIGINT) summarises the models scored so far.
* ``timings.csv``: seconds per model and suite: ``task_seconds``, the sum of the tasks' own seconds
  (without the suite's shared warm-up embedding and data loading), and ``wall_seconds``, the whole
  ``evaluate()`` call, where it ran here (``source = measured``; ``study``: scores read from the study;
  ``cut tasks measured``: ``--whole-from-lite``, both left empty).
* ``validity.json`` and ``README.md``: Spearman's ρ per task and for the category and task means, the
  share of model pairs ordered the same, and every declared contrast of each study on both suites.

A RUN_DIR may also be a report folder (``reports/<study>``, which keeps its manifest and trials but no
models): it scores nothing and adds its study's declared contrasts, computed on the scores DIR already
holds for that study's trials (keys ``<study>/trial-NNNN``). That rebuilds a folder's README after the
study's ``runs/`` folder is gone.

With ``--whole-from-lite`` only the tasks the lite suite cuts (``*-lite``) are scored on the full suite;
the tasks both suites hold whole (STS, pair classification, TrecQA) are copied from the model's lite
scores: they are the same task objects, scored identically (``tests/test_lite_validity.py`` checks this
on real models). That about halves a transformer's full-suite cost; time the full suite with
``gist-harness bench eval`` instead.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

TARGET_RHO = 0.9
TIMING_COLUMNS = ["model", "kind", "suite", "wall_seconds", "task_seconds", "source"]


@dataclass(frozen=True)
class LiteOptions:
    """What ``gist-harness bench lite`` scores and where it writes (its options, by the same names).

    Attributes:
        out: the output folder (``scores.csv``, ``timings.csv``, ``validity.json``, ``README.md``).
        runs: study folders (``runs/<study>``) or report folders (``reports/<study>``).
        models: further model names or folders to score (``--model``).
    """

    out: Path
    runs: list[Path] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    full: str = "offline-all"
    lite: str = "offline-lite"
    data_dir: Path | None = None
    whole_from_lite: bool = False
    batch_size: int = 32
    device: str = "cpu"
    progress: bool = True


def bench_lite(opts: LiteOptions) -> Any:
    """Scores what ``opts.out`` lacks, then writes the validity of the lite suite there (README, JSON).

    Ctrl-C while scoring summarises the models scored so far (they are on disk; a rerun continues).

    Returns:
        The :class:`~harness.bench.lite_validity.Validity` that ``README.md`` reports.
    """
    _check_suites(opts)
    studies, runs = _studies(opts.runs)
    jobs = _jobs(runs, opts.models, opts.full, opts.lite)
    opts.out.mkdir(parents=True, exist_ok=True)
    try:
        scores, timings = _score(opts, jobs, *_written(opts.out))
    except KeyboardInterrupt:  # everything scored so far is on disk: summarise it
        print("interrupted: summarising the models scored so far (rerun to continue)", file=sys.stderr)
        scores, timings = _written(opts.out)
    return _summarise(opts, studies, scores, timings)


def summary(result: Any, out: Path) -> str:
    """The line printed after a run: ρ and pair agreement of the mean over categories."""
    cat = result.aggregates.set_index("aggregate").loc["mean over categories"]
    return (
        f"{len(result.models)} models: rho {cat.rho:.3f} on the mean over categories, "
        f"{cat.pair_agreement:.1%} of model pairs ordered the same; wrote {out}/README.md"
    )


def _check_suites(opts: LiteOptions) -> None:
    """Fails first on an unknown suite, a bad data folder, or ``--whole-from-lite`` with no shared task."""
    from harness.errors import UserError
    from harness.evaluate import SUITES, suite_tasks

    for suite in (opts.full, opts.lite):
        suite_tasks(SUITES.get(suite), opts.data_dir)
    full, lite = SUITES.get(opts.full), SUITES.get(opts.lite)
    if opts.whole_from_lite and not set(full.tasks) & set(lite.tasks):
        raise UserError(f"--whole-from-lite: {opts.full} and {opts.lite} share no whole task")


def _studies(paths: list[Path]) -> tuple[list[Any], list[Any]]:
    """Every given study (from its runs folder or its report folder), and those from a runs folder."""
    from harness.report.inputs import load_report_dir
    from harness.results import load_study_dir

    report_only = [_report_only(p) for p in paths]
    studies = [
        load_report_dir(p).results if r else load_study_dir(p)
        for p, r in zip(paths, report_only, strict=True)
    ]
    return studies, [s for s, r in zip(studies, report_only, strict=True) if not r]


def _written(out: Path) -> tuple[Any, Any]:
    """The scores and timings already in ``out`` (empty tables for a new folder)."""
    import pandas as pd

    from harness.bench.lite_validity import SCORE_COLUMNS

    return tuple(
        pd.read_csv(path) if path.exists() else pd.DataFrame(columns=columns)
        for path, columns in ((out / "scores.csv", SCORE_COLUMNS), (out / "timings.csv", TIMING_COLUMNS))
    )


@dataclass
class Job:
    """One model to score: its key in the tables, what to load, and scores a study already holds."""

    key: str
    load: str
    kind: str
    full: Any = None  # the study's ScoreTable of the full suite, when it scored that suite
    lite: Any = None  # the study's ScoreTable of the lite suite, when it scored that suite


def _report_only(path: Path) -> bool:
    """A report folder (``inputs/manifest.json``, no models) rather than a study's ``runs/`` folder."""
    from harness.report.inputs import is_report_dir

    return not (path / "manifest.json").exists() and is_report_dir(path)


def _held(table: Any, final: str, suite: str) -> Any:
    """A study's score table for ``suite`` when the study's final suite was that suite, else None."""
    return table if final == suite and table else None


def _jobs(studies: list[Any], models: list[str], full_suite: str, lite_suite: str) -> list[Job]:
    from harness.errors import UserError

    jobs: dict[str, Job] = {}
    for study in studies:
        name, student = study.manifest.study, study.manifest.student
        final = study.manifest.final_suite
        saved = [t for t in study.trials if t.trial.state == "COMPLETE" and (t.folder / "model").is_dir()]
        saved.sort(key=lambda t: (t.trial.seed or 0, t.trial.number))  # seed by seed: every arm early
        if not saved:
            raise UserError(f"{study.folder}: no saved model (run the study with [study] save_model = true)")
        if student:
            key = f"untrained:{student}"
            full, lite = _held(study.untrained, final, full_suite), _held(study.untrained, final, lite_suite)
            jobs.setdefault(key, Job(key, student, student, full, lite))
        for t in saved:
            key = f"{name}/{t.folder.name}"
            full, lite = _held(t.scores, final, full_suite), _held(t.scores, final, lite_suite)
            jobs[key] = Job(key, str(t.folder / "model"), student, full, lite)
    for model in models:
        jobs.setdefault(model, Job(model, model, model))
    return list(jobs.values())


def _stands_for(task: str) -> str:
    from harness.tasks import TASKS

    return (TASKS.get(task).downsampled_from if task in TASKS else None) or task


def _rows(table: Any, key: str, suite: str) -> list[dict[str, Any]]:
    return [
        {
            "model": key,
            "suite": suite,
            "task": r["task"],
            "stands_for": _stands_for(r["task"]),
            "category": r["category"],
            "split": r["split"],
            "subset": r["subset"],
            "main_score": r["main_score"],
            "seconds": r["seconds"],
        }
        for r in table
    ]


def _write_csv(frame: Any, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    frame.to_csv(tmp, index=False)
    os.replace(tmp, path)


def _score(opts: LiteOptions, jobs: list[Job], scores: Any, timings: Any) -> tuple[Any, Any]:
    """Scores every job on both suites (what ``scores`` lacks), writing both CSVs after each suite."""
    import pandas as pd
    from tqdm.auto import tqdm

    from harness.bench.lite_validity import SCORE_COLUMNS

    order = (opts.lite, opts.full) if opts.whole_from_lite else (opts.full, opts.lite)
    done = set(zip(scores.model, scores.suite, strict=True))
    for job in tqdm(jobs, desc="models", unit="model", disable=not opts.progress, file=sys.stderr):
        model = _loader(job.load, opts.device)
        for suite in order:
            if (job.key, suite) in done:
                continue
            rows, wall, source = _suite_rows(opts, job, suite, model, scores)
            scores = pd.concat([scores, pd.DataFrame(rows, columns=SCORE_COLUMNS)], ignore_index=True)
            timing = _timing(job, suite, rows, wall, source)
            timings = pd.concat([timings, pd.DataFrame([timing])], ignore_index=True)
            _write_csv(scores, opts.out / "scores.csv")
            _write_csv(timings, opts.out / "timings.csv")
            done.add((job.key, suite))
    return scores, timings


def _loader(load: str, device: str) -> Callable[[], Any]:
    """Loads the model ``load`` names on the first call only (a job whose scores are all held loads none)."""

    @functools.cache
    def model() -> Any:
        from harness.models import load_model

        return load_model(load, device=device)

    return model


def _suite_rows(
    opts: LiteOptions, job: Job, suite: str, model: Callable[[], Any], scores: Any
) -> tuple[list[dict[str, Any]], float | None, str]:
    """``job``'s rows on ``suite``, the seconds of the ``evaluate()`` call (None: not timed), and the source."""
    from harness.evaluate import evaluate

    held = job.full if suite == opts.full else job.lite
    if held is not None:
        return _rows([r.model_dump() for r in held.rows], job.key, suite), None, "study"
    if suite == opts.full and opts.whole_from_lite:
        return _cut_rows(opts, job, model(), scores), None, "cut tasks measured"
    loaded = model()
    start = time.perf_counter()
    table = evaluate(
        loaded, suite, data_dir=opts.data_dir, model_name=job.key, progress=False, batch_size=opts.batch_size
    )
    wall = round(time.perf_counter() - start, 2)
    return _rows(table.to_dict(orient="records"), job.key, suite), wall, "measured"


def _cut_rows(opts: LiteOptions, job: Job, model: Any, scores: Any) -> list[dict[str, Any]]:
    """The full suite's rows from its cut tasks, scored here, and the whole tasks, copied from the lite rows."""
    from harness.evaluate import SUITES, evaluate

    full, lite = SUITES.get(opts.full), SUITES.get(opts.lite)
    cut = replace(full, tasks=tuple(t for t in full.tasks if t not in lite.tasks))
    whole = {t.name for t in full.tasks if t in lite.tasks}
    table = evaluate(
        model, cut, data_dir=opts.data_dir, model_name=job.key, progress=False, batch_size=opts.batch_size
    )
    mine = (scores.model == job.key) & (scores.suite == opts.lite) & scores.task.isin(whole)
    copied = scores[mine].assign(suite=opts.full).to_dict(orient="records")
    return _rows(table.to_dict(orient="records"), job.key, opts.full) + copied


def _timing(
    job: Job, suite: str, rows: list[dict[str, Any]], wall: float | None, source: str
) -> dict[str, Any]:
    return {
        "model": job.key,
        "kind": job.kind,
        "suite": suite,
        "wall_seconds": wall,
        # a cut-only run's task seconds miss the cut tasks' warm-up embedding: not comparable
        "task_seconds": None
        if source == "cut tasks measured"
        else round(sum(r["seconds"] or 0 for r in rows), 2),
        "source": source,
    }


def _command(opts: LiteOptions) -> str:
    """The command line that writes this folder (paths as given)."""
    parts = ["gist-harness", "bench", "lite", *map(str, opts.runs)]
    parts += [x for m in opts.models for x in ("--model", m)]
    parts += ["--out", str(opts.out)]
    parts += ["--full", opts.full] if opts.full != "offline-all" else []
    parts += ["--lite", opts.lite] if opts.lite != "offline-lite" else []
    parts += ["--whole-from-lite"] if opts.whole_from_lite else []
    return shlex.join(parts)


def _summarise(opts: LiteOptions, studies: list[Any], scores: Any, timings: Any) -> Any:
    """Writes ``README.md`` and ``validity.json`` from the scores; the validity they report."""
    from harness.bench.lite_validity import markdown, validity
    from harness.errors import UserError

    result = validity(scores, opts.full, opts.lite)
    if len(result.models) < 3:
        raise UserError(
            f"{opts.out}: {len(result.models)} model(s) scored on both suites; ρ needs at least 3"
        )
    agreements = _agreements(studies, scores, opts.full, opts.lite)
    meta = {
        "command": _command(opts),
        "written": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "full": opts.full,
        "lite": opts.lite,
        "target_rho": TARGET_RHO,
    }
    (opts.out / "README.md").write_text(markdown(result, agreements, timings, meta), encoding="utf-8")
    payload = {
        **meta,
        "models": result.models,
        "aggregates": result.aggregates.to_dict(orient="records"),
        "per_task": result.per_task.to_dict(orient="records"),
        "contrasts": {k: v.to_dict(orient="records") for k, v in agreements.items()},
    }
    (opts.out / "validity.json").write_text(
        json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8"
    )
    return result


def _agreements(studies: list[Any], scores: Any, full: str, lite: str) -> dict[str, Any]:
    """Per study: its declared contrasts on both suites (``contrast_agreement``), from ``scores``."""
    from harness.bench.lite_validity import contrast_agreement, with_scores

    lite_rows = scores.loc[scores.suite == lite, ["task", "stands_for"]]
    renamed = {stands: task for task, stands in lite_rows.itertuples(index=False)}
    by_model = dict(tuple(scores.groupby(["model", "suite"])))
    agreements = {}
    for study in studies:
        tables = _trial_tables(study, by_model, (full, lite))
        agreements[study.manifest.study] = contrast_agreement(
            with_scores(study, tables[full], None),
            with_scores(study, tables[lite], None, renamed),
        )
    return agreements


def _trial_tables(study: Any, by_model: dict[Any, Any], suites: tuple[str, str]) -> dict[str, dict[int, Any]]:
    """Per suite, the score table of each of the study's trials that ``by_model`` holds, by trial number."""
    from harness.bench.lite_validity import table_of
    from harness.results import trial_dirname

    tables: dict[str, dict[int, Any]] = {suite: {} for suite in suites}
    for t in study.trials:
        for suite in tables:
            rows = by_model.get((f"{study.manifest.study}/{trial_dirname(t.trial.number)}", suite))
            if rows is not None:
                tables[suite][t.trial.number] = table_of(rows)
    return tables
