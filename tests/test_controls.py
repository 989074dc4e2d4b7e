"""Controls matched to GIST's counts (issue 29, section 3): same number of drops, other choices.

Each control drops exactly as many real negatives as GIST on the same batch: per row
(``oracle_at_rate``, ``student_topk_at_rate``) or per row and block (``random_per_block``). The
batches here are real-sized (64 rows, 2 hard-negative columns, every block of both layouts), with
labels, identical texts, and guide similarities that make GIST drop a few candidates per row.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from harness.loss import layout, score_rows
from harness.loss.blocks import RowScores
from harness.masking import STRATEGIES, Candidates, drop_mask, needs, resolve_params

CONTROLS = ("oracle_at_rate", "student_topk_at_rate", "random_per_block")
GIST_SETTINGS = [
    {"margin": 0.0, "margin_strategy": "absolute"},
    {"margin": 0.1, "margin_strategy": "absolute"},
    {"margin": 0.05, "margin_strategy": "absolute"},
    {"margin": 0.2, "margin_strategy": "relative"},
]


def embeddings(seed: int, rows: int = 64, negatives: int = 2, dim: int = 16):
    """Columns (anchor, positive, negatives...) of student and guide vectors, text ids and labels.

    Each pair sits near its class centre (12 classes), anchor and positive near the pair's point,
    hard negatives farther from it; the guide is the student plus noise, so GIST drops 0.1-4% of the
    candidates (by margin), more of them in the ap and aa blocks. Rows 56-63 have no label (-1, as
    in a batch mixing labelled and unlabelled sources). Row 5 repeats row 3's anchor text and row 9
    row 8's positive: identical texts, which no strategy may count or drop.
    """
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 12, (rows,), generator=g)
    labels[5], labels[9] = labels[3], labels[8]
    pair = 1.5 * torch.randn(12, dim, generator=g)[labels] + torch.randn(rows, dim, generator=g)
    pair[5], pair[9] = pair[3], pair[8]
    anchor = pair + 0.5 * torch.randn(rows, dim, generator=g)
    positive = pair + 0.5 * torch.randn(rows, dim, generator=g)
    hard = [pair + 1.4 * torch.randn(rows, dim, generator=g) for _ in range(negatives)]
    student = [anchor, positive, *hard]
    ids = [torch.arange(rows) + k * rows for k in range(len(student))]
    guide = [s + 0.6 * torch.randn(s.shape, generator=g) for s in student]
    for (row, col), (src_row, src_col) in (((5, 0), (3, 0)), ((9, 1), (8, 1))):
        for column in (student, guide, ids):
            column[col][row] = column[src_col][src_row]
    labels[56:] = -1
    return student, guide, ids, labels


def scored(strategy: str, params: dict | None = None, *, seed: int = 0, variant: str = "st", rows=None):
    """``score_rows`` of one batch (all 64 rows unless ``rows``), the generator seeded like the loss's."""
    student, guide, ids, labels = embeddings(seed)
    return score_rows(
        student,
        guide,
        ids,
        layout(variant, len(student)),
        rows or slice(0, 64),
        strategy=strategy,
        strategy_params=resolve_params(strategy, params),
        temperature=0.05,
        labels=labels,
        generator=torch.Generator().manual_seed(100 + seed),
    )


def real(scores: RowScores) -> torch.Tensor:
    return ~(scores.positive | scores.identical)  # (B, N) the real negatives


def per_block(mask: torch.Tensor, widths: list[int]) -> torch.Tensor:
    """(B, blocks) counts of ``mask`` in each block."""
    return torch.stack([part.sum(1) for part in mask.split(widths, dim=1)], dim=1)


def candidates_of(scores: RowScores, blocks, generator_seed: int = 0) -> Candidates:
    """The ``Candidates`` that ``score_rows`` handed its strategy."""
    sims = scores.sims.detach()
    return Candidates(
        student=sims,
        student_pos=sims.gather(1, scores.targets.unsqueeze(1)),
        positive=scores.positive,
        guide=scores.guide,
        guide_pos=scores.guide.gather(1, scores.targets.unsqueeze(1)),
        same_label=scores.same_label,
        generator=torch.Generator().manual_seed(generator_seed),
        identical=scores.identical,
        block=tuple(b.name for b, w in zip(blocks, scores.widths, strict=True) for _ in range(w)),
    )


