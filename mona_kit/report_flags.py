"""The sweep table's marked cells listed seed by seed: which seeds lose to the linear reference (◇),
which learned nothing beyond the training mean (∅k) and which were still improving when their budget
ended (†k), by how much. The README used to keep these per-seed lists by hand and they went stale on
every harvest; generated from the same rows as the table, they cannot."""

from __future__ import annotations

import math
from typing import Any

from .report import cell_marks, final_plateau, table_model
from .summary import as_number

HEADING = "## Flagged cells"


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


def _percent(fraction: float) -> str:
    # Two significant digits read well from 1 % to 99 %: "18 %", "7.0 %".
    if not math.isfinite(fraction):
        return "?"
    value = 100 * fraction
    return f"{value:.0f} %" if value >= 10 else f"{value:.1f} %"


def _seed_values(runs: list[dict[str, Any]]) -> str:
    ordered = sorted(runs, key=lambda r: r.get("seed", 0))
    return ", ".join(f"s{r.get('seed', '?')} {_number(as_number(r.get('test', {}).get(r['metric'])))}" for r in ordered)


def _still_improving(runs: list[dict[str, Any]]) -> str:
    gains = []
    for r in sorted(runs, key=lambda r: r.get("seed", 0)):
        record = final_plateau(r) or {}
        if record.get("plateaued") is False:
            gain = as_number(record.get("improvement"))
            text = f"s{r.get('seed', '?')} " + (_percent(gain) if gain is not None else "?")
            best, steps = as_number(record.get("best_step")), as_number(record.get("steps"))
            if best is not None and steps:  # recorded by runs since 2026-12-05
                text += f" (best at {100 * best / steps:.0f} % of its steps)"
            gains.append(text)
    return ", ".join(gains) or "–"


def flagged_cells(rows: list[dict[str, Any]], *, references: set[str] | frozenset[str] = frozenset(),
                  baseline: str = "linear", floor: str = "mean",
                  model: dict[str, Any] | None = None) -> list[dict[str, str]]:
    """One entry per marked table cell, in the table's task then row order: task, method, marks,
    per-seed test metric, the baseline and floor references' means, and each unfinished seed's gain.
    ``model``: the rows' table_model when the caller has built it already (then the other keywords are its own)."""
    if model is None:
        model = table_model(rows, references=references, baseline=baseline, floor=floor)
    agg = model["aggregate"]

    def reference(label: str | None, task: str) -> str:
        a = agg.get((label, task)) if label else None
        return _number(a["mean"]) if a else "–"

    flagged = []
    for index, task in enumerate(model["tasks"]):
        for block in model["blocks"]:
            for row in block["rows"]:
                cell = row["cells"][index]
                marks = cell_marks(cell).strip() if cell else ""
                if cell and cell["text"].startswith("diverged"):  # no seed finite: no mean to mark, listed all the same
                    marks = "diverged"
                if not marks:
                    continue
                flagged.append({
                    "task": task, "method": row["method"], "marks": marks, "seeds": _seed_values(cell["runs"]),
                    "baseline": reference(model["baseline"], task), "floor": reference(model["floor"], task),
                    "improving": _still_improving(cell["runs"]),
                })
    return flagged


def flags_markdown(rows: list[dict[str, Any]], *, references: set[str] | frozenset[str] = frozenset(),
                   baseline: str = "linear", floor: str = "mean", model: dict[str, Any] | None = None) -> str:
    """The ``## Flagged cells`` section of a sweep's ``table.md`` (empty when the table has no marks);
    ``model``: as for flagged_cells."""
    flagged = flagged_cells(rows, references=references, baseline=baseline, floor=floor, model=model)
    if not flagged:
        return ""
    lines = [HEADING, "",
             f"Every marked cell of the table, seed by seed: its test metric per seed, the `{baseline}` and `{floor}` "
             "references' test metric on that task (◇: the cell's mean does not beat the first; ∅k: k seeds do not beat "
             "the second; diverged: no seed finished with a finite metric), and, for each seed whose last training "
             "stage had not plateaued (†k), the relative gain of its best validation metric over the last plateau "
             "window of its steps (? where the record has none) and, where the run recorded it, how far through its "
             "steps that best came (near 100 %: still falling at the end; earlier: flat since).",
             "",
             f"| task | method | marks | test metric per seed | `{baseline}` | `{floor}` | still improving at the end |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {f['task']} | {f['method']} | {f['marks']} | {f['seeds']} | {f['baseline']} | {f['floor']} | {f['improving']} |"
              for f in flagged]
    return "\n".join(lines)
