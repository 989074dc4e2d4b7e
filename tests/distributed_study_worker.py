"""One rank of ``test_distributed_study``: run under ``python -m torch.distributed.run --nproc_per_node 2``.

Arguments: the output folder, the storage URL and what to inject: ``none``; ``rank1-trial1``
(rank 1 raises in its second trial); ``kill-rank1-trial1`` (rank 1 is killed with SIGKILL there);
``prune`` (a threshold pruner stops every trial early); ``tuned`` (a ``[tuning]`` study: each arm's
search, then the confirmation, each prepared on every rank). The fake pipeline's ``fit`` runs one
all-reduce per step, as DDP training does, and reports every step; each rank writes the configs
it trained to ``fits-<rank>.json``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_study import FakePipeline, experiment  # noqa: E402

from harness.study import ranks  # noqa: E402

PREPARED: list[str] = []
"""The study names of the experiments this rank's pipelines prepared, in order."""


class CollectivePipeline(FakePipeline):
    """``FakePipeline`` whose every step is a collective, like a DDP training step."""

    def __init__(self, fail: str, experiment=None) -> None:
        super().__init__()
        self.fail = fail
        self.experiment = experiment

    def prepare(self) -> None:
        PREPARED.append(self.experiment.study.name if self.experiment is not None else "-")

    def fit(self, config, report):
        def step_report(value, step):
            total = torch.ones(1)
            dist.all_reduce(total)  # every rank takes part in every step
            assert int(total) == dist.get_world_size()
            report(value, step)

        if self.fail == f"rank{dist.get_rank()}-trial{len(self.fits)}":
            time.sleep(0.5)
            raise RuntimeError("injected failure")
        if self.fail == f"kill-rank{dist.get_rank()}-trial{len(self.fits)}":
            time.sleep(0.5)
            os.kill(os.getpid(), signal.SIGKILL)  # kill -9 mid-trial: no exception, no clean-up
        return super().fit(config, step_report)


def study(fail: str):
    """The fake study; with ``prune``, a search (an ablation is never pruned) over strategy x lr whose
    threshold pruner stops gist at step 4 and none (infonce) at step 5 of 5."""
    if fail != "prune":
        return experiment("ranked")
    return experiment(
        "ranked",
        study={
            "name": "ranked",
            # A generous grace period: on a loaded machine a 3 s one failed a live trial as stale.
            "heartbeat_interval_s": 1,
            "grace_period_s": 60,
            "sampler": "grid",
            "n_trials": 4,
            "pruner": "threshold",
            "pruner_params": {"upper": 0.42},
        },
        train={"batch_size": 4, "max_steps": 5, "eval_every_steps": 1},
        ablation={"seeds": [0]},
        search_space={
            "strategy": {"type": "categorical", "choices": ["none", "gist"]},
            "lr": {"type": "categorical", "choices": [1e-05, 0.01]},
        },
    )


def tuned_study():
    """A ``[tuning]`` study: 2 tuning trials per arm (2 steps each), then 2 arms x 2 seeds."""
    lr = {"type": "float", "low": 1e-4, "high": 1e-1, "log": True}
    return experiment("ranked", tuning={"trials": 2, "max_steps": 2, "pruner": "none", "space": {"lr": lr}})


def run_tuned(out: Path, storage: str, fits: list) -> None:
    """What ``gist-harness run --nproc`` does with a ``[tuning]`` study, on fakes."""
    from harness.study.tuning import tune

    exp = tuned_study()

    def build(one):
        pipeline = CollectivePipeline("tuned", one)
        fits.append(pipeline.fits)
        return pipeline

    if dist.get_rank() != 0:
        ranks.follow(build(exp), rebuild=build)
        return
    options = {"runs_dir": out / "runs", "storage": storage, "progress": False}
    ranks.run_on_ranks(tune(exp, build, **options), build(exp), **options)


def main() -> None:
    out, storage, fail = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    ranks.init_process_group(timeout_min=2)
    fits: list = []
    try:
        if fail == "tuned":
            run_tuned(out, storage, fits)
        else:
            pipeline = CollectivePipeline(fail)
            fits.append(pipeline.fits)
            ranks.run_on_ranks(study(fail), pipeline, runs_dir=out / "runs", storage=storage, progress=False)
    finally:
        done = [{"strategy": f["strategy"], "seed": f["seed"], "lr": f["lr"]} for one in fits for f in one]
        (out / f"fits-{dist.get_rank()}.json").write_text(json.dumps(done))
        (out / f"prepared-{dist.get_rank()}.json").write_text(json.dumps(PREPARED))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
