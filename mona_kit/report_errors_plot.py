"""``errors.png``: each task's test metric per method, with the reference rows drawn as lines.

A bar per method on a linear axis hid what the table is about: on most tasks the `mean` and
`linear-probe` bars dwarfed every transfer row, and errors that differ by 10x (fine-tuning against the
specialist) looked alike. Here transfer rows are points (mean ± std over seeds, seeds as small dots),
the references (training mean, ridge, 1-NN, specialist) are horizontal lines a row must get under,
and a panel whose values span more than a factor of 20 uses a log axis.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .report import aggregate, row_layout, save_figure

PANELS_PER_ROW = 4  # a wide sweep wraps onto more rows instead of one strip too wide to read
LOG_SPAN = 20.0  # max/min of a panel's positive values above which its axis is logarithmic
# Line styles for reference rows, in the order they are met; a reference beyond these reuses them.
REFERENCE_STYLES = [("0.55", "--"), ("black", "-"), ("tab:green", ":"), ("tab:red", "-.")]


def _finite(values: list[Any]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def _uses_log(values: list[float]) -> bool:
    positive = [v for v in values if v > 0]
    return len(positive) == len(values) and len(values) > 1 and max(positive) / min(positive) > LOG_SPAN


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
    styles = {m: REFERENCE_STYLES[i % len(REFERENCE_STYLES)] for i, m in enumerate(refs)}
    colors = plt.get_cmap("tab10")
    width = max(3.2, 0.32 * len(transfer) + 1.2)
    ncols = min(PANELS_PER_ROW, len(tasks))
    nrows = math.ceil(len(tasks) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols + 0.5, 4.2 * nrows + 0.4), squeeze=False)
    for ax in axes.flat[len(tasks):]:
        ax.set_visible(False)
    for ax, task in zip(axes.flat, tasks):
        cells = {m: agg[(m, task)] for m in methods if (m, task) in agg and not math.isnan(agg[(m, task)]["mean"])}
        shown = _finite([v for m, a in cells.items() for v in (a["values"] if m in transfer else [a["mean"]])])
        log = _uses_log(shown)
        for i, m in enumerate(transfer):
            a = cells.get(m)
            if a is None:
                continue
            mean, std = a["mean"], a["std"] if math.isfinite(a["std"]) else 0.0
            low = min(std, mean * 0.999) if log else std  # a log axis cannot show a bar below zero
            ax.errorbar([i], [mean], yerr=[[low], [std]], fmt="o", color=colors(i % 10), capsize=3, ms=6, zorder=3)
            seeds = _finite(a["values"])
            ax.scatter([i + 0.18] * len(seeds), seeds, color="k", s=7, zorder=4)
        for m in refs:
            a = cells.get(m)
            if a is not None and (a["mean"] > 0 or not log):
                color, style = styles[m]
                ax.axhline(a["mean"], color=color, linestyle=style, linewidth=1.2, zorder=2, label=m)
        if log:
            ax.set_yscale("log")
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
        handles = [plt.Line2D([], [], color=styles[m][0], linestyle=styles[m][1], label=f"{m} (reference)") for m in refs]
        fig.legend(handles=handles, loc="upper center", ncol=len(refs), fontsize=8, frameon=False)
        fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_size_inches()[1]))
    else:
        fig.tight_layout()
    return fig