@pytest.mark.parametrize("variant", ["st", "official"])
@pytest.mark.parametrize("settings", GIST_SETTINGS)
@pytest.mark.parametrize("strategy", CONTROLS)
def test_controls_drop_exactly_gists_count_per_row(strategy, settings, variant):
    gist = scored("gist", settings, variant=variant)
    control = scored(strategy, settings, variant=variant)
    gist_rows = (gist.drop & real(gist)).sum(1)
    assert int(gist_rows.sum()) >= 20 and int(gist_rows.max()) >= 3  # rows differ
    assert not (control.drop & ~real(control)).any()  # never the positive or an identical text
    assert torch.equal(control.drop.sum(1), gist_rows)


@pytest.mark.parametrize("variant", ["st", "official"])
@pytest.mark.parametrize("settings", GIST_SETTINGS)
def test_random_per_block_matches_gist_per_row_and_block(settings, variant):
    gist = scored("gist", settings, variant=variant)
    control = scored("random_per_block", settings, variant=variant)
    expected = per_block(gist.drop & real(gist), gist.widths)  # (B, 5)
    assert (expected.sum(0) > 0).sum() >= 3  # GIST drops in several blocks
    assert torch.equal(per_block(control.drop, control.widths), expected)
    assert not torch.equal(control.drop, gist.drop & real(gist))  # same counts, other candidates


def test_per_row_controls_do_not_match_per_block():
    """Only ``random_per_block`` copies where GIST drops; the per-row controls choose their blocks."""
    gist = scored("gist")
    expected = per_block(gist.drop & real(gist), gist.widths)
    for strategy in ("oracle_at_rate", "student_topk_at_rate"):
        assert not torch.equal(per_block(scored(strategy).drop, gist.widths), expected), strategy


@pytest.mark.parametrize("settings", GIST_SETTINGS)
def test_oracle_at_rate_cuts_to_same_class_and_fills_at_random(settings):
    gist, oracle = scored("gist", settings), scored("oracle_at_rate", settings)
    same = oracle.same_label & real(oracle)  # (B, N) the real same-class negatives
    k, have = (gist.drop & real(gist)).sum(1), same.sum(1)
    cut, fill = k <= have, k > have
    assert cut.any() and fill.any()  # both cases occur on this batch
    assert not (oracle.drop[cut] & ~same[cut]).any()  # cut: only same-class candidates
    assert torch.equal(oracle.drop[fill] & same[fill], same[fill])  # fill: every same-class one...
    assert torch.equal((oracle.drop & ~same).sum(1)[fill], (k - have)[fill])  # ...plus the rest


def test_oracle_at_rate_picks_a_random_subset_when_cutting():
    a, b = scored("oracle_at_rate", seed=0), scored("gist", seed=0)
    other = score_rows(
        *embeddings(0)[:3],
        layout("st", 4),
        slice(0, 64),
        strategy="oracle_at_rate",
        strategy_params=resolve_params("oracle_at_rate"),
        temperature=0.05,
        labels=embeddings(0)[3],
        generator=torch.Generator().manual_seed(999),
    )
    assert torch.equal(a.drop.sum(1), other.drop.sum(1)) and not torch.equal(a.drop, other.drop)
    assert torch.equal(a.drop.sum(1), (b.drop & real(b)).sum(1))


@pytest.mark.parametrize("settings", GIST_SETTINGS)
def test_student_topk_at_rate_drops_the_students_top_k(settings):
    gist, topk = scored("gist", settings), scored("student_topk_at_rate", settings)
    sims = topk.sims.detach()
    candidates = real(topk)
    k = (gist.drop & real(gist)).sum(1)
    for row in range(64):
        ranked = sims[row][candidates[row]].sort(descending=True).values
        chosen = sims[row][topk.drop[row]].sort(descending=True).values
        assert torch.equal(chosen, ranked[: int(k[row])]), row
    # the guide only sets k: a guide that drops the same counts elsewhere changes nothing
    assert not torch.equal(topk.drop, gist.drop & real(gist))


