"""A shadow strategy on the drop log: two rules' drops on the same batches, and ``drops --shadow``.

The shadow must read exactly the candidates the trained strategy read (same batch, same student,
same guide), never change what is trained (weights, losses, the trained strategy's random draws),
and ``compare_drops`` must count each set and their overlap per source and block.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from test_drop_log import _args, two_sources
from test_train import FakeGuide, config, tiny_student

from harness.cli import drops_cmd
from harness.errors import UserError
from harness.loss import DropLog, Shadow, compare_drops, layout, score_rows, text_ids, texts_by_id
from harness.train import train, training_texts

REPO = Path(__file__).resolve().parents[1]
EXPERIMENT = REPO / "experiments" / "gist_vs_infonce.toml"


def labelled_sources():
    """``two_sources`` with labels: alpha's pairs by colour (5 classes), beta's unlabelled (-1)."""
    data = two_sources()
    data["alpha"] = data["alpha"].add_column("label", [i % 5 for i in range(len(data["alpha"]))])
    data["beta"] = data["beta"].add_column("label", [-1] * len(data["beta"]))
    return data


def run(strategy="gist", shadow=None, data=None, **overrides):
    """Trains the tiny student 6 steps; returns the log (or None), the run record and the student."""
    log = DropLog(shadow) if shadow is not None else None
    student, record = train(
        config(max_steps=6, strategy=strategy, **overrides),
        student=tiny_student(),
        guide=FakeGuide(),
        train_dataset=data if data is not None else two_sources(),
        progress=False,
        drop_log=log,
    )
    return log, record, student


def frame_of(log, data):
    return log.frame(texts_by_id(training_texts(data)))


def hand_made(strategy="gist", shadow=None, labels=(1, 1, 2)):
    """Three rows; the guide rates p1 above a0's positive (0.8 > 0.6), the student rates p2 above p1 for a0."""
    anchors, positives = ["a0", "a1", "a2"], ["p0", "p1", "p2"]
    ids = [torch.from_numpy(text_ids(anchors)), torch.from_numpy(text_ids(positives))]
    student = [torch.eye(3, 4), torch.tensor([[0.6, 0.8, 0, 0], [0, 1.0, 0, 0], [0.9, 0, 0.44, 0]])]
    guide = [torch.eye(3), torch.tensor([[0.6, 0.0, 0.8], [0.8, 0.6, 0.0], [0.0, 0.0, 1.0]])]
    blocks = layout("st", 2, False, False)  # ap only
    scores = score_rows(
        student, guide, ids, blocks, slice(0, 3), strategy=strategy,
        strategy_params={"margin": 0.0, "margin_strategy": "absolute"}, temperature=0.05,
        labels=torch.tensor(labels),
    )  # fmt: skip
    log = DropLog(shadow)
    log.next_step()
    log.add(scores, blocks, ids, slice(0, 3))
    return log.frame(texts_by_id(anchors + positives)), scores


def test_the_shadow_logs_its_own_drops_beside_the_applied_ones():
    frame, scores = hand_made(shadow=Shadow("student_topk_at_rate"))
    # GIST drops p1 on row a0 (guide 0.8 > 0.6); the student rates p2 above p1 there (0.9 > 0)
    got = frame[["anchor", "candidate", "dropped_by"]].values.tolist()
    assert sorted(got) == [["a0", "p1", "applied"], ["a0", "p2", "shadow"]]
    assert int(scores.drop.sum()) == 1  # the applied mask is untouched by the shadow
    table = compare_drops(frame)
    row = table[(table.block == "ap")].iloc[0]
    assert (row.applied, row.shadow, row.both, row.only_applied, row.only_shadow) == (1, 1, 0, 1, 1)
    assert row.jaccard == 0
    assert row.same_label_applied == 1.0 and row.same_label_shadow == 0.0  # p1 is a0's class, p2 not
    assert table.block.tolist() == ["ap", "all"]


