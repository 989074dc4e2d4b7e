"""``gist-harness run EXPERIMENT.toml``: create or resume a study, run its trials, write its report."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from harness.config import Experiment, load_experiment
from harness.results import StudyManifest


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="create or resume a study and run it to the end, then write its report",
        description=(
            "Create the study of EXPERIMENT (or resume it: finished trials are kept, a trial whose "
            "worker died is failed and run again), run every trial, then write reports/<study>/."
        ),
    )
    add_common_arguments(parser)
    parser.add_argument(
        "--reports-dir", type=Path, default=Path("reports"), help="parent of reports/<study>/"
    )
    parser.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    parser.set_defaults(func=run)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", type=Path, metavar="EXPERIMENT.toml", help="experiment file")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="parent of runs/<study>/")
    parser.add_argument(
        "--storage",
        help="Optuna storage: SQLAlchemy URL (postgresql+psycopg://user@host/db) or journal:PATH "
        "(default: the experiment's, else SQLite runs/<study>/optuna.db)",
    )
    parser.add_argument(
        "--data-dir", help="offline data folder (default: experiment's data_dir, GIST_HARNESS_DATA)"
    )
    parser.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    experiment = load_experiment(args.experiment)
    run_experiment(experiment, args, worker=False)
    if not args.no_report and experiment.study.report:
        folder = write_report(args.runs_dir / experiment.study.name, args.reports_dir / experiment.study.name)
        print(f"report: {folder / 'index.html'}")
    return 0


def run_experiment(experiment: Experiment, args: argparse.Namespace, *, worker: bool) -> None:
    """Builds the real pipeline and runs (or joins) the study; shared with ``worker``."""
    import torch

    from harness.study import provenance, run_study
    from harness.study.pipeline import RealPipeline

    # At temperature 0.01 most softmax gradients are denormal floats (~e^-100); on a CPU they make
    # the backward pass ~2.5x slower (measured by bench step) for no change in what is learnt.
    torch.set_flush_denormal(True)

    pipeline = RealPipeline(
        experiment, data_dir=args.data_dir, device=args.device, progress=not args.no_progress
    )
    manifest = StudyManifest(
        study=experiment.study.name,
        experiment_path=str(args.experiment),
        experiment_toml=Path(args.experiment).read_text(encoding="utf-8"),
        command=shlex.join(["gist-harness", *sys.argv[1:]]),
        data_checksums=provenance.data_checksums(experiment, args.data_dir),
    )
    run_study(
        experiment,
        pipeline,
        runs_dir=args.runs_dir,
        storage=args.storage,
        worker=worker,
        progress=not args.no_progress,
        wait_s=getattr(args, "wait", 60.0),
        manifest=manifest,
    )


def write_report(study_dir: Path, out_dir: Path) -> Path:
    """Renders the study's report into ``out_dir`` (as ``gist-harness report`` does)."""
    from harness.cli.report_cmd import read_findings, write_files
    from harness.report import build_report, load_study_dir, render_files

    write_files(out_dir, render_files(build_report(load_study_dir(study_dir), read_findings(out_dir))))
    return out_dir
