"""Local multilingual tasks and the offline-multilingual suite: data equal to MTEB's, subset selection,
non-Latin scripts end to end, and published all-MiniLM-L6-v2 scores reproduced (slow)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import mteb
import pytest

from harness.embedding_cache import CachedEncoder
from harness.errors import UserError
from harness.evaluate import SUITES, Suite, SuiteTask, evaluate, overlapping_tasks, suite_tasks
from harness.files import read_stsb_multi, read_tatoeba
from harness.registry import UnknownNameError
from harness.tasks import get_task
from harness.tasks.multilingual import STSB_LANGUAGES, TATOEBA_SOURCES

STATS = Path(mteb.__file__).parent / "descriptive_stats"
TATOEBA_SUBSETS = [f"{x}-eng" for x in TATOEBA_SOURCES]
# MTEB's published all-MiniLM-L6-v2 Tatoeba F1 (main score), embeddings-benchmark/results @ 319e81d6,
# results/sentence-transformers__all-MiniLM-L6-v2/8b3219a92973c328a8e22fadcfa821b5dc75636a/Tatoeba.json
# (mteb 1.12.75, dataset revision 69e8f12d = the one MANIFEST.md compares with).
PUBLISHED_TATOEBA = {
    "ara-eng": 4.803225056760284e-05,
    "cmn-eng": 0.019155437048838535,
    "deu-eng": 0.07891272250150178,
    "fra-eng": 0.08172449236978181,
    "ita-eng": 0.09896345214301576,
    "jpn-eng": 0.009696282098192566,
    "nld-eng": 0.10156134937066263,
    "pol-eng": 0.02584580986215896,
    "por-eng": 0.08285855994553176,
    "rus-eng": 0.0006687370600414079,
    "spa-eng": 0.05626894197952218,
    "tur-eng": 0.03588832233938402,
}
CJK = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
CYRILLIC = re.compile(r"[\u0400-\u04ff]")
ARABIC = re.compile(r"[\u0600-\u06ff]")
MOJIBAKE = re.compile(r"\ufffd|Ã.|â€|Ð.|ã\x81|ã\x82|å.")


def _stats(path: str) -> dict:
    return json.loads((STATS / path).read_text())


def _lengths(texts: list[str]) -> tuple[int, int, int, int]:
    return len(texts), sum(map(len, texts)), min(map(len, texts)), len(set(texts))


def _text_stats(s: dict) -> tuple[int, int, int, int]:
    return s["total_text_length"], s["min_text_length"], s["unique_texts"]


def test_suite_lists_the_multilingual_tasks():
    suite = SUITES.get("offline-multilingual")
    assert [t.name for t in suite.tasks] == [
        "local:STSBenchmarkMultilingualSTS",
        "local:STSBenchmarkCrossLingual",
        "local:Tatoeba",
        "local:AmazonCounterfactualClassification-de-ja",
    ]


def test_subsets_and_splits_are_mteb_s(tmp_path):
    stsb = get_task("local:STSBenchmarkMultilingualSTS", tmp_path)
    hub = mteb.get_task("STSBenchmarkMultilingualSTS")
    assert stsb.hf_subsets == list(hub.metadata.eval_langs) == list(STSB_LANGUAGES)
    assert list(stsb.eval_splits) == list(hub.metadata.eval_splits) == ["dev", "test"]
    tatoeba = get_task("local:Tatoeba", tmp_path)
    assert sorted(tatoeba.hf_subsets) == sorted(TATOEBA_SUBSETS)
    assert set(TATOEBA_SUBSETS) <= set(mteb.get_task("Tatoeba").metadata.eval_langs)
    assert tatoeba.metadata.main_score == "f1"
    counterfactual = get_task("local:AmazonCounterfactualClassification-de-ja", tmp_path)
    assert counterfactual.hf_subsets == ["de", "ja"]
    assert list(counterfactual.eval_splits) == list(
        mteb.get_task("AmazonCounterfactualClassification").eval_splits
    )
    cross = get_task("local:STSBenchmarkCrossLingual", tmp_path)
    assert cross.hf_subsets == [f"{lang}-en" for lang in STSB_LANGUAGES if lang != "en"]
    assert cross.metadata.description.startswith("Not an MTEB task") and cross.hub_name is None


@pytest.mark.parametrize(
    ("wanted", "chosen"),
    [
        (("deu-eng",), ["deu-eng"]),
        (("jpn", "cmn-eng"), ["cmn-eng", "jpn-eng"]),  # a language code selects its subsets
        (("eng",), TATOEBA_SUBSETS),
    ],
)
def test_subsets_are_selected_by_name_or_language(tmp_path, wanted, chosen):
    task = get_task("local:Tatoeba", tmp_path)
    task.select_subsets(wanted)
    assert task.hf_subsets == chosen


@pytest.mark.parametrize(
    ("task", "bad", "valid"),
    [
        ("local:Tatoeba", "kor-eng", "ara-eng, cmn-eng, deu-eng"),
        ("local:STSBenchmarkMultilingualSTS", "ja", "en, de, es, fr, it, nl, pl, pt, ru, zh"),
        ("local:AmazonCounterfactualClassification-de-ja", "en", "subsets: de, ja; languages: deu, jpn"),
        ("local:STSBenchmarkCrossLingual", "xx", "de-en, es-en"),
    ],
)
def test_unknown_subset_or_language_is_a_one_line_error(tmp_path, task, bad, valid):
    suite = Suite("bad", "", (SuiteTask(task, subsets=(bad,)),))
    with pytest.raises(UserError) as caught:
        suite_tasks(suite, tmp_path)  # refused before any file is read
    message = str(caught.value)
    assert "\n" not in message and repr(bad) in message and valid in message and task in message


def test_tuning_on_dev_is_refused_for_the_multilingual_stsb():
    """The dev suite scores STS-B dev, which is the multilingual STS-B's en dev split (and, translated,
    every other language's): settings tuned on it would be chosen on final-suite sentences."""

    def ref(suite):
        return SimpleNamespace(suite=suite, tasks=None)

    assert overlapping_tasks(ref("dev"), ref("offline-multilingual")) == [
        "local:STSBenchmarkMultilingualSTS",
        "local:STSBenchmarkCrossLingual",
    ]
    assert overlapping_tasks(ref("dev"), ref("offline-all")) == []


