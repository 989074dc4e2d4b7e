"""Loss objectives over masked in-batch scores: what the loss does with the candidates a strategy kept.

A masking strategy (``harness.masking``) decides which in-batch candidates stop being negatives;
an objective then turns one chunk of scored rows (``blocks.RowScores``: student logits with the
dropped and identical candidates at ``-inf``, the student and guide cosines) into a loss. So every
objective composes with every strategy, mask first: ``gist`` + ``distill_kl`` drops the guide's
suspected false negatives and learns the guide's similarities on the rest.

An objective is a pure tensor function registered by name, ``fn(scores, *, temperature, **params)
-> ()``, the mean loss of the chunk's rows. Each row's loss depends on that row only, so GradCache
(row chunks) and gathered candidates give the same loss and gradients as the plain path. Guide
similarities come from the cached guide vectors the loss already has (no extra guide pass).

* ``infonce``: cross-entropy over the kept candidates (van den Oord et al. 2018), the default.
* ``hardness``: ``logit += alpha * stop_grad(sim)`` on the kept negatives before the softmax, with
  the student's or the guide's cosine (LLaVE, arXiv 2503.04812, Eq. 5; EmbeddingGemma, arXiv
  2509.20354); sentence-transformers' ``MultipleNegativesRankingLoss(hardness_mode=...)``.
* ``debiased``: the negative term corrected for a positive-class prior tau+ (Chuang et al. 2020,
  arXiv 2007.00224, Eq. 6).
* ``distill_kl``: ``(1 - weight) * InfoNCE + weight * KL(guide || student)`` over the kept
  candidates' softmax distributions (Hinton et al. 2015; ``DistillKLDivLoss`` fed these scores).
* ``margin_mse``: ``(1 - weight) * InfoNCE + weight * MSE`` between the student's and the guide's
  positive-minus-negative cosine margins on each row's own hard negatives (Hofstätter et al. 2020,
  arXiv 2010.02666); needs a negative column.
* ``relabel_positive``: the candidates the strategy flagged become extra positives of their row
  (multi-positive InfoNCE; RLHN, arXiv 2505.16967, relabels instead of removing). The one objective
  that reads the dropped candidates (``Objective.relabels``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor

from harness.errors import UserError
from harness.params import ParamSpec, listed, resolve
from harness.registry import Registry

if TYPE_CHECKING:
    from harness.loss.blocks import RowScores


@dataclass(frozen=True)
class Objective:
    """A registered loss objective.

    Attributes:
        name: registry name used in experiments (``train.objective``).
        fn: ``fn(scores, *, temperature, **params) -> ()`` mean loss of the rows in ``scores``.
        params: keyword parameters with defaults and valid ranges.
        needs_guide: ``needs_guide(params)``: whether it reads guide similarities with these parameters.
        needs_negatives: whether it needs an explicit negative column (each row's own hard negative).
        summary: one line for ``gist-harness ls objectives``.
        reference: where it comes from.
    """

    name: str
    fn: Callable[..., Tensor]
    params: Mapping[str, ParamSpec] = field(default_factory=dict)
    needs_guide: Callable[[Mapping[str, Any]], bool] = lambda params: False
    needs_negatives: bool = False
    summary: str = ""
    reference: str = ""
    guide_note: str = ""
    """When the guide is needed, if that depends on the parameters (for ``ls objectives``)."""
    relabels: bool = False
    """Whether the strategy's dropped candidates enter the loss (as positives) instead of leaving it."""


OBJECTIVES: Registry[Objective] = Registry("objective")


def _removed(scores: RowScores) -> Tensor:
    """Candidates that are no negatives of the row: dropped by the strategy, identical or absent, (b, N)."""
    return scores.drop | scores.identical


def _negatives(scores: RowScores) -> Tensor:
    """The kept negatives of each row (not the positive or its pair copy, not removed), (b, N)."""
    return scores.real & ~scores.drop


def _cosines(scores: RowScores, which: str) -> Tensor:
    sims = scores.sims if which == "student" else scores.guide
    if sims is None:
        raise UserError(f"the objective needs the {which}'s similarities, which this loss did not compute")
    return sims  # (b, N)


def infonce(scores: RowScores, *, temperature: float) -> Tensor:
    """Cross-entropy of each row's positive against its kept candidates (InfoNCE)."""
    return F.cross_entropy(scores.logits, scores.targets)


def hardness(
    scores: RowScores,
    *,
    temperature: float,
    alpha: float = 9.0,
    sims: str = "student",
    negatives: str = "in_batch",
) -> Tensor:
    """InfoNCE with ``alpha * stop_grad(cos)`` added to the logits of the kept negatives.

    The penalty is not divided by the temperature (``logit = cos / t + alpha * cos``), exactly as in
    sentence-transformers' ``MultipleNegativesRankingLoss``, so harder negatives weigh more in the
    softmax denominator (LLaVE, arXiv 2503.04812, Eq. 5). ``sims="guide"`` weights by the guide's
    cosine instead: the same guide that masks can re-weight. ``negatives``: "in_batch" (other rows'
    texts; ST's ``in_batch_negatives``), "hard" (the row's own negative columns; ``hard_negatives``)
    or "all" (``all_negatives``).
    """
    penalised = _negatives(scores)  # (b, N)
    own = scores.hard_negative if scores.hard_negative is not None else torch.zeros_like(penalised)
    if negatives == "in_batch":
        penalised = penalised & ~own
    elif negatives == "hard":
        penalised = penalised & own
    penalty = alpha * _cosines(scores, sims).detach().masked_fill(~penalised, 0.0)  # (b, N)
    return F.cross_entropy(scores.logits + penalty, scores.targets)


def debiased(scores: RowScores, *, temperature: float, tau_plus: float = 0.1) -> Tensor:
    """Debiased contrastive loss (Chuang et al. 2020, arXiv 2007.00224, Eq. 6, M = 1 positive).

    With ``e(j) = exp(logit_j)``, ``N`` kept negatives per row and ``t`` the temperature::

        Ng = max((sum_neg e(j) - tau_plus * N * e(pos)) / (1 - tau_plus), N * exp(-1 / t))
        loss = -log(e(pos) / (e(pos) + Ng))

    ``exp(-1/t)`` is the smallest ``e(j)`` a cosine can give. ``tau_plus = 0`` is InfoNCE. Computed
    shifted by each row's largest logit (``exp(100)`` overflows float32 at t = 0.01).
    """
    logits = scores.logits  # (b, N), removed candidates at -inf
    rows = torch.arange(logits.shape[0], device=logits.device)
    shift = logits.detach().max(dim=1, keepdim=True).values  # (b, 1), finite: the positive is kept
    pos = logits[rows, scores.targets].unsqueeze(1) - shift  # (b, 1)
    negatives = _negatives(scores)  # (b, N)
    count = negatives.sum(dim=1, keepdim=True).to(logits.dtype)  # (b, 1)
    neg_sum = torch.where(negatives, (logits - shift).exp(), 0.0).sum(dim=1, keepdim=True)  # (b, 1)
    pos_e = pos.exp()  # (b, 1)
    corrected = (neg_sum - tau_plus * count * pos_e) / (1.0 - tau_plus)  # (b, 1)
    floor = count * torch.exp(-1.0 / temperature - shift)  # (b, 1)
    ng = torch.maximum(corrected, floor)  # (b, 1)
    return (torch.log(pos_e + ng) - pos).mean()


def distill_kl(
    scores: RowScores, *, temperature: float, guide_temperature: float = 0.05, weight: float = 0.5
) -> Tensor:
    """``(1 - weight) * InfoNCE + weight * KL(p_guide || p_student)`` over each row's kept candidates.

    ``p_student = softmax(cos / temperature)`` (the InfoNCE logits), ``p_guide = softmax(guide_cos /
    guide_temperature)``, both over the same kept candidates (positive included; a masked candidate
    has probability 0 in both). The KL term is ``DistillKLDivLoss`` (batchmean) fed these scores at
    its temperature 1: Hinton's ``T^2`` factor is left out, as at t = 0.01 it would shrink the
    distillation term 10^4-fold against InfoNCE.
    """
    kept = ~_removed(scores)  # (b, N), positive included
    guide = _cosines(scores, "guide").detach()  # (b, N)
    log_teacher = torch.log_softmax(guide.masked_fill(~kept, -torch.inf) / guide_temperature, dim=1)  # (b, N)
    log_student = torch.log_softmax(scores.logits, dim=1)  # (b, N)
    teacher = log_teacher.exp()  # (b, N)
    # Masked entries are -inf in both logs: zero them before subtracting (0 * (-inf - -inf) is NaN).
    gap = log_teacher.masked_fill(~kept, 0.0) - log_student.masked_fill(~kept, 0.0)  # (b, N)
    kl = (teacher * gap).sum(dim=1).mean()
    if weight >= 1.0:
        return kl
    return (1.0 - weight) * F.cross_entropy(scores.logits, scores.targets) + weight * kl


def margin_mse(scores: RowScores, *, temperature: float, weight: float = 0.5) -> Tensor:
    """``(1 - weight) * InfoNCE + weight * MarginMSE`` on each row's own kept hard negatives.

    MarginMSE (Hofstätter et al. 2020, arXiv 2010.02666): ``((s_pos - s_neg) - (g_pos - g_neg))^2``
    with the student's and the guide's cosines; a row's term is the mean over its own negative
    columns the strategy kept (0 when it kept none), so a guide-suspected false negative is not
    distilled as a negative. With one negative column and nothing dropped it is sentence-transformers'
    ``MarginMSELoss`` with the guide's margins as labels.

    A batch without a negative column (a pair source's batch under per-source batching, or rows
    whose negative is absent in a mixed batch) has no margins: its rows contribute InfoNCE only.
    Training data without any negative column is rejected by ``gist-harness validate``.
    """
    if scores.hard_negative is None:
        raise UserError("objective 'margin_mse' needs the rows' own negatives (RowScores.hard_negative)")
    student, guide = _cosines(scores, "student"), _cosines(scores, "guide").detach()  # (b, N)
    rows = torch.arange(student.shape[0], device=student.device)
    s_pos = student[rows, scores.targets].unsqueeze(1)  # (b, 1)
    g_pos = guide[rows, scores.targets].unsqueeze(1)  # (b, 1)
    hard = scores.hard_negative & _negatives(scores)  # (b, N)
    error = torch.where(hard, ((s_pos - student) - (g_pos - guide)) ** 2, 0.0)  # (b, N)
    mse = (error.sum(dim=1) / hard.sum(dim=1).clamp_min(1)).mean()
    if weight >= 1.0:
        return mse
    return (1.0 - weight) * F.cross_entropy(scores.logits, scores.targets) + weight * mse


def relabel_positive(scores: RowScores, *, temperature: float, numerator: str = "sum") -> Tensor:
    """Multi-positive InfoNCE: each row's positive and the candidates its strategy flagged are positives.

    With ``P`` the row's positive plus its flagged candidates (``RowScores.drop``; identical texts
    stay out) and the sum over every candidate left in the row (positives and kept negatives)::

        numerator="sum":  loss = -log( sum_{p in P} e^{s_p / t} / sum_all e^{s / t} )
        numerator="mean": loss = -(1 / |P|) sum_{p in P} log( e^{s_p / t} / sum_all e^{s / t} )

    These are SupCon's L_in (up to the constant ``log |P|``) and L_out (Khosla et al. 2020, arXiv
    2004.11362, Eqs. 2-3). With nothing flagged both are InfoNCE. RLHN (arXiv 2505.16967,
    castorini/rlhn) relabels flagged hard negatives as positives of the training data offline and
    found relabelling beats removing; it prescribes no in-batch formula, so the form is chosen here.

    "sum" is the default: the flags are a guide's guesses, not labels. Its gradient pulls each
    positive by its share ``e^{s_p} / sum_P e^{s}`` of the positives' mass, so a flagged candidate the
    student scores low (perhaps a true negative flagged wrongly) is pulled little and the true
    positive keeps most of the pull; "mean" pulls every flagged candidate by ``1 / |P|`` and dilutes
    the true positive to ``1 / |P|`` however many candidates a row had flagged, and its optimum gives
    every positive equal probability. Khosla et al. found L_out better with clean class labels.

    Worked example (one row, ``t = 1 / ln 2`` so ``e^{s/t} = 2^s``): positive ``s = 1``, flagged
    ``s = 0``, kept negative ``s = -1``: ``e = 2, 1, 0.5``, ``Z = 3.5``. "sum": ``-log(3 / 3.5) =
    log(7/6) = 0.15415``; "mean": ``-(log(2/3.5) + log(1/3.5)) / 2 = log(3.5 / sqrt 2) = 0.90616``;
    InfoNCE (the flag removes the candidate): ``-log(2 / 2.5) = 0.22314``.

    Flagged logits are at ``-inf`` in ``scores.logits``: they are read from ``scores.sims / t``.
    """
    flagged = scores.drop & ~scores.identical  # (b, N), the positive is never in drop
    sims = _cosines(scores, "student")  # (b, N)
    logits = torch.where(flagged, sims / temperature, scores.logits)  # (b, N)
    positives = flagged | scores.positive  # (b, N)
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)  # (b, N)
    if numerator == "sum":
        return -torch.logsumexp(log_prob.masked_fill(~positives, -torch.inf), dim=1).mean()
    per_positive = log_prob.masked_fill(~positives, 0.0).sum(dim=1)  # (b,)
    return -(per_positive / positives.sum(dim=1)).mean()


