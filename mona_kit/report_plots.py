"""The sweep report's figures: ``errors.png`` (each task's test metric per method, reference rows as
lines), ``learning-curves.png`` (validation metric over steps) and ``knowledge-reuse.png``.

errors.png: a bar per method on a linear axis hid what the table is about: on most tasks the `mean` and
`linear-probe` bars dwarfed every transfer row, and errors that differ by 10x (fine-tuning against the
specialist) looked alike. Here transfer rows are points (mean ± std over seeds, seeds as small dots),
the references (training mean, ridge, 1-NN, specialist) are horizontal lines a row must get under,
and a panel whose values span more than a factor of 20 uses a log axis (the learning curves too).
"""
from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from .report import aggregate, row_layout, save_figure
from .report_reuse import cka_points, last_stage_events, reuse_points
from .summary import as_number

PANELS_PER_ROW = 4  # a wide sweep wraps onto more rows instead of one strip too wide to read
LOG_SPAN = 20.0  # max/min of a panel's positive values above which its axis is logarithmic
# Line styles for reference rows, in the order they are met; a reference beyond these reuses them.
# Greys and black only, told apart by dash: tab10, which colours the transfer rows, has no black.
REFERENCE_STYLES = [("0.6", "--"), ("black", "-"), ("black", ":"), ("black", "-.")]


def _finite(values: list[Any]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def method_styles(rows: list[dict[str, Any]], references: set[str] | frozenset[str] = frozenset()) -> dict[str, tuple[Any, str]]:
    """(colour, line style) per method label, the same in every figure of a report: transfer rows take
    tab10's colours in table order with solid lines, reference rows REFERENCE_STYLES in theirs."""
    import matplotlib.pyplot as plt

    _, refs, transfer, _ = row_layout(rows, references)
    colors = plt.get_cmap("tab10")
    styles: dict[str, tuple[Any, str]] = {m: (colors(i % 10), "-") for i, m in enumerate(transfer)}
    styles.update({m: REFERENCE_STYLES[i % len(REFERENCE_STYLES)] for i, m in enumerate(refs)})
    return styles


def _panels(plt, count: int, width: float, height: float):
    """A figure of ``count`` panels, PANELS_PER_ROW to a row, the unused ones hidden; and the panels."""
    ncols = min(PANELS_PER_ROW, count)
    nrows = math.ceil(count / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols + 0.5, height * nrows + 0.4), squeeze=False)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:count])


def _top_legend(fig, handles) -> None:
    """One legend above every panel (a legend inside one panel hid its curves), in as many columns as
    the figure's width holds, so a one-panel figure does not cut it off."""
    widest = max(len(h.get_label()) for h in handles)
    ncol = max(1, min(len(handles), int(fig.get_size_inches()[0] / (0.6 + 0.075 * widest))))
    fig.legend(handles=handles, loc="upper center", ncol=ncol, fontsize=8, frameon=False)
    rows = math.ceil(len(handles) / ncol)
    fig.tight_layout(rect=(0, 0, 1, 1 - (0.12 + 0.2 * rows) / fig.get_size_inches()[1]))


def _log_axis(ax) -> None:
    """A logarithmic y axis labelled at its decades only (minor labels crowd a short span)."""
    from matplotlib.ticker import NullFormatter

    ax.set_yscale("log")
    ax.yaxis.set_minor_formatter(NullFormatter())


def _uses_log(values: list[float]) -> bool:
    positive = [v for v in values if v > 0]
    return len(positive) == len(values) and len(values) > 1 and max(positive) / min(positive) > LOG_SPAN


def log_if_wide(ax, values: list[Any]) -> bool:
    """Give ``ax`` a log y axis when the finite ``values`` drawn on it are all positive and span more
    than LOG_SPAN (a linear one flattens all but the largest); whether it did."""
    log = _uses_log(_finite(values))
    if log:
        _log_axis(ax)
    return log


def plot_errors(rows: list[dict[str, Any]], path: Path, *, references: set[str] | frozenset[str] = frozenset()) -> Path:
    """Write :func:`errors_figure` as a PNG."""
    return save_figure(errors_figure(rows, references=references), path)


