"""``DropLog``: the dropped candidates of a training run, as texts, and ``gist-harness drops``.

The log must hold exactly the drops the diagnostics count (per source and block), each one a
candidate the strategy's rule dropped, and resolve every text id back to its training text.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import pytest
import torch
from test_train import FakeGuide, config, tiny_student

from harness.cli import drops_cmd
from harness.errors import UserError
from harness.loss import DropLog, layout, score_rows, text_ids, texts_by_id
from harness.train import train, training_texts

REPO = Path(__file__).resolve().parents[1]


def two_sources():
    from datasets import Dataset, DatasetDict

    def part(name: str, n: int) -> Dataset:
        return Dataset.from_dict(
            {
                "anchor": [f"{name} question {i} about colour {i % 5}" for i in range(n)],
                "positive": [f"{name} answer {i}: colour {i % 5}" for i in range(n)],
                "negative": [f"{name} unrelated text {i}" for i in range(n)],
            }
        )

    return DatasetDict({"alpha": part("alpha", 32), "beta": part("beta", 32)})


def logged_run(strategy: str = "gist", **overrides):
    log = DropLog()
    data = two_sources()
    _, run = train(
        config(max_steps=6, strategy=strategy, **overrides),
        student=tiny_student(),
        guide=FakeGuide(),
        train_dataset=data,
        progress=False,
        drop_log=log,
    )
    return log, run, data


@pytest.fixture(scope="module")
def gist_run():
    return logged_run("gist")


def test_the_log_holds_exactly_the_drops_the_diagnostics_count(gist_run):
    log, run, data = gist_run
    frame = log.frame(texts_by_id(training_texts(data)))
    assert len(frame) == len(log) > 0
    assert set(frame.source) <= {"alpha", "beta"}
    assert sorted(frame.step.unique()) == list(range(6))  # every training step, numbered from 0
    for source, row in run.by_source.items():
        for block in ("ap", "aa", "pp", "an1"):
            expected = round(row[f"drop_rate_{block}"] * row[f"candidates_{block}"])
            got = int(((frame.source == source) & (frame.block == block)).sum())
            assert got == expected, (source, block)


def test_every_logged_drop_follows_the_gist_rule_and_resolves_to_its_texts(gist_run):
    log, _, data = gist_run
    frame = log.frame(texts_by_id(training_texts(data)))
    assert (frame.guide_sim > frame.guide_pos).all()  # absolute margin 0: the guide rates it above
    assert frame[["anchor", "positive", "candidate"]].notna().all().all()
    anchors = set(data["alpha"]["anchor"]) | set(data["beta"]["anchor"])
    assert set(frame.anchor) <= anchors
    assert (frame.candidate != frame.anchor).all() and (frame.candidate != frame.positive).all()
    # a candidate's source is its row's: per-source batches never mix the two
    assert all(c.startswith(s) for s, c in zip(frame.source, frame.candidate, strict=True))
    # the recorded sims are the guide's: recompute the first row's from the fake guide
    first = frame.iloc[0]
    vectors = FakeGuide().embed([first.anchor, first.candidate, first.positive])
    assert float(vectors[0] @ vectors[1]) == pytest.approx(first.guide_sim, abs=1e-5)
    assert float(vectors[0] @ vectors[2]) == pytest.approx(first.guide_pos, abs=1e-5)


def test_gradcache_logs_the_same_drops_as_one_pass(gist_run):
    log, _, data = gist_run
    cached, _, _ = logged_run("gist", mini_batch_size=4)  # rows scored in chunks of 4
    texts = texts_by_id(training_texts(data))
    columns = ["step", "source", "block", "anchor", "candidate"]
    one, chunked = (
        f.frame(texts)[columns].sort_values(columns).reset_index(drop=True) for f in (log, cached)
    )
    pd.testing.assert_frame_equal(one, chunked)


def test_a_strategy_that_keeps_everything_logs_nothing():
    log, run, data = logged_run("none")
    assert len(log) == 0 and len(log.frame(texts_by_id(training_texts(data)))) == 0
    assert all(row["drop_rate"] == 0 for row in run.by_source.values())


def test_add_records_block_ids_and_label_agreement_of_a_hand_made_batch():
    # 3 rows, anchor and positive columns; the guide rates p1 above a0's own positive p0 (0.8 > 0.6),
    # and nothing else above a row's positive: one drop, (a0, p1), which shares a0's label
    anchors, positives = ["a0", "a1", "a2"], ["p0", "p1", "p2"]
    ids = [torch.from_numpy(text_ids(anchors)), torch.from_numpy(text_ids(positives))]
    student = [torch.eye(3, 4), torch.eye(3, 4) + 0.1]
    guide = [torch.eye(3), torch.tensor([[0.6, 0.0, 0.8], [0.8, 0.6, 0.0], [0.0, 0.0, 1.0]])]
    blocks = layout("st", 2, False, False)  # ap only
    scores = score_rows(
        student, guide, ids, blocks, slice(0, 3), strategy="gist", strategy_params={"margin": 0.0,
        "margin_strategy": "absolute"}, temperature=0.05, labels=torch.tensor([1, 1, 2]),
    )  # fmt: skip
    log = DropLog()
    log.next_step()
    log.add(scores, blocks, ids, slice(0, 3))
    frame = log.frame(texts_by_id(anchors + positives))
    assert frame[["anchor", "positive", "candidate", "block", "step"]].values.tolist() == [
        ["a0", "p0", "p1", "ap", 0]
    ]
    assert frame.same_label.tolist() == [True]
    assert frame.guide_sim.tolist() == pytest.approx([0.8])  # a0 . p1, above a0 . p0 = 0.6
    assert frame.guide_pos.tolist() == pytest.approx([0.6])


def _args(path: Path, **kw) -> argparse.Namespace:
    base = {
        "arm": None,
        "seed": None,
        "out": None,
        "top": 3,
        "data_dir": None,
        "device": None,
        "runs_dir": Path("runs"),
    }
    base |= {"shadow": None, "shadow_param": [], "shadow_arm": None}
    return argparse.Namespace(path=path, no_progress=True, **{**base, **kw})


def test_drops_summarises_a_written_log(gist_run, tmp_path, capsys):
    log, _, data = gist_run
    path = tmp_path / "drops.parquet"
    log.frame(texts_by_id(training_texts(data))).to_parquet(path)
    assert drops_cmd.run(_args(path)) == 0
    out = capsys.readouterr().out
    assert "dropped candidates by source and block" in out and "alpha" in out
    assert "3 dropped pairs, largest guide margin first" in out
    assert "drop_rate" not in out  # a written log alone does not know the eligible candidates


def test_the_summary_after_training_gives_the_diagnostics_drop_rate(gist_run, capsys):
    log, run, data = gist_run
    drops_cmd.summarise(log.frame(texts_by_id(training_texts(data))), 0, run.by_source)
    out = capsys.readouterr().out
    assert "eligible" in out and "drop_rate" in out
    expected = round(run.by_source["alpha"]["drop_rate_ap"], 5)
    assert f"{expected:g}"[:6] in out


def test_drops_rejects_bad_input_with_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        drops_cmd.run(_args(tmp_path / "missing.parquet"))
    other = tmp_path / "other.parquet"
    pd.DataFrame({"x": [1]}).to_parquet(other)
    with pytest.raises(UserError, match="not a drops log"):
        drops_cmd.run(_args(other))
    with pytest.raises(UserError, match="expected an experiment"):
        drops_cmd.run(_args(tmp_path / "notes.txt"))
    experiment = REPO / "experiments" / "gist_vs_infonce.toml"
    with pytest.raises(UserError, match=r"--out FILE\.parquet is required"):
        drops_cmd.run(_args(experiment, arm="gist"))
    with pytest.raises(UserError, match="not a trained arm; valid: infonce, infonce_blocks, gist"):
        drops_cmd.run(_args(experiment, arm="untrained", out=tmp_path / "d.parquet"))
    assert not (tmp_path / "d.parquet").exists()