def test_student_topk_at_rate_by_hand():
    """Row 0: positive col 0; GIST drops 2 (guide 0.9, 0.8 > 0.7). Student's top 2 of the real
    negatives: cols 3 (0.6) and 2 (0.5), not col 4 (identical text, student 0.99)."""
    c = Candidates(
        student=torch.tensor([[0.4, 0.1, 0.5, 0.6, 0.99]]),
        student_pos=torch.tensor([[0.4]]),
        positive=torch.tensor([[True, False, False, False, False]]),
        guide=torch.tensor([[0.7, 0.9, 0.8, 0.1, 1.0]]),
        guide_pos=torch.tensor([[0.7]]),
        identical=torch.tensor([[False, False, False, False, True]]),
    )
    assert drop_mask("student_topk_at_rate", c).tolist() == [[False, False, True, True, False]]
    assert drop_mask("gist", c).tolist() == [[False, True, True, False, True]]


def test_gist_default_is_todays_rule_bit_for_bit():
    scores = scored("none")
    c = candidates_of(scores, layout("st", 4))
    for margin, how in ((0.0, "absolute"), (0.1, "absolute"), (0.3, "relative")):
        threshold = c.guide_pos - margin if how == "absolute" else c.guide_pos - c.guide_pos.abs() * margin
        today = c.guide > threshold
        assert torch.equal(drop_mask("gist", c, {"margin": margin, "margin_strategy": how}), today)
        assert torch.equal(
            drop_mask("gist", c, {"margin": margin, "margin_strategy": how, "blocks": "all"}), today
        )
    no_names = Candidates(**{**vars(c), "block": None})
    assert torch.equal(drop_mask("gist", no_names), drop_mask("gist", c))


@pytest.mark.parametrize("variant", ["st", "official"])
def test_gist_one_block_at_a_time(variant):
    blocks = layout(variant, 4)
    full = scored("gist", variant=variant)
    parts = {name: scored("gist", {"blocks": name}, variant=variant) for name in ("ap", "aa", "pp", "an")}
    union = torch.zeros_like(full.drop)
    for name, part in parts.items():
        inside = torch.tensor(
            [b.name == name or (name == "an" and b.name.startswith("an")) for b in blocks for _ in range(64)]
        )
        assert torch.equal(part.drop[:, inside], full.drop[:, inside]), name  # GIST's rule inside
        assert not part.drop[:, ~inside].any(), name  # every other block keeps all its candidates
        union |= part.drop
    assert torch.equal(union, full.drop)


def test_gist_block_choices_are_checked():
    from harness.errors import UserError

    with pytest.raises(UserError, match="blocks must be one of all, ap, aa, pp, an, pa, got 'an1'"):
        resolve_params("gist", {"blocks": "an1"})


@pytest.mark.parametrize("strategy", ["oracle_at_rate", "random_per_block"])
def test_random_controls_are_seeded_and_row_chunks_do_not_change_them(strategy):
    """One draw per candidate from the loss's generator, each row its own: GradCache's row chunks
    (4 chunks of 16 rows, one generator) give the masks of the whole batch at once."""
    whole = scored(strategy)
    assert torch.equal(whole.drop, scored(strategy).drop)  # reproducible per seed
    student, guide, ids, labels = embeddings(0)
    generator = torch.Generator().manual_seed(100)
    chunks = [
        score_rows(
            student,
            guide,
            ids,
            layout("st", 4),
            slice(begin, begin + 16),
            strategy=strategy,
            strategy_params=resolve_params(strategy),
            temperature=0.05,
            labels=labels,
            generator=generator,
        ).drop
        for begin in range(0, 64, 16)
    ]
    assert torch.equal(torch.cat(chunks), whole.drop)


def test_needs_and_listing_of_the_controls():
    assert needs("oracle_at_rate") == (True, True)
    assert needs("student_topk_at_rate") == needs("random_per_block") == (True, False)
    for name in CONTROLS:
        extra = {"unlabelled"} if name == "oracle_at_rate" else set()
        assert set(STRATEGIES.get(name).params) == {"margin", "margin_strategy", *extra}
    assert set(STRATEGIES.get("gist").params) == {"margin", "margin_strategy", "blocks"}


def test_ls_strategies_lists_the_controls_with_their_parameters(capsys):
    from harness.cli import main

    assert main(["ls", "strategies"]) == 0
    out = capsys.readouterr().out
    for name in (*CONTROLS, "all|ap|aa|pp|an"):
        assert name in out, name


