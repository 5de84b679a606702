"""Tables and plots of a sweep: mean ± std over seeds per method and task, best marked,
average rank; error bars per task; knowledge-reuse curves per method."""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .atomic_io import RERUN_ADVICE, atomic_replace, atomic_write_text
from .report_reuse import reuse_markdown
from .summary import as_number, mean_std, provenance_note


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def final_plateau(row: dict[str, Any]) -> dict[str, Any] | None:
    """The plateau record of a run's last training stage (None for runs that keep none: references)."""
    records = row.get("plateau")
    if not isinstance(records, dict) or not records:
        return None
    last = list(records.values())[-1]
    return last if isinstance(last, dict) else None


def aggregate(rows: list[dict[str, Any]], split: str = "test") -> dict[tuple[str, str], dict[str, Any]]:
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["method_label"], r["task_label"])].append(r)
    out = {}
    for key, rs in groups.items():
        metric = rs[0]["metric"]
        values = [as_number(r.get(split, {}).get(metric)) for r in rs]  # a diverged seed's 'nan' -> nan
        mean, std = mean_std(values)
        finite = sum(1 for v in values if v is not None and math.isfinite(v))
        out[key] = {
            "mean": mean, "std": std, "n": finite, "runs": len(rs), "metric": metric, "higher_is_better": rs[0].get("higher_is_better", False),
            "seconds": sum(as_number(r.get("wall_time_s")) or 0 for r in rs) / len(rs),
            "peak_mb": max(as_number(r.get("peak_memory_mb")) or 0 for r in rs), "values": values,
            # Cells whose last training stage was still improving, and cells too small to select on.
            "not_plateaued": sum(1 for r in rs if (final_plateau(r) or {}).get("plateaued") is False),
            "fixed_budget": sum(1 for r in rs if (final_plateau(r) or {}).get("selection") == "fixed-budget"),
        }
    return out


def ranked_tasks(agg: dict[tuple[str, str], dict[str, Any]], methods: list[str], tasks: list[str]) -> list[str]:
    """The tasks an average rank is taken over: those where every method has a cell. A column that a
    sweep has only begun to fill would otherwise rank its first few rows among themselves and skew
    their averages. Where no task is complete, every task counts."""
    complete = [t for t in tasks if all((m, t) in agg for m in methods)]
    return complete or list(tasks)


def ranks(agg: dict[tuple[str, str], dict[str, Any]], methods: list[str], tasks: list[str]) -> dict[str, float]:
    """Average rank of each method over the tasks where every method has a cell (see
    :func:`ranked_tasks`), 1 = best; ties share the rank."""
    per_method: dict[str, list[float]] = defaultdict(list)
    for task in ranked_tasks(agg, methods, tasks):
        scored = [(m, agg[(m, task)]) for m in methods if (m, task) in agg and not math.isnan(agg[(m, task)]["mean"])]
        if not scored:
            continue
        sign = -1.0 if scored[0][1]["higher_is_better"] else 1.0
        values = sorted(sign * a["mean"] for _, a in scored)
        for m, a in scored:
            v = sign * a["mean"]
            first = values.index(v) + 1
            last = len(values) - values[::-1].index(v)
            per_method[m].append((first + last) / 2)
    return {m: sum(r) / len(r) for m, r in per_method.items()}


def _cell_text(a: dict[str, Any], full_n: int) -> str:
    # Significant digits, not decimals: a linear solve of advection scores 2e-7, DNA errors 0.24.
    text = f"{a['mean']:.4g} ± {a['std']:.2g}"
    if a["n"] < a["runs"]:
        text += f" (n={a['n']} of {a['runs']})"
    elif a["n"] < full_n:
        text += f" (n={a['n']})"
    return text


def _unlearned(values: list[float | None], floor: float, sign: float) -> int:
    """Seeds (a cell's per-seed test metrics, as :func:`aggregate` parsed them) no better than
    ``floor`` (the `mean` reference's): a run that collapsed to a constant output plateaus too, so
    only this comparison tells it apart."""
    return sum(1 for v in values if v is not None and math.isfinite(v) and sign * v >= sign * floor)


def row_layout(rows: list[dict[str, Any]], references: set[str] | frozenset[str]) -> tuple[list[str], list[str], list[str], list[str]]:
    """Method labels, the reference ones (their registered method is in ``references``), the others
    (transfer rows) and task labels, each in first-seen order: how every table and plot lays rows out."""
    by_label = {r["method_label"]: r.get("method", r["method_label"]) for r in rows}
    methods = list(dict.fromkeys(r["method_label"] for r in rows))
    refs = [m for m in methods if by_label[m] in references]
    transfer = [m for m in methods if m not in refs]
    return methods, refs, transfer, list(dict.fromkeys(r["task_label"] for r in rows))


