"""Gathered negatives: 2 processes x 8 rows give the loss and gradients of 1 process x 16 rows.

The two ranks run ``distributed_loss_worker.py`` under ``torch.distributed.run`` (``--standalone``:
a TCP store on 127.0.0.1, gloo on the CPU). Each rank collates its 8 rows, computes the loss, and
back-propagates; parameter gradients are then averaged over ranks as DDP does. Here, in one
process, the same 16 rows make the reference.

The ``random`` control draws from a generator seeded ``seed + rank``, so the ranks do not drop the
same pattern; its reference is the seed-equivalent construction: rows 0-7 scored with a generator
seeded ``seed`` and rows 8-15 with one seeded ``seed + 1`` (``score_rows``, the loss's own scoring),
at the rate ``gist`` drops on each rank's rows (``match = "gist"``).
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from ranks import WORLD, launch
from sentence_transformers.base.losses.merged_forward import embed_columns
from test_loss import tiny_model
from test_train import tiny_student

from harness.guides import build_guide
from harness.loss import GuidedInBatchLoss, layout, make_data_collator, score_rows

COLUMNS = ("anchor", "positive", "negative")
SEED = 7
TEMPERATURE = 0.05

TOPICS = [
    ("a cat sits on the mat", "a kitten rests on a rug", "the train left the station"),
    ("the stock market fell", "shares dropped sharply", "a cat chased a mouse"),
    ("he plays the guitar", "a man strums a guitar", "the bank raised its rates"),
    ("it is raining today", "rain falls on the city", "she bought a new phone"),
]
LABELS = [0, 1, 2, 3]


def rows(absent: bool = False) -> tuple[list[dict[str, str]], list[int]]:
    """16 (anchor, positive, negative) rows in 4 labelled topics, spread over both ranks.

    Row 12's anchor repeats row 2's positive (identical texts on different ranks), and texts of one
    topic recur with small changes, so the guide and the label oracle have candidates to drop.
    With ``absent``, rows 1, 6, 9 and 14 have no negative (the placeholder is the row's anchor).
    """
    out, labels = [], []
    for i in range(16):
        anchor, positive, negative = TOPICS[i % 4]
        out.append(
            {"anchor": f"{anchor} {i}", "positive": f"{positive} number {i}", "negative": f"{negative} {i}"}
        )
        labels.append(LABELS[i % 4])
    out[12]["anchor"] = out[2]["positive"]
    for i in (1, 6, 9, 14) if absent else ():
        out[i]["negative"] = out[i]["anchor"]
    return out, labels


SOURCE_NAMES = ("even", "odd")


def source_of(batch) -> dict[int, int]:
    """Each pair's source: even rows from one, odd rows from the other."""
    from harness.loss.collator import pair_keys, text_ids

    keys = pair_keys(
        text_ids([r["anchor"] for r in batch]), text_ids([r["positive"] for r in batch])
    ).tolist()
    return {int(k): i % 2 for i, k in enumerate(keys)}


CASES = [
    f"{strategy}-{'gradcache' if gradcache else 'plain'}-{student}"
    for strategy in ("none", "gist", "random", "oracle")
    for gradcache in (False, True)
    for student in ("transformer", "static")
]
# Absent negatives (per-column present masks) and per-row sources, gathered too.
CASES += ["gist-plain-transformer-absent", "oracle-gradcache-static-absent"]


def student_for(kind: str):
    return tiny_model(0) if kind == "transformer" else tiny_student()


def guide_for(texts: list[str]):
    return build_guide("tfidf", corpus=texts)


def loss_for(case: str, student, guide) -> GuidedInBatchLoss:
    strategy, mode = case.split("-")[:2]
    params = {"match": "gist", "rate": 0.0} if strategy == "random" else {}
    return GuidedInBatchLoss(
        student,
        guide if strategy in ("gist", "random") else None,
        temperature=TEMPERATURE,
        strategy=strategy,
        strategy_params=params,
        mini_batch_size=4 if mode == "gradcache" else None,
        seed=SEED,
    )


def features_for(loss, batch, labels, sources=None):
    collated = make_data_collator(loss, source_of=sources or {})(
        [{**row, "label": label} for row, label in zip(batch, labels, strict=True)]
    )
    features = [{k[len(c) + 1 :]: v for k, v in collated.items() if k.startswith(c + "_")} for c in COLUMNS]
    return features, collated["label"]


def all_texts(batch) -> list[str]:
    return sorted({row[c] for row in batch for c in COLUMNS})


def grads_of(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def reference(case: str) -> dict:
    """The 1 x 16 loss, gradients and diagnostics."""
    absent = case.endswith("-absent")
    batch, labels = rows(absent)
    student = student_for(case.split("-")[2])
    guide = guide_for(all_texts(batch))
    loss_fn = loss_for(case, student, guide)
    loss_fn.source_names = SOURCE_NAMES
    features, label_tensor = features_for(loss_fn, batch, labels, source_of(batch) if absent else None)
    if case.startswith("random"):
        loss = seed_equivalent_random_loss(loss_fn, features, label_tensor)
        diagnostics = {}
    else:
        loss = loss_fn(features, label_tensor)
        diagnostics = loss_fn.diagnostics_history[-1]
    loss.backward()
    return {
        "loss": float(loss.detach()),
        "grads": grads_of(student),
        "diagnostics": diagnostics,
        "by_source": loss_fn.diagnostics_by_source(),
    }


def seed_equivalent_random_loss(loss_fn, features, labels) -> torch.Tensor:
    """Rows of rank r scored with a generator seeded ``SEED + r``, in the loss's row chunks."""
    from harness.loss.collator import GUIDE_EMBEDDING, TEXT_ID

    ids = [f.pop(TEXT_ID) for f in features]
    guide = [f.pop(GUIDE_EMBEDDING) for f in features]
    for f in features:  # the collator's other keys (seconds, sources...) are not model inputs
        for key in [k for k in f if k.startswith("gist_")]:
            f.pop(key)
    student = embed_columns(loss_fn.model, features)
    blocks = layout("st", len(features))
    total = student[0].new_zeros(())
    per_rank = 16 // WORLD
    chunk = loss_fn.mini_batch_size or per_rank
    for r in range(WORLD):
        generator = torch.Generator().manual_seed(SEED + r)
        for begin in range(r * per_rank, (r + 1) * per_rank, chunk):
            scores = score_rows(
                student,
                guide,
                ids,
                blocks,
                slice(begin, begin + chunk),
                strategy="random",
                strategy_params=loss_fn.strategy_params,
                temperature=TEMPERATURE,
                labels=labels,
                generator=generator,
            )
            total = total + F.cross_entropy(scores.logits, scores.targets) * chunk / 16
    return total


@pytest.fixture(scope="module")
def gathered(tmp_path_factory) -> dict:
    """Runs every case on 2 ranks once; rank 0's averaged losses, gradients and diagnostics."""
    out = tmp_path_factory.mktemp("distributed")
    done = launch("distributed_loss_worker.py", str(out), json.dumps(CASES))
    assert done.returncode == 0, done.stderr[-4000:]
    return torch.load(out / "results.pt")


def test_the_worker_ran_on_two_ranks_with_gathering(gathered):
    assert gathered["world_size"] == WORLD
    # 8 local anchors x (ap, aa, pp, an) blocks over all 16 rows; GradCache scores chunks of 4.
    assert gathered["cases"]["none-plain-transformer"]["logits_shapes"] == [[8, 16 * 4]]
    assert gathered["cases"]["none-gradcache-static"]["logits_shapes"] == [[4, 16 * 4]] * 2


@pytest.mark.parametrize("case", CASES)
def test_two_ranks_of_8_equal_one_process_of_16(gathered, case):
    got, expected = gathered["cases"][case], reference(case)
    assert abs(got["loss"] - expected["loss"]) <= 1e-5, (got["loss"], expected["loss"])
    assert got["grads"].keys() == expected["grads"].keys()
    for name, grad in expected["grads"].items():
        torch.testing.assert_close(got["grads"][name], grad, atol=1e-5, rtol=1e-4, msg=name)
    for key, value in expected["diagnostics"].items():
        if key != "guide_seconds":
            assert got["diagnostics"][key] == pytest.approx(value, abs=1e-6), key
    if case.endswith("-absent"):  # diagnostics by source, from every rank's rows
        assert set(got["by_source"]) == set(expected["by_source"]) == set(SOURCE_NAMES)
        for source, row in expected["by_source"].items():
            assert got["by_source"][source] == pytest.approx(row), source
        assert expected["by_source"]["even"]["candidates_an1"] < 16 * 8  # absent negatives removed


def test_agrees_with_sentence_transformers_gistembedloss_without_extra_blocks(gathered):
    st = gathered["sentence_transformers"]
    assert abs(st["ours_loss"] - st["st_loss"]) <= 1e-5
    for name, grad in st["st_grads"].items():
        torch.testing.assert_close(st["ours_grads"][name], grad, atol=1e-5, rtol=1e-4, msg=name)
    # With the anchor-anchor and positive-positive blocks the definitions differ: ST gathers the
    # candidates but scores only its own anchors in the anchor-anchor block.
    assert abs(st["ours_default_loss"] - st["st_default_loss"]) > 1e-4


def test_one_process_leaves_the_loss_unchanged():
    """Without a process group ``gather_across_devices`` is off and the loss is the plain one."""
    batch, labels = rows()
    student = tiny_model(0)
    on = GuidedInBatchLoss(
        student, None, strategy="none", temperature=TEMPERATURE, gather_across_devices=True
    )
    off = GuidedInBatchLoss(
        student, None, strategy="none", temperature=TEMPERATURE, gather_across_devices=False
    )
    f_on, l_on = features_for(on, batch, labels)
    f_off, l_off = features_for(off, batch, labels)
    assert float(on(f_on, l_on).detach()) == float(off(f_off, l_off).detach())


def test_token_text_ids_ignore_padding_and_match_static_features():
    from harness.loss.distributed import token_text_ids

    student = tiny_model(0)
    short = student.preprocess(["a cat", "a dog"])
    wide = student.preprocess(["a cat", "a much longer sentence about a dog"])
    assert short["input_ids"].shape[1] < wide["input_ids"].shape[1]
    ids_short, ids_wide = token_text_ids([short]), token_text_ids([wide])
    assert ids_short[0][0] == ids_wide[0][0] and ids_short[0][1] != ids_wide[0][1]
    static = tiny_student().preprocess(["a cat", "a dog", "a cat"])
    (flat,) = token_text_ids([static])
    assert flat[0] == flat[2] != flat[1]


def test_tallies_merge_by_field_type():
    from harness.loss.distributed import _merge

    assert _merge([3, 4], 3) == 7 and _merge([False, True], False) is True
    assert torch.equal(
        _merge([torch.tensor([1, 2]), torch.tensor([3, 4])], torch.tensor([1, 2])), torch.tensor([4, 6])
    )
    rows = _merge([[torch.tensor([1])], [torch.tensor([2])]], [torch.tensor([1])])
    assert [int(r) for r in rows] == [1, 2]
    blocks = ["ap", "aa"]  # the layout is the same everywhere: kept, not repeated
    assert _merge([blocks, blocks], blocks) == blocks
    assert _merge([{"a": 1}, {"a": 2, "b": 5}], {"a": 1}) == {"a": 3, "b": 5}
