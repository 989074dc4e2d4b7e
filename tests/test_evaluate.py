"""Suites, ``evaluate()`` and the shared embedding cache, with a tiny static model (fast)."""

from __future__ import annotations

import mteb
import numpy as np
import pandas as pd
import pytest
from datasets import Dataset, DatasetDict
from mteb.tasks import STS12STS

from harness.embedding_cache import CachedEncoder
from harness.errors import UserError
from harness.evaluate import (
    COLUMNS,
    MTEB_ENG,
    SUITES,
    Suite,
    SuiteTask,
    category_means,
    evaluate,
    listing,
    suite_tasks,
    suite_texts,
)
from harness.tasks import TASKS
from harness.tasks._local import local_metadata, lowercase_words
from harness.tasks.sts import LocalSTS

TINY = Suite("tiny", "two small STS tasks", (SuiteTask("local:BIOSSES"), SuiteTask("local:STS16")))
TOY = Suite(
    "toy", "two in-memory STS tasks sharing sentences", (SuiteTask("local:toy-a"), SuiteTask("local:toy-b"))
)
SENTENCES = ["a cat sits", "a dog runs", "the sky is blue", "a cat is sitting", "dogs run fast", "blue sky"]


def _toy_task(name: str, pairs: list[tuple[int, int, float]]) -> type:
    """A local STS task over a handful of in-memory pairs (no data files)."""

    class Toy(LocalSTS):
        files = ()
        metadata = local_metadata(name=name, files=(), hub=STS12STS, description="Not an MTEB task. Toy.")

        def read(self, data_dir):
            s1, s2, scores = zip(*((SENTENCES[i], SENTENCES[j], score) for i, j, score in pairs), strict=True)
            return DatasetDict(
                {"test": Dataset.from_dict({"sentence1": s1, "sentence2": s2, "score": scores})}
            )

    return Toy


@pytest.fixture
def toy_tasks(monkeypatch, tmp_path):
    """Registers two toy tasks (sharing sentences) for the test; the data folder is an empty tmp dir."""
    monkeypatch.setenv("GIST_HARNESS_DATA", str(tmp_path))
    a = _toy_task("local:toy-a", [(0, 3, 4.5), (1, 4, 4.0), (2, 5, 4.8), (0, 1, 0.5), (2, 4, 0.0)])
    b = _toy_task("local:toy-b", [(0, 3, 4.0), (1, 2, 0.2), (3, 5, 0.4), (4, 1, 3.9)])
    monkeypatch.setitem(TASKS._items, "local:toy-a", a)
    monkeypatch.setitem(TASKS._items, "local:toy-b", b)
    return tmp_path


@pytest.fixture(scope="module")
def static_model():
    from harness.models import load_model

    return load_model("static-random-32", device="cpu")


def test_local_suites_name_registered_tasks():
    for _, suite in SUITES.items():
        if not suite.hub:
            assert all(t.name in TASKS for t in suite.tasks), suite.name


def test_offline_all_holds_every_local_english_task():
    multilingual = {t.name for t in SUITES.get("offline-multilingual").tasks}
    everything = {name for name, cls in TASKS.items() if not cls.dev_only and not cls.downsampled_from}
    everything -= multilingual
    assert {t.name for t in SUITES.get("offline-all").tasks} == everything


def test_hub_suites_match_mteb_eng_v1():
    by_type: dict[str, set[str]] = {}
    for task in mteb.get_benchmark("MTEB(eng, v1)").tasks:
        by_type.setdefault(task.metadata.type, set()).add(task.metadata.name)
    ours = {
        "Classification": "classification",
        "Clustering": "clustering",
        "PairClassification": "pair-classification",
        "Reranking": "reranking",
        "Retrieval": "retrieval",
        "STS": "sts",
        "Summarization": "summarization",
    }
    assert {ours[t]: names for t, names in by_type.items()} == {k: set(v) for k, v in MTEB_ENG.items()}
    paper = {t.name for t in SUITES.get("paper").tasks}
    assert len(paper) == 56 and paper == set().union(*by_type.values())


def test_listing_rows_share_keys():
    rows = listing()
    assert len(rows) == len(SUITES) and all(r.keys() == rows[0].keys() for r in rows)


def test_unknown_suite_suggests_names():
    with pytest.raises(KeyError, match="offline-sts"):
        SUITES.get("offline-st")


