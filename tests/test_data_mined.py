"""``[train] mine``: hard negatives mined per source with the trial's guide, as a trial's own data view.

Three tiny sources (an NLI triplet source with its own ``negative`` column, a pair source, a labelled
pair source) and a fake guide (fixed random unit vectors per text) stand in for the real data and
guide: the view's negatives are the ones ``harness.data.mining.mine`` returns for each source's rows,
the filtered and unfiltered settings differ by the filter only, no mining changes nothing, and the
trial's record says what mining did.
"""

from __future__ import annotations

import json
import zlib

import pytest
import torch

from harness.config import ConfigError, Experiment, TrainConfig, validate_experiment
from harness.data import Component, MixtureSpec, build_mixture, training_sets
from harness.data.mining import MiningOptions, mine
from harness.results import MinedSource, RunRecord, TrialRecord
from harness.study.pipeline import RealPipeline

ROWS = 40  # per source: enough rows for duplicate-free batches of 4 with mined negatives in them
FILTERED = {"num_negatives": 1, "absolute_margin": 0.0}
UNFILTERED = {"num_negatives": 1}


class FakeGuide:
    """Fixed random unit vectors per text; counts the texts it is asked to embed."""

    fingerprint = "fake"

    def __init__(self) -> None:
        self.embedded = 0

    def embed(self, texts: list[str]) -> torch.Tensor:
        self.embedded += len(texts)
        rows = [
            torch.randn(32, generator=torch.Generator().manual_seed(zlib.crc32(t.encode()))) for t in texts
        ]
        return torch.nn.functional.normalize(torch.stack(rows), dim=-1)  # (N, 32)

    def save(self) -> None:
        pass


@pytest.fixture
def sources(tmp_path):
    def jsonl(name, rows):
        path = tmp_path / name
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        return f"file:{path}"

    nli = jsonl("nli.jsonl", [{"anchor": f"a man plays game {i}", "positive": f"someone plays {i}",
                               "negative": f"nobody plays {i}"} for i in range(ROWS)])  # fmt: skip
    sts = jsonl(
        "sts.jsonl",
        [{"anchor": f"the cat sat on mat {i}", "positive": f"a cat sits {i}"} for i in range(ROWS)],
    )
    cls = jsonl("cls.jsonl", [{"anchor": f"card question {i}", "positive": f"card issue {i + 1}",
                               "label": "card" if i % 2 else "cash"} for i in range(ROWS)])  # fmt: skip
    return nli, sts, cls


@pytest.fixture
def guide(monkeypatch):
    """Every guide the factory builds is one fake guide (``built`` counts the builds)."""
    import harness.guides

    fake = FakeGuide()
    fake.built = 0

    def build(name, **kwargs):
        fake.built += 1
        return fake

    monkeypatch.setattr(harness.guides, "build_guide", build)
    return fake


def experiment(sources, *arms: dict) -> Experiment:
    return Experiment.model_validate(
        {
            "study": {"name": "mined"},
            "model": {"pair": "all-minilm-l6__all-mpnet-base"},
            "data": {
                "sources": list(sources),
                "batching": "per_source",
                "negatives": "keep",
                "leakage": "warn",
            },
            "train": {"batch_size": 4},
            "objective": {"suite": "offline-sts", "tasks": ["local:BIOSSES"]},
            "ablation": {"arms": [{"name": "infonce", "strategy": "none", "guide": "none"}, *arms]},
        }
    )


def pipeline(sources) -> RealPipeline:
    """A pipeline over the three sources, prepared by hand (no leakage check against real suites)."""
    spec = MixtureSpec("m", tuple(Component(s) for s in sources))
    prepared = RealPipeline(experiment(sources), progress=False)
    prepared.mixture = build_mixture(spec, seed=0, dev_fraction=0, negatives="keep")
    return prepared


def config(sources, mine=None, **train) -> TrainConfig:
    return experiment(sources).trial_config({"strategy": "none", "mine": mine, **train})


def source_rows(mixture, source):
    rows = [i for i, s in enumerate(mixture.train_sources) if s == source]
    return [mixture.train["anchor"][i] for i in rows], [mixture.train["positive"][i] for i in rows]


