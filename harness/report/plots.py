"""Figures of the report, drawn with matplotlib's object API (no pyplot state, Agg canvas).

Optuna's plots (history, importances, parallel coordinates, intermediate values) are redrawn from the
history stored in ``manifest.json``, so no Optuna storage or study object is needed. Each function
returns a :class:`Figure` (PNG bytes) or None when the study has nothing to show for it.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass

from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure as MplFigure

from harness.report.contrasts import ContrastResults
from harness.report.load import ScoreIndex, arm_of
from harness.report.stats import mean_ci, omega_squared
from harness.results import Contrast, HistoryTrial, StudyResults

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
UNTRAINED_COLOR = "#7f7f7f"


@dataclass
class Figure:
    """One rendered figure: file stem, title, caption and PNG bytes."""

    name: str
    title: str
    caption: str
    png: bytes


def new_figure(width: float = 7.0, height: float = 3.6) -> tuple[MplFigure, Axes]:
    fig = MplFigure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def png_bytes(fig: MplFigure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return buffer.getvalue()


def arm_colors(arms: list[str]) -> dict[str, str]:
    return {arm: PALETTE[i % len(PALETTE)] for i, arm in enumerate(arms)}


def category_deltas(results: StudyResults, index: ScoreIndex) -> Figure | None:
    """Bars: each arm's Δ vs the baseline per category (error bars: 95% CI of the paired seed differences).

    The untrained student is left off the Δ scale (its gap is often ten times the arms' differences and
    would flatten them); its scores stand in the tables. 14 × 4.2 inches at 100 dpi: 1400 px wide.
    """
    baseline = results.manifest.baseline_arm
    others = [a for a in index.arms if a != baseline]
    if baseline not in index.scores or not others:
        return None
    groups: dict[str, list[str]] = {}
    for task, category in index.categories.items():
        groups.setdefault(category, []).append(task)
    groups["All tasks"] = list(index.categories)
    fig, ax = new_figure(14.0, 4.2)
    colors = arm_colors(index.arms)
    width = 0.8 / len(others)
    for k, arm in enumerate(others):
        deltas, errors = [], []
        for tasks in groups.values():
            base = _per_seed(index, baseline, tasks)
            values = _per_seed(index, arm, tasks)
            diffs = [values[s] - base[s] for s in sorted(set(values) & set(base))]
            m = mean_ci(diffs) if diffs else None
            deltas.append(100 * m.mean if m else float("nan"))
            errors.append(100 * m.half_width if m and m.half_width is not None else 0.0)
        xs = [i + (k - (len(others) - 1) / 2) * width for i in range(len(groups))]
        ax.bar(
            xs, deltas, width, yerr=errors if any(errors) else None, capsize=3, color=colors[arm], label=arm
        )
    ax.axhline(0, color="black", linewidth=0.8)
    labels = [f"{c}\n({len(t)} task{'s' * (len(t) != 1)})" for c, t in groups.items()]
    ax.set_xticks(range(len(groups)), labels, fontsize=9)
    ax.set_ylabel(f"Δ vs {baseline} (points ×100)")
    ax.legend(fontsize=8, ncols=min(len(others), 4))
    caption = (f"Mean paired difference to {baseline} per MTEB category over the seeds both arms completed; "
               "error bars: 95% t interval of the paired per-seed differences (none with one seed). The "
               "untrained student is left off this scale; its scores are in the tables.")  # fmt: skip
    return Figure("category_deltas", "Δ vs baseline per category", caption, png_bytes(fig))


def forest_plot(results: ContrastResults, index: ScoreIndex, contrast: Contrast) -> Figure | None:
    """Per-task Δ of one contrast with 95% CIs over seeds, and its aggregates (bootstrap CIs) below."""
    tasks = results.tasks.get(contrast, [])
    rows = [r for r in results.rows if r.contrast == contrast]
    if not tasks:
        return None
    labels, centres, lows, highs, colours = [], [], [], [], []
    for t in tasks:
        labels.append(t.task.removeprefix("local:") + (" †" if t.task in index.in_domain else ""))
        centres.append(100 * t.delta.mean)
        lows.append(100 * t.delta.low if t.delta.low is not None else None)
        highs.append(100 * t.delta.high if t.delta.high is not None else None)
        colours.append(PALETTE[0])
    for r in rows:
        b = r.bootstrap
        labels.append(f"{r.aggregate.label} (bootstrap)")
        centres.append(100 * (b.estimate if b else r.delta.mean))
        lows.append(100 * b.low if b else None)
        highs.append(100 * b.high if b else None)
        colours.append(PALETTE[1])
    fig, ax = new_figure(9.0, 1.2 + 0.32 * len(labels))
    ys = list(range(len(labels)))[::-1]
    for y, c, lo, hi, colour in zip(ys, centres, lows, highs, colours, strict=True):
        if lo is not None and hi is not None:
            ax.plot([lo, hi], [y, y], color=colour, linewidth=1.5)
        ax.plot([c], [y], "D" if colour == PALETTE[1] else "o", color=colour, markersize=5)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.axhline(len(rows) - 0.5, color="#bbbbbb", linewidth=0.8)
    ax.set_yticks(ys, labels, fontsize=8)
    ax.set_xlabel(f"Δ {contrast[0]} − {contrast[1]} (points ×100)")
    name = "forest_" + "_vs_".join(re.sub(r"[^A-Za-z0-9_.-]", "_", a) for a in contrast)
    caption = (f"{contrast[0]} − {contrast[1]}: per-task paired Δ over seeds with 95% t intervals (blue; "
               "none with one seed), and the aggregates with their bootstrap 95% intervals over tasks and "
               "seeds (red, below the line). † in-domain task.")  # fmt: skip
    return Figure(name, f"Forest plot: {contrast[0]} − {contrast[1]}", caption, png_bytes(fig))


def _per_seed(index: ScoreIndex, arm: str, tasks: list[str]) -> dict[int, float]:
    per_task = index.scores.get(arm, {})
    seeds = set.intersection(*(set(per_task.get(t, {})) for t in tasks))
    return {s: sum(per_task[t][s] for t in tasks) / len(tasks) for s in seeds}


def _curves(results: StudyResults, index: ScoreIndex, read: Callable, ylabel: str, name: str, title: str):
    fig, ax = new_figure()
    colors = arm_colors(index.arms or [arm_of(r) for r in results.trials])
    drawn: set[str] = set()
    single = True
    for r in results.trials:
        if r.trial.state != "COMPLETE" or r.run is None:
            continue
        points = read(r.run)
        if not points:
            continue
        arm = arm_of(r)
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, color=colors.get(arm, "black"), alpha=0.8, linewidth=1.2, marker="o", markersize=3,
                label=None if arm in drawn else arm)  # fmt: skip
        single = single and len(points) == 1
        drawn.add(arm)
    if not drawn:
        return None
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    if single:
        ax.set_title("one logged point per run (a run shorter than the logging interval)", fontsize=9)
        caption = f"{title}: one logged point per seed (drawn as a marker), so no curve."
    else:
        caption = f"{title}, one line per seed (markers: logged points)."
    return Figure(name, title, caption, png_bytes(fig))


def loss_curves(results: StudyResults, index: ScoreIndex) -> Figure | None:
    return _curves(
        results, index, lambda run: run.loss_curve, "training loss", "loss_curves", "Training loss"
    )


def drop_rate_curves(results: StudyResults, index: ScoreIndex) -> Figure | None:
    def read(run):
        return [(d.step, 100 * d.drop_rate) for d in run.diagnostics]

    return _curves(results, index, read, "dropped candidates (%)", "drop_rate", "Drop rate")


def _completed(results: StudyResults) -> tuple[list[HistoryTrial], list[float]]:
    """The COMPLETE trials of the stored Optuna history and their objective values."""
    history = [t for t in results.manifest.history if t.state == "COMPLETE" and t.value is not None]
    return history, [float(t.value) for t in history if t.value is not None]


def optimisation_history(results: StudyResults) -> Figure | None:
    """Objective per trial (COMPLETE trials) and the best value so far."""
    history, values = _completed(results)
    if not history:
        return None
    fig, ax = new_figure()
    pick = max if results.manifest.direction == "maximize" else min
    best_line = [pick(values[: i + 1]) for i in range(len(values))]
    ax.scatter([t.number for t in history], values, s=18, label="objective")
    ax.step([t.number for t in history], best_line, where="post", color="#d62728", label="best so far")
    for t in results.manifest.history:
        if t.state != "COMPLETE":
            ax.axvline(t.number, color="#bbbbbb", linestyle=":", linewidth=1)
    ax.set_xlabel("trial")
    ax.set_ylabel(results.manifest.objective or "objective")
    ax.legend(fontsize=8)
    caption = "Objective value of each COMPLETE trial; dotted lines mark trials that did not complete."
    return Figure("optimization_history", "Optimisation history", caption, png_bytes(fig))


def searched_parameters(results: StudyResults) -> list[str]:
    """Parameters of the experiment's ``[search_space]``; an ablation's arm and seed are fixed, not searched."""
    return sorted(results.manifest.experiment_table("search_space") or {})


def param_importances(results: StudyResults) -> Figure | None:
    """Bars of chance-corrected ω² per searched parameter (see :func:`harness.report.stats.omega_squared`).

    None for an ablation (arms × seeds are fixed, so an "importance" of arm or seed would mean nothing).
    """
    searched = searched_parameters(results)
    history, values = _completed(results)
    if not searched or len(history) < 3:
        return None
    params = [{k: v for k, v in t.params.items() if k in searched} for t in history]
    importance = omega_squared(params, values)
    if not importance:
        return None
    fig, ax = new_figure(height=1.0 + 0.45 * len(importance))
    names = list(importance)[::-1]
    ax.barh(names, [importance[n] for n in names], color=PALETTE[0])
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of objective variance explained, chance-corrected (ω²)")
    caption = (f"Chance-corrected share of the objective's variance explained by each searched parameter "
               f"alone (ω², one-way, over the {len(history)} COMPLETE trials; numeric parameters in 5 "
               "equal-count bins; interactions ignored; about 0 for a parameter unrelated to the objective).")  # fmt: skip
    return Figure("param_importances", "Parameter importances", caption, png_bytes(fig))


def _axis_values(values: list) -> tuple[list[float], list[tuple[float, str]]]:
    """Maps one axis to 0..1 and returns its tick labels; categorical values get evenly spaced positions."""
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        lo, hi = min(values), max(values)
        if hi == lo:
            return [0.5] * len(values), [(0.5, f"{lo:.4g}")]
        return [(v - lo) / (hi - lo) for v in values], [(0.0, f"{lo:.4g}"), (1.0, f"{hi:.4g}")]
    labels = sorted({str(v) for v in values})
    pos = {lab: i / (len(labels) - 1) if len(labels) > 1 else 0.5 for i, lab in enumerate(labels)}
    return [pos[str(v)] for v in values], [(pos[lab], lab) for lab in labels]


def parallel_coordinates(results: StudyResults) -> Figure | None:
    """One line per COMPLETE trial across its parameters and the objective, coloured by objective."""
    history, values = _completed(results)
    names = sorted({k for t in history for k in t.params})
    if len(history) < 2 or not names:
        return None
    fig, ax = new_figure()
    columns = [_axis_values([t.params.get(n) for t in history]) for n in names]
    columns.append(_axis_values(list(values)))
    lo, hi = min(values), max(values)
    cmap = colormaps["viridis"]
    for i in range(len(history)):
        shade = (values[i] - lo) / (hi - lo) if hi > lo else 0.5
        ax.plot(range(len(columns)), [c[0][i] for c in columns], color=cmap(shade), alpha=0.8)
    for x, (_, ticks) in enumerate(columns):
        ax.axvline(x, color="black", linewidth=0.8)
        for y, label in ticks:
            ax.annotate(label, (x, y), fontsize=7, xytext=(3, 2), textcoords="offset points")
    ax.set_xticks(range(len(columns)), [*names, "objective"])
    ax.set_yticks([])
    caption = "Each line is a COMPLETE trial; axes scaled to their range; colour: objective (yellow = high)."
    return Figure("parallel_coordinates", "Parallel coordinates", caption, png_bytes(fig))


def intermediate_values(results: StudyResults) -> Figure | None:
    """Values reported to the pruner per step, one line per trial (pruned and failed ones included)."""
    history = [t for t in results.manifest.history if t.intermediate_values]
    if not history:
        return None
    fig, ax = new_figure()
    for t in history:
        steps = sorted(t.intermediate_values)
        style = "-" if t.state == "COMPLETE" else "--"
        ax.plot(steps, [t.intermediate_values[s] for s in steps], style, marker="o", markersize=3,
                linewidth=1, label=f"#{t.number} ({t.state.lower()})" if t.state != "COMPLETE" else None)  # fmt: skip
    ax.set_xlabel("step")
    ax.set_ylabel("intermediate objective")
    if any(t.state != "COMPLETE" for t in history):
        ax.legend(fontsize=8)
    caption = "Objective reported to the pruner during training; dashed: trials that did not complete."
    return Figure("intermediate_values", "Intermediate values", caption, png_bytes(fig))


def all_figures(
    results: StudyResults, index: ScoreIndex, contrasts: ContrastResults | None = None
) -> list[Figure]:
    """Every figure the study has data for, in report order (forest plots of the primary contrasts first)."""
    primary = contrasts.settings.primary if contrasts else []
    makers = [
        *(lambda c=c: forest_plot(contrasts, index, c) for c in primary),  # type: ignore[arg-type]
        lambda: category_deltas(results, index),
        lambda: loss_curves(results, index),
        lambda: drop_rate_curves(results, index),
        lambda: optimisation_history(results),
        lambda: param_importances(results),
        lambda: parallel_coordinates(results),
        lambda: intermediate_values(results),
    ]
    return [f for f in (make() for make in makers) if f is not None]