def test_suite_texts_roles(data_dir):
    texts, roles = suite_texts("offline-mteb", data_dir)
    assert roles["local:Banking77Classification"] == {"train": "train", "test": "test"}
    assert roles["local:SICK-R"] == {"test": "test"}
    assert len(texts["local:SICK-R"]["test"]) == 6077  # unique sentences of all 9,927 pairs
    assert len(texts["local:Banking77Classification"]["train"]) > 9000  # the whole split the probe draws from
    with pytest.raises(UserError, match="hub suite"):
        suite_texts("mteb-eng-sts")


def test_dev_suite_shares_no_text_with_final_suites(data_dir):
    dev_texts, dev_roles = suite_texts("dev", data_dir)
    assert dev_roles == {
        "local:STSBenchmark": {"validation": "test"},
        "local:STS12-train": {"validation": "test"},
        "local:PIT2015": {"validation": "test"},
    }
    final, roles = suite_texts("offline-all", data_dir)
    scored = {
        lowercase_words(t)
        for task, s in final.items()
        for split, ts in s.items()
        if roles[task][split] == "test"
        for t in ts
    }
    dev = {lowercase_words(t) for s in dev_texts.values() for ts in s.values() for t in ts}
    assert dev and not dev & scored
    # STS-B dev and SemEval-2012 MSRpar recycle STS12-16 test sentences: only 178 STS-B dev pairs and
    # SMTeuroparl's 732 pairs survive (1,194 sentences); PIT-2015 dev shares nothing with its test set.
    sts_dev = dev_texts["local:STSBenchmark"]["validation"] | dev_texts["local:STS12-train"]["validation"]
    assert len(sts_dev) > 1000 and len(dev_texts["local:PIT2015"]["validation"]) > 4000


def test_evaluate_returns_a_tidy_table(static_model, toy_tasks):
    table = evaluate(static_model, TOY, model_name="tiny", progress=False)
    assert list(table.columns) == COLUMNS
    assert list(table.task) == ["local:toy-a", "local:toy-b"]
    assert (table.model == "tiny").all() and (table.metric == "cosine_spearman").all()
    assert (table.split == "test").all() and (table.subset == "default").all()
    assert table.main_score.between(-1, 1).all() and (table.seconds >= 0).all()
    assert (table.mteb_version == mteb.__version__).all()
    assert list(table.task_revision) == [TASKS.get(t).metadata.dataset["revision"] for t in table.task]


def test_cache_does_not_change_scores(static_model, toy_tasks):
    cached = evaluate(static_model, TOY, progress=False, cache=True)
    uncached = evaluate(static_model, TOY, progress=False, cache=False)
    np.testing.assert_allclose(cached.main_score, uncached.main_score, atol=1e-6)
    assert cached.attrs["texts_embedded"] == len(SENTENCES)  # 6 unique sentences
    assert uncached.attrs["texts_embedded"] == 2 * (5 + 4)  # both columns of every pair of both tasks


def test_each_text_is_embedded_once(static_model, toy_tasks):
    tasks = suite_tasks(TOY)
    unique = set().union(*(t.embedded_texts() for t in tasks))
    assert unique == set(SENTENCES)
    encoder = CachedEncoder(static_model, progress=False)
    assert encoder.warm(unique) == len(SENTENCES)
    for task in tasks:
        mteb.evaluate(encoder, task, cache=None, co2_tracker=False, show_progress_bar=False)
    assert encoder.texts_embedded == len(SENTENCES)  # both tasks were served from the warm cache


def test_without_warm_up_a_shared_text_is_still_embedded_once(static_model, toy_tasks):
    encoder = CachedEncoder(static_model, progress=False)
    for task in suite_tasks(TOY):
        mteb.evaluate(encoder, task, cache=None, co2_tracker=False, show_progress_bar=False)
    assert encoder.texts_embedded == len(SENTENCES)


def test_cached_vectors_equal_direct_encoding(static_model):
    encoder = CachedEncoder(static_model, progress=False, batch_size=2)
    texts = ["a short one", "a rather longer sentence than the others", "mid length text"]
    encoder.warm(texts)
    direct = static_model.encode(texts, convert_to_numpy=True)
    np.testing.assert_allclose(
        np.stack([encoder.vectors[("encode", "", t)] for t in texts]), direct, atol=1e-6
    )


