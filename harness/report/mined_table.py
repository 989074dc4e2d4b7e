"""What mining did, by arm and training source: the ``mining`` records of trials with ``[train] mine``.

Mining runs once per trial before training (``harness.data.mined``) and records, per source
(``harness.results.MinedSource``), the rows kept, the negatives mined, the rows left without one, the
share of the window's candidates the guide's filters removed, the margin a quantile resolved to and,
where the source has class labels, the mining-time false-negative rates: mined, mined without the
filters (same window and sampling) and one random corpus text per anchor. The table shows the mean
over seeds (mining does not depend on the seed when the guide and options are the same, so the seeds
normally agree).
"""

from __future__ import annotations

from collections import defaultdict

from harness.report.by_source import _pct, with_interval
from harness.report.load import arm_of
from harness.report.tables import Cell, Table
from harness.results import MinedSource, StudyResults


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def mined_table(results: StudyResults) -> Table | None:
    """Per arm and source: rows, negatives per anchor, rows without one, removed share, margin and
    same-label rates (None: no COMPLETE trial recorded mining)."""
    records: dict[tuple[str, str], list[MinedSource]] = defaultdict(list)
    for r in results.trials:
        if r.trial.state == "COMPLETE" and r.run is not None:
            for source, record in sorted((getattr(r.run, "mining", None) or {}).items()):
                records[(arm_of(r), source)].append(record)
    if not records:
        return None
    columns = ["Arm", "Source", "Rows", "Negatives/anchor", "Rows without one", "Removed", "Margin",
               "Same label: mined", "unfiltered", "random", "Seconds"]  # fmt: skip
    rows = []
    for (arm, source), found in records.items():
        per_anchor = _mean([m.negatives / m.anchors if m.anchors else None for m in found])
        short = _mean([m.short_rows / m.rows if m.rows else None for m in found])
        margin = _mean([m.resolved_margin for m in found])
        rows.append([
            Cell(arm, numeric=False), Cell(source, numeric=False),
            Cell(f"{_mean([float(m.rows) for m in found]):.0f}"),
            Cell("—" if per_anchor is None else f"{per_anchor:.2f}"),
            Cell(_pct(short)), Cell(_pct(_mean([m.removed_share for m in found]))),
            Cell("—" if margin is None else f"{margin:.4f}"),
            Cell(_pct(_mean([m.same_label_rate for m in found]))),
            Cell(_pct(_mean([m.same_label_rate_unfiltered for m in found]))),
            Cell(_pct(_mean([m.same_label_rate_random for m in found]))),
            Cell(with_interval([m.seconds for m in found if m.seconds is not None], 1)),
        ])  # fmt: skip
    notes = [
        "From each COMPLETE trial's run record (`mining`, written when the arm sets `[train] mine`), the mean "
        "over seeds. Rows: training rows of the source, all kept; negatives/anchor: negatives mined per unique "
        "anchor; rows without one: rows whose negative column holds no mined text (the filters left the anchor "
        "short); removed: share of the window's candidates the guide's filters removed; margin: the absolute "
        "margin a `margin_quantile` resolved to ('—': none set).",
        "Same label (labelled sources only, '—' otherwise): share of mined negatives with the anchor's class "
        "label (mining-time false negatives), the same without the filters (same window and sampling), and for "
        "one random corpus text per anchor. Seconds: mining time per trial, mean ± 95% t half-width over seeds "
        "(guide look-ups included).",
    ]
    return Table("mined", "Mined negatives by source", columns, rows, notes)
