"""The file readers over the real data folder (counts and totals from its MANIFEST.md) and bad inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import files
from harness.errors import UserError

# --- real files: counts and character totals equal the MANIFEST / MTEB figures ------------------


def chars(rows, key):
    return sum(len(r[key]) for r in rows)


def test_stsb_test_matches_mteb_and_keeps_quotes_and_extra_columns(data_dir):
    path = data_dir / "stsbenchmark" / "sts-test.csv"
    rows = files.read_stsb(path)
    assert len(rows) == 1379
    assert (chars(rows, "sentence1"), chars(rows, "sentence2")) == (74107, 73779)
    assert round(sum(r["score"] for r in rows) / len(rows), 5) == 2.60792
    # 284 lines carry 2 extra source columns; quoting is off, so '"' stays in the text.
    extra = [line for line in path.read_text(encoding="utf-8").splitlines() if line.count("\t") == 8]
    assert len(extra) == 284
    assert any('"' in r["sentence1"] + r["sentence2"] for r in rows)


@pytest.mark.parametrize(("split", "n"), [("train", 5749), ("dev", 1500), ("test", 1379)])
def test_stsb_split_sizes(data_dir, split, n):
    assert len(files.read_stsb(data_dir / "stsbenchmark" / f"sts-{split}.csv")) == n


def test_sick_all_files_equal_sick_r_and_crlf_is_dropped(data_dir):
    parts = {
        x: files.read_sick(data_dir / "sick2014" / f"SICK_{x}.txt")
        for x in ("train", "trial", "test_annotated")
    }
    assert [len(p) for p in parts.values()] == [4500, 500, 4927]
    rows = [r for p in parts.values() for r in p]
    assert (chars(rows, "sentence1"), chars(rows, "sentence2")) == (462620, 452997)
    # SICK_test_annotated.txt has CRLF line ends: no '\r' may reach the last column.
    assert {r["entailment"] for r in parts["test_annotated"]} == {"ENTAILMENT", "NEUTRAL", "CONTRADICTION"}


@pytest.mark.parametrize(
    ("year", "scored", "lines"),
    [(12, 3108, 3108), (13, 1500, 1500), (14, 3750, 3750), (15, 3000, 8500), (16, 1186, 9183)],
)
def test_senteval_sts_counts_scored_and_unscored(data_dir, year, scored, lines):
    sets = files.read_sts_folder(data_dir / "sts12-16-senteval-tokenized" / f"STS{year}-en-test")
    rows = [r for subset in sets.values() for r in subset]
    assert len(rows) == lines
    assert sum(r["score"] is not None for r in rows) == scored


def test_sts12_original_has_msrvid_and_mteb_mean(data_dir):
    sets = files.read_sts_folder(data_dir / "sts12-original")
    assert "MSRvid" in sets and "ALL" not in sets
    rows = [r for s in sets.values() for r in s]
    assert len(rows) == 3108
    assert round(sum(r["score"] for r in rows) / len(rows), 5) == 3.50606


def test_semeval_brmson_empty_score_is_unscored(data_dir):
    rows = files.read_semeval_sts(data_dir / "semeval-sts-brmson" / "2015" / "belief.test.tsv")
    assert len(rows) == 2000
    assert sum(r["score"] is not None for r in rows) == 375
    assert rows[0]["score"] is None and rows[2]["score"] == 2.7


def test_semeval_brmson_every_file_reads(data_dir):
    total = sum(
        len(files.read_semeval_sts(p)) for p in sorted((data_dir / "semeval-sts-brmson").glob("*/*.tsv"))
    )
    assert total == 2358 + 1484 + 1500 + 3750 + 8500 + 9183


def test_biosses_without_final_newline(data_dir):
    folder = data_dir / "biosses"
    rows = files.read_biosses(
        folder / "biosses_sentence_pairs_test_derived_from_github.txt",
        folder / "annotation_scores_from_github.txt",
    )
    assert len(rows) == 100
    assert round(sum(r["score"] for r in rows) / 100, 3) == 2.196
    assert not (folder / "annotation_scores_from_github.txt").read_bytes().endswith(b"\n")


@pytest.mark.parametrize(("split", "n"), [("train", 3576), ("val", 500), ("test", 1725)])
def test_msrp_bom_and_crlf(data_dir, split, n):
    rows = files.read_msrp(data_dir / "msr-paraphrase" / f"msr-para-{split}.tsv")
    assert len(rows) == n
    assert {r["label"] for r in rows} == {0, 1}
    assert not any(r["sentence2"].endswith("\r") for r in rows)


def test_trecqa_questions_and_labels(data_dir):
    rows = files.read_trecqa(data_dir / "trecqa-wang" / "train.csv")
    assert len(rows) == 4718 and len({r["question"] for r in rows}) == 93
    assert sum(r["label"] for r in rows) == 348


@pytest.mark.parametrize(("split", "n", "premises"), [("dev", 9842, 3319), ("test", 9824, 3323)])
def test_snli_trailing_space_removed(data_dir, split, n, premises):
    rows = files.read_snli(data_dir / "snli-senteval", split)
    assert len(rows) == n and len({r["premise"] for r in rows}) == premises
    assert not any(r["premise"].endswith(" ") or r["hypothesis"].endswith(" ") for r in rows)


def test_pit2015_test_labels_and_dev_votes(data_dir):
    test = files.read_pit2015(data_dir / "pit2015" / "test.data", data_dir / "pit2015" / "test.label")
    assert len(test) == 972
    assert [sum(r["label"] == v for r in test) for v in (1, 0, None)] == [175, 663, 134]
    dev = files.read_pit2015(data_dir / "pit2015" / "dev.data")
    assert len(dev) == 4727 and {r["label"] for r in dev} == {0, 1, None}


@pytest.mark.parametrize(("split", "n", "total"), [("train", 10003, 594916), ("test", 3080, 167036)])
def test_banking77_multiline_fields_kept(data_dir, split, n, total):
    rows = files.read_banking77(data_dir / "banking77" / f"{split}.csv")
    assert len(rows) == n and chars(rows, "text") == total
    assert any("\n" in r["text"] for r in rows)  # quoted fields spanning lines, kept as MTEB does
    names = files.read_banking77_categories(data_dir / "banking77" / "categories.json")
    assert len(names) == 77 and {r["label"] for r in rows} == set(names)


@pytest.mark.parametrize(("split", "n", "total"), [("train", 16000, 1549533), ("test", 2000, 193173)])
def test_emotion_counts(data_dir, split, n, total):
    rows = files.read_emotion(data_dir / "emotion" / f"{split}.txt")
    assert len(rows) == n and chars(rows, "text") == total
    assert {r["label"] for r in rows} == set(files.EMOTION_LABELS)


@pytest.mark.parametrize(
    ("name", "n", "total"),
    [
        ("EN_test", 670, 71118),
        ("EN_train", 4018, None),
        ("EN-ext_test", 1334, None),
        ("EN-ext_valid", 666, None),
    ],
)
def test_amazon_counterfactual_double_quotes(data_dir, name, n, total):
    rows = files.read_amazon_counterfactual(data_dir / "amazon-counterfactual" / f"{name}.tsv")
    assert len(rows) == n and {r["label"] for r in rows} == {0, 1}
    if total is not None:
        assert chars(rows, "text") == total  # QUOTE_NONE would not reproduce MTEB's lengths
    assert not any(r["text"].endswith("\r") for r in rows)  # EN-ext: CRLF, no final newline


def test_tweet_sentiment_keeps_leading_spaces(data_dir):
    rows = files.read_tweet_sentiment(data_dir / "tweet-sentiment-extraction" / "test.csv")
    assert len(rows) == 3534 and chars(rows, "text") == 239476
    assert [sum(r["label"] == x for r in rows) for x in files.TWEET_SENTIMENT_LABELS] == [1001, 1430, 1103]
    assert any(r["text"].startswith(" ") for r in rows)


def test_scifact_zip_and_beir(data_dir):
    zip_path = data_dir / "scifact" / "scifact.zip"
    corpus = files.read_scifact_corpus(zip_path)
    assert len(corpus) == 5183 and chars(corpus, "text") == 7771469
    assert all(isinstance(s, str) for s in corpus[0]["sentences"]) and len(corpus[0]["sentences"]) > 1
    validation = files.read_scifact_claims(zip_path, "validation")
    assert len(validation) == 450 and len({r["id"] for r in validation}) == 300
    train = files.read_scifact_claims(zip_path, "train")
    assert any(len(r["cited_doc_ids"]) > 1 for r in train)  # numpy int arrays like "[ 5152028 11705328]"
    queries = files.read_beir_queries(data_dir / "scifact" / "beir" / "queries.jsonl")
    assert len(queries) == 1109
    qrels = files.read_beir_qrels(data_dir / "scifact" / "beir" / "qrels" / "test.tsv")
    assert len(qrels) == 339
    cited = {(r["id"], d) for r in validation for d in r["cited_doc_ids"]}
    assert cited == {(q["query_id"], q["corpus_id"]) for q in qrels}


def test_parse_string_list_does_not_concatenate():
    assert files.parse_string_list("['a b.'\n 'c \\'d\\'.' \"e\"]") == ["a b.", "c 'd'.", "e"]
    with pytest.raises(ValueError):
        files.parse_string_list("['unterminated")


# --- synthetic bad inputs: one-line errors naming file:line ------------------------------------


def write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match=r"sts-test\.csv: file not found"):
        files.read_stsb(tmp_path / "sts-test.csv")


def test_non_utf8_names_the_line(tmp_path):
    path = write(tmp_path / "x.tsv", b"1.0\ta\tb\n2.0\tc\xff\td\n")
    with pytest.raises(UserError, match=r"x\.tsv:2: byte 0xff is not valid UTF-8"):
        files.read_semeval_sts(path)


def test_malformed_line_names_line_and_shape(tmp_path):
    path = write(tmp_path / "sts.csv", "g\tf\ty\t1\t4.0\ta\tb\ng\tf\ty\t2\t4.0\tonly one\n")
    with pytest.raises(UserError, match=r"sts\.csv:2: expected 7 \(or 9\) tab-separated fields.*found 6"):
        files.read_stsb(path)


def test_bad_score(tmp_path):
    path = write(tmp_path / "sts.tsv", "high\ta\tb\n")
    with pytest.raises(UserError, match=r"sts\.tsv:1: expected a number for the score, found 'high'"):
        files.read_semeval_sts(path)


def test_missing_columns_lists_columns_found(tmp_path):
    path = write(
        tmp_path / "SICK.txt", "pair_ID\tsentenceA\tsentence_B\trelatedness_score\tentailment_judgment\n"
    )
    with pytest.raises(
        UserError,
        match=r"SICK\.txt:1: missing column\(s\) 'sentence_A'; columns found: 'pair_ID', 'sentenceA'",
    ):
        files.read_sick(path)


def test_gs_and_input_line_counts_must_agree(tmp_path):
    write(tmp_path / "STS.input.x.txt", "a\tb\nc\td\n")
    write(tmp_path / "STS.gs.x.txt", "1\n")
    with pytest.raises(UserError, match=r"STS\.gs\.x\.txt: has 1 lines but .* has 2"):
        files.read_sts_folder(tmp_path)


def test_emotion_splits_on_last_semicolon(tmp_path):
    path = write(tmp_path / "e.txt", "text;label_name\ni feel a; b; c;joy\n")
    assert files.read_emotion(path) == [{"text": "i feel a; b; c", "label": "joy"}]
    write(path, "text;label_name\nno label here\n")
    with pytest.raises(UserError, match=r"e\.txt:2: expected text;label"):
        files.read_emotion(path)


def test_csv_multiline_error_names_record_start(tmp_path):
    path = write(tmp_path / "b.csv", 'text,category\r\n"two\r\nlines",card\r\nok,card,extra\r\n')
    with pytest.raises(UserError, match=r"b\.csv:4: expected 2 ','-separated fields"):
        files.read_banking77(path)
    write(path, 'text,category\r\n"two\r\nlines",card\r\n')
    assert files.read_banking77(path) == [{"text": "two\r\nlines", "label": "card"}]


def test_bad_label_value(tmp_path):
    path = write(tmp_path / "a.tsv", "sentence\tis_counterfactual\nhello\tmaybe\n")
    with pytest.raises(UserError, match=r"a\.tsv:2: expected is_counterfactual in \{0, 1\}, found 'maybe'"):
        files.read_amazon_counterfactual(path)


def test_bom_and_crlf_are_stripped(tmp_path):
    path = write(tmp_path / "m.tsv", "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\r\n1\t1\t2\ta\tb\r\n")
    assert files.read_msrp(path) == [{"sentence1": "a", "sentence2": "b", "label": 1}]


def test_bad_zip_member(tmp_path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "s.zip", "w") as z:
        z.writestr("claims_train.csv", "id,claim,cited_doc_ids\n1,c,[1 2]\n")
    assert files.read_scifact_claims(tmp_path / "s.zip", "train")[0]["cited_doc_ids"] == ["1", "2"]
    with pytest.raises(UserError, match="cannot read member 'corpus_train.csv'"):
        files.read_scifact_corpus(tmp_path / "s.zip")
