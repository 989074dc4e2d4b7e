"""Local MTEB tasks: metadata, checksums, readers and the data each task loads (no model needed)."""

from __future__ import annotations

import shutil

import mteb
import pytest
from mteb.abstasks.abstask import AbsTask

from harness.errors import UserError
from harness.files import folder, read_pit2015, read_sts_input
from harness.tasks import TASKS, get_task, listing, pair_classification, sts
from harness.tasks._checksums import FILE_SHA256
from harness.tasks._local import lowercase_words, revision

# Pairs / rows each local copy must hold (MTEB's descriptive statistics, MANIFEST.md).
EXPECTED_TEST_ROWS = {
    "local:STS12": 3108,
    "local:STS13": 1500,
    "local:STS14": 3750,
    "local:STS15": 3000,
    "local:STS16": 1186,
    "local:STSBenchmark": 1379,
    "local:SICK-R": 9927,
    "local:BIOSSES": 100,
    "local:Banking77Classification": 3080,
    "local:EmotionClassification": 2000,
    "local:AmazonCounterfactualClassification": 670,
    "local:PIT2015": 838,
    "local:MSRP": 1725,
    "local:Banking77Clustering": 3080,
    "local:EmotionClustering": 2000,
}


@pytest.mark.parametrize("name", TASKS.names())
def test_task_metadata_is_honest(name):
    cls = TASKS.get(name)
    meta = cls.metadata
    assert issubclass(cls, AbsTask)
    assert name == meta.name and name.startswith("local:")
    with pytest.raises(KeyError):  # the hub task stays usable under its own name
        mteb.get_task(name)
    assert set(cls.files) <= set(FILE_SHA256)
    if cls.downsampled_from:  # a lite task: the files' revision digested with its seed and parameters
        assert meta.dataset["revision"] != revision(cls.files) and len(meta.dataset["revision"]) == 40
    else:
        assert meta.dataset == {"path": meta.dataset["path"], "revision": revision(cls.files)}
    assert meta.dataset["path"].startswith("local:")
    if cls.hub_name:
        assert meta.adapted_from == [cls.hub_name]
        assert meta.main_score == mteb.get_task(cls.hub_name).metadata.main_score
    else:
        assert meta.description.startswith("Not an MTEB task")


@pytest.mark.parametrize("name", TASKS.names())
def test_task_loads_local_data(name, data_dir):
    task = get_task(name, data_dir)
    texts = task.texts()
    assert set(texts) == set(task.splits_read)
    assert all(texts.values()), "every split has texts"
    assert task.embedded_texts() <= set().union(*texts.values())
    if name in EXPECTED_TEST_ROWS:
        data = task.dataset.get("en", task.dataset)
        assert len(data["test"]) == EXPECTED_TEST_ROWS[name]


def test_scifact_matches_mteb(data_dir):
    task = get_task("local:SciFact", data_dir)
    task.load_data()
    data = task.dataset["default"]["test"]
    assert (len(data["corpus"]), len(data["queries"])) == (5183, 300)
    assert sum(len(docs) for docs in data["relevant_docs"].values()) == 339
    assert sum(len(q) for q in data["queries"]["text"]) == 27104  # MTEB's query character total


def test_classification_draws_a_subset_of_train(data_dir):
    task = get_task("local:Banking77Classification", data_dir)
    task.load_data()
    drawn = task.embedded_texts() - task.split_texts("test")
    assert 77 * 8 <= len(drawn) <= 77 * 8 * task.n_experiments
    assert drawn <= task.split_texts("train")


def test_listing_rows_share_keys():
    rows = listing()
    assert len(rows) == len(TASKS)
    assert all(row.keys() == rows[0].keys() for row in rows)


def test_data_dir_is_required(monkeypatch):
    monkeypatch.delenv("GIST_HARNESS_DATA", raising=False)
    with pytest.raises(UserError, match="GIST_HARNESS_DATA"):
        folder.data_dir(None)
    with pytest.raises(UserError, match="does not exist"):
        folder.data_dir("/nonexistent/data")


def test_changed_file_is_refused(data_dir, tmp_path):
    for name in TASKS.get("local:BIOSSES").files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(data_dir / name, tmp_path / name)
    get_task("local:BIOSSES", tmp_path).load_data()  # an exact copy loads
    scores = tmp_path / "biosses/annotation_scores_from_github.txt"
    scores.write_text(scores.read_text().replace("4", "3", 1))
    with pytest.raises(UserError, match="annotation_scores_from_github.txt differs"):
        get_task("local:BIOSSES", tmp_path).load_data()


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(UserError, match="is missing"):
        get_task("local:MSRP", tmp_path).load_data()


def test_sts_pairs_drop_unscored_pairs(tmp_path):
    (tmp_path / "STS.input.x.txt").write_text("a b\tc d\ne f\tg h\ni\tj\n")
    (tmp_path / "STS.gs.x.txt").write_text("4.0\n\n1.5\n")
    pairs = sts._pairs(read_sts_input(tmp_path / "STS.input.x.txt", tmp_path / "STS.gs.x.txt"))
    assert pairs.to_dict() == {"sentence1": ["a b", "i"], "sentence2": ["c d", "j"], "score": [4.0, 1.5]}


def test_pit2015_pairs_drop_debatable_dev_votes(tmp_path):
    path = tmp_path / "dev.data"
    rows = ["1\tt\ta\tb\t(3, 2)\tx\ty", "1\tt\tc\td\t(2, 3)\tx\ty", "1\tt\te\tf\t(1, 4)\tx\ty"]
    path.write_text("\n".join(rows) + "\n")
    pairs = pair_classification._pairs(read_pit2015(path))  # 2 of 5 is debatable: dropped
    assert pairs.to_dict() == {"sentence1": ["a", "e"], "sentence2": ["b", "f"], "labels": [1, 0]}


def test_lowercase_words_matches_senteval_tokenisation():
    assert lowercase_words("A man's hat.") == lowercase_words("a man ' s hat .")
