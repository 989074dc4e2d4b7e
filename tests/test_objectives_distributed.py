"""Loss objectives with gathered negatives: 2 processes x 8 rows = 1 process x 16 rows (loss and gradients).

Every objective's row loss depends on that row's scores only, so gathering the columns across ranks
(``harness.loss.distributed``) and averaging the ranks' gradients (DDP) must give the single-process
loss of the whole batch, on the plain path and with GradCache. Uses ``test_distributed_loss``'s rows,
guide and collation; the ranks run ``objectives_distributed_worker.py`` under ``torch.distributed.run``.
"""

from __future__ import annotations

import json

import pytest
import torch
from ranks import WORLD, launch
from test_distributed_loss import all_texts, features_for, grads_of, guide_for, rows
from test_loss import tiny_model

from harness.loss import GuidedInBatchLoss
from harness.loss.objectives import OBJECTIVES

LAYOUTS = {
    "gte": {
        "variant": "mnrl",
        "directions": ("query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc"),
    },
    "sym": {"variant": "mnrl", "directions": ("query_to_doc", "doc_to_query"), "partition": "per_direction"},
}
"""The bidirectional layouts (``test_bidirectional``): GTE's four directions, joint; query<->doc per direction."""
CASES = [f"{objective}-{mode}" for objective in OBJECTIVES.names() for mode in ("plain", "gradcache")] + [
    f"{objective}-{mode}-{layout}"
    for objective in ("infonce", "relabel_positive")
    for mode in ("plain", "gradcache")
    for layout in LAYOUTS
]


def objective_loss_for(case: str, student, guide) -> GuidedInBatchLoss:
    objective, mode, *layout = case.split("-")
    return GuidedInBatchLoss(
        student,
        guide,
        temperature=0.05,
        strategy="gist",
        objective=objective,
        objective_params={"sims": "guide"} if objective == "hardness" else {},
        mini_batch_size=4 if mode == "gradcache" else None,
        seed=7,
        **(LAYOUTS[layout[0]] if layout else {}),
    )


@pytest.fixture(scope="module")
def gathered(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("objectives-distributed")
    done = launch("objectives_distributed_worker.py", str(out), json.dumps(CASES))
    assert done.returncode == 0, done.stderr[-4000:]
    return torch.load(out / "results.pt")


@pytest.mark.parametrize("case", CASES)
def test_two_ranks_of_8_equal_one_process_of_16(gathered, case):
    assert gathered["world_size"] == WORLD
    batch, labels = rows()
    student = tiny_model(0)
    loss_fn = objective_loss_for(case, student, guide_for(all_texts(batch)))
    features, label_tensor = features_for(loss_fn, batch, labels)
    expected = loss_fn(features, label_tensor)
    expected.backward()
    got = gathered["cases"][case]
    assert abs(got["loss"] - float(expected.detach())) <= 1e-5, (got["loss"], float(expected.detach()))
    for name, grad in grads_of(student).items():
        torch.testing.assert_close(got["grads"][name], grad, atol=1e-5, rtol=1e-4, msg=name)