def test_multilingual_dev_tunes_on_held_out_train_lines_disjoint_from_the_final_suite():
    """Tuning for a multilingual study: STS-B-multi dev is scored by MTEB, so tune on train lines."""

    def ref(suite):
        return SimpleNamespace(suite=suite, tasks=None)

    assert overlapping_tasks(ref("multilingual-dev"), ref("offline-multilingual")) == []
    suite = SUITES.get("multilingual-dev")
    assert [t.name for t in suite.tasks] == ["local:STSBenchmarkMultilingualSTS-heldout"]
    assert suite.disjoint_from == ("offline-multilingual",)


def test_held_out_lines_are_every_tenth_train_line_in_every_language_and_crossed(data_dir):
    task = get_task("local:STSBenchmarkMultilingualSTS-heldout", data_dir)
    task.load_data()
    assert task.hf_subsets == [*STSB_LANGUAGES, *(f"{x}-en" for x in STSB_LANGUAGES if x != "en")]
    assert task.dev_only and task.metadata.description.startswith("Not an MTEB task")
    english = read_stsb_multi(data_dir / "stsb-multi-mt/stsb-en-train.csv")
    held = task.dataset["en"]["validation"]
    assert len(held) == 575 and list(held["sentence1"]) == [r["sentence1"] for r in english[::10]]
    russian = task.dataset["ru"]["validation"]
    crossed = task.dataset["ru-en"]["validation"]
    assert list(russian["score"]) == list(held["score"]) == list(crossed["score"])
    assert list(crossed["sentence1"]) == list(russian["sentence1"])
    assert list(crossed["sentence2"]) == list(held["sentence2"])
    assert sum(bool(CYRILLIC.search(t)) for t in russian["sentence1"]) > 500
    assert sum(bool(CJK.search(t)) for t in task.dataset["zh"]["validation"]["sentence2"]) > 500
    assert not any(
        MOJIBAKE.search(t) for t in [*russian["sentence1"], *task.dataset["zh"]["validation"]["sentence1"]]
    )


def test_unknown_task_lists_close_names():
    with pytest.raises(UnknownNameError, match="local:Tatoeba"):
        get_task("local:Tatoba")


