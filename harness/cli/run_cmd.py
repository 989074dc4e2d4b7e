"""``gist-harness run EXPERIMENT.toml``: create or resume a study, run its trials, write its report.

With ``--nproc N`` the command starts N copies of itself with ``torch.distributed.run`` (one per
device; see ``harness.study.ranks``): rank 0 runs the study and writes the report, every rank trains.
Started by ``torchrun`` directly (several machines), each process is one rank of the same scheme.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from harness.config import Experiment, load_experiment
from harness.errors import UserError
from harness.results import StudyManifest


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="create or resume a study and run it to the end, then write its report",
        description=(
            "Create the study of EXPERIMENT (or resume it: finished trials are kept, a trial whose "
            "worker died is failed and run again), run every trial, then write its report (runs/<study>/report/; --publish: reports/<study>/)."
        ),
    )
    add_common_arguments(parser)
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--reports-dir",
        type=Path,
        help="write the report to REPORTS_DIR/<study>/ (default: runs/<study>/report/, inside the git-ignored "
        "run folder, so a run leaves the checkout clean)",
    )
    where.add_argument(
        "--publish",
        action="store_true",
        help="write the report to reports/<study>/, the committed reports (its FINDINGS.md is kept)",
    )
    parser.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    parser.add_argument(
        "--from-report",
        type=Path,
        metavar="REPORT_DIR",
        help="start runs/<study>/ from a committed report's inputs (or an interim record: gist-harness "
        "interim) when the run folder is gone: its "
        "trials, declarations and looks are kept (same numbers, no models) and only what the report "
        "lacks runs, e.g. seeds added to EXPERIMENT since; refused if the experiment would train a kept "
        "trial differently",
    )
    parser.add_argument(
        "--interim",
        type=Path,
        metavar="DIR",
        help="after every finished trial (tuning trials too) write the study's interim record to "
        "DIR/<study>/, as gist-harness interim does (no look): a stint cut off mid-study leaves its latest "
        "record there, to commit and continue from with --from-report",
    )
    parser.add_argument(
        "--rerun-changed",
        action="store_true",
        help="with --from-report: run again (instead of refusing) the kept trials the experiment would "
        "train or score differently (another [train] setting for their arm, another [final] suite); they "
        "stay in the record as FAIL with the reason, and a changed final suite is a new declaration",
    )
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
    parser.add_argument(
        "--nproc",
        type=int,
        default=1,
        metavar="N",
        help="train each trial on N processes (one per GPU, or N CPU processes with gloo), started with "
        "torch.distributed.run; negatives are gathered across them (default: 1)",
    )
    parser.add_argument(
        "--dist-timeout-min",
        type=float,
        default=120.0,
        metavar="MIN",
        help="with several processes: how long a rank waits in a collective while rank 0 evaluates "
        "(default: 120)",
    )


def wants_launch(args: argparse.Namespace) -> bool:
    """``--nproc N`` > 1 and not already one of the launched processes."""
    from harness.study.ranks import launched

    if args.nproc < 1:
        raise UserError(f"--nproc must be at least 1, got {args.nproc}")
    return args.nproc > 1 and not launched()


def launch(nproc: int) -> int:
    """Runs this same command line on ``nproc`` local processes with ``torch.distributed.run``."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main as torchrun

    try:
        torchrun(
            ["--standalone", f"--nproc_per_node={nproc}", "--module", "harness", *child_argv(sys.argv[1:])]
        )
    except ChildFailedError as exc:
        failures = ", ".join(f"rank {r} (exit {f.exitcode})" for r, f in sorted(exc.failures.items()))
        raise UserError(f"{nproc} processes: {failures} failed; see the log above") from None
    return 0


def run(args: argparse.Namespace) -> int:
    if args.rerun_changed and args.from_report is None:
        raise UserError(
            "--rerun-changed: only with --from-report REPORT_DIR (it says which kept trials run again)"
        )
    experiment = load_experiment(args.experiment)
    if wants_launch(args):
        return launch(args.nproc)
    if not run_experiment(experiment, args, worker=False):
        return 0  # not rank 0: the report is rank 0's
    if not args.no_report and experiment.study.report:
        folder = write_report(args.runs_dir / experiment.study.name, report_dir(args, experiment.study.name))
        print(f"report: {folder / 'index.html'}")
    return 0


def report_dir(args: argparse.Namespace, study: str) -> Path:
    """Where ``run`` writes the report: ``--reports-dir``, ``--publish`` (reports/), else the run folder."""
    if args.reports_dir is not None:
        return args.reports_dir / study
    if args.publish:
        return Path("reports") / study
    return args.runs_dir / study / "report"


