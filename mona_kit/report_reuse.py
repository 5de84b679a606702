"""The knowledge-reuse table of a sweep: how much source knowledge each method's body keeps.

Every ``diagnostics.reuse_every`` steps a run probes its body on held-out source-proxy samples
(``knowledge-reuse`` events: a linear probe's accuracy on the source classes, and their
Davies–Bouldin index). The table compares the last measurement of each run's last training stage
with the first (the body before that stage trained), mean over seeds, and counts on how many tasks
each method ends with more source knowledge than a baseline method (fine-tuning by default).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .runs import RunDir
from .summary import as_number


def last_stage_events(row: dict[str, Any], keep: Callable[[dict[str, Any]], bool]) -> dict[int, dict[str, Any]]:
    """A run's events that ``keep`` selects, from the last stage that logged any, by step (the last
    event of a step wins: a resumed run may repeat steps)."""
    events = [e for e in RunDir(Path(row["run_dir"])).events() if keep(e)]
    if not events:
        return {}
    stage = events[-1]["stage"]
    return {e["step"]: e for e in events if e["stage"] == stage}


def reuse_points(row: dict[str, Any]) -> dict[int, tuple[float, float] | None]:
    """A run's knowledge-reuse probes of its last probing stage, by step: ``(probe accuracy,
    Davies–Bouldin)``, or None where a value is not finite (a diverged body logs ``"nan"``)."""
    out: dict[int, tuple[float, float] | None] = {}
    for step, e in last_stage_events(row, lambda e: e.get("event") == "knowledge-reuse").items():
        acc, db = as_number(e.get("probe_accuracy")), as_number(e.get("davies_bouldin"))
        out[step] = (acc, db) if acc is not None and db is not None and math.isfinite(acc + db) else None
    return out


def reuse_summary(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, float]]:
    """``{(method, task): start/end probe accuracy and Davies–Bouldin, mean over seeds, n seeds}``.
    A seed with a non-finite value (a diverged body: logged as ``"nan"``) is left out of the mean."""
    per_cell: dict[tuple[str, str], list[tuple[float, float, float, float]]] = defaultdict(list)
    for r in rows:
        points = reuse_points(r)
        if len(points) < 2:
            continue
        first, last = points[min(points)], points[max(points)]
        if first is not None and last is not None:
            per_cell[(r["method_label"], r["task_label"])].append((first[0], last[0], first[1], last[1]))
    out = {}
    for key, seeds in per_cell.items():
        n = len(seeds)
        acc0, acc1, db0, db1 = (sum(v[i] for v in seeds) / n for i in range(4))
        out[key] = {"start_acc": acc0, "end_acc": acc1, "start_db": db0, "end_db": db1, "n": n}
    return out


def reuse_markdown(rows: list[dict[str, Any]], baseline: str = "finetune",
                   skip: set[str] | frozenset[str] = frozenset()) -> str:
    """A markdown section (empty when no run measured reuse): one row per method label, one column
    per task, ``end accuracy (change)``; then each label's count of tasks where it ends above the
    ``baseline`` method. ``skip``: registered method names left out (reference rows). A from-scratch
    body's row is the control: what the probe finds in a body that never learned the source."""
    name_of = {r["method_label"]: r.get("method", r["method_label"]) for r in rows}
    summary = {k: v for k, v in reuse_summary(rows).items() if name_of[k[0]] not in skip}
    if not summary:
        return ""
    methods = list(dict.fromkeys(m for m, _ in summary))
    # The baseline's row: the label that is the method's own name, else the first label running it.
    baseline = baseline if baseline in methods else next((m for m in methods if name_of[m] == baseline), baseline)
    tasks = list(dict.fromkeys(t for _, t in summary))
    lines = [
        "## Knowledge reuse",
        "",
        "Source linear-probe accuracy of the body at the end of the last training stage (change from its "
        "start, before that stage trained), mean over seeds; higher = more source knowledge kept. "
        "Measured on held-out source-proxy samples (`diagnostics.reuse_samples`).",
        "",
        "| method | " + " | ".join(tasks) + f" | tasks above {baseline} |",
        "|---" * (len(tasks) + 2) + "|",
    ]
    for m in methods:
        cells, above, compared = [], 0, 0
        for t in tasks:
            s = summary.get((m, t))
            if s is None:
                cells.append("—")
                continue
            cells.append(f"{s['end_acc']:.3f} ({s['end_acc'] - s['start_acc']:+.3f})")
            b = summary.get((baseline, t))
            if m != baseline and b is not None and math.isfinite(s["end_acc"]) and math.isfinite(b["end_acc"]):
                compared += 1
                above += s["end_acc"] > b["end_acc"]
        count = f"{above} of {compared}" if compared else "—"
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {count} |")
    return "\n".join(lines) + "\n"