def test_stsb_multi_reader_keeps_quoted_commas_and_names_a_bad_line(tmp_path):
    path = tmp_path / "stsb-xx-test.csv"
    path.write_text('"Ein Mann, der lacht.",Ein Mann lacht.,4.2\r\n"Ja, ""gut""",Nein,0.0\r\n', newline="")
    assert read_stsb_multi(path) == [
        {"sentence1": "Ein Mann, der lacht.", "sentence2": "Ein Mann lacht.", "score": 4.2},
        {"sentence1": 'Ja, "gut"', "sentence2": "Nein", "score": 0.0},
    ]
    path.write_text("a,b,4.2\r\nc,d\r\n", newline="")
    with pytest.raises(UserError, match=r"stsb-xx-test.csv:2: expected 3 comma-separated fields"):
        read_stsb_multi(path)


def test_tatoeba_reader_pairs_lines_and_refuses_unequal_files(tmp_path):
    (tmp_path / "t.jpn").write_text("猫です。\n犬です。\n", encoding="utf-8")
    (tmp_path / "t.eng").write_text("It is a cat.\nIt is a dog.\n", encoding="utf-8")
    assert read_tatoeba(tmp_path / "t.jpn", tmp_path / "t.eng")[1] == {
        "sentence1": "犬です。",
        "sentence2": "It is a dog.",
    }
    (tmp_path / "t.eng").write_text("It is a cat.\n", encoding="utf-8")
    with pytest.raises(UserError, match="has 1 lines but .* has 2"):
        read_tatoeba(tmp_path / "t.jpn", tmp_path / "t.eng")


def test_stsb_multilingual_equals_mteb_statistics(data_dir):
    task = get_task("local:STSBenchmarkMultilingualSTS", data_dir)
    task.load_data()
    stats = _stats("STS/STSBenchmarkMultilingualSTS.json")
    for split in ("dev", "test"):
        for lang in STSB_LANGUAGES:
            data, expected = task.dataset[lang][split], stats[split]["hf_subset_descriptive_stats"][lang]
            s1, s2 = data["sentence1"], data["sentence2"]
            assert len(data) == expected["num_samples"], (split, lang)
            assert _lengths(s1)[1:] == _text_stats(expected["text1_statistics"]), (split, lang)
            assert _lengths(s2)[1:] == _text_stats(expected["text2_statistics"]), (split, lang)
            assert len(set(zip(s1, s2, strict=True))) == expected["unique_pairs"], (split, lang)


def test_tatoeba_equals_mteb_statistics_with_newlines_kept(data_dir):
    task = get_task("local:Tatoeba", data_dir)
    task.load_data()
    stats = _stats("BitextMining/Tatoeba.json")["test"]["hf_subset_descriptive_stats"]
    for subset in TATOEBA_SUBSETS:
        data, expected = task.dataset[subset]["test"], stats[subset]
        assert len(data) == expected["num_samples"] == 1000
        assert _lengths(data["sentence1"])[1:] == _text_stats(expected["sentence1_statistics"]), subset
        assert _lengths(data["sentence2"])[1:] == _text_stats(expected["sentence2_statistics"]), subset


def test_counterfactual_de_ja_equal_mteb_statistics(data_dir):
    task = get_task("local:AmazonCounterfactualClassification-de-ja", data_dir)
    task.load_data()
    stats = _stats("Classification/AmazonCounterfactualClassification.json")
    for split in ("train", "validation", "test"):
        for subset in ("de", "ja"):
            data, expected = task.dataset[subset][split], stats[split]["hf_subset_descriptive_stats"][subset]
            assert len(data) == expected["num_samples"]
            assert _lengths(data["text"])[1:] == _text_stats(expected["text_statistics"]), (split, subset)
            labels = {int(k): v["count"] for k, v in expected["label_statistics"]["labels"].items()}
            assert dict(Counter(data["label"])) == labels, (split, subset)


def test_cross_lingual_pairs_keep_the_gold_score(data_dir):
    stsb = get_task("local:STSBenchmarkMultilingualSTS", data_dir)
    cross = get_task("local:STSBenchmarkCrossLingual", data_dir)
    stsb.load_data()
    cross.load_data()
    english = stsb.dataset["en"]["test"]
    for subset in cross.hf_subsets:
        lang = subset.split("-")[0]
        pairs, translated = cross.dataset[subset]["test"], stsb.dataset[lang]["test"]
        assert pairs["sentence1"] == translated["sentence1"]
        assert pairs["sentence2"] == english["sentence2"]
        assert pairs["score"] == english["score"] == translated["score"]