def test_evaluate_writes_nothing(static_model, toy_tasks, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(work))
    monkeypatch.setenv("MTEB_CACHE", str(work / "mteb"))
    evaluate(static_model, TOY, progress=False)
    assert list(work.iterdir()) == []


def test_disjoint_suite_drops_pairs_sharing_a_sentence(toy_tasks, monkeypatch):
    monkeypatch.setitem(TASKS._items, "local:toy-c", _toy_task("local:toy-c", [(0, 3, 4.0)]))
    monkeypatch.setitem(SUITES._items, "toy-final", Suite("toy-final", "", (SuiteTask("local:toy-c"),)))
    dev = Suite(
        "toy-dev", "toy-b minus toy-final's texts", (SuiteTask("local:toy-b"),), disjoint_from=("toy-final",)
    )
    (task,) = suite_tasks(dev)
    # "a cat sits" (0) and "a cat is sitting" (3) are scored in toy-final: pairs (0, 3) and (3, 5) go.
    kept = list(zip(task.dataset["test"]["sentence1"], task.dataset["test"]["sentence2"], strict=True))
    assert kept == [("a dog runs", "the sky is blue"), ("dogs run fast", "a dog runs")]


def test_real_tasks_evaluate(static_model, data_dir):
    table = evaluate(static_model, TINY, data_dir=data_dir, progress=False)
    assert list(table.task) == ["local:BIOSSES", "local:STS16"]
    assert table.main_score.notna().all()


def test_category_means_average_tasks_first():
    table = pd.DataFrame(
        {
            "model": ["m"] * 4,
            "category": ["STS", "STS", "STS", "Retrieval"],
            "task": ["a", "a", "b", "c"],
            "main_score": [0.2, 0.4, 0.9, 0.5],
        }
    )
    means = category_means(table).set_index("category").main_score
    # task a = 0.3 (two splits), so STS = (0.3 + 0.9) / 2, not (0.2 + 0.4 + 0.9) / 3
    assert means["STS"] == pytest.approx(0.6) and means["Retrieval"] == pytest.approx(0.5)


def test_eval_cli_prints_table_and_writes_json(toy_tasks, monkeypatch, tmp_path, capsys):
    import json

    from harness.cli import main

    monkeypatch.setitem(SUITES._items, "toy", TOY)
    out = tmp_path / "rows" / "toy.json"
    assert main(["eval", "static-random-16", "--suite", "toy", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "local:toy-a" in printed and "mean main score per category" in printed
    rows = json.loads(out.read_text())
    assert [r["task"] for r in rows] == ["local:toy-a", "local:toy-b"] and set(rows[0]) == set(COLUMNS)


def test_eval_cli_scores_only_the_named_tasks_and_refuses_others(toy_tasks, monkeypatch, tmp_path, capsys):
    import json

    from harness.cli import main

    monkeypatch.setitem(SUITES._items, "toy", TOY)
    out = tmp_path / "b.json"
    assert (
        main(["eval", "static-random-16", "--suite", "toy", "--tasks", "local:toy-b", "--json", str(out)])
        == 0
    )
    assert [r["task"] for r in json.loads(out.read_text())] == ["local:toy-b"]
    assert main(["eval", "static-random-16", "--suite", "toy", "--tasks", "local:toy-z"]) == 2
    err = capsys.readouterr().err
    assert "--tasks: 'local:toy-z' is not a task of suite 'toy'; valid: local:toy-a, local:toy-b" in err


def test_eval_cli_reports_a_missing_data_folder(monkeypatch, capsys):
    from harness.cli import main

    monkeypatch.delenv("GIST_HARNESS_DATA", raising=False)
    assert main(["eval", "static-random-16", "--suite", "offline-sts"]) == 2
    assert "GIST_HARNESS_DATA" in capsys.readouterr().err


def test_empty_query_and_document_prompts_share_the_plain_cache(static_model, monkeypatch):
    monkeypatch.setattr(static_model, "prompts", {"query": "", "document": ""})
    assert CachedEncoder(static_model, progress=False).symmetric
    monkeypatch.setattr(static_model, "prompts", {"query": "query: ", "document": ""})
    assert not CachedEncoder(static_model, progress=False).symmetric
