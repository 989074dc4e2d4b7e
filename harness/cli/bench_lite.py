"""``gist-harness bench lite RUN_DIR... [--model M]... --out DIR``: is the lite suite a valid proxy?

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

import argparse
import json
import os
import shlex
import sys
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

TARGET_RHO = 0.9
TIMING_COLUMNS = ["model", "kind", "suite", "wall_seconds", "task_seconds", "source"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lite",
        help="validity of the lite suite: rank agreement with the full suite over saved models",
        description="Score the saved models of RUN_DIR studies (and --model) on both suites; write "
        "scores, timings, Spearman's rho per task and per aggregate, and contrast agreement to --out.",
    )
    parser.add_argument(
        "runs",
        nargs="*",
        type=Path,
        metavar="RUN_DIR",
        help="study folders (runs/<study>) whose saved models to score, or report folders "
        "(reports/<study>) whose declared contrasts to compute from DIR's scores",
    )
    parser.add_argument(
        "--model", action="append", default=[], help="also score this model name or folder (repeatable)"
    )
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    parser.add_argument("--full", default="offline-all", help="full suite (default: offline-all)")
    parser.add_argument("--lite", default="offline-lite", help="lite suite (default: offline-lite)")
    parser.add_argument(
        "--data-dir", type=Path, metavar="DIR", help="data folder (default: $GIST_HARNESS_DATA)"
    )
    parser.add_argument(
        "--whole-from-lite",
        action="store_true",
        help="on the full suite score only the tasks the lite suite cuts; copy the shared whole tasks "
        "from the model's lite scores",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


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


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from harness.errors import UserError
    from harness.evaluate import SUITES, suite_tasks
    from harness.report.inputs import load_report_dir
    from harness.report.lite_validity import SCORE_COLUMNS
    from harness.results import load_study_dir

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    for suite in (args.full, args.lite):
        suite_tasks(SUITES.get(suite), args.data_dir)  # unknown suite or bad data folder: fail first
    full, lite = SUITES.get(args.full), SUITES.get(args.lite)
    if args.whole_from_lite and not set(full.tasks) & set(lite.tasks):
        raise UserError(f"--whole-from-lite: {args.full} and {args.lite} share no whole task")
    report_only = [_report_only(p) for p in args.runs]
    studies = [
        load_report_dir(p).results if r else load_study_dir(p)
        for p, r in zip(args.runs, report_only, strict=True)
    ]
    runs = [s for s, r in zip(studies, report_only, strict=True) if not r]
    jobs = _jobs(runs, args.model, args.full, args.lite)
    args.out.mkdir(parents=True, exist_ok=True)

    def written() -> tuple[Any, Any]:
        return tuple(
            pd.read_csv(path) if path.exists() else pd.DataFrame(columns=columns)
            for path, columns in (
                (args.out / "scores.csv", SCORE_COLUMNS),
                (args.out / "timings.csv", TIMING_COLUMNS),
            )
        )

    try:
        scores, timings = _score(args, jobs, *written())
    except KeyboardInterrupt:  # everything scored so far is on disk: summarise it
        print("interrupted: summarising the models scored so far (rerun to continue)", file=sys.stderr)
        scores, timings = written()
    return _summarise(args, studies, scores, timings)


def _score(args: argparse.Namespace, jobs: list[Job], scores: Any, timings: Any) -> tuple[Any, Any]:
    """Scores every job on both suites (what ``scores`` lacks), writing both CSVs after each suite."""
    import pandas as pd
    from tqdm.auto import tqdm

    from harness.evaluate import SUITES, evaluate
    from harness.models import load_model
    from harness.report.lite_validity import SCORE_COLUMNS

    full, lite = SUITES.get(args.full), SUITES.get(args.lite)
    cut = replace(full, tasks=tuple(t for t in full.tasks if t not in lite.tasks))
    whole = {t.name for t in full.tasks if t in lite.tasks}
    order = (args.lite, args.full) if args.whole_from_lite else (args.full, args.lite)
    done = set(zip(scores.model, scores.suite, strict=True))
    for job in tqdm(jobs, desc="models", unit="model", disable=args.no_progress, file=sys.stderr):
        model = None
        for suite in order:
            if (job.key, suite) in done:
                continue
            held = job.full if suite == args.full else job.lite
            if held is not None:
                rows = _rows([r.model_dump() for r in held.rows], job.key, suite)
                wall, source = None, "study"
            elif suite == args.full and args.whole_from_lite:
                model = model or load_model(job.load, device=args.device)
                table = evaluate(
                    model, cut, data_dir=args.data_dir, model_name=job.key, progress=False,
                    batch_size=args.batch_size,
                )  # fmt: skip
                mine = (scores.model == job.key) & (scores.suite == args.lite) & scores.task.isin(whole)
                copied = scores[mine].assign(suite=suite).to_dict(orient="records")
                rows = _rows(table.to_dict(orient="records"), job.key, suite) + copied
                wall, source = None, "cut tasks measured"
            else:
                model = model or load_model(job.load, device=args.device)
                start = time.perf_counter()
                table = evaluate(
                    model, suite, data_dir=args.data_dir, model_name=job.key, progress=False,
                    batch_size=args.batch_size,
                )  # fmt: skip
                wall, source = round(time.perf_counter() - start, 2), "measured"
                rows = _rows(table.to_dict(orient="records"), job.key, suite)
            scores = pd.concat([scores, pd.DataFrame(rows, columns=SCORE_COLUMNS)], ignore_index=True)
            timing = {
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
            timings = pd.concat([timings, pd.DataFrame([timing])], ignore_index=True)
            _write_csv(scores, args.out / "scores.csv")
            _write_csv(timings, args.out / "timings.csv")
            done.add((job.key, suite))
    return scores, timings


def _command(args: argparse.Namespace) -> str:
    """The command line that writes this folder (paths as given)."""
    parts = ["gist-harness", "bench", "lite", *map(str, args.runs)]
    parts += [x for m in args.model for x in ("--model", m)]
    parts += ["--out", str(args.out)]
    parts += ["--full", args.full] if args.full != "offline-all" else []
    parts += ["--lite", args.lite] if args.lite != "offline-lite" else []
    parts += ["--whole-from-lite"] if args.whole_from_lite else []
    return shlex.join(parts)


def _summarise(args: argparse.Namespace, studies: list[Any], scores: Any, timings: Any) -> int:
    from harness.errors import UserError
    from harness.report.lite_validity import contrast_agreement, markdown, table_of, validity, with_scores
    from harness.results import trial_dirname

    result = validity(scores, args.full, args.lite)
    if len(result.models) < 3:
        raise UserError(
            f"{args.out}: {len(result.models)} model(s) scored on both suites; ρ needs at least 3"
        )
    lite_rows = scores.loc[scores.suite == args.lite, ["task", "stands_for"]]
    renamed = {stands: task for task, stands in lite_rows.itertuples(index=False)}
    by_model = dict(tuple(scores.groupby(["model", "suite"])))
    agreements = {}
    for study in studies:
        name = study.manifest.study
        tables: dict[str, dict[int, Any]] = {args.full: {}, args.lite: {}}
        for t in study.trials:
            for suite in tables:
                rows = by_model.get((f"{name}/{trial_dirname(t.trial.number)}", suite))
                if rows is not None:
                    tables[suite][t.trial.number] = table_of(rows)
        agreements[name] = contrast_agreement(
            with_scores(study, tables[args.full], None),
            with_scores(study, tables[args.lite], None, renamed),
        )
    meta = {
        "command": _command(args),
        "written": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "full": args.full,
        "lite": args.lite,
        "target_rho": TARGET_RHO,
    }
    (args.out / "README.md").write_text(markdown(result, agreements, timings, meta), encoding="utf-8")
    payload = {
        **meta,
        "models": result.models,
        "aggregates": result.aggregates.to_dict(orient="records"),
        "per_task": result.per_task.to_dict(orient="records"),
        "contrasts": {k: v.to_dict(orient="records") for k, v in agreements.items()},
    }
    (args.out / "validity.json").write_text(
        json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8"
    )
    cat = result.aggregates.set_index("aggregate").loc["mean over categories"]
    print(
        f"{len(result.models)} models: rho {cat.rho:.3f} on the mean over categories, "
        f"{cat.pair_agreement:.1%} of model pairs ordered the same; wrote {args.out}/README.md"
    )
    return 0
