"""Optuna storages from a URL: SQLite in the run folder by default, any SQLAlchemy URL, or a journal file.

RDB storages (SQLite, PostgreSQL, MySQL, ...) get a heartbeat: a worker records one every
``heartbeat_interval`` seconds while a trial runs, and a trial whose heartbeat is older than
``grace_period`` (its worker was killed) is failed and re-queued by
``RetryHeartbeatStaleTrialCallback`` the next time any worker starts a trial. Optuna's journal
files have no heartbeat: there a killed worker's trial stays RUNNING and is not retried, so use the
default SQLite file (or PostgreSQL) when workers may be killed.
"""

from __future__ import annotations

import json
import re
import time
import warnings
from pathlib import Path

import optuna
import optuna.storages.journal
from optuna.storages import BaseStorage

from harness.errors import UserError

DEFAULT_DB = "optuna.db"
CONNECT_ATTEMPTS = 5


def resolve_url(url: str | None, study_dir: Path) -> str:
    """The storage URL to use: ``url`` as given, or SQLite ``optuna.db`` in ``study_dir``."""
    if url:
        return url
    return f"sqlite:///{(study_dir / DEFAULT_DB).resolve()}"


def make_storage(
    url: str | None,
    study_dir: Path,
    *,
    heartbeat_interval: int = 10,
    grace_period: int = 60,
    max_retry: int | None = 2,
) -> BaseStorage:
    """Builds the Optuna storage named by ``url``.

    Args:
        url: None (SQLite in ``study_dir``), ``memory``, ``journal:PATH`` (or a path ending in
            ``.journal``/``.log``), or any SQLAlchemy URL (``postgresql+psycopg://user@host/db``).
        study_dir: the run folder ``runs/<study>/``; the default database lives there.
        heartbeat_interval: seconds between heartbeats of a running trial (RDB only).
        grace_period: seconds without a heartbeat after which a trial counts as stale.
        max_retry: how many times a stale trial is re-queued (None: without limit).
    """
    url = resolve_url(url, study_dir)
    if url == "memory":
        return optuna.storages.InMemoryStorage()
    journal = _journal_path(url)
    if journal is not None:
        journal.parent.mkdir(parents=True, exist_ok=True)
        backend = optuna.storages.journal.JournalFileBackend(str(journal))
        return optuna.storages.JournalStorage(backend)
    if "://" not in url:
        raise UserError(
            f"storage {url!r}: expected an SQLAlchemy URL (sqlite:///PATH, postgresql+psycopg://...), "
            "journal:PATH or memory"
        )
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    for attempt in range(CONNECT_ATTEMPTS):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period,
                    heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                        max_retry
                    ),
                )
        except (ImportError, ModuleNotFoundError) as exc:
            raise UserError(f"storage {redact(url)}: driver missing ({exc})") from None
        except Exception as exc:  # SQLAlchemy's OperationalError, IntegrityError, ArgumentError, ...
            # Workers starting together race to create the schema: the loser sees an IntegrityError.
            if attempt + 1 == CONNECT_ATTEMPTS or "ArgumentError" in type(exc).__name__:
                raise UserError(
                    f"storage {redact(url)}: cannot connect ({type(exc).__name__}: {exc})"
                ) from None
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def _journal_path(url: str) -> Path | None:
    if url.startswith("journal:"):
        return Path(url.removeprefix("journal:"))
    if "://" not in url and url.endswith((".journal", ".log")):
        return Path(url)
    return None


def redact(url: str) -> str:
    """The URL with any password replaced by ``***`` (for logs, manifests and reports)."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def fail_stale_trials(study: optuna.Study) -> None:
    """Fails (and re-queues) trials whose worker stopped sending heartbeats (RDB storages)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def heartbeat_enabled(study: optuna.Study) -> bool:
    from optuna.storages._heartbeat import is_heartbeat_enabled

    return is_heartbeat_enabled(study._storage)


def folder_url(source: str) -> str:
    """The storage URL of a run folder ``runs/<study>/`` (its ``optuna.db``, else its manifest's), or
    ``source`` itself when it is a storage URL or journal path.

    Raises:
        UserError: neither a run folder with a storage nor a URL, or a manifest whose URL has its
            password redacted (pass that URL with the password instead).
    """
    path = Path(source)
    if not path.is_dir():
        if "://" in source or _journal_path(source) is not None:
            return source
        raise UserError(
            f"{source}: no such run folder; pass runs/<study>/ or a storage URL (sqlite:///..., journal:PATH)"
        )
    if (path / DEFAULT_DB).is_file():
        return resolve_url(None, path)
    manifest = path / "manifest.json"
    url = (
        json.loads(manifest.read_text(encoding="utf-8")).get("storage_url", "") if manifest.is_file() else ""
    )
    if not url:
        raise UserError(
            f"{source}: no {DEFAULT_DB} and no storage_url in manifest.json; pass the storage URL"
        )
    if "***" in url:
        raise UserError(f"{source}: its storage {url} has a password: pass the URL with the password instead")
    return url
