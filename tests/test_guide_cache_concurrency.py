"""The guide cache under concurrency and damage: processes filling one file, readers racing writers,
garbage and truncated files, and keys of in-memory guides (pooling, prompts, truncation).

The concurrent tests start real processes (``python -c``) on one cache file, as the ranks of one
run or the workers of one study do.
"""

from __future__ import annotations

import json
import logging
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from test_loss import tiny_model
from test_train import tiny_student

from harness.guide_cache import GuideCache, text_hash
from harness.guides import build_guide
from harness.models import max_seq_len_of, model_digest

REPO = Path(__file__).resolve().parents[1]

# A child process: fills ``path`` with ``texts`` (a JSON list) through a slow fake guide, then prints
# how many texts it embedded itself. ``mode`` is "save" (add, then save: merges on save) or
# "filling" (the fill-and-save lock of ``NeuralGuide.warm``).
FILLER = textwrap.dedent(
    """
    import json, os, sys, time
    import numpy as np, torch
    from harness.guide_cache import GuideCache

    path, mode, texts, ready = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]

    def embed(batch):
        time.sleep(0.02)  # a slow guide: the two fills overlap
        return torch.from_numpy(np.array([[len(t), t.count("a"), 1.0, sum(map(ord, t)) % 97] for t in batch],
                                         dtype=np.float32))

    open(os.path.join(ready, str(os.getpid())), "w").close()
    deadline = time.time() + 60  # a sibling that died before it was ready fails the test, never hangs it
    while len(os.listdir(ready)) < 2 and time.time() < deadline:  # both fills start together
        time.sleep(0.005)
    cache = GuideCache(path, dimension=4)
    if mode == "filling":
        with cache.filling():
            added = cache.add(texts, embed, batch_size=8)
    else:
        added = cache.add(texts, embed, batch_size=8)
        cache.save()
    print(added)
    """
)


def vector(text: str) -> list[float]:
    return [float(len(text)), float(text.count("a")), 1.0, float(sum(map(ord, text)) % 97)]


