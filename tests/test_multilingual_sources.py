"""The multilingual training sources (``stsb-multi-<lang>``, ``stsb-translation-<l1>-<l2>``): listing,
bad codes, an experiment that names them, their rows, and the aligned leakage drop (a line leaking in
one language is dropped in every language)."""

from __future__ import annotations

import json
import textwrap

import pytest

from harness.config import ConfigError, load_experiment
from harness.data import DATASETS, build_mixture, check_training_data, drop_leaked, listing, source_examples
from harness.data.leakage import check_leakage
from harness.data.mixtures import Component, MixtureSpec
from harness.data.multilingual import LANGUAGES, TRANSLATION_PAIRS, train_rows
from harness.errors import UserError
from harness.registry import UnknownNameError

VALID = "valid codes: en, de, es, fr, it, nl, pl, pt, ru, zh"

EXPERIMENT = """\
[study]
name = "multilingual-sources"
sampler = "random"
pruner = "none"

[model]
student = "static-multilingual-e5"
guide = "multilingual-e5-small-q4"

[data]
sources = [
    { source = "stsb-multi-de" },
    { source = "stsb-multi-zh", cap = 500 },
    { source = "stsb-translation-ru-en" },
]
leakage = "drop"

[train]
epochs = 1
batch_size = 64

[objective]
suite = "offline-multilingual"
tasks = ["local:STSBenchmarkMultilingualSTS"]

[final]
suite = "offline-multilingual"

[ablation]
seeds = [0]
baseline = "infonce"

[[ablation.arms]]
name = "infonce"
strategy = "none"
guide = "none"

[[ablation.arms]]
name = "gist"
strategy = "gist"
"""


def test_languages_are_mteb_s_subsets_in_its_order():
    from harness.tasks.multilingual import STSB_LANGUAGES

    assert tuple(STSB_LANGUAGES) == LANGUAGES


def test_every_language_and_pair_is_registered_and_listed(capsys):
    from harness.cli import main

    names = {f"stsb-multi-{lang}" for lang in LANGUAGES}
    names |= {f"stsb-translation-{a}-{b}" for a, b in TRANSLATION_PAIRS}
    assert len(names) == 10 + 45 and names <= set(DATASETS.names())
    assert all(b == "en" for a, b in TRANSLATION_PAIRS if "en" in (a, b))  # English last: de-en
    assert main(["ls", "datasets", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert names <= set(rows) and rows["stsb-multi-zh"]["examples"] == 1344
    assert rows["stsb-translation-zh-en"]["kind"] == "offline"
    assert {row["name"] for row in listing()} >= names


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "stsb-multi-ja",
            f"dataset 'stsb-multi-ja': unknown language code 'ja'; {VALID} (stsb-multi-<lang>)",
        ),
        ("stsb-translation-de-xx", f"unknown language code 'xx'; {VALID}"),
        ("stsb-translation-en-de", "registered as 'stsb-translation-de-en'"),
        ("stsb-translation-de-de", f"two different codes; {VALID}"),
    ],
)
def test_an_unknown_code_is_a_one_line_error_listing_the_valid_codes(name, expected):
    with pytest.raises(UnknownNameError) as info:
        DATASETS.get(name)
    assert expected in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(UserError, match=expected.split(";")[0].replace("(", r"\(").replace(")", r"\)")):
        build_mixture(name)