def test_diagnostics_record_the_controls_drops_per_block():
    from harness.loss.diagnostics import StepTally

    blocks = layout("st", 4)
    for strategy in ("gist", *CONTROLS):
        scores = scored(strategy)
        tally = StepTally(blocks)
        tally.add(scores)
        summary = tally.summary()
        counts = per_block(scores.drop & real(scores), scores.widths).sum(0)
        eligible = per_block(real(scores), scores.widths).sum(0)
        for block, dropped, total in zip(blocks, counts.tolist(), eligible.tolist(), strict=True):
            assert summary[f"drop_rate_{block.name}"] == pytest.approx(dropped / total), (strategy, block)
    gist, control = scored("gist"), scored("random_per_block")
    for b in blocks:  # so the per-block rates of random_per_block are GIST's exactly
        g, r = StepTally(blocks), StepTally(blocks)
        g.add(gist)
        r.add(control)
        assert g.summary()[f"drop_rate_{b.name}"] == r.summary()[f"drop_rate_{b.name}"]


# --- through the loss: GradCache, validation -------------------------------------------------------


@pytest.mark.parametrize("strategy", CONTROLS)
def test_gradcache_gives_the_plain_loss(strategy):
    from test_distributed_loss import all_texts, features_for, guide_for, rows
    from test_train import tiny_student

    from harness.loss import GuidedInBatchLoss

    batch, labels = rows()
    values = []
    for mini_batch_size in (None, 4):
        student = tiny_student()
        loss = GuidedInBatchLoss(
            student,
            guide_for(all_texts(batch)),
            temperature=0.05,
            strategy=strategy,
            mini_batch_size=mini_batch_size,
            seed=3,
        )
        features, label_tensor = features_for(loss, batch, labels)
        value = loss(features, label_tensor)
        values.append(float(value.detach()))
        assert loss.diagnostics_history[-1]["drop_rate"] > 0
    assert values[0] == pytest.approx(values[1], abs=1e-6)


EXPERIMENT = """\
[study]
name = "controls"
sampler = "random"

[model]
pair = "all-minilm-l6__all-mpnet-base"

[data]
{data}

[train]
batch_size = 8
max_steps = 4

[objective]
suite = "dev"

[ablation]
seeds = [0]

[[ablation.arms]]
name = "gist"
strategy = "gist"

[[ablation.arms]]
name = "oracle-at-rate"
strategy = "oracle_at_rate"
margin = 0.05
"""