def start_filler(path: Path, mode: str, texts: list[str], ready: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", FILLER, str(path), mode, json.dumps(texts), str(ready)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen) -> int:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return int(out.strip().splitlines()[-1])


@pytest.mark.parametrize("mode", ["save", "filling"])
def test_two_processes_filling_one_cache_keep_every_row(tmp_path, mode):
    path = tmp_path / "shared.guide"
    shared = [f"a shared text {i}" for i in range(40)]
    first = [f"first process text {i}" for i in range(80)] + shared
    second = [f"second process text {i}" for i in range(80)] + shared
    ready = tmp_path / "ready"  # each filler marks itself ready here, then waits for the other
    ready.mkdir()
    processes = [start_filler(path, mode, first, ready), start_filler(path, mode, second, ready)]
    added = [finish(p) for p in processes]
    cache = GuideCache(path, dimension=4)
    everything = sorted(set(first + second))
    assert len(cache) == len(everything) == 200
    looked_up = cache.lookup(everything, lambda texts: pytest.fail(f"not cached: {texts[:3]}"))
    torch.testing.assert_close(looked_up, torch.tensor([vector(t) for t in everything]))
    if mode == "filling":  # the second filler waited, then embedded only what the first had not
        assert sorted(added) == [80, 120]


def test_a_reader_racing_a_writer_never_deletes_a_valid_file(tmp_path, caplog):
    path = tmp_path / "race.guide"
    writer_code = textwrap.dedent(
        """
        import sys, time
        import numpy as np, torch
        from harness.guide_cache import GuideCache

        path = sys.argv[1]
        until = time.time() + float(sys.argv[2])  # after the imports, which a loaded machine slows down
        cache = GuideCache(path, dimension=64)
        step = 0
        while time.time() < until:  # every save replaces the file with a bigger one
            texts = [f"text {step} {i}" for i in range(50)]
            cache.add(texts, lambda b: torch.from_numpy(np.random.rand(len(b), 64).astype(np.float32)))
            cache.save()
            step += 1
        print(step)
        """
    )
    seed = GuideCache(path, dimension=64)
    seed.add(["seed text"], lambda b: torch.ones(len(b), 64))
    seed.save()
    writer = subprocess.Popen(
        [sys.executable, "-c", writer_code, str(path), "4.0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    opened, sizes = 0, []
    with caplog.at_level(logging.WARNING, logger="harness.guide_cache"):
        while writer.poll() is None:
            reader = GuideCache(path, dimension=64)  # header and matrix from one file version
            sizes.append(len(reader))
            opened += 1
            assert path.exists()
    assert writer.returncode == 0, writer.stderr.read()
    saves = int(writer.stdout.read().strip())
    assert "unreadable" not in caplog.text
    assert opened > 10 and saves > 10 and min(sizes) >= 1
    assert len(GuideCache(path, dimension=64)) == 1 + 50 * saves


def saved_cache(path: Path) -> GuideCache:
    cache = GuideCache(path, dimension=4)
    cache.add(["one", "two", "three"], lambda b: torch.ones(len(b), 4))
    cache.save()
    return cache


@pytest.mark.parametrize(
    "damage",
    [
        "huge_header_length",
        "header_longer_than_file",
        "garbage_json",
        "header_not_an_object",
        "truncated_matrix",
        "header_only",
        "empty_file",
        "huge_row_count",
    ],
)
def test_a_damaged_file_is_rebuilt_with_a_warning(tmp_path, caplog, damage):
    path = tmp_path / "d.guide"
    saved_cache(path)
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])
    if damage == "huge_header_length":
        raw = struct.pack("<Q", 2**63 + 5) + raw[8:]  # OverflowError / MemoryError before the fix
    elif damage == "header_longer_than_file":
        raw = struct.pack("<Q", len(raw)) + raw[8:]
    elif damage == "garbage_json":
        raw = raw[:8] + b"\xff" * length + raw[8 + length :]
    elif damage == "header_not_an_object":
        body = b"[1, 2]".ljust(length)
        raw = raw[:8] + body + raw[8 + length :]
    elif damage == "truncated_matrix":
        raw = raw[:-5]
    elif damage == "header_only":
        raw = raw[: 8 + length]
    elif damage == "empty_file":
        raw = b""
    elif damage == "huge_row_count":
        header["rows"] = 10**15
        body = json.dumps(header).encode().ljust(length)
        raw = raw[:8] + body + raw[8 + length :]
    path.write_bytes(raw)
    with caplog.at_level(logging.WARNING, logger="harness.guide_cache"):
        rebuilt = GuideCache(path, dimension=4)
    assert "unreadable" in caplog.text and len(rebuilt) == 0 and not path.exists()
    rebuilt.add(["four"], lambda b: torch.zeros(len(b), 4))
    rebuilt.save()
    assert len(GuideCache(path, dimension=4)) == 1


def test_save_over_a_damaged_file_rewrites_it_whole(tmp_path):
    path = tmp_path / "s.guide"
    cache = saved_cache(path)
    cache.add(["four"], lambda b: torch.zeros(len(b), 4))
    path.write_bytes(b"\x00" * 3)  # damaged after this cache opened it
    cache.save()
    assert len(GuideCache(path, dimension=4)) == 4


def test_save_merges_rows_another_cache_saved_since(tmp_path):
    path = tmp_path / "m.guide"
    first, second = GuideCache(path, dimension=4), GuideCache(path, dimension=4)
    first.add(["a", "b"], lambda b: torch.ones(len(b), 4))
    second.add(["b", "c"], lambda b: torch.full((len(b), 4), 2.0))
    first.save()
    second.save()  # the last save no longer wins: a, b (first's vector) and c
    merged = GuideCache(path, dimension=4)
    assert len(merged) == 3
    got = merged.lookup(["a", "b", "c"], lambda b: pytest.fail("not cached"))
    assert got[:, 0].tolist() == [1.0, 1.0, 2.0]
    assert text_hash("c") in {int(h) for h in merged._index}


def test_the_matrix_stays_readable_after_the_file_is_replaced(tmp_path):
    path = tmp_path / "r.guide"
    saved_cache(path)
    reader = GuideCache(path, dimension=4)
    writer = GuideCache(path, dimension=4)
    writer.add(
        [f"new {i}" for i in range(100)], lambda b: torch.from_numpy(np.zeros((len(b), 4), np.float32))
    )
    writer.save()
    torch.testing.assert_close(reader.lookup(["one"], lambda b: pytest.fail("cached")), torch.ones(1, 4))


def test_pooling_changes_the_key_of_an_in_memory_guide(tmp_path):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    mean = tiny_model(5)
    cls = SentenceTransformer(modules=[mean[0], Pooling(32, "cls")], device="cpu")
    corpus = ["a cat sits on the mat", "the stock market fell"]
    by_mean = build_guide(mean, corpus=corpus, cache_dir=tmp_path, progress=False)
    by_cls = build_guide(cls, corpus=corpus, cache_dir=tmp_path, progress=False)
    assert by_mean.fingerprint != by_cls.fingerprint
    assert not torch.allclose(by_mean.embed(corpus), by_cls.embed(corpus))
    assert len(list((tmp_path / "guides").glob("*.guide"))) == 2


def test_prompts_change_the_model_digest():
    model = tiny_model(6)
    before = model_digest(model)
    model.prompts = {"query": "query: "}
    model.default_prompt_name = "query"
    assert model_digest(model) != before


def test_self_guide_honours_max_seq_len(tmp_path):
    student = tiny_model(7)  # max_seq_length 32
    long_text = " ".join(["word"] * 40)
    guide = build_guide("self", student=student, max_seq_len=8, cache_dir=tmp_path, progress=False)
    assert guide.max_seq_len == 8 and student.max_seq_length == 32
    student.max_seq_length = 8
    expected = student.encode([long_text], convert_to_tensor=True, normalize_embeddings=True)
    torch.testing.assert_close(guide.embed([long_text]), expected.float())
    untruncated = build_guide("self", student=student, cache_dir=tmp_path, progress=False)
    student.max_seq_length = 32
    full = build_guide("self", student=student, cache_dir=tmp_path, progress=False)
    assert untruncated.fingerprint == guide.fingerprint != full.fingerprint


def test_static_self_guide_truncates_through_its_tokenizer(tmp_path):
    student = tiny_student()
    guide = build_guide("self", student=student, max_seq_len=4, cache_dir=tmp_path, progress=False)
    assert max_seq_len_of(guide.model) == 4 and max_seq_len_of(student) != 4
    shorter, longer = "one two three four five six", "one two three four five six seven eight nine"
    torch.testing.assert_close(guide.embed([shorter]), guide.embed([longer]))
    assert not np.allclose(student.encode([shorter]), student.encode([longer]))