def _register(name: str, fn: Callable[..., Tensor], summary: str, reference: str, **kwargs: Any) -> None:
    OBJECTIVES.register(name, Objective(name, fn, summary=summary, reference=reference, **kwargs))


_WEIGHT = ParamSpec(0.5, 0.0, 1.0, help="share of the distillation term; the rest is InfoNCE")
_register(
    "infonce", infonce, "cross-entropy over the kept candidates (the default)", "van den Oord et al. 2018"
)
_register(
    "hardness",
    hardness,
    "logit += alpha * stop_grad(cos) on kept negatives (student's or guide's cos)",
    "LLaVE arXiv 2503.04812 Eq. 5; EmbeddingGemma arXiv 2509.20354; ST MNRL hardness_mode",
    params={
        "alpha": ParamSpec(9.0, 0.0, 100.0, help="hardness strength (LLaVE uses 9)"),
        "sims": ParamSpec("student", choices=("student", "guide"), help="whose cosine weights the negatives"),
        "negatives": ParamSpec(
            "in_batch", choices=("in_batch", "hard", "all"), help="which negatives are re-weighted"
        ),
    },
    needs_guide=lambda params: params.get("sims") == "guide",
    guide_note="with sims=guide",
)
_register(
    "debiased",
    debiased,
    "negative term corrected for a positive-class prior tau_plus (0 = InfoNCE)",
    "Chuang et al. 2020, Debiased Contrastive Learning, arXiv 2007.00224, Eq. 6",
    params={"tau_plus": ParamSpec(0.1, 0.0, 1.0, high_open=True, help="class prior of false negatives")},
)
_register(
    "distill_kl",
    distill_kl,
    "(1-weight) InfoNCE + weight KL(guide || student) over the kept candidates",
    "Hinton et al. 2015; ST DistillKLDivLoss (arXiv 2010.11386) over in-batch guide scores",
    params={
        "guide_temperature": ParamSpec(0.05, 0.001, 10.0, help="temperature of the guide's softmax"),
        "weight": _WEIGHT,
    },
    needs_guide=lambda params: True,
)
_register(
    "margin_mse",
    margin_mse,
    "(1-weight) InfoNCE + weight MSE of student vs guide pos-neg cosine margins (own negatives)",
    "Hofstätter et al. 2020, MarginMSE, arXiv 2010.02666; ST MarginMSELoss",
    params={"weight": _WEIGHT},
    needs_guide=lambda params: True,
    needs_negatives=True,
)
_register(
    "relabel_positive",
    relabel_positive,
    "candidates the strategy flagged become extra positives (multi-positive InfoNCE)",
    "RLHN arXiv 2505.16967 (castorini/rlhn); SupCon L_in/L_out, Khosla et al. 2020, arXiv 2004.11362",
    params={
        "numerator": ParamSpec(
            "sum", choices=("sum", "mean"), help="-log sum_P p (SupCon L_in) or -mean_P log p (L_out)"
        )
    },
    relabels=True,
)