def view_rows(dataset, n):
    columns = ["anchor", "positive", *[f"negative_{i}" for i in range(1, n + 1)]]
    return list(zip(*(dataset[c] for c in columns), strict=True))


@pytest.mark.parametrize(
    "mine_options",
    [
        FILTERED,
        UNFILTERED,
        {"num_negatives": 2, "relative_margin": 0.1},
        {"num_negatives": 2, "range_min": 1},
    ],
)
def test_each_source_gets_the_negatives_mine_returns_for_its_rows(sources, guide, mine_options):
    prepared = pipeline(sources)
    view = prepared.train_set(config(sources, mine_options))
    n = mine_options["num_negatives"]
    for source in sources:
        anchors, positives = source_rows(prepared.mixture, source)
        options = MiningOptions(**mine_options, output_format="n-tuple")  # sentence-transformers' rows
        expected, summary = mine(anchors, positives, FakeGuide().embed, options)
        rows = view_rows(view[source], n)
        full = [r for r in rows if r[0] not in r[2:]]  # rows with all n negatives mined
        assert sorted(full) == sorted(tuple(r.values())[: 2 + n] for r in expected)
        assert len(rows) == len(anchors)  # every row kept
        assert prepared.mining_record(config(sources, mine_options))[source].short_anchors == summary.short


def test_the_filtered_and_unfiltered_views_differ_by_the_filter_only(sources, guide):
    prepared = pipeline(sources)
    filtered = prepared.train_set(config(sources, FILTERED))
    unfiltered = prepared.train_set(config(sources, UNFILTERED))
    violations = 0
    for source in sources:
        a, b = filtered[source], unfiltered[source]
        assert a["anchor"] == b["anchor"] and a["positive"] == b["positive"]  # same rows, same order
        assert a.column_names == b.column_names
        for anchor, positive, mined, plain in zip(a["anchor"], a["positive"], a["negative_1"], b["negative_1"], strict=True):  # fmt: skip
            vectors = guide.embed([anchor, positive, mined, plain])  # (4, 32)
            s_pos, s_mined, s_plain = (vectors[0] @ vectors[1:].T).tolist()
            assert mined == anchor or s_mined <= s_pos + 1e-6  # the filter holds: never above the positive
            if s_plain < s_pos - 1e-6:  # the best candidate passes the filter: both arms mine it
                assert mined == plain
            elif s_plain > s_pos + 1e-6:
                violations += 1
    assert violations > 0  # without the filter, some negatives score above their positive


def test_the_count_control_gives_the_same_rows_a_negative_picked_without_the_filter(sources, guide):
    """``filters = "count"``: a row has a negative exactly where the filtered arm's row has one, and it
    is the unfiltered arm's negative (the guide's top candidate, above the positive or not)."""
    prepared = pipeline(sources)
    strict = {"num_negatives": 2, "absolute_margin": 0.1}
    filtered = prepared.train_set(config(sources, strict))
    unfiltered = prepared.train_set(config(sources, {"num_negatives": 2, "range_max": 21}))
    counted = prepared.train_set(config(sources, {**strict, "filters": "count"}))
    record = prepared.mining_record(config(sources, {**strict, "filters": "count"}))
    picked_above = 0
    for source in sources:
        a, b, c = (view_rows(v[source], 2) for v in (filtered, unfiltered, counted))
        for f, u, k in zip(a, b, c, strict=True):
            assert f[:2] == u[:2] == k[:2]
            found = [t for t in f[2:] if t != f[0]]
            assert [t for t in k[2:] if t != k[0]] == list(
                u[2 : 2 + len(found)]
            )  # same count, unfiltered picks
            picked_above += len(found) > 0 and k[2] != f[2]
        assert record[source].short_rows == prepared.mining_record(config(sources, strict))[source].short_rows
    assert picked_above > 0  # the control's picks differ from the filter's somewhere
    assert 0 < sum(r.negatives for r in record.values()) < 2 * sum(r.anchors for r in record.values())