def child_argv(argv: list[str]) -> list[str]:
    """The command line of each launched process: this one without ``--nproc N``.

    The launched processes know they are ranks from the launcher's environment; and torchrun's own
    parser would take ``--nproc`` for an ambiguous abbreviation of its ``--nproc-per-node``.
    """
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def run_experiment(experiment: Experiment, args: argparse.Namespace, *, worker: bool) -> bool:
    """Builds the real pipeline and runs (or joins) the study; shared with ``worker``.

    Returns:
        True on the process that ran the study (rank 0), False on the other ranks.
    """
    import torch

    from harness.study import environment, ranks, run_study
    from harness.study.pipeline import RealPipeline
    from harness.study.runner import check_models

    # At temperature 0.01 most softmax gradients are denormal floats (~e^-100); on a CPU they make
    # the backward pass ~2.5x slower (measured by bench step) for no change in what is learnt.
    torch.set_flush_denormal(True)

    device, progress, rank = args.device, not args.no_progress, 0
    if ranks.launched():
        rank_device = ranks.init_process_group(args.dist_timeout_min)
        device = rank_device if args.device in (None, "cuda") else args.device  # cuda: this rank's GPU
        rank = ranks.rank()
        progress = progress and rank == 0
    if rank == 0:
        check_models(experiment)  # before any study, folder or trial exists
    if ranks.launched():  # rank 0 first: it assembles or builds what the others then only read
        ranks.barrier()
        if rank != 0:
            check_models(experiment)
    if rank != 0:

        def build(one: Experiment) -> RealPipeline:
            return RealPipeline(one, data_dir=args.data_dir, device=device, progress=progress)

        ranks.follow(build(experiment), rebuild=build)
        ranks.finish()
        return False
    manifest = StudyManifest(
        study=experiment.study.name,
        experiment_path=str(args.experiment),
        experiment_toml=Path(args.experiment).read_text(encoding="utf-8"),
        command=shlex.join(["gist-harness", *sys.argv[1:]]),
        data_checksums=environment.data_checksums(experiment, args.data_dir),
    )
    if experiment.tuning is not None:
        experiment = tuned_experiment(
            experiment, args, manifest, worker=worker, device=device, progress=progress
        )
    pipeline = RealPipeline(experiment, data_dir=args.data_dir, device=device, progress=progress)
    if getattr(args, "from_report", None) is not None and experiment.tuning is None:
        restore_from_report(experiment, args, manifest)  # a tuned study's was done before its tuning
    options = dict(
        runs_dir=args.runs_dir,
        storage=args.storage,
        worker=worker,
        progress=progress,
        wait_s=getattr(args, "wait", 60.0),
        manifest=manifest,
        callbacks=[lambda *_: keep_interim(args, experiment.study.name)],
    )
    if ranks.launched():
        ranks.run_on_ranks(experiment, pipeline, **options)
        ranks.finish()
    else:
        run_study(experiment, pipeline, **options)
    return True


def tuned_experiment(
    experiment: Experiment,
    args: argparse.Namespace,
    manifest: StudyManifest,
    *,
    worker: bool,
    device: str | None,
    progress: bool,
) -> Experiment:
    """``experiment`` at each tuned arm's chosen setting: the tuning stage run (or resumed) first.

    ``--from-report`` (a report, or an interim record written during the tuning or the confirmation)
    restores the study and its tuning trials first; a worker reads the chosen settings from
    ``runs/<study>/tuning.json`` or the shared storage's searches (it joins the confirmation only). On several processes rank 0 runs the
    searches and broadcasts each tuning trial to the other ranks, which follow it as they follow the
    confirmation's trials (``harness.study.ranks``).
    """
    from harness.config.tuning import tuned_arms, with_tuned
    from harness.study.pipeline import RealPipeline
    from harness.study.tuning import read_tuning, restore_tuning, start_study, tune, worker_tuning

    if worker:
        return with_tuned(experiment, worker_tuning(experiment, args.runs_dir, args.storage).chosen)
    from_report = getattr(args, "from_report", None)
    if from_report is None:  # the study's manifest and declaration before its first trial
        start_study(experiment, args.runs_dir, args.storage, manifest)
    else:  # the study first (at the chosen settings once the report has them all), then its tuning
        record = read_tuning(Path(from_report))
        done = record is not None and {a.arm for a in record.arms if a.chosen} == set(tuned_arms(experiment))
        restore_from_report(with_tuned(experiment, record.chosen) if done else experiment, args, manifest)
        if record is not None:
            restored = restore_tuning(experiment, record, args.runs_dir, args.storage)
            print(f"restored {restored} tuning trials of {experiment.study.name}", file=sys.stderr)
    return tune(
        experiment,
        lambda sub: RealPipeline(sub, data_dir=args.data_dir, device=device, progress=progress),
        runs_dir=args.runs_dir,
        storage=args.storage,
        progress=progress,
        manifest=manifest,
        after_trial=lambda: keep_interim(args, experiment.study.name),
    )


def keep_interim(args: argparse.Namespace, study: str) -> None:
    """``--interim DIR``: the study's interim record, rewritten after a trial; a failure is reported, and
    the study goes on."""
    out = getattr(args, "interim", None)
    if out is None:
        return
    from harness.cli.interim_cmd import write_interim

    try:
        write_interim(args.runs_dir / study, out)
    except (UserError, OSError) as exc:
        print(f"warning: --interim {out}: not written ({exc}); the study goes on", file=sys.stderr)


def restore_from_report(experiment: Experiment, args: argparse.Namespace, manifest: StudyManifest) -> None:
    """``--from-report``: the report's (or interim record's) trials into a fresh ``runs/<study>/``."""
    from harness.study.restore import restore_study

    restored = restore_study(
        experiment,
        args.from_report,
        args.runs_dir / experiment.study.name,
        args.storage,
        data_checksums=manifest.data_checksums,
        rerun_changed=args.rerun_changed,
        experiment_toml=manifest.experiment_toml,
    )
    print(f"restored {restored} trials of {experiment.study.name} from {args.from_report}", file=sys.stderr)


def write_report(study_dir: Path, out_dir: Path) -> Path:
    """Renders the study's report into ``out_dir`` (as ``gist-harness report`` does): a look at its data."""
    from datetime import datetime, timezone

    from harness.cli.report_cmd import read_findings, store_look, write_files
    from harness.report import build_report, load_study_dir, render_files
    from harness.report.inputs import declared_beside, guide_score_files

    results = load_study_dir(study_dir)
    report_toml = declared_beside(out_dir, study_dir)
    report = build_report(
        results,
        read_findings(out_dir),
        report_toml,
        look_time=datetime.now(timezone.utc),
        guide_files=guide_score_files(results, report_toml),
    )
    store_look(results, report.new_look)
    write_files(out_dir, render_files(report))
    return out_dir