def test_non_latin_scripts_load_cache_score_and_tabulate(data_dir, tmp_path, monkeypatch, capsys):
    """zh, ja, ru and ar texts are read as the scripts they are, embedded once each, scored, and the
    results table (printed and JSON) names MTEB's subsets."""
    from harness.cli import main
    from harness.models import load_model

    suite = Suite(
        "non-latin",
        "non-Latin subsets",
        (
            SuiteTask("local:STSBenchmarkMultilingualSTS", ("test",), subsets=("zh", "ru")),
            SuiteTask("local:Tatoeba", subsets=("cmn-eng", "jpn-eng", "rus-eng", "ara-eng")),
            SuiteTask("local:AmazonCounterfactualClassification-de-ja", subsets=("ja",)),
            SuiteTask("local:STSBenchmarkCrossLingual", subsets=("zh-en",)),
        ),
    )
    tasks = suite_tasks(suite, data_dir)
    texts = set().union(*(t.embedded_texts() for t in tasks))
    assert not any(MOJIBAKE.search(t) for t in texts)
    tatoeba = tasks[1].dataset
    for subset, script in [("cmn-eng", CJK), ("jpn-eng", CJK), ("rus-eng", CYRILLIC), ("ara-eng", ARABIC)]:
        assert all(script.search(s) for s in tatoeba[subset]["test"]["sentence1"][:50]), subset
    assert "言う価値のあることがなければ、しゃべるな。\n" in tatoeba["jpn-eng"]["test"]["sentence1"]

    model = load_model("static-random-32", device="cpu")
    encoder = CachedEncoder(model, progress=False)
    encoder.warm(texts)
    assert encoder.texts_embedded == len(texts)
    assert {key[2] for key in encoder.vectors} == texts  # cache keys are the texts, unchanged

    table = evaluate(model, suite, data_dir=data_dir, progress=False)
    assert table.attrs["texts_embedded"] == len(texts)  # nothing embedded twice
    assert set(zip(table.task, table.subset, strict=True)) == {
        ("local:STSBenchmarkMultilingualSTS", "zh"),
        ("local:STSBenchmarkMultilingualSTS", "ru"),
        *(("local:Tatoeba", s) for s in ("cmn-eng", "jpn-eng", "rus-eng", "ara-eng")),
        ("local:AmazonCounterfactualClassification-de-ja", "ja"),
        ("local:STSBenchmarkCrossLingual", "zh-en"),
    }
    assert table.main_score.notna().all()

    monkeypatch.setitem(SUITES._items, "non-latin", suite)
    out = tmp_path / "rows.json"
    assert main(["eval", "static-random-32", "--suite", "non-latin", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "jpn-eng" in printed and "zh-en" in printed and not MOJIBAKE.search(printed)
    rows = json.loads(out.read_text(encoding="utf-8"))
    assert {(r["task"], r["subset"]) for r in rows} == set(zip(table.task, table.subset, strict=True))


# --- fidelity with all-MiniLM-L6-v2 (slow: loads the model) --------------------------------------


@pytest.mark.slow
def test_stsb_en_subset_scores_like_stsbenchmark(minilm, data_dir, record_property):
    """The stsb-multi-mt en files hold STS-B's pairs (11 test rows differ only in whitespace): the en
    subset scores like local:STSBenchmark on both splits, and like MTEB's published STSBenchmark."""
    suite = Suite(
        "en",
        "STS-B two ways",
        (
            SuiteTask("local:STSBenchmarkMultilingualSTS", subsets=("en",)),
            SuiteTask("local:STSBenchmark", ("validation", "test")),
        ),
    )
    table = evaluate(minilm, suite, data_dir=data_dir, progress=False)
    scores = {(t, s): v for t, s, v in zip(table.task, table.split, table.main_score, strict=True)}
    record_property("scores", {f"{t} {s}": v for (t, s), v in scores.items()})
    multi, english = "local:STSBenchmarkMultilingualSTS", "local:STSBenchmark"
    assert scores[multi, "test"] == pytest.approx(scores[english, "test"], abs=1e-4)
    assert scores[multi, "dev"] == pytest.approx(scores[english, "validation"], abs=1e-4)
    assert scores[multi, "test"] == pytest.approx(0.820325, abs=1e-4)  # MTEB's published STSBenchmark


@pytest.mark.slow
def test_published_tatoeba_scores_are_reproduced(minilm, data_dir, record_property):
    suite = Suite("tatoeba", "Tatoeba", (SuiteTask("local:Tatoeba"),))
    table = evaluate(minilm, suite, data_dir=data_dir, progress=False)
    scores = dict(zip(table.subset, table.main_score, strict=True))
    record_property("scores", scores)
    assert scores == pytest.approx(PUBLISHED_TATOEBA, abs=1e-4)