def test_an_anchor_the_filter_leaves_short_keeps_its_row_with_the_placeholder(sources, guide):
    prepared = pipeline(sources)
    strict = config(sources, {"num_negatives": 2, "absolute_margin": 0.3})
    view = prepared.train_set(strict)
    record = prepared.mining_record(strict)
    for source in sources:
        rows = view_rows(view[source], 2)
        assert len(rows) == record[source].rows == prepared.mixture.counts[source]
        short = [r for r in rows if r[0] in r[2:]]
        assert len(short) == record[source].short_rows > 0
        positives = set(prepared.mixture.train["positive"])
        for anchor, _, first, second in short:  # found negatives first, then the anchor placeholder
            assert second == anchor and (first == anchor or first in positives)
    assert sum(r.negatives for r in record.values()) < 2 * sum(r.anchors for r in record.values())


def test_mined_negatives_replace_a_source_own_negative_column(sources, guide):
    nli, sts, _ = sources
    prepared = pipeline(sources)
    plain = prepared.train_set(config(sources))
    assert "negative" in plain[nli].column_names and "negative" not in plain[sts].column_names
    mined = prepared.train_set(config(sources, {"num_negatives": 2}))
    for source in sources:
        texts = [c for c in mined[source].column_names if c != "label"]
        assert texts == ["anchor", "positive", "negative_1", "negative_2"]
    assert not set(mined[nli]["negative_1"]) & {f"nobody plays {i}" for i in range(ROWS)}


def test_mixed_batches_take_the_mined_columns_too(sources, guide):
    prepared = pipeline(sources)
    mixed = prepared.train_set(config(sources, FILTERED, batching="mixed"))
    assert [c for c in mixed.column_names if c.startswith("negative")] == ["negative_1"]
    assert None not in mixed["negative_1"] and len(mixed) == sum(prepared.mixture.counts.values())


def test_the_view_key_holds_the_mine_settings_and_each_setting_mines_once(sources, guide):
    prepared = pipeline(sources)
    first = prepared.train_set(config(sources, FILTERED))
    embedded = guide.embedded
    assert prepared.train_set(config(sources, FILTERED, lr=1e-3)) is first  # same data, another lr
    assert guide.embedded == embedded  # not mined again
    assert prepared.train_set(config(sources, UNFILTERED)) is not first
    assert prepared.train_set(config(sources, FILTERED, max_seq_len=32)) is not first  # another guide cut
    assert prepared.train_set(config(sources)) is not first
    assert guide.built == 2  # one guide per (name, max_seq_len), whatever the settings


def test_the_mining_guide_is_the_guide_the_trials_train_with(sources, guide):
    prepared = pipeline(sources)
    prepared.train_set(config(sources, FILTERED))
    trained_with, seconds = prepared.guides.for_trial(config(sources, strategy="gist"), student=None)
    assert trained_with is guide and seconds == 0.0 and guide.built == 1  # built once, cache shared


def test_without_mine_the_view_and_the_records_are_as_before(sources, guide):
    prepared = pipeline(sources)
    plain = config(sources)
    assert plain.mine is None and TrainConfig().mine is None
    view = prepared.train_set(plain)
    before = training_sets(prepared.mixture, batching="per_source", negatives="keep", batch_size=4)
    assert {s: d.to_list() for s, d in view.items()} == {s: d.to_list() for s, d in before.items()}
    assert prepared.mining_record(plain) == {} and guide.built == 0
    assert RunRecord().mining == {}


def test_a_record_from_before_mine_existed_restores(sources):
    from harness.study.restore import config_change

    exp = experiment(sources)
    trained = exp.trial_config({**exp.arm_overrides("infonce"), "seed": 0}).model_dump(mode="json")
    older = TrialRecord(study="mined", number=0, state="COMPLETE", arm="infonce", seed=0,
                        config={k: v for k, v in trained.items() if k != "mine"})  # fmt: skip
    assert config_change(exp, older) is None


def test_the_trial_record_says_what_mining_did(sources, guide):
    nli, _, cls = sources

    class Stub(RealPipeline):
        def load_student(self):
            return None

        def _train_run(self, config, student, guide, **kwargs):
            return None, RunRecord(steps=1)

    prepared = Stub(experiment(sources), progress=False)
    prepared.mixture = pipeline(sources).mixture
    _, run = prepared.fit(config(sources, FILTERED), report=lambda value, step: None)
    assert set(run.mining) == set(sources)
    labelled, unlabelled = run.mining[cls], run.mining[nli]
    assert labelled.rows == labelled.anchors == labelled.corpus == ROWS
    assert labelled.same_label_rate is not None and labelled.same_label_rate_unfiltered is not None
    assert unlabelled.same_label_rate is None
    assert 0 < unlabelled.removed_share < 1 and set(unlabelled.removed) == {"absolute_margin"}
    assert RunRecord.model_validate_json(run.model_dump_json()).mining[cls] == labelled
    _, plain = prepared.fit(config(sources), report=lambda value, step: None)
    assert plain.mining == {}
    assert isinstance(labelled, MinedSource)