def resolve_objective(name: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Defaults overlaid with ``params``, each checked against its range (``harness.params``).

    Raises:
        UserError: an unknown objective or parameter, or a value outside its range (one line).
    """
    return resolve(OBJECTIVES, name, params)


def objective_needs(name: str, params: Mapping[str, Any] | None = None) -> tuple[bool, bool]:
    """``(needs_guide, needs_negatives)`` of objective ``name`` with these parameters."""
    resolved = resolve_objective(name, params)
    objective = OBJECTIVES.get(name)
    return objective.needs_guide(resolved), objective.needs_negatives


def objective_loss(
    name: str, scores: RowScores, *, temperature: float, params: Mapping[str, Any] | None = None
) -> Tensor:
    """The mean loss of the rows in ``scores`` under objective ``name`` (parameters resolved here)."""
    return OBJECTIVES.get(name).fn(scores, temperature=temperature, **resolve_objective(name, params))


def listing() -> list[dict[str, Any]]:
    """One row per registered objective, for ``gist-harness ls objectives``."""
    rows = []
    for name, objective in OBJECTIVES.items():
        guide = objective.needs_guide({k: v.default for k, v in objective.params.items()})
        rows.append(
            {
                "name": name,
                "needs_guide": objective.guide_note or guide,
                "needs_negatives": objective.needs_negatives,
                "params": listed(objective.params),
                "summary": objective.summary,
                "reference": objective.reference,
            }
        )
    return rows


NOTE = (
    "Objectives compose with every masking strategy: the strategy drops candidates first, the "
    "objective scores what is left (train.objective, train.objective_params); relabel_positive "
    "turns what was dropped into positives. Guide similarities come from the cached guide "
    "vectors: no extra guide pass."
)

__all__ = [
    "NOTE",
    "OBJECTIVES",
    "Objective",
    "debiased",
    "distill_kl",
    "hardness",
    "infonce",
    "listing",
    "margin_mse",
    "objective_loss",
    "objective_needs",
    "relabel_positive",
    "resolve_objective",
]