def test_a_shadow_equal_to_the_applied_rule_drops_the_same_pairs():
    frame, _ = hand_made(shadow=Shadow("gist"))
    assert frame.dropped_by.tolist() == ["both"]
    assert compare_drops(frame).jaccard.tolist() == [1.0, 1.0]


def test_an_unlabelled_row_has_no_same_label_value():
    frame, _ = hand_made(labels=(-1, 1, 2))
    assert frame.same_label.isna().all()  # a0 has no label: neither True nor False
    assert compare_drops(frame.assign(dropped_by="applied")).same_label_applied.isna().all()


def test_a_shadow_that_needs_what_the_arm_lacks_is_a_one_line_error():
    with pytest.raises(UserError, match="shadow strategy 'oracle' needs an integer 'label' column"):
        log = DropLog(Shadow("oracle"))
        log.next_step()
        anchors, positives = ["a0", "a1"], ["p0", "p1"]
        ids = [torch.from_numpy(text_ids(anchors)), torch.from_numpy(text_ids(positives))]
        blocks = layout("st", 2, False, False)
        student = [torch.eye(2, 4), torch.eye(2, 4)]
        scores = score_rows(student, None, ids, blocks, slice(0, 2), strategy="none", strategy_params={},
                            temperature=0.05)  # fmt: skip
        log.add(scores, blocks, ids, slice(0, 2))
    with pytest.raises(UserError, match="unknown strategy 'nope'"):
        Shadow("nope")


@pytest.fixture(scope="module")
def plain_gist():
    return run("gist")


def test_a_shadow_changes_nothing_that_is_trained(plain_gist):
    _, plain, student = plain_gist
    log, shadowed, shadowed_student = run("gist", Shadow("random_per_block", seed=0))
    assert len(log) > 0 and (frame_of(log, two_sources()).dropped_by == "shadow").any()
    assert shadowed.loss_curve == plain.loss_curve  # every logged loss, to the last bit
    assert shadowed.by_source == plain.by_source
    for ours, theirs in zip(shadowed_student.parameters(), student.parameters(), strict=True):
        assert torch.equal(ours, theirs)


def test_a_random_shadow_leaves_the_trained_strategys_draws_alone():
    _, plain, student = run("random_per_block")
    _, shadowed, shadowed_student = run("random_per_block", Shadow("random", {"rate": 0.3}, seed=7))
    assert shadowed.by_source == plain.by_source and shadowed.loss_curve == plain.loss_curve
    for ours, theirs in zip(shadowed_student.parameters(), student.parameters(), strict=True):
        assert torch.equal(ours, theirs)


def test_two_arms_with_one_seed_train_on_the_same_batches():
    # the docstring's claim, checked with the real trainer and sampler: a shadow dropping every real
    # negative logs every (anchor, candidate) of every step, whatever the arm trains with
    everything = Shadow("random", {"rate": 1.0})
    seen = []
    for strategy in ("gist", "none", "random_per_block"):
        log, _, _ = run(strategy, everything)
        frame = frame_of(log, two_sources())
        seen.append(
            frame[["step", "anchor", "candidate", "block"]].sort_values(
                ["step", "anchor", "candidate", "block"]
            )
        )
    assert len(seen[0]) > 6 * 8  # every step's rows
    for other in seen[1:]:
        pd.testing.assert_frame_equal(seen[0].reset_index(drop=True), other.reset_index(drop=True))


@pytest.mark.parametrize("mini_batch_size", [None, 4])
def test_the_trained_strategy_as_its_own_shadow_agrees_on_every_pair(mini_batch_size):
    # same rule, same seed: the shadow reads the same candidates and draws the same numbers (GradCache
    # row chunks included), so every logged pair is dropped by both
    log, record, _ = run(
        "random_per_block", Shadow("random_per_block", seed=0), mini_batch_size=mini_batch_size
    )
    frame = frame_of(log, two_sources())
    assert len(frame) > 0 and (frame.dropped_by == "both").all()