@pytest.mark.parametrize(
    "data,source",
    [
        ('sources = ["banking77-pairs", "stsb-train"]', "stsb-train"),
        ('mixture = "mini-medi"', None),
        ('sources = [{ source = "snli-triplets", cap = 100 }]', "snli-triplets"),
    ],
)
def test_oracle_at_rate_on_an_unlabelled_source_is_refused_in_one_line(tmp_path, capsys, data, source):
    from harness.cli import main

    path = tmp_path / "experiment.toml"
    path.write_text(EXPERIMENT.format(data=data), encoding="utf-8")
    before = sorted(tmp_path.rglob("*"))
    assert main(["validate", str(path)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "needs labels" in line]
    assert len(err) == 1, err
    assert "ablation.arms.1.strategy: strategy 'oracle_at_rate' needs labels, but source " in err[0]
    if source is not None:
        assert f"source {source} has no label column" in err[0]
    assert "valid: labelled sources amazon-cf-pairs, banking77-pairs, emotion-pairs" in err[0]
    runs = tmp_path / "runs"
    assert main(["run", str(path), "--runs-dir", str(runs), "--reports-dir", str(tmp_path / "reports")]) == 2
    assert sorted(tmp_path.rglob("*")) == before  # nothing written


def test_oracle_at_rate_on_labelled_sources_validates(tmp_path):
    from harness.config import load_experiment

    path = tmp_path / "experiment.toml"
    path.write_text(
        EXPERIMENT.format(data='sources = ["banking77-pairs", "emotion-pairs"]'), encoding="utf-8"
    )
    arm = load_experiment(path).arm("oracle-at-rate")
    assert (arm.strategy, arm.margin) == ("oracle_at_rate", 0.05)


def test_the_oracle_itself_is_refused_on_unlabelled_sources_too(tmp_path):
    from harness.config import ConfigError, load_experiment

    text = EXPERIMENT.format(data='sources = ["msrp-train"]').replace(
        'strategy = "oracle_at_rate"\nmargin = 0.05',
        'strategy = "random"\nstrategy_params = { match = "oracle" }',
    )
    path = tmp_path / "experiment.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    assert any("strategy 'random' needs labels, but source msrp-train" in e for e in info.value.errors)


def test_oracle_at_rate_with_the_random_policy_validates_beside_unlabelled_sources(tmp_path):
    """The mechanism study's declared policy: SNLI/MSRP rows (no label) get GIST's count at random."""
    from harness.config import load_experiment

    text = EXPERIMENT.format(data='sources = ["msrp-train", "banking77-pairs"]').replace(
        "margin = 0.05", 'margin = 0.05\nstrategy_params = { unlabelled = "random" }'
    )
    path = tmp_path / "experiment.toml"
    path.write_text(text, encoding="utf-8")
    arm = load_experiment(path).arm("oracle-at-rate")
    assert dict(arm.strategy_params) == {"unlabelled": "random"}
    assert needs("oracle_at_rate", {"unlabelled": "random"}) == (True, False)
    assert needs("oracle_at_rate") == (True, True)


def test_the_refusal_names_the_unlabelled_policy(tmp_path, capsys):
    from harness.cli import main

    path = tmp_path / "experiment.toml"
    path.write_text(EXPERIMENT.format(data='sources = ["msrp-train", "banking77-pairs"]'), encoding="utf-8")
    assert main(["validate", str(path)]) == 2
    assert "or strategy_params.unlabelled = 'random'" in capsys.readouterr().err


@pytest.mark.parametrize("settings", GIST_SETTINGS)
def test_oracle_at_rate_random_policy_is_the_oracle_on_labelled_rows_and_random_on_the_rest(settings):
    """Same draws: labelled rows pick as the default oracle; a batch without labels is random at GIST's count."""
    policy = {**settings, "unlabelled": "random"}
    assert torch.equal(scored("oracle_at_rate", policy).drop, scored("oracle_at_rate", settings).drop)
    student, guide, ids, _ = embeddings(0)
    unlabelled = score_rows(
        student,
        guide,
        ids,
        layout("st", len(student)),
        slice(0, 64),
        strategy="oracle_at_rate",
        strategy_params=resolve_params("oracle_at_rate", policy),
        temperature=0.05,
        labels=None,
        generator=torch.Generator().manual_seed(100),
    )
    gist = scored("gist", settings)
    k = (gist.drop & real(gist)).sum(1)
    assert torch.equal(unlabelled.drop.sum(1), k)  # GIST's count on every row
    assert not (unlabelled.drop & ~real(unlabelled)).any()
    assert not torch.equal(unlabelled.drop, gist.drop & real(gist))  # other candidates than GIST's
    with pytest.raises(AssertionError, match="needs labels"):
        score_rows(
            student,
            guide,
            ids,
            layout("st", len(student)),
            slice(0, 64),
            strategy="oracle_at_rate",
            strategy_params=resolve_params("oracle_at_rate", settings),
            temperature=0.05,
            labels=None,
            generator=torch.Generator().manual_seed(100),
        )


# --- two processes ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> dict:
    from ranks import launch

    out = tmp_path_factory.mktemp("controls-distributed")
    cases = [f"{s}-{mode}" for s in CONTROLS for mode in ("plain", "gradcache")]
    done = launch("controls_worker.py", str(out), json.dumps(cases))
    assert done.returncode == 0, done.stderr[-4000:]
    return torch.load(out / "results.pt")


@pytest.mark.parametrize("strategy", CONTROLS)
@pytest.mark.parametrize("mode", ["plain", "gradcache"])
def test_two_ranks_of_8_equal_one_process_of_16_seeded_per_rank(two_ranks, strategy, mode):
    """As ``random`` in test_distributed_loss: rank r's rows draw from ``seed + r``, over all 16 rows."""
    from controls_worker import SEED, loss_for
    from test_distributed_loss import all_texts, features_for, grads_of, guide_for, rows
    from test_train import tiny_student

    got = two_ranks["cases"][f"{strategy}-{mode}"]
    batch, labels = rows()
    student = tiny_student()
    loss_fn = loss_for(strategy, mode, student, guide_for(all_texts(batch)))
    features, label_tensor = features_for(loss_fn, batch, labels)
    loss = seeded_per_rank_loss(loss_fn, features, label_tensor, SEED)
    loss.backward()
    assert abs(got["loss"] - float(loss.detach())) <= 1e-5
    for name, grad in grads_of(student).items():
        torch.testing.assert_close(got["grads"][name], grad, atol=1e-5, rtol=1e-4, msg=name)


def seeded_per_rank_loss(loss_fn, features, labels, seed: int) -> torch.Tensor:
    """The 16 rows scored in the loss's row chunks, rows 0-7 drawing from ``seed``, 8-15 from ``seed + 1``."""
    from sentence_transformers.base.losses.merged_forward import embed_columns

    from harness.loss.collator import GUIDE_EMBEDDING, TEXT_ID

    ids = [f.pop(TEXT_ID) for f in features]
    guide = [f.pop(GUIDE_EMBEDDING) for f in features]
    for f in features:
        for key in [k for k in f if k.startswith("gist_")]:
            f.pop(key)
    student = embed_columns(loss_fn.model, features)
    total = student[0].new_zeros(())
    chunk = loss_fn.mini_batch_size or 8
    for rank in range(2):
        generator = torch.Generator().manual_seed(seed + rank)
        for begin in range(rank * 8, rank * 8 + 8, chunk):
            scores = score_rows(
                student,
                guide,
                ids,
                layout("st", len(features)),
                slice(begin, begin + chunk),
                strategy=loss_fn.strategy,
                strategy_params=loss_fn.strategy_params,
                temperature=loss_fn.temperature,
                labels=labels,
                generator=generator,
            )
            total = total + F.cross_entropy(scores.logits, scores.targets) * chunk / 16
    return total


@pytest.mark.parametrize(
    "arm,expected",
    [
        (
            'strategy_params = { blocks = "an" }',
            "gist with blocks = 'an' would drop nothing: the sources has pairs only",
        ),
        (
            'strategy_params = { blocks = "aa" }\ncontrast_anchors = false',
            "gist with blocks = 'aa' would drop nothing: contrast_anchors = false removes the aa block",
        ),
        (
            'strategy_params = { blocks = "pp" }\ncontrast_positives = false',
            "gist with blocks = 'pp' would drop nothing: contrast_positives = false removes the pp block",
        ),
        (
            'strategy_params = { blocks = "aa" }\nvariant = "mnrl"\ndirections = ["query_to_doc", "doc_to_doc"]',
            "gist with blocks = 'aa' would drop nothing: variant 'mnrl' has the aa block only with direction "
            "'query_to_query' in directions",
        ),
        (
            'strategy_params = { blocks = "pp" }\nvariant = "mnrl"',
            "gist with blocks = 'pp' would drop nothing: variant 'mnrl' has the pp block only with direction "
            "'doc_to_doc' in directions",
        ),
        (
            'strategy_params = { blocks = "pa" }\nvariant = "mnrl"',
            "gist with blocks = 'pa' would drop nothing: variant 'mnrl' has the pa block only with direction "
            "'doc_to_query' in directions",
        ),
        (
            'strategy_params = { blocks = "pa" }',
            "gist with blocks = 'pa' would drop nothing: the pa (doc_to_query) block exists only with variant "
            "'mnrl' and direction 'doc_to_query'",
        ),
    ],
)
def test_gist_on_a_block_the_loss_lacks_is_refused(tmp_path, arm, expected):
    from harness.config import ConfigError, load_experiment

    text = EXPERIMENT.format(data='sources = ["banking77-pairs"]').replace(
        'name = "gist"\nstrategy = "gist"\n', f'name = "gist"\nstrategy = "gist"\n{arm}\n'
    )
    path = tmp_path / "experiment.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    refused = [e for e in info.value.errors if "would drop nothing" in e]
    assert len(refused) == 1 and f"ablation.arms.0.strategy_params: {expected}" in refused[0], refused


def test_gist_on_one_block_validates_where_the_block_exists(tmp_path):
    from harness.config import load_experiment

    text = EXPERIMENT.format(data='sources = ["snli-triplets", "stsb-train"]')
    text = text.replace('strategy = "oracle_at_rate"', 'strategy = "random_per_block"').replace(
        'name = "gist"\nstrategy = "gist"\n',
        'name = "gist"\nstrategy = "gist"\nstrategy_params = { blocks = "an" }\n',
    )
    path = tmp_path / "experiment.toml"
    path.write_text(text, encoding="utf-8")
    experiment = load_experiment(path)
    config = experiment.trial_config(experiment.arm("gist").overrides())
    assert dict(config.strategy_params) == {"blocks": "an"}