def test_an_experiment_names_them_and_validates(tmp_path):
    path = tmp_path / "experiment.toml"
    path.write_text(textwrap.dedent(EXPERIMENT), encoding="utf-8")
    experiment = load_experiment(path)
    assert [r.source for r in experiment.data.source_refs] == [
        "stsb-multi-de",
        "stsb-multi-zh",
        "stsb-translation-ru-en",
    ]
    path.write_text(EXPERIMENT.replace("stsb-multi-zh", "stsb-multi-ja"), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    assert (
        f"line 11: data.sources.1.source: dataset 'stsb-multi-ja': unknown language code 'ja'; {VALID}"
        in str(info.value)
    )


@pytest.mark.slow
def test_positives_are_the_same_1406_lines_in_every_language(data_dir):
    lines = {lang: [e["line"] for e in source_examples(f"stsb-multi-{lang}", data_dir)] for lang in LANGUAGES}
    assert all(len(found) == 1406 for found in lines.values())
    assert all(found == lines["en"] for found in lines.values())
    de = source_examples("stsb-multi-de", data_dir)[0]
    assert de["anchor"] == train_rows(data_dir, "de")[de["line"]]["sentence1"]
    assert len(source_examples("stsb-multi-de", data_dir, min_score=3.0)) > 1406


@pytest.mark.slow
def test_translation_pairs_hold_one_line_in_two_languages(data_dir):
    pairs = source_examples("stsb-translation-zh-en", data_dir)
    assert len(pairs) == 2 * 5749  # every sentence of zh and en has a word
    first = pairs[0]
    zh, en = train_rows(data_dir, "zh")[first["line"]], train_rows(data_dir, "en")[first["line"]]
    assert (first["anchor"], first["positive"]) == (zh["sentence1"], en["sentence1"])
    assert (pairs[1]["anchor"], pairs[1]["positive"]) == (zh["sentence2"], en["sentence2"])
    # nl's sentences without a word ('.') make no translation pair; untranslated nl lines are cleaned
    nl = source_examples("stsb-translation-nl-en", data_dir)
    assert len(nl) == 2 * 5749 - 3 and all(any(c.isalnum() for c in e["anchor"]) for e in nl)
    mixture = build_mixture("stsb-translation-nl-en", data_dir, dev_fraction=0)
    assert mixture.removed["stsb-translation-nl-en"]["identical"] > 0


def _mixture(data_dir, *sources):
    spec = MixtureSpec("m", tuple(Component(s) for s in sources))
    return build_mixture(spec, data_dir, seed=0, dev_fraction=0.05, negatives="keep")


@pytest.mark.slow
def test_a_line_leaking_in_one_language_is_dropped_in_every_language(data_dir):
    """The eval set holds only the English text (with Tatoeba's trailing newline) of one positive line:
    its German, Chinese and German-English rows are dropped, and nothing else."""
    mixture = _mixture(data_dir, "stsb-multi-de", "stsb-multi-zh", "stsb-translation-de-en")
    rows = list(zip(mixture.train_sources, mixture.train_lines, strict=True))
    line = min(set.intersection(*({n for s, n in rows if s == source} for source in mixture.counts)))
    english = train_rows(data_dir, "en")[line]["sentence1"]
    report = check_leakage(
        mixture.texts_by_source(), {"local:Tatoeba": {"test": [english + "\n"]}}, policy="drop"
    )
    assert {o.source for o in report.leaks} == {"stsb-multi-de", "stsb-multi-zh", "stsb-translation-de-en"}
    dropped = drop_leaked(mixture, report)
    after_rows = list(zip(dropped.train_sources, dropped.train_lines, strict=True))
    for source in mixture.counts:
        before = sum(1 for s, n in rows if s == source and n == line)
        after = sum(1 for s, n in after_rows if s == source and n == line)
        assert before > 0 and after == 0 and dropped.leaked_lines[source] == (line,)
        kept = dropped.counts[source] + dropped.dev_counts[source]
        assert kept == mixture.counts[source] + mixture.dev_counts[source] - dropped.removed[source]["leaked"]
        assert dropped.removed[source]["leaked"] == before  # only that line's rows (none in dev)


@pytest.mark.slow
def test_the_check_against_offline_multilingual_drops_whole_lines(data_dir):
    """Against every task of the suite (Tatoeba included): a line dropped from one source is dropped from
    every source that uses it, whichever language's text leaked."""
    from harness.evaluate import suite_texts

    texts = suite_texts("offline-multilingual", data_dir)
    assert {"local:Tatoeba", "local:STSBenchmarkMultilingualSTS", "local:STSBenchmarkCrossLingual"} <= set(
        texts[0]
    )
    mixture = _mixture(data_dir, "stsb-multi-ru", "stsb-translation-zh-en")
    report = check_training_data(mixture.texts_by_source(), [texts], policy="drop")
    dropped = drop_leaked(mixture, report)
    leaked = set().union(*dropped.leaked_lines.values())
    assert dropped.leaked_lines["stsb-multi-ru"] and dropped.leaked_lines["stsb-translation-zh-en"]
    for source, lines in mixture.line_texts.items():  # the lines each source used before the drop
        assert set(lines) & leaked == set(dropped.leaked_lines[source])
    remaining = {n for s, n in zip(dropped.train_sources, dropped.train_lines, strict=True)}
    remaining |= {n for s, n in zip(dropped.dev_sources, dropped.dev_lines, strict=True)}
    assert remaining and not remaining & leaked


@pytest.mark.slow
def test_the_held_out_tuning_lines_leave_every_source(data_dir):
    """With ``multilingual-dev`` (every tenth train line, scored for tuning) among the study's suites,
    none of those lines trains, in any language."""
    from harness.evaluate import suite_texts

    suites = [suite_texts(name, data_dir) for name in ("multilingual-dev", "offline-multilingual")]
    mixture = _mixture(data_dir, "stsb-multi-pl", "stsb-translation-de-en")
    dropped = drop_leaked(mixture, check_training_data(mixture.texts_by_source(), suites, policy="drop"))
    trained = set(dropped.train_lines) | set(dropped.dev_lines)
    assert trained and not {line for line in trained if line % 10 == 0}