def test_the_applied_pairs_are_exactly_the_drops_the_diagnostics_count():
    log, record, _ = run("gist", Shadow("student_topk_at_rate"))
    frame = frame_of(log, two_sources())
    applied = frame[frame.dropped_by != "shadow"]
    for source, row in record.by_source.items():
        for block in ("ap", "aa", "pp", "an1"):
            expected = round(row[f"drop_rate_{block}"] * row[f"candidates_{block}"])
            got = int(((applied.source == source) & (applied.block == block)).sum())
            assert got == expected, (source, block)
    # a control matched to GIST's count drops as many as GIST on every row of every step: the shadow
    # recomputed GIST's count from the very guide similarities the trained strategy read
    keys = ["step", "anchor_id", "positive_id"]
    per_row = (
        frame.assign(
            a=frame.dropped_by.isin(["applied", "both"]), s=frame.dropped_by.isin(["shadow", "both"])
        )
        .groupby(keys)[["a", "s"]]
        .sum()
    )
    assert (per_row.a == per_row.s).all()
    assert (frame.dropped_by == "shadow").any()  # and they do not all agree


def test_the_label_oracle_shadow_drops_at_least_as_many_same_class_pairs():
    data = labelled_sources()
    log, _, _ = run("gist", Shadow("oracle_at_rate"), data=data)
    table = compare_drops(frame_of(log, data))
    alpha = table[(table.source == "alpha") & (table.block == "all")].iloc[0]
    assert alpha.applied == alpha.shadow > 0  # matched counts
    # at GIST's per-row count the oracle takes same-class candidates first: never fewer than GIST's
    assert alpha.same_label_shadow >= alpha.same_label_applied
    beta = table[table.source == "beta"]
    assert beta.same_label_applied.isna().all() and beta.same_label_shadow.isna().all()  # unlabelled


def test_drops_summarises_a_log_with_a_shadow_again(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # every column header on one line
    data = labelled_sources()
    log, _, _ = run("gist", Shadow("oracle_at_rate"), data=data)
    path = tmp_path / "drops.parquet"
    frame = frame_of(log, data).assign(arm="gist", seed=0, shadow=str(log.shadow))
    frame.to_parquet(path)
    assert drops_cmd.run(_args(path)) == 0
    out = capsys.readouterr().out
    assert "dropped candidates by source and block" in out
    assert "drops of gist (applied) and of the shadow oracle_at_rate(" in out
    assert "same_label_shadow" in out and "jaccard" in out
    assert "pairs dropped by gist only, largest guide margin first" in out
    assert "pairs dropped by the shadow only (oracle_at_rate(" in out


def test_a_log_written_before_shadows_still_summarises(plain_gist, tmp_path, capsys):
    # the committed benchmarks/drops log has no dropped_by column: every row is the arm's
    path = tmp_path / "old.parquet"
    old = frame_of(DropLog(), two_sources()).drop(columns="dropped_by")
    assert "dropped_by" not in old.columns
    log, _, _ = run("gist", Shadow("gist"))
    frame_of(log, two_sources()).drop(columns="dropped_by").to_parquet(path)
    assert drops_cmd.run(_args(path)) == 0
    out = capsys.readouterr().out
    assert "dropped candidates by source and block" in out and "shadow" not in out


def test_shadow_of_takes_an_arms_rule_or_a_strategy_with_the_arms_margin():
    from harness.config import load_experiment

    experiment = load_experiment(EXPERIMENT)
    config = experiment.trial_config({**experiment.arm_overrides("gist"), "seed": 3, "margin": 0.02})
    by_arm = drops_cmd.shadow_of(
        _args(EXPERIMENT, arm="gist", shadow_arm="random_at_gist_rate"), experiment, config
    )
    assert by_arm.strategy == "random" and by_arm.params["match"] == "gist" and by_arm.seed == 3
    by_name = drops_cmd.shadow_of(
        _args(EXPERIMENT, arm="gist", shadow="gist", shadow_param=["blocks=ap"]), experiment, config
    )
    assert (by_name.params["blocks"], by_name.params["margin"]) == ("ap", 0.02)  # the arm's margin
    control = drops_cmd.shadow_of(
        _args(EXPERIMENT, arm="gist", shadow="student_topk_at_rate"), experiment, config
    )
    assert control.params == {"margin": 0.02, "margin_strategy": "absolute"}


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"shadow": "nope"}, "--shadow: unknown strategy 'nope'"),
        ({"shadow_arm": "nope"}, "--shadow-arm 'nope' is not a trained arm; valid: infonce,"),
        ({"shadow_arm": "untrained"}, "is not a trained arm"),
        ({"shadow_arm": "infonce_blocks"}, "differs from --arm 'gist' in guide, not only in its strategy"),
        ({"shadow": "gist", "shadow_arm": "gist"}, "not both"),
        ({"arm": "infonce", "shadow": "gist"}, "reads guide similarities, and arm 'infonce' trains without"),
        ({"shadow": "gist", "shadow_param": ["blocks=xx"]}, "blocks must be one of all, ap"),
        ({"shadow": "gist", "shadow_param": ["blocks"]}, "expected KEY=VALUE"),
        ({"shadow_arm": "random_at_gist_rate", "shadow_param": ["rate=0.1"]}, "an arm's parameters are"),
        ({"shadow_param": ["rate=0.1"]}, "needs --shadow STRATEGY"),
    ],
)
def test_drops_rejects_a_bad_shadow_before_training(kw, message, tmp_path):
    with pytest.raises(UserError, match=message):
        drops_cmd.run(_args(EXPERIMENT, out=tmp_path / "d.parquet", **{"arm": "gist", **kw}))
    assert not (tmp_path / "d.parquet").exists()


