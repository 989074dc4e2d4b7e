"""``gist-harness interim runs/<study>``: write an interim record of a study, which is not a look.

Writes ``<out>/<study>/`` (default ``interim/<study>/``, to commit): ``README.md`` (trial states and wall
times per arm and seed, what is left to run), ``results.csv`` and ``inputs/`` as a report holds them,
and ``inputs/interim.json``; see :mod:`harness.report.interim`. It computes no contrast and records no
look, so a study goes on over several working stints without spending alpha:
``gist-harness run EXPERIMENT --from-report interim/<study>`` continues it on another machine. An
earlier interim record in the same folder is replaced whole; on an error nothing is written.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from harness.errors import UserError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "interim",
        help="write an interim record of a study to commit and continue from (no contrasts: not a look)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument(
        "study_dir", type=Path, metavar="RUN_DIR", help="the study's run folder runs/<study>/"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("interim"),
        help="output folder; the record goes to OUT/<study>/ (default: interim)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    target, n = write_interim(args.study_dir, args.out)
    print(f"interim record of {target.name} ({n} trial{'s' * (n != 1)}, no look): {target}")
    return 0


def write_interim(study_dir: Path, out: Path) -> tuple[Path, int]:
    """Writes the interim record of the study in ``study_dir`` to ``out/<study>/``; returns that folder
    and the number of (confirmation) trials it holds. Shared with ``run --interim``.

    Raises:
        UserError: ``study_dir`` is a report, has no started trial, or the target is not an interim record.
    """
    from harness.report.inputs import is_report_dir
    from harness.report.interim import interim_files, is_interim_dir
    from harness.results import load_study_dir

    if is_report_dir(study_dir):
        raise UserError(f"{study_dir}: a report or interim record, not a run folder runs/<study>/")
    results = load_study_dir(study_dir)
    if not results.trials and not (results.tuning and any(a.trials for a in results.tuning.arms)):
        raise UserError(f"{study_dir}: no trial has started yet; there is nothing to record")
    target = out / results.manifest.study
    if target.exists() and any(target.iterdir()) and not is_interim_dir(target):
        raise UserError(f"{target}: exists and is not an interim record; choose another --out")
    replace_folder(target, interim_files(results, datetime.now(timezone.utc)))
    return target, len(results.trials)


def replace_folder(target: Path, files: dict[str, bytes]) -> None:
    """Writes ``files`` into a sibling folder, then swaps it for ``target``: no half-written folder."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    old = staging.with_name(staging.name + ".old")
    try:
        for relative, data in files.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        if target.exists():
            target.rename(old)
        staging.rename(target)
    except BaseException:
        if old.exists() and not target.exists():
            old.rename(target)  # the earlier record stays as it was
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
