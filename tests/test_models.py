"""The model zoo: registry errors, split-archive assembly (atomic, verified), offline loading."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from harness import models
from harness.errors import UserError
from harness.models import MODELS, ModelSpec, ZipPart, folders, get_spec, listing
from harness.registry import Registry, UnknownNameError

FIXTURES = Path(__file__).parent / "fixtures"


def test_registry_refuses_duplicates_and_suggests_close_names():
    reg: Registry[int] = Registry("widget")
    reg.register("alpha", 1)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("alpha", 2)
    with pytest.raises(UnknownNameError) as err:
        reg.get("alpah")
    assert "Did you mean 'alpha'" in str(err.value) and "Known: alpha" in str(err.value)


def test_unknown_model_lists_close_matches_and_all_names():
    with pytest.raises(UnknownNameError) as err:
        get_spec("all-minilm-l12")
    message = str(err.value)
    assert "all-minilm-l6" in message.split("Known:")[0]
    for name in MODELS.names():
        assert name in message.split("Known:")[1]


def test_every_spec_records_what_the_issue_asks():
    for name, spec in MODELS.items():
        assert spec.dimension > 0 and spec.params_m > 0 and spec.licence and spec.origin, name
        if not spec.scoring_only:  # a package's own engine: no limit (USE) and its own pooling
            assert spec.max_seq_len > 0 and spec.pooling.split()[0] in {"mean", "cls"}, name
        if spec.source == "hub":
            assert spec.hub_id and len(spec.revision or "") == 40, f"{name}: hub entries pin a commit"
    wanted = {"bge-small", "bge-base", "bge-large", "uae-large", "gist-small", "gist-base", "gist-large",
              "gist-all-minilm-l6", "e5-small", "gte-small", "all-minilm-l6", "all-mpnet-base"}  # fmt: skip
    assert wanted <= set(MODELS.names())
    assert {row["name"] for row in listing()} == set(MODELS.names())


def _fake_split_archive(tmp_path: Path, n_parts: int = 3) -> tuple[ModelSpec, list[Path]]:
    """A small real zip holding a folder, split into ``n_parts`` files, and a spec pointing at it."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("tiny-model/modules.json", "[]")
        zf.writestr("tiny-model/weights.bin", bytes(range(256)) * 64)
    blob = buf.getvalue()
    size = -(-len(blob) // n_parts)
    paths, parts = [], []
    for i in range(n_parts):
        chunk = blob[i * size : (i + 1) * size]
        path = tmp_path / "site" / f"tiny.zip.{i:03d}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(chunk)
        paths.append(path)
        parts.append(ZipPart(f"tiny-part-{i}", path.name, hashlib.sha256(chunk).hexdigest()))
    spec = replace(
        get_spec("all-mpnet-base"),
        name="tiny",
        parts=tuple(parts),
        archive_sha256=hashlib.sha256(blob).hexdigest(),
        archive_root="tiny-model",
    )
    return spec, paths


@pytest.fixture
def fake_parts(tmp_path, monkeypatch):
    spec, paths = _fake_split_archive(tmp_path)
    by_dist = {part.dist: path for part, path in zip(spec.parts, paths, strict=True)}

    def locate(part: ZipPart) -> Path:
        if part.dist not in by_dist:
            raise FileNotFoundError(part.dist)
        return by_dist[part.dist]

    monkeypatch.setattr(folders, "locate_part", locate)
    return spec, paths, by_dist


def test_split_archive_assembles_once_and_is_reused(tmp_path, fake_parts):
    spec, _, _ = fake_parts
    root = tmp_path / "cache"
    folder = folders._assemble_split_zip(spec, root, progress=False)
    assert (folder / "weights.bin").read_bytes() == bytes(range(256)) * 64
    stamp = (folder / "weights.bin").stat().st_mtime_ns
    assert folders._assemble_split_zip(spec, root, progress=False) == folder
    assert (folder / "weights.bin").stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert [p.name for p in root.iterdir()] == [folder.parent.name]  # no temporary leftovers


def test_corrupt_part_is_named_and_leaves_no_folder(tmp_path, fake_parts):
    spec, paths, _ = fake_parts
    data = bytearray(paths[1].read_bytes())
    data[10] ^= 0xFF
    paths[1].write_bytes(bytes(data))
    root = tmp_path / "cache"
    with pytest.raises(UserError, match="part tiny-part-1 .* is corrupt"):
        folders._assemble_split_zip(spec, root, progress=False)
    assert list(root.iterdir()) == []


def test_missing_part_names_the_part_and_the_extra(tmp_path, fake_parts):
    spec, _, by_dist = fake_parts
    del by_dist["tiny-part-2"]
    with pytest.raises(UserError, match=r"part tiny-part-2 is not installed.*gist-harness\[guides\]"):
        folders._assemble_split_zip(spec, tmp_path / "cache", progress=False)
    assert not (tmp_path / "cache").exists() or list((tmp_path / "cache").iterdir()) == []


def test_hub_model_offline_gives_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(models, "_load_hub", models._load_hub)  # the real code path, offline
    with pytest.raises(UserError, match="bge-small.*HF_HUB_OFFLINE.*Offline models: all-minilm-l6"):
        models.load_model("bge-small", device="cpu")


def test_fingerprints_identify_weights():
    assert (
        models.model_fingerprint("bge-small")
        == "hub:BAAI/bge-small-en-v1.5@" + get_spec("bge-small").revision
    )
    assert models.model_fingerprint("all-mpnet-base").startswith("split_zip:eb8d12eec2a0")


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GIST_HARNESS_CACHE", str(tmp_path))
    assert models.cache_dir() == tmp_path


@pytest.mark.slow
def test_minilm_loads_offline_and_matches_the_stored_reference(minilm):
    ref = json.loads((FIXTURES / "minilm_reference.json").read_text())
    got = minilm.encode([ref["sentence"]], convert_to_tensor=True)[0].double()
    import torch

    assert torch.allclose(got, torch.tensor(ref["embedding"], dtype=torch.float64), atol=1e-5)


@pytest.mark.slow
def test_minilm_matches_plain_transformers_mean_pooling(minilm):
    """An independent computation: the HF encoder, attention-masked mean, L2 normalisation."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = str(models.model_path("all-minilm-l6"))
    tok, enc = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    texts = ["A man is playing a guitar.", "Stocks fell sharply on Tuesday after the report."]
    batch = tok(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        tokens = enc(**batch).last_hidden_state  # (B, T, 384)
    mask = batch["attention_mask"].unsqueeze(-1).float()  # (B, T, 1)
    manual = torch.nn.functional.normalize((tokens * mask).sum(1) / mask.sum(1), dim=-1)
    assert torch.allclose(minilm.encode(texts, convert_to_tensor=True), manual, atol=1e-5)


@pytest.mark.slow
def test_mpnet_assembles_from_its_five_packages_and_embeds(mpnet, minilm):
    emb = mpnet.encode(
        ["A man is playing a guitar.", "Someone plays an instrument.", "The stock market fell."]
    )
    assert emb.shape == (3, 768)
    sims = emb @ emb.T
    assert sims[0, 1] > sims[0, 2]  # a real model, not noise
    folder = models.model_path("all-mpnet-base")
    assert (folder.parent / ".complete").read_text() == get_spec("all-mpnet-base").archive_sha256