def provenance_notes(rows: list[dict[str, Any]], provenance: Mapping[str, str]) -> list[str]:
    """One note per registered method among ``rows`` that declares where it comes from: its row
    labels, then the declaration (``mona, mona-align-uniform: a reconstruction ...``)."""
    labels: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        method = r.get("method", r["method_label"])
        if provenance.get(method) and r["method_label"] not in labels[method]:
            labels[method].append(r["method_label"])
    return [provenance_note(shown, provenance[method]) for method, shown in labels.items() if shown]


def table_model(rows: list[dict[str, Any]], *, references: set[str] | frozenset[str] = frozenset(),
                baseline: str = "linear", floor: str = "mean", provenance: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The table as data, for the Markdown, HTML and LaTeX reports alike: tasks with their metric,
    blocks of method rows (reference rows apart), each cell's text, marks and runs, and the notes below.
    ``baseline``: the reference a transfer cell must beat on average (◇ where it does not);
    ``floor``: the reference below which a seed has learned nothing (∅k: k such seeds);
    ``provenance``: registered method -> where its implementation comes from (a method's
    ``provenance`` metadata), said under every table that shows its rows."""
    agg = aggregate(rows)
    methods, refs, transfer, tasks = row_layout(rows, references)
    by_label = {r["method_label"]: r.get("method", r["method_label"]) for r in rows}
    avg_rank = ranks(agg, transfer, tasks)
    metric_of = {t: next(a["metric"] for (m, tt), a in agg.items() if tt == t) for t in tasks}
    higher = {t: next(a["higher_is_better"] for (m, tt), a in agg.items() if tt == t) for t in tasks}
    runs_of: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        runs_of[(r["method_label"], r["task_label"])].append(r)
    best = {}
    for t in tasks:
        scored = [(m, agg[(m, t)]) for m in methods if (m, t) in agg and not math.isnan(agg[(m, t)]["mean"])]
        if scored:
            sign = -1.0 if higher[t] else 1.0
            best[t] = min(scored, key=lambda x: sign * x[1]["mean"])[0]
    base_label = next((m for m in refs if by_label[m] == baseline), None)
    floor_label = next((m for m in refs if by_label[m] == floor), None)
    full_n = max((a["runs"] for a in agg.values()), default=0)
    losses_to_base, unsettled, unsettled_runs, fixed, unlearned_runs, unlearned_cells = 0, 0, 0, 0, 0, 0
    blocks = []
    for block, members in (("reference", refs), ("transfer", transfer)):
        lines = []
        for m in members:
            cells = []
            for t in tasks:
                a = agg.get((m, t))
                if a is None:
                    cells.append(None)
                    continue
                cell = {"runs": runs_of[(m, t)], "best": False, "loses": False, "not_plateaued": 0, "unlearned": 0}
                if math.isnan(a["mean"]):
                    cells.append({**cell, "text": f"diverged ({a['runs']} runs)"})
                    continue
                cell.update(text=_cell_text(a, full_n), best=best.get(t) == m, not_plateaued=a["not_plateaued"])
                ref = agg.get((base_label, t)) if base_label else None
                if block == "transfer" and ref is not None and not math.isnan(ref["mean"]):
                    sign = -1.0 if higher[t] else 1.0
                    if sign * a["mean"] >= sign * ref["mean"]:
                        cell["loses"] = True
                        losses_to_base += 1
                low = agg.get((floor_label, t)) if floor_label else None
                if block == "transfer" and low is not None and not math.isnan(low["mean"]):
                    unlearned = _unlearned(a["values"], low["mean"], -1.0 if higher[t] else 1.0)
                    cell["unlearned"] = unlearned
                    unlearned_runs += unlearned
                    unlearned_cells += unlearned > 0
                if a["not_plateaued"]:
                    unsettled += 1
                    unsettled_runs += a["not_plateaued"]
                if a["fixed_budget"]:
                    fixed += 1
                cells.append(cell)
            lines.append({"method": m, "cells": cells, "rank": f"{avg_rank[m]:.2f}" if m in avg_rank else "–"})
        if members:
            blocks.append({"name": block if refs else None, "rows": lines})
    notes = ["Test-split metric, mean ± sample std over seeds (model selected on the validation split unless noted); "
             "↓ lower / ↑ higher is better; best mean per task in bold; a seed whose metric is not finite is "
             "left out of the mean and counted in n."]
    if refs:
        notes.append("Reference rows (training mean, linear model, 1-NN, from-scratch specialist) are what a "
                     "transfer method must beat; the rank is averaged over tasks among the transfer methods only.")
    ranked = ranked_tasks(agg, transfer, tasks)
    left_out = [t for t in tasks if t not in ranked]
    if left_out:
        notes.append(f"The average rank leaves out {', '.join(left_out)}: not every transfer row has a cell there yet.")
    # A column every row has begun counts, but on its first seeds its order is mostly noise: say so.
    thin = [t for t in ranked if any((m, t) in agg and agg[(m, t)]["runs"] < full_n for m in transfer)]
    if thin and len(thin) < len(ranked):
        notes.append(f"On {', '.join(thin)} some transfer rows have fewer than {full_n} seeds yet: the average rank "
                     "uses the seeds there are, so it may still move.")
    if base_label:
        notes.append(f"◇: does not beat the `{baseline}` reference on that task ({_count(losses_to_base, 'cell')}).")
    if floor_label and unlearned_runs:
        notes.append(f"∅k: k seeds no better than the `{floor}` reference -- they learned nothing that predicting the training "
                     f"mean does not give ({_count(unlearned_runs, 'run')} in {_count(unlearned_cells, 'table cell')}).")
    notes.append(f"†k: k seeds whose last training stage had not plateaued ({_count(unsettled_runs, 'run')} in {_count(unsettled, 'table cell')}; "
                 "its best validation metric still gained at least train.plateau_tolerance over the last train.plateau_window of its "
                 "steps, and more than the metric's sampling error where the metric declares one, and early stopping had not ended it; "
                 "record in each run's results.json under 'plateau').")
    if fixed:
        notes.append(f"{fixed} cells train on a set too small to select on: their runs keep the end of a fixed "
                     "budget instead of the best validation step.")
    method_notes = provenance_notes(rows, provenance or {})
    notes += method_notes
    headers = [f"{t} ({metric_of[t]} {'↑' if higher[t] else '↓'})" for t in tasks]
    return {"tasks": tasks, "headers": headers, "method_notes": method_notes, "fixed_budget": fixed, "metrics": [f"{metric_of[t]} {'↑' if higher[t] else '↓'}" for t in tasks],
            "blocks": blocks, "notes": notes,
            "baseline": base_label, "floor": floor_label, "aggregate": agg}


def cell_marks(cell: dict[str, Any]) -> str:
    """The ◇, ∅k and †k marks after a cell's number."""
    text = " ◇" if cell.get("loses") else ""
    if cell.get("unlearned"):
        text += f" ∅{cell['unlearned']}"
    if cell.get("not_plateaued"):
        text += f" †{cell['not_plateaued']}"
    return text


def markdown_table(rows: list[dict[str, Any]], *, title: str = "", references: set[str] | frozenset[str] = frozenset(),
                   baseline: str = "linear", floor: str = "mean", provenance: Mapping[str, str] | None = None) -> str:
    """Mean ± std per method and task. Rows whose method is in ``references`` (registered with
    ``reference=True``: mean, linear, 1-NN, specialists) form their own block; the other rows are
    ranked among themselves, marked where they do not beat the ``baseline`` reference row, where a
    seed is no better than the ``floor`` reference row, and where a seed's last training stage had
    not plateaued."""
    return markdown_from_model(table_model(rows, references=references, baseline=baseline, floor=floor,
                                           provenance=provenance), title=title)


def markdown_from_model(model: dict[str, Any], *, title: str = "") -> str:
    """The Markdown table of a :func:`table_model`, its notes below."""
    n = len(model["tasks"])
    lines = [f"### {title}", ""] if title else []
    lines.append("| method | " + " | ".join(model["headers"]) + " | avg. rank |")
    lines.append("|---" * (n + 2) + "|")
    for block in model["blocks"]:
        if block["name"]:
            lines.append(f"| *{block['name']}* |" + " |" * (n + 1))
        for row in block["rows"]:
            cells = []
            for cell in row["cells"]:
                if cell is None:
                    cells.append("–")
                    continue
                text = f"**{cell['text']}**" if cell["best"] else cell["text"]
                cells.append(text + cell_marks(cell))
            lines.append(f"| {row['method']} | " + " | ".join(cells) + f" | {row['rank']} |")
    lines.append("")
    lines.append(" ".join(model["notes"]))
    return "\n".join(lines)


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    fields = ["method_label", "task_label", "seed", "metric", "val", "test", "plateaued", "selection", "wall_time_s",
              "peak_memory_mb", "run_dir"]
    lines = []
    for r in rows:
        m = r["metric"]
        lines.append({
            "method_label": r["method_label"], "task_label": r["task_label"], "seed": r["seed"], "metric": m,
            "val": r.get("val", {}).get(m), "test": r.get("test", {}).get(m),
            "plateaued": (final_plateau(r) or {}).get("plateaued"), "selection": (final_plateau(r) or {}).get("selection"),
            "wall_time_s": round(as_number(r.get("wall_time_s")) or 0, 2),
            "peak_memory_mb": round(as_number(r.get("peak_memory_mb")) or 0, 1), "run_dir": r["run_dir"],
        })

    def write(tmp):
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            writer.writerows(lines)

    atomic_replace(path, write, advice=RERUN_ADVICE)  # a full disk is one line and leaves the previous table whole


def save_figure(fig, path: Path) -> Path:
    """Write a figure as PNG through a temporary file (one-line error on a write failure), then free it."""
    import matplotlib.pyplot as plt

    try:
        atomic_replace(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"), advice=RERUN_ADVICE)
    finally:
        plt.close(fig)
    return path


#: The files :func:`write_report` writes into a sweep's output folder (a sweep refuses a folder that holds
#: one of them but no cells: they would be someone else's, and replaced).
REPORT_FILES = ("table.md", "table.tex", "results.csv", "errors.png", "knowledge-reuse.png", "learning-curves.png",
                "report.html", "summary.json")


def write_report(output: Path, rows: list[dict[str, Any]], *, title: str, command: str,
                 references: set[str] | frozenset[str] = frozenset(),
                 controls: set[str] | frozenset[str] = frozenset(),
                 provenance: Mapping[str, str] | None = None) -> list[Path]:
    """Write table.md (the table, its flagged cells, each row against fine-tuning, the best transfer
    row against the specialist, knowledge reuse), table.tex (the table alone, as LaTeX), results.csv,
    the plots, report.html and summary.json.
    ``references``: methods shown as reference rows; ``controls``: methods that start from random
    weights (compared with fine-tuning, but not counted as transfer against the specialist);
    ``provenance``: registered method -> where its implementation comes from, said under the table."""
    from .report_compare import anchor_markdown, specialist_markdown
    from .report_flags import flags_markdown
    from .report_html import write_html
    from .report_latex import latex_table
    from .report_plots import plot_errors, plot_learning, plot_reuse

    output = Path(output)
    model = table_model(rows, references=references, provenance=provenance)
    table = markdown_from_model(model, title=title)
    flags = flags_markdown(rows, references=references, model=model)
    anchor = anchor_markdown(rows, references=references)
    gaps = specialist_markdown(rows, references=references, controls=controls)
    reuse = reuse_markdown(rows, skip=set(references))  # reference rows have no body to probe
    sections = [table, *(part for part in (flags, anchor, gaps, reuse) if part), f"Produced by: `{command}`\n"]
    atomic_write_text(output / "table.md", "\n\n".join(sections), advice=RERUN_ADVICE)
    atomic_write_text(output / "table.tex", latex_table(model, title=title), advice=RERUN_ADVICE)
    write_csv(rows, output / "results.csv")
    errors = plot_errors(rows, output / "errors.png", references=references)
    written = [output / "table.md", output / "table.tex", output / "results.csv", errors]
    reuse_plot = plot_reuse(rows, output / "knowledge-reuse.png", references=references)
    if reuse_plot:
        written.append(reuse_plot)
    learning = plot_learning(rows, output / "learning-curves.png", references=references)
    if learning:
        written.append(learning)
    written.append(write_html(output, rows, model, title=title, command=command, sections=[flags, anchor, gaps], images={
        "test metric per task: transfer rows as mean ± std over seeds (small dots: seeds), reference rows as lines": errors,
        "learning curves: validation metric of the last training stage, mean over seeds": learning,
        "knowledge reuse: source-class separation during fine-tuning, mean over seeds": reuse_plot,
    }))
    atomic_write_text(output / "summary.json", json.dumps(
        {f"{m}|{t}": {k: v for k, v in a.items() if k != "values"} for (m, t), a in aggregate(rows).items()}, indent=1),
        advice=RERUN_ADVICE)
    return written
