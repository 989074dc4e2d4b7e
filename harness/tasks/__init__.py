"""Local MTEB tasks over the offline data folder, one module per task family.

Every task is an mteb abstract-task subclass (scored by mteb's own evaluators) whose data comes from
the data folder, checksummed against MANIFEST.md. Names start with ``local:`` so they never shadow
the hub task a copy stands in for (``local:STSBenchmark`` vs ``STSBenchmark``, still usable online).

    >>> task = get_task("local:STSBenchmark", data_dir="/data")   # an mteb AbsTask
    >>> mteb.evaluate(model, [task], cache=None)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.registry import Registry
from harness.tasks._local import LocalTask, Role
from harness.tasks.classification import CLASSIFICATION_TASKS
from harness.tasks.clustering import CLUSTERING_TASKS
from harness.tasks.lite import LITE_TASKS
from harness.tasks.multilingual import MULTILINGUAL_TASKS
from harness.tasks.pair_classification import PAIR_CLASSIFICATION_TASKS
from harness.tasks.reranking import RERANKING_TASKS
from harness.tasks.retrieval import RETRIEVAL_TASKS
from harness.tasks.sts import STS_TASKS

__all__ = ["TASKS", "LocalTask", "Role", "get_task", "listing"]

TASKS: Registry[type[LocalTask]] = Registry("task")
_ALL_TASKS: list[type[LocalTask]] = [
    *STS_TASKS,
    *CLASSIFICATION_TASKS,
    *RETRIEVAL_TASKS,
    *PAIR_CLASSIFICATION_TASKS,
    *RERANKING_TASKS,
    *CLUSTERING_TASKS,
    *LITE_TASKS,
    *MULTILINGUAL_TASKS,
]
for _cls in _ALL_TASKS:
    TASKS.register(_cls.metadata.name, _cls)


def get_task(name: str, data_dir: str | Path | None = None, seed: int = 42) -> Any:
    """A fresh instance of the local task ``name`` reading ``data_dir`` (data loads on first use)."""
    return TASKS.get(name)(data_dir, seed=seed)


def listing() -> list[dict[str, Any]]:
    """One row per local task, for ``gist-harness ls tasks``."""
    rows = []
    for name, cls in TASKS.items():
        meta = cls.metadata
        rows.append(
            {
                "name": name,
                "category": meta.type,
                "mteb_task": cls.hub_name or "-",
                "downsampled_from": cls.downsampled_from or "-",
                "main_score": meta.main_score,
                "splits": ",".join(cls.splits_read),
                "dev_only": cls.dev_only,
                "revision": meta.dataset["revision"][:12],
            }
        )
    return rows
