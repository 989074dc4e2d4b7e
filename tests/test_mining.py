"""Hard-negative mining (``harness.data.mining``, ``gist-harness mine``) on tiny hand-placed vectors.

One anchor ``a`` = (1, 0) and unit vectors whose cosine with it is their first coordinate:

    text  vector             s(a, text)   label
    c1    (0.9, 0.43589)     0.9          x   (scored above the positive: a false negative)
    p     (0.8, 0.6)         0.8          x   (the positive)
    c2    (0.6, 0.8)         0.6          y
    c3    (0.0, 1.0)         0.0          y
    c4    (-0.6, 0.8)       -0.6          x

The corpus is [c1, c2, c3, c4] plus the positive; the positive is never a candidate, so the
candidates best first are c1, c2, c3, c4 and the gaps s_pos - s_cand are -0.1, 0.2, 0.8, 1.4.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from harness.cli import main
from harness.data.mining import MiningOptions, mine, source_rows
from harness.errors import UserError

VECTORS = {
    "a": (1.0, 0.0),
    "p": (0.8, 0.6),
    "c1": (0.9, math.sqrt(1 - 0.81)),
    "c2": (0.6, 0.8),
    "c3": (0.0, 1.0),
    "c4": (-0.6, 0.8),
}
CORPUS = ["c1", "c2", "c3", "c4"]
LABELS = {"a": "x", "p": "x", "c1": "x", "c2": "y", "c3": "y", "c4": "x"}


def embed(texts: list[str]) -> torch.Tensor:
    return torch.tensor([VECTORS[t] for t in texts])  # (N, 2)


def negatives(anchors=("a",), positives=("p",), corpus=CORPUS, **options) -> list[str]:
    rows, _ = mine(list(anchors), list(positives), embed, MiningOptions(**options), corpus=corpus)
    return [r["negative"] for r in rows]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, ["c1", "c2"]),  # the hardest two; the positive is excluded
        ({"range_min": 1}, ["c2", "c3"]),  # skips the best candidate
        ({"absolute_margin": 0.0}, ["c2", "c3"]),  # 0.9 + 0 > 0.8: c1 removed
        ({"absolute_margin": 0.25}, ["c3", "c4"]),  # 0.6 + 0.25 > 0.8: c2 removed too
        ({"relative_margin": 0.3}, ["c3", "c4"]),  # threshold 0.8 - 0.8 x 0.3 = 0.56 < 0.6
        ({"relative_margin": 0.2}, ["c2", "c3"]),  # threshold 0.64 > 0.6: c2 kept
        ({"max_score": 0.7}, ["c2", "c3"]),
        ({"min_score": 0.5}, ["c1", "c2"]),
        ({"rank_margin": 0}, ["c2", "c3"]),  # c1 ranks above the positive
        ({"rank_margin": 1}, ["c3", "c4"]),  # and c2 is the first below it
        ({"margin_quantile": 0.5}, ["c3", "c4"]),  # median gap (0.2 + 0.8) / 2 = 0.5 > 0.2
        ({"margin_quantile": 0.0}, ["c1", "c2"]),  # margin = the smallest gap: removes nothing
    ],
)
def test_top_negatives_worked_by_hand(options, expected):
    assert negatives(num_negatives=2, **options) == expected


def test_a_filter_that_leaves_too_few_writes_only_what_remains():
    assert negatives(num_negatives=2, min_score=0.7) == ["c1"]
    options = MiningOptions(num_negatives=2, min_score=0.7, output_format="n-tuple")
    rows, summary = mine(["a"], ["p"], embed, options, corpus=CORPUS)
    assert rows == [] and summary.short == 1  # n-tuples need all n negatives


def test_the_margin_uses_the_hardest_positive_and_every_positive_is_excluded():
    # a has positives p (0.8) and c2 (0.6): the margin is against 0.6, and c2 is never its negative
    assert negatives(["a", "a"], ["p", "c2"], num_negatives=2) == ["c1", "c3"] * 2
    assert negatives(["a", "a"], ["p", "c2"], num_negatives=2, absolute_margin=0.0) == ["c3", "c4"] * 2


def test_the_anchor_is_never_its_own_negative():
    assert negatives(corpus=["a", *CORPUS], num_negatives=2) == ["c1", "c2"]


def test_default_corpus_is_the_positives_of_other_anchors():
    # rows (a, p) and (c2, c3): a's candidates are the positives p (its own) and c3
    rows, summary = mine(["a", "c2"], ["p", "c3"], embed, MiningOptions(num_negatives=1))
    assert [(r["anchor"], r["negative"]) for r in rows] == [("a", "c3"), ("c2", "p")]
    assert summary.corpus == 2


def test_random_sampling_stays_in_the_window_and_is_seeded():
    options = {"num_negatives": 2, "sampling_strategy": "random", "absolute_margin": 0.0, "range_max": 3}
    first = negatives(seed=1, **options)
    assert set(first) <= {"c2", "c3", "c4"} and len(set(first)) == 2  # c1 removed by the margin
    assert negatives(seed=1, **options) == first
    scores = [VECTORS[t][0] for t in first]
    assert scores == sorted(scores, reverse=True)  # resorted best first, as sentence-transformers


def test_output_formats():
    options = {"num_negatives": 2}
    triplets, _ = mine(["a"], ["p"], embed, MiningOptions(**options), corpus=CORPUS, labels=LABELS)
    assert triplets == [
        {"anchor": "a", "positive": "p", "negative": "c1", "label": "x"},
        {"anchor": "a", "positive": "p", "negative": "c2", "label": "x"},
    ]
    ntuple, _ = mine(["a"], ["p"], embed, MiningOptions(**options, output_format="n-tuple"), corpus=CORPUS)
    assert ntuple == [{"anchor": "a", "positive": "p", "negative_1": "c1", "negative_2": "c2"}]
    pairs, _ = mine(
        ["a"], ["p"], embed, MiningOptions(**options, output_format="labeled-pair"), corpus=CORPUS
    )
    assert [(r["document"], r["label"]) for r in pairs] == [("p", "1"), ("c1", "0"), ("c2", "0")]


def test_summary_counts_what_each_filter_removed():
    options = MiningOptions(num_negatives=2, absolute_margin=0.25, max_score=0.5, range_max=4)
    _, summary = mine(["a"], ["p"], embed, options, corpus=CORPUS)
    assert summary.window == 6  # range_max + 1 positive + 1
    assert summary.considered == 6
    assert summary.excluded == {"padding": 1, "anchor itself": 0, "positives": 1}  # 5 texts, window 6
    assert summary.removed == {"absolute_margin": 2, "max_score": 0}  # c1, c2 removed first by the margin
    assert summary.removed_alone == {"absolute_margin": 2, "max_score": 2}
    assert summary.negatives == 2 and summary.short == 0


def test_calibrated_margin_reports_what_it_resolved_to():
    _, summary = mine(["a"], ["p"], embed, MiningOptions(num_negatives=1, margin_quantile=0.5), corpus=CORPUS)
    assert summary.resolved_margin == pytest.approx(0.5)
    assert summary.removed == {"margin_quantile": 2}


def test_false_negative_rates():
    options = MiningOptions(num_negatives=2, absolute_margin=0.0)
    _, summary = mine(["a"], ["p"], embed, options, corpus=CORPUS, labels=LABELS)
    assert summary.false_negative_rate == 0.0  # c2, c3: both y
    assert summary.false_negative_rate_unfiltered == 0.5  # c1 (x), c2 (y)
    assert summary.false_negative_rate_random == 0.5  # c1, c4 of c1..c4 share a's label


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"corpus": []}, "the corpus is empty"),
        ({"range_max": 9}, "range_max 9 exceeds the corpus (5 texts)"),
        ({"range_min": 4, "num_negatives": 2}, "range_min 4 + num_negatives 2 exceeds the corpus (5 texts)"),
        ({"num_negatives": 0}, "num_negatives must be >= 1, got 0"),
        ({"sampling_strategy": "best"}, "sampling_strategy 'best': expected one of top, random"),
        ({"margin_quantile": 1.5}, "margin_quantile must be in [0, 1], got 1.5"),
    ],
)
def test_bad_options_are_one_line_errors(kwargs, message):
    corpus = kwargs.pop("corpus", CORPUS)
    with pytest.raises(UserError) as error:
        mine(["a"], ["p"], embed, MiningOptions(**kwargs), corpus=corpus)
    assert message in str(error.value) and "\n" not in str(error.value)


# --- the command: files in, file out ------------------------------------------------------------

PAIRS = [
    {"query": "how do I reset my card pin", "doc": "changing the pin of my card", "label": "pin"},
    {"query": "my card pin is blocked", "doc": "unblock the pin please", "label": "pin"},
    {"query": "where is my new card", "doc": "card has not arrived yet", "label": "arrival"},
    {"query": "card still not delivered", "doc": "how long does card delivery take", "label": "arrival"},
    {"query": "exchange rate for euros", "doc": "what rate do you use for currency", "label": "rate"},
]


@pytest.fixture
def pair_file(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in PAIRS), encoding="utf-8")
    return path


def mine_cli(pair_file, out, *extra: str) -> int:
    args = ["mine", f"file:{pair_file}", "--guide", "tfidf", "--out", str(out), "--no-progress"]
    return main([*args, "--anchor-column", "query", "--positive-column", "doc", *extra])


def test_cli_mines_a_user_file_with_a_lexical_guide(pair_file, tmp_path, capsys):
    out = tmp_path / "mined.jsonl"
    assert mine_cli(pair_file, out, "--num-negatives", "2", "--output-format", "n-tuple") == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 5 and set(rows[0]) == {"anchor", "positive", "negative_1", "negative_2", "label"}
    assert all(r["positive"] not in (r["negative_1"], r["negative_2"]) for r in rows)
    assert "candidates considered" in capsys.readouterr().out


def test_source_rows_reads_labels_and_names_a_missing_column(pair_file):
    anchors, positives, labels = source_rows(
        f"file:{pair_file}", anchor_column="query", positive_column="doc"
    )
    assert anchors[0] == PAIRS[0]["query"] and positives[0] == PAIRS[0]["doc"]
    assert labels[PAIRS[2]["doc"]] == "arrival"
    with pytest.raises(UserError, match="missing column.*'question'"):
        source_rows(f"file:{pair_file}", anchor_column="question", positive_column="doc")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--range-max", "99"], "range_max 99 exceeds the corpus (5 texts)"),
        (["--corpus", "file:EMPTY"], "has no rows"),
    ],
)
def test_cli_bad_input_leaves_no_file(pair_file, tmp_path, capsys, extra, message):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    extra = [e.replace("EMPTY", str(empty)) for e in extra]
    out = tmp_path / "mined.jsonl"
    assert mine_cli(pair_file, out, *extra) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob("mined.jsonl*"))


def test_cli_unknown_guide_is_named(pair_file, tmp_path, capsys):
    out = tmp_path / "mined.jsonl"
    args = ["mine", f"file:{pair_file}", "--guide", "no-such-guide", "--out", str(out)]
    assert main([*args, "--anchor-column", "query", "--positive-column", "doc"]) == 2
    assert "unknown guide 'no-such-guide'" in capsys.readouterr().err and not out.exists()


def test_cli_refuses_a_guide_that_needs_a_student(pair_file, tmp_path, capsys):
    assert main(["mine", f"file:{pair_file}", "--guide", "self", "--out", str(tmp_path / "m.jsonl")]) == 2
    assert "guide 'self' cannot mine" in capsys.readouterr().err


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["mine", "--help"])
    text = capsys.readouterr().out
    for option in MiningOptions.__dataclass_fields__:
        assert "--" + option.replace("_", "-") in text


def test_mined_file_loads_in_an_experiment(pair_file, tmp_path):
    from harness.config.load import validate_experiment
    from harness.data import build_mixture

    out = tmp_path / "mined.jsonl"
    assert mine_cli(pair_file, out, "--num-negatives", "1") == 0
    experiment = validate_experiment(
        {
            "study": {"name": "mined"},
            "model": {"student": "static-minilm", "guide": "none"},
            "data": {"sources": [f"file:{out}"], "negatives": "keep"},
            "train": {"batch_size": 2},
            "objective": {"suite": "dev", "tasks": ["local:STSBenchmark"]},
            "ablation": {"seeds": [0], "arms": [{"name": "infonce", "strategy": "none"}]},
        }
    )
    mixture = build_mixture(experiment.data.sources[0], dev_fraction=0.0, negatives="keep")
    assert mixture.train.column_names == ["anchor", "positive", "negative", "label"]
    assert len(mixture.train) == 5


def test_an_experiment_names_a_missing_file():
    from harness.config.load import ConfigError, validate_experiment

    with pytest.raises(ConfigError, match="no such training file '/no/such.jsonl'"):
        validate_experiment(
            {
                "study": {"name": "mined"},
                "model": {"student": "static-minilm", "guide": "none"},
                "data": {"sources": ["file:/no/such.jsonl"]},
                "objective": {"suite": "dev", "tasks": ["local:STSBenchmark"]},
                "ablation": {"seeds": [0], "arms": [{"name": "infonce", "strategy": "none"}]},
            }
        )


def test_printed_summary_gives_filter_shares_of_the_candidates_left():
    from harness.cli.mine_cmd import summary_rows

    options = MiningOptions(num_negatives=2, absolute_margin=0.25, max_score=0.5, range_max=4)
    _, summary = mine(["a"], ["p"], embed, options, corpus=CORPUS)
    rows = {r["step"]: r for r in summary_rows(summary)}
    assert rows["candidates left"]["count"] == 4  # 6 considered - 1 padding - 1 positive
    assert rows["removed by absolute_margin = 0.25"]["share"] == "50.00%"  # c1, c2 of 4
    assert rows["removed by max_score = 0.5"]["share"] == "0.00%"  # c1, c2 already gone
    assert rows["removed by max_score = 0.5"]["alone"] == "50.00%"