def test_a_shadow_goes_with_an_experiment_not_a_written_log(tmp_path):
    path = tmp_path / "d.parquet"
    pd.DataFrame({"x": [1]}).to_parquet(path)
    with pytest.raises(UserError, match="go with an experiment"):
        drops_cmd.run(_args(path, shadow="gist"))
    with pytest.raises(UserError, match="go with an experiment"):
        drops_cmd.run(_args(path, shadow_arm="gist"))


@pytest.mark.slow
def test_drops_with_a_shadow_on_the_real_static_student(tmp_path, data_dir, capsys, monkeypatch):
    """``gist-harness drops`` for real: quickstart-static's gist arm (static-minilm, all-mpnet-base
    guide, one epoch) with the student's top-k at GIST's count as the shadow."""
    from harness.cli import main

    monkeypatch.setenv("COLUMNS", "250")
    out = tmp_path / "drops.parquet"
    args = ["drops", str(REPO / "experiments" / "quickstart_static.toml"), "--arm", "gist", "--seed", "0"]
    args += [
        "--shadow",
        "student_topk_at_rate",
        "--out",
        str(out),
        "--data-dir",
        str(data_dir),
        "--no-progress",
    ]
    assert main(args) == 0
    frame = pd.read_parquet(out)
    assert set(frame.dropped_by) == {"applied", "shadow", "both"}
    assert (frame.shadow == "student_topk_at_rate(margin=0.0, margin_strategy='absolute')").all()
    marks = frame.assign(a=frame.dropped_by != "shadow", s=frame.dropped_by != "applied")
    per_row = marks.groupby(["step", "anchor_id", "positive_id"])[["a", "s"]].sum()
    assert (per_row.a == per_row.s).all()  # GIST's count on every row of every step
    printed = capsys.readouterr().out
    assert "drops of gist (applied) and of the shadow student_topk_at_rate(" in printed
    assert "eligible" in printed  # the arm's own table, with the run's diagnostics
