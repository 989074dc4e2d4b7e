"""Leakage: normalisation keys, roles and in-domain overlaps, policies, and the real overlaps."""

from __future__ import annotations

import logging

import pytest

from harness import files
from harness.data import check_leakage, check_training_data, exact_key, find_overlaps, load_source, token_key
from harness.data.examples import dataset_texts
from harness.errors import UserError


def test_keys():
    assert exact_key("  A  Dog\tRuns.\n") == "a dog runs."
    # Moses-tokenised, lowercased STS copies match the raw sentence under the token key only.
    raw, moses = "The dog's bowl isn't \"full\".", "the dog ' s bowl isn ' t \" full \" ."
    assert exact_key(raw) != exact_key(moses)
    assert token_key(raw) == token_key(moses) == "the dog s bowl isn t full"
    assert token_key("?!") == ""


def test_test_overlap_is_an_error_naming_source_task_count_and_examples():
    train = {"src": {"A dog runs.", "unrelated"}}
    evals = {"Task": {"test": {"a  dog RUNS.", "other"}}}
    with pytest.raises(UserError, match=r"src shares 1 text\(s\) with Task/test \(e\.g\. 'A dog runs\.'\)"):
        check_leakage(train, evals)


def test_train_role_overlap_is_in_domain():
    train = {"cls": {"t1", "t2", "t3"}}
    evals = {
        "Cls": {"train": {"t1", "t2", "x"}, "test": {"t2", "y"}}
    }  # t2 is in the task's own train and test
    report = check_leakage(train, evals)
    assert report.ok
    kinds = {(o.split, o.kind): o.count for o in report.overlaps}
    assert kinds == {("train", "in-domain"): 2, ("test", "in-domain"): 1}


def test_roles_can_be_given_explicitly():
    report = find_overlaps({"s": {"t"}}, {"T": {"dev": {"t"}}}, {"T": {"dev": "train"}})
    assert report.ok and report.in_domain[0].role == "train"
    assert not find_overlaps({"s": {"t"}}, {"T": {"dev": {"t"}}}).ok  # default: any non-train split is test


def test_exact_count_vs_token_count():
    report = find_overlaps({"s": {"A dog's bowl.", "Cat"}}, {"T": {"test": {"a dog ' s bowl .", "cat"}}})
    (overlap,) = report.leaks
    assert (overlap.count, overlap.exact_count) == (2, 1)


def test_policies(caplog):
    train, evals = {"s": {"x"}}, {"T": {"test": {"x"}}}
    with caplog.at_level(logging.WARNING):
        report = check_leakage(train, evals, policy="warn")
    assert not report.ok and "s shares 1 text(s) with T/test" in caplog.text
    assert check_leakage(train, evals, policy="drop").is_leaked("s", " X ")
    with pytest.raises(UserError, match="leakage policy 'ignore'; expected one of error, drop, warn"):
        check_leakage(train, evals, policy="ignore")
    assert check_leakage(train, evals, policy="drop").rows()[0]["kind"] == "leak"


# --- the real overlaps ---------------------------------------------------------------------------


def pair_texts(rows):
    return {t for r in rows for t in (r["sentence1"], r["sentence2"])}


def sick_r(data_dir):
    names = ("train", "trial", "test_annotated")
    return {
        "SICK-R": {
            "test": pair_texts(
                r for n in names for r in files.read_sick(data_dir / "sick2014" / f"SICK_{n}.txt")
            )
        }
    }


def test_sick_train_with_sick_r_fails(data_dir):
    train = {"sick-train": dataset_texts(load_source("sick-train", data_dir))}
    with pytest.raises(UserError, match=r"sick-train shares 2106 text\(s\) with SICK-R/test"):
        check_leakage(train, sick_r(data_dir))


def test_banking77_train_pairs_are_in_domain_for_banking77(data_dir):
    splits = {
        s: {r["text"] for r in files.read_banking77(data_dir / "banking77" / f"{s}.csv")}
        for s in ("train", "test")
    }
    report = check_leakage(
        {"banking77-pairs": dataset_texts(load_source("banking77-pairs", data_dir))}, {"Banking77": splits}
    )
    assert report.ok
    counts = {o.split: o.count for o in report.in_domain}
    # 25 Banking77 test texts also occur (under the token key) in Banking77 train itself.
    assert counts == {"train": 9972, "test": 25}


def test_stsb_train_shares_texts_with_sts_test_sets(data_dir):
    stsb = {"stsb-train": dataset_texts(load_source("stsb-train", data_dir))}
    evals = {
        "STSBenchmark": {"test": pair_texts(files.read_stsb(data_dir / "stsbenchmark" / "sts-test.csv"))}
    }
    folder = data_dir / "sts12-16-senteval-tokenized"
    for year in (12, 13, 14, 15, 16):
        sets = files.read_sts_folder(folder / f"STS{year}-en-test")
        evals[f"STS{year}"] = {
            "test": pair_texts(r for s in sets.values() for r in s if r["score"] is not None)
        }
    report = find_overlaps(stsb, evals)
    counts = {o.task: (o.count, o.exact_count) for o in report.leaks}
    assert counts["STSBenchmark"] == (89, 89)
    # The STS12-16 copies are lowercased and Moses-tokenised: the exact key misses most overlaps.
    assert counts["STS12"] == (459, 0) and counts["STS14"] == (903, 232)


def test_leakage_of_a_test_text_is_an_error(data_dir):
    from harness.config import FinalConfig
    from harness.evaluate import suite_object

    suite = suite_object(FinalConfig(suite="offline-sts", tasks=["local:BIOSSES"]))
    from harness.evaluate import suite_texts

    texts = suite_texts(suite, data_dir)
    leaked = next(iter(next(iter(texts.texts["local:BIOSSES"].values()))))
    with pytest.raises(UserError, match="local:BIOSSES"):
        check_training_data({"toy": {leaked, "an unrelated sentence"}}, [texts])
    report = check_training_data({"toy": {"an unrelated sentence"}}, [texts])
    assert report.ok


def test_leakage_check_merges_a_task_shared_by_two_suites():
    """``dev`` and ``offline-all`` both hold STSBenchmark: texts of both suites' splits are checked."""
    from harness.evaluate import SuiteTexts

    suites = {
        "a": SuiteTexts({"t": {"test": {"leaked text"}}}, {"t": {"test": "test"}}),
        "b": SuiteTexts({"t": {"dev": {"other text"}}}, {"t": {"dev": "test"}}),
    }
    report = check_training_data({"src": {"leaked text", "fine"}}, [suites["a"], suites["b"]], policy="warn")
    assert [(o.task, o.split) for o in report.leaks] == [("t", "test")]
