"""Guide quality by training source and block: where the masking strategy acts.

From each run record's ``by_source`` (whole-run totals by the source of each anchor row, see
``harness.loss.diagnostics.SourceTotals``): per arm and source, the mean over seeds of the anchor
rows trained, the drop rate overall and per block, the negatives kept per anchor, and with labels
the false-negative precision and recall. Blocks carry the names the code uses everywhere
(``harness.loss.blocks``): ap anchor-positive, aa anchor-anchor, pp positive-positive and an
anchor-hard negative (the GISTEmbed paper's qp, qq, pp and qn, said once in the table's note).
"""

from __future__ import annotations

from collections import defaultdict

from harness.report.load import arm_of
from harness.report.tables import Cell, Table
from harness.results import StudyResults

BLOCKS = (("ap", "ap"), ("aa", "aa"), ("pp", "pp"), ("an1", "an"))


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}%"


def _num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def source_table(results: StudyResults) -> Table | None:
    """Drop rate per block, negatives kept and FN precision/recall by arm and source (None: no data)."""
    runs: dict[tuple[str, str], list[dict[str, float]]] = defaultdict(list)
    for r in results.trials:
        if r.trial.state == "COMPLETE" and r.run is not None:
            for source, values in (getattr(r.run, "by_source", None) or {}).items():
                runs[(arm_of(r), source)].append(values)
    if not runs:
        return None
    columns = ["Arm", "Source", "Rows", "Drop rate", *(f"Drop {paper}" for _, paper in BLOCKS),
               "Kept/anchor", "FN precision", "FN recall"]  # fmt: skip
    rows = []
    for (arm, source), values in runs.items():

        def over_seeds(key: str, values: list[dict[str, float]] = values) -> float | None:
            return _mean([v[key] for v in values if key in v])

        rows.append([
            Cell(arm, numeric=False), Cell(source, numeric=False),
            Cell(_num(over_seeds("rows"), 0)), Cell(_pct(over_seeds("drop_rate"))),
            *(Cell(_pct(over_seeds(f"drop_rate_{block}"))) for block, _ in BLOCKS),
            Cell(_num(over_seeds("negatives_kept_mean"), 1)),
            Cell(_num(over_seeds("fn_precision"))), Cell(_num(over_seeds("fn_recall"))),
        ])  # fmt: skip
    notes = [
        "Whole-run totals by the training source of each anchor row, then the mean over seeds. Blocks: "
        "ap anchor–positive, aa anchor–anchor, pp positive–positive, an anchor–hard negative (the GISTEmbed "
        "paper's qp, qq, pp, qn); '—' where an arm has no such block for that source (a source without hard "
        "negatives has no an block).",
        "Rows: anchor rows trained (a per-source epoch drops each source's last short batch). FN "
        "precision/recall need labelled rows; sources without labels show '—'.",
    ]
    return Table("by-source", "Guide quality by source and block", columns, rows, notes)