def test_prepare_mines_after_the_guide_has_its_corpus(sources, guide, monkeypatch):
    import harness.guides

    corpora = []
    monkeypatch.setattr(
        harness.guides, "build_guide", lambda name, **kw: corpora.append(kw["corpus"]) or guide
    )
    exp = experiment(sources, {"name": "mined", "strategy": "none", "mine": FILTERED})
    prepared = RealPipeline(exp, progress=False)
    prepared.prepare()
    assert len(corpora) == 1 and corpora[0] == prepared.guides.corpus  # mined in prepare, corpus first
    assert set(prepared.mining_record(exp.trial_config(exp.arm_overrides("mined")))) == set(sources)


VALID = """\
[study]
name = "mined"

[model]
pair = "all-minilm-l6__all-mpnet-base"

[data]
mixture = "mini-medi"

[objective]
suite = "dev"

[ablation]
seeds = [0]

[[ablation.arms]]
name = "infonce"
strategy = "none"
guide = "none"

[[ablation.arms]]
name = "mined"
strategy = "none"
"""


def errors(arm: str, data: str = "") -> list[str]:
    import tomllib

    text = VALID.replace('[data]\nmixture = "mini-medi"', '[data]\nmixture = "mini-medi"' + data) + arm
    with pytest.raises(ConfigError) as info:
        validate_experiment(tomllib.loads(text), text=text)
    return info.value.errors


def test_a_mined_arm_validates():
    import tomllib

    text = VALID + "mine = { num_negatives = 1, absolute_margin = 0.0 }\n"
    experiment = validate_experiment(tomllib.loads(text), text=text)
    assert experiment.trial_config(experiment.arm_overrides("mined")).mine.absolute_margin == 0.0


@pytest.mark.parametrize(
    ("arm", "data", "message"),
    [
        ('mine = { num_negatives = 1 }\nguide = "none"\n', "",
         "ablation.arms.1.mine: mine ranks candidates with the trial's guide, and guide 'none' has none"),
        ('mine = { num_negatives = 1 }\nguide = "self"\n', "", "guide 'self' has none before training"),
        ("mine = { num_negatives = 1 }\n", '\nnegatives = "drop"',
         "ablation.arms.1.mine: negatives = 'drop' would drop the mined negative columns"),
        ("mine = { num_negatives = 0 }\n", "",
         "ablation.arms.1.mine.num_negatives: Input should be greater than or equal to 1 (got 0)"),
        ('mine = { sampling_strategy = "hardest" }\n', "",
         "ablation.arms.1.mine.sampling_strategy: Input should be 'top' or 'random' (got 'hardest')"),
        ("mine = { margin_quantile = 1.5 }\n", "",
         "ablation.arms.1.mine.margin_quantile: Input should be a quantile in [0, 1] (got 1.5)"),
        ('mine = { num_negatives = 1, filters = "count" }\n', "",
         "ablation.arms.1.mine: filters = 'count' needs a filter to count with (one of absolute_margin"),
        ("mine = { num_negative = 1 }\n", "",
         "ablation.arms.1.mine.num_negative: unknown field. Did you mean 'num_negatives'? Valid: num_negatives"),
    ],
)  # fmt: skip
def test_a_bad_mine_setting_is_one_line_naming_the_field_and_the_valid_values(arm, data, message):
    found = errors(arm, data)
    assert len(found) == 1 and message in found[0], found


TUNED = """
[tuning]
trials = 2
suite = "dev"

[tuning.space.lr]
type = "float"
low = 1e-5
high = 1e-4
log = true

[tuning.arm_space.mined."mine.absolute_margin"]
type = "float"
low = -0.05
high = 0.05
"""


def tuned_mining(follower: str = "") -> str:
    arms = VALID.replace('[objective]\nsuite = "dev"', '[objective]\nsuite = "offline-sts"')
    return arms + "mine = { num_negatives = 1, absolute_margin = 0.0, range_max = 20 }\n" + follower + TUNED


