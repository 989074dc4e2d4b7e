"""Guide quality by training source and block: where the masking strategy acts, and how well.

From each run record's ``by_source`` (whole-run totals by the source of each anchor row, see
``harness.loss.diagnostics.SourceTotals``): per arm and source, the mean over seeds of the anchor
rows trained, the drop rate overall and per block, the negatives kept per anchor, and with labels
the false-negative precision and the **FN lift**. Blocks carry the names the code uses everywhere
(``harness.loss.blocks``): ap anchor-positive, aa anchor-anchor, pp positive-positive and an
anchor-hard negative (the GISTEmbed paper's qp, qq, pp and qn, said once in the table's note).

FN lift = FN precision / the same-class share of the eligible candidates: how many times more often a
dropped candidate shares the anchor's label than a candidate dropped at random at the same rate (1
for random drops, at any rate). The records hold precision, recall and drop rate, not the share, so
the share is recovered as ``precision × drop rate / recall`` (hits / dropped × dropped / eligible ×
positives / hits), and the lift is ``recall / drop rate``. FN recall itself is not shown: the positive
is a random text of the anchor's class, so a guide that tells classes apart but not texts within one
drops about half the same-class candidates, however good it is (0.50–0.51 on every labelled source of
``reports/gist-vs-infonce-cls``), while random drops' recall is their drop rate.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from harness.report.load import arm_of
from harness.report.stats import mean_ci
from harness.report.tables import Cell, Table
from harness.results import StudyResults

BLOCKS = (("ap", "ap"), ("aa", "aa"), ("pp", "pp"), ("an1", "an"))


@dataclass(frozen=True)
class LabelCounts:
    """One source's labelled drops over a run: dropped candidates, those sharing the anchor's label
    (hits), and the hits random drops at the same rate would expect (dropped × same-class share)."""

    dropped: float
    hits: float
    expected: float


def same_class_share(values: dict[str, float]) -> float | None:
    """Share of a source's eligible candidates that share the anchor's label (None: not recoverable).

    A labelled source records ``fn_precision`` where it dropped something and ``fn_recall`` where a
    same-class candidate existed; without ``fn_recall`` the share is 0. Worked example: precision 0.5,
    drop rate 0.1, recall 0.25 → 0.5 × 0.1 / 0.25 = 0.2.
    """
    if "fn_recall" not in values:
        return 0.0 if "fn_precision" in values else None
    recall, precision = values["fn_recall"], values.get("fn_precision")
    if not recall or precision is None:
        return None
    return precision * values["drop_rate"] / recall


def label_counts(values: dict[str, float]) -> LabelCounts | None:
    """The :class:`LabelCounts` of one source's record; None without labels or where not recoverable."""
    share = same_class_share(values)
    eligible = sum(v for k, v in values.items() if k.startswith("candidates_"))
    if share is None or not eligible:
        return None
    dropped = values["drop_rate"] * eligible
    return LabelCounts(dropped, values.get("fn_precision", 0.0) * dropped, dropped * share)


def fn_lift(counts: list[LabelCounts | None]) -> float | None:
    """Hits over the hits random drops at each source's own rate would expect (None: undefined)."""
    if not counts or any(c is None for c in counts):
        return None
    expected = sum(c.expected for c in counts if c is not None)
    return sum(c.hits for c in counts if c is not None) / expected if expected else None


def with_interval(values: list[float], digits: int = 2) -> str:
    """``mean ± h`` (95% t half-width over seeds), the mean alone for one seed, '—' for none."""
    if not values:
        return "—"
    ci = mean_ci(values)
    text = f"{ci.mean:.{digits}f}"
    return text if ci.half_width is None else f"{text} ± {ci.half_width:.{digits}f}"


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}%"


def _num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _present(values: list[float | None]) -> list[float]:
    return [v for v in values if v is not None]


def source_table(results: StudyResults) -> Table | None:
    """Drop rate per block, negatives kept, FN precision and lift by arm and source (None: no data)."""
    runs: dict[tuple[str, str], list[dict[str, float]]] = defaultdict(list)
    for r in results.trials:
        if r.trial.state == "COMPLETE" and r.run is not None:
            for source, values in sorted((getattr(r.run, "by_source", None) or {}).items()):
                runs[(arm_of(r), source)].append(values)
    if not runs:
        return None
    columns = ["Arm", "Source", "Rows", "Drop rate", *(f"Drop {paper}" for _, paper in BLOCKS),
               "Kept/anchor", "FN precision", "Same-class share", "FN lift"]  # fmt: skip
    rows = []
    for (arm, source), values in runs.items():

        def over_seeds(key: str, values: list[dict[str, float]] = values) -> float | None:
            return _mean([v[key] for v in values if key in v])

        rows.append([
            Cell(arm, numeric=False), Cell(source, numeric=False),
            Cell(_num(over_seeds("rows"), 0)), Cell(_pct(over_seeds("drop_rate"))),
            *(Cell(_pct(over_seeds(f"drop_rate_{block}"))) for block, _ in BLOCKS),
            Cell(_num(over_seeds("negatives_kept_mean"), 1)),
            Cell(with_interval([v["fn_precision"] for v in values if "fn_precision" in v], 3)),
            Cell(_num(_mean(_present([same_class_share(v) for v in values])), 3)),
            Cell(with_interval(_present([fn_lift([label_counts(v)]) for v in values]))),
        ])  # fmt: skip
    notes = [
        "Whole-run totals by the training source of each anchor row, then the mean over seeds. Blocks: "
        "ap anchor–positive, aa anchor–anchor, pp positive–positive, an anchor–hard negative (the GISTEmbed "
        "paper's qp, qq, pp, qn); '—' where an arm has no such block for that source (a source without hard "
        "negatives has no an block).",
        "Rows: anchor rows trained (a per-source epoch drops each source's last short batch).",
        _FN_NOTE,
    ]
    return Table("by-source", "Guide quality by source and block", columns, rows, notes)


_FN_NOTE = (
    "FN precision: share of dropped candidates that share the anchor's label (false negatives by the "
    "label); same-class share: share of all eligible candidates that do, the FN precision random drops "
    "would have; FN lift: FN precision / same-class share (= FN recall / drop rate), 1 for random drops "
    "at any rate, above 1 where the guide finds same-class candidates. FN precision and lift: mean ± 95% t "
    "half-width over seeds. They need labelled rows: '—' without labels or where nothing was dropped. FN recall is no "
    "longer shown: the positive is itself a random same-class text, so a guide that tells classes apart but "
    "not the texts within one drops about half the same-class candidates, however good it is otherwise, "
    "and random drops' recall is their drop rate: it cannot rank guides."
)
