"""The run environment for the manifest (reproducibility): package versions, hardware, git commit, data checksums."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

PACKAGES = (
    "torch",
    "transformers",
    "sentence-transformers",
    "mteb",
    "optuna",
    "datasets",
    "pydantic",
    "numpy",
    "pandas",
)


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``); "" when unknown."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor()


def hardware() -> dict[str, str]:
    """The machine a process runs on: platform, CPU model and count, memory, and the GPU where there is one."""
    info = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_model": cpu_model() or platform.machine(),
        "cpus": str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()),
    }
    try:
        import psutil

        info["memory_gb"] = f"{psutil.virtual_memory().total / 2**30:.1f}"
    except ImportError:  # pragma: no cover
        pass
    try:
        import torch

        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
            info["cuda"] = str(torch.version.cuda)
    except ImportError:  # pragma: no cover
        pass
    return info


def git_commit(path: Path | None = None) -> str:
    """The checkout's commit, with ``-dirty`` when it has local changes; empty outside git."""
    cwd = path or Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return commit + ("-dirty" if dirty else "")


def code_provenance(path: Path | None = None, command: str = ""):
    """The checkout's commit, dirty flag and sha256 of ``git diff HEAD``, with the package versions now.

    Returns a :class:`harness.results.CodeProvenance`; git fields stay empty outside a git checkout.
    """
    from datetime import datetime, timezone

    from harness import __version__
    from harness.results import CodeProvenance

    cwd = path or Path(__file__).resolve().parents[2]
    commit, diff = "", b""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        diff = subprocess.run(
            ["git", "diff", "HEAD", "--no-ext-diff", "--binary"],
            cwd=cwd,
            capture_output=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        pass
    return CodeProvenance(
        git_commit=commit,
        dirty=bool(diff),
        diff_sha256=hashlib.sha256(diff).hexdigest() if diff else "",
        harness_version=__version__,
        package_versions=package_versions(),
        started=datetime.now(timezone.utc),
        command=command,
        hardware=hardware(),
    )


def data_checksums(experiment, data_dir: str | Path | None) -> dict[str, str]:
    """sha256 of every data-folder file the study reads: its training sources and scored tasks.

    Keys are paths relative to the data folder (hub sources and hub tasks have none). Unreadable
    files are left out rather than failing a run that would fail later with a clearer error.
    """
    from harness.data import DATASETS, MIXTURES
    from harness.data import data_dir as resolve_data_dir
    from harness.errors import UserError
    from harness.evaluate import SUITES
    from harness.tasks import TASKS

    try:
        folder = resolve_data_dir(data_dir or experiment.data.data_dir)
    except UserError:  # no data folder: the pipeline says so when it first needs one
        return {}
    names = [r.source for r in experiment.data.source_refs]
    if experiment.data.mixture in MIXTURES:
        names += [c.source for c in MIXTURES.get(experiment.data.mixture).components]
    elif experiment.data.mixture:
        names.append(experiment.data.mixture)
    files: set[str] = set()
    for name in names:
        if name in DATASETS and DATASETS.get(name).kind == "offline":
            files.update(expand_braces(DATASETS.get(name).origin))
    suites = [experiment.objective.suite] + ([experiment.final.suite] if experiment.final else [])
    for suite in suites:
        for task in SUITES.get(suite).tasks:
            if task.name in TASKS:
                files.update(getattr(TASKS.get(task.name), "files", ()))
    sums = {}
    for rel in sorted(files):
        path = folder / rel
        if path.is_file():
            sums[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return sums


def expand_braces(pattern: str) -> list[str]:
    """``a/{x,y}.{1,2}`` -> ``a/x.1, a/x.2, a/y.1, a/y.2`` (the data layer's origin notation)."""
    head, brace, rest = pattern.partition("{")
    if not brace:
        return [pattern]
    options, _, tail = rest.partition("}")
    return [p for option in options.split(",") for p in expand_braces(head + option + tail)]