def test_a_mining_option_is_searched_and_a_follower_takes_it_under_its_own_entries():
    """``mine.NAME`` in a search space: the tuned value lands in the arm's mine table beside the
    entries it was given; a control that follows it keeps its own table, as any field it sets, except
    the searched entries, which it takes from the leader (it counts with the filter the arm was tuned to)."""
    import tomllib

    from harness.config.tuning import with_tuned

    follower = '\n[[ablation.arms]]\nname = "unfiltered"\nstrategy = "none"\nfollows = "mined"\n'
    follower += 'mine = { absolute_margin = 0.0, filters = "count" }\n'
    text = tuned_mining(follower)
    experiment = validate_experiment(tomllib.loads(text), text=text)
    tuned = with_tuned(experiment, {"mined": {"lr": 3e-5, "mine.absolute_margin": 0.02}})
    mined = tuned.trial_config(tuned.arm_overrides("mined"))
    assert (mined.lr, mined.mine.absolute_margin, mined.mine.range_max) == (3e-5, 0.02, 20)
    control = tuned.trial_config(tuned.arm_overrides("unfiltered"))  # counts with the tuned filter
    assert control.lr == 3e-5 and control.mine.filters == "count"
    assert (control.mine.absolute_margin, control.mine.range_max, control.mine.num_negatives) == (
        0.02,
        None,
        3,
    )
    untuned = experiment.trial_config(experiment.arm_overrides("unfiltered"))  # its own table, as before
    assert (untuned.mine.absolute_margin, untuned.mine.filters, untuned.mine.range_max) == (
        0.0,
        "count",
        None,
    )
    one = experiment.trial_config({**experiment.arm_overrides("mined"), "mine.num_negatives": 2})
    assert (one.mine.num_negatives, one.mine.absolute_margin, one.mine.range_max) == (2, 0.0, 20)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("mine = { num_negatives = 1, absolute_margin = 0.0, range_max = 20 }\n", ""),
         "tuning.arm_space.mined.mine.absolute_margin: arm 'mined': this trial mines nothing: set [train] mine"),
        (lambda t: t.replace('"mine.absolute_margin"', '"mine.absolute_margn"'),
         "mine.absolute_margn: arm 'mined': unknown field. Did you mean 'absolute_margin'?"),
        (lambda t: t.replace('"mine.absolute_margin"', '"mine.num_negatives"').replace("low = -0.05", "low = 0"),
         "tuning.arm_space.mined.mine.num_negatives: arm 'mined': Input should be greater than or equal to 1"),
        (lambda t: t.replace('"mine.absolute_margin"', '"lr.absolute_margin"'),
         "tuning.arm_space.mined.lr.absolute_margin: arm 'mined': not a training field"),
    ],
)  # fmt: skip
def test_a_searched_mining_option_is_checked_like_a_set_one(edit, message):
    import tomllib

    text = edit(tuned_mining())
    with pytest.raises(ConfigError) as info:
        validate_experiment(tomllib.loads(text), text=text)
    assert any(message in e for e in info.value.errors), info.value.errors


def test_a_tuned_mining_option_keeps_the_train_tables_other_entries():
    """An arm that mines through ``[train] mine`` (none of its own): the tuned entry joins that table."""
    import tomllib

    from harness.config.tuning import with_tuned

    arms = VALID.replace('[objective]\nsuite = "dev"', '[objective]\nsuite = "offline-sts"')
    arms = arms.replace(
        'name = "infonce"\nstrategy = "none"\nguide = "none"\n', 'name = "infonce"\nstrategy = "none"\n'
    )
    text = arms + "\n[train]\nmine = { num_negatives = 1, absolute_margin = 0.0, range_max = 20 }\n" + TUNED
    experiment = validate_experiment(tomllib.loads(text), text=text)
    assert experiment.arm("mined").mine is None and experiment.train.mine is not None
    tuned = with_tuned(experiment, {"mined": {"lr": 3e-5, "mine.absolute_margin": 0.02}})
    mined = tuned.trial_config(tuned.arm_overrides("mined")).mine
    assert (mined.num_negatives, mined.absolute_margin, mined.range_max) == (1, 0.02, 20)