def errors_figure(rows: list[dict[str, Any]], *, references: set[str] | frozenset[str] = frozenset()):
    """One panel per task. ``references``: methods drawn as horizontal lines (registered with
    ``reference=True``); every other method is a point with its seed spread."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    agg = aggregate(rows)
    methods, refs, transfer, tasks = row_layout(rows, references)
    styles = method_styles(rows, references)
    width = max(3.2, 0.32 * len(transfer) + 1.2)
    fig, axes = _panels(plt, len(tasks), width, 4.2)
    for ax, task in zip(axes, tasks):
        cells = {m: agg[(m, task)] for m in methods if (m, task) in agg and not math.isnan(agg[(m, task)]["mean"])}
        log = log_if_wide(ax, [v for m, a in cells.items() for v in (a["values"] if m in transfer else [a["mean"]])])
        for i, m in enumerate(transfer):
            a = cells.get(m)
            if a is None:
                continue
            mean, std = a["mean"], a["std"] if math.isfinite(a["std"]) else 0.0
            seeds = _finite(a["values"])
            # A log axis has no room below zero: where mean - std is not positive the bar ends at the
            # lowest seed instead of stretching the axis down by decades.
            low = mean - min(seeds) if log and mean - std <= 0 else std
            ax.errorbar([i], [mean], yerr=[[low], [std]], fmt="o", color=styles[m][0], capsize=3, ms=6, zorder=3)
            ax.scatter([i + 0.18] * len(seeds), seeds, color="k", s=7, zorder=4)
        for m in refs:
            a = cells.get(m)
            if a is not None and (a["mean"] > 0 or not log):
                color, style = styles[m]
                ax.axhline(a["mean"], color=color, linestyle=style, linewidth=1.2, zorder=2, label=m)
        any_cell = next(iter(cells.values()), None)
        if any_cell is not None:
            better = "higher" if any_cell["higher_is_better"] else "lower"
            ax.set_ylabel(f"test {any_cell['metric']} ({better} is better{', log scale' if log else ''})", fontsize=8)
        ax.set_title(task, fontsize=10)
        ax.set_xticks(range(len(transfer)))
        ax.set_xticklabels(transfer, rotation=60, ha="right", fontsize=8)
        ax.set_xlim(-0.6, len(transfer) - 0.4)
        ax.grid(axis="y", alpha=0.3)
    if refs:
        _top_legend(fig, [plt.Line2D([], [], color=styles[m][0], linestyle=styles[m][1], label=f"{m} (reference)") for m in refs])
    else:
        fig.tight_layout()
    return fig


def plot_reuse(rows: list[dict[str, Any]], path: Path, *, references: set[str] | frozenset[str] = frozenset()) -> Path | None:
    """Knowledge-reuse curves of the final training stage, mean over seeds, one line per method,
    one column per task: Davies–Bouldin index (top), source linear-probe accuracy (middle) and,
    where runs logged it, linear CKA to the pretrained body (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # (method, task) -> step -> per-seed values; one mapping per plotted quantity
    curves: list[dict[tuple[str, str], dict[int, list[float]]]] = [defaultdict(lambda: defaultdict(list)) for _ in range(3)]
    for r in rows:
        key = (r["method_label"], r["task_label"])
        for step, point in reuse_points(r).items():
            if point is not None:
                acc, db = point
                curves[0][key][step].append(db)
                curves[1][key][step].append(acc)
        for step, value in cka_points(r).items():
            if value is not None:
                curves[2][key][step].append(value)
    if not curves[0]:
        return None
    panels = [(c, label) for c, label in zip(curves, ("source Davies–Bouldin (lower = kept)",
                                                        "source linear-probe acc. (higher = kept)",
                                                        "CKA to pretrained body (1 = kept)")) if c]
    tasks = list(dict.fromkeys(t for _, t in curves[0]))
    methods = list(dict.fromkeys(m for m, _ in curves[0]))
    fig, axes = plt.subplots(len(panels), len(tasks), figsize=(3.4 * len(tasks) + 1, 3.25 * len(panels)), squeeze=False)
    styles = method_styles(rows, references)
    for j, t in enumerate(tasks):
        for row, (panel, _) in enumerate(panels):
            for m in methods:
                points = panel.get((m, t))
                if points:
                    steps = sorted(points)
                    axes[row][j].plot(steps, [sum(points[s]) / len(points[s]) for s in steps], marker=".",
                                      color=styles[m][0], linestyle=styles[m][1], label=m)
            axes[row][j].grid(alpha=0.3)
        axes[0][j].set_title(t, fontsize=10)
        axes[-1][j].set_xlabel("fine-tuning step")
    for row, (_, label) in enumerate(panels):
        axes[row][0].set_ylabel(label)
    _top_legend(fig, [plt.Line2D([], [], color=styles[m][0], linestyle=styles[m][1], marker=".", label=m) for m in methods])
    return save_figure(fig, path)


def plot_learning(rows: list[dict[str, Any]], path: Path, *, references: set[str] | frozenset[str] = frozenset()) -> Path | None:
    """Validation-metric curves of each run's last training stage, mean over seeds, one line per
    method, one panel per task (what model selection saw, and whether it had flattened)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves: dict[tuple[str, str], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    metric_of: dict[str, str] = {}
    for r in rows:
        metric = r["metric"]
        latest = last_stage_events(
            r, lambda e, metric=metric: e.get("split") == "val" and "step" in e and as_number(e.get(metric)) is not None)
        if not latest:
            continue
        for step, e in latest.items():
            curves[(r["method_label"], r["task_label"])][step].append(as_number(e[metric]))
        metric_of[r["task_label"]] = metric
    if not curves:
        return None
    tasks = list(dict.fromkeys(t for _, t in curves))
    methods = list(dict.fromkeys(m for m, _ in curves))
    fig, axes = _panels(plt, len(tasks), 3.6, 3.4)
    styles = method_styles(rows, references)
    for ax, t in zip(axes, tasks):
        means = {}
        for m in methods:
            points = curves.get((m, t))
            if points:
                steps = sorted(points)
                means[m] = [sum(points[s]) / len(points[s]) for s in steps]
                ax.plot(steps, means[m], marker=".", ms=3, lw=1, color=styles[m][0], linestyle=styles[m][1], label=m)
        log = log_if_wide(ax, [v for values in means.values() for v in values])
        ax.set_title(t, fontsize=10)
        ax.set_xlabel("step (last training stage)")
        ax.set_ylabel(f"validation {metric_of[t]}{' (log scale)' if log else ''}", fontsize=8)
        ax.grid(alpha=0.3)
    _top_legend(fig, [plt.Line2D([], [], color=styles[m][0], linestyle=styles[m][1], marker=".", label=m) for m in methods])
    return save_figure(fig, path)
