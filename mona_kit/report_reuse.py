"""The knowledge-reuse table of a sweep: how much source knowledge each method's body keeps.

Every ``diagnostics.reuse_every`` steps a run probes its body on held-out source-proxy samples
(``knowledge-reuse`` events: a linear probe's accuracy on the source classes, and their
Davies–Bouldin index, and since 2026-12 the linear CKA of its source features to the pretrained
body's). The tables compare the last measurement of each run's last training stage
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


def cka_points(row: dict[str, Any]) -> dict[int, float | None]:
    """A run's linear CKA to the pretrained body, by step, from the last stage whose knowledge-reuse
    events carry it (runs made before mona-kit logged it have none), or None where not finite."""
    events = last_stage_events(row, lambda e: e.get("event") == "knowledge-reuse" and "cka_to_pretrained" in e)
    out: dict[int, float | None] = {}
    for step, e in events.items():
        value = as_number(e["cka_to_pretrained"])
        out[step] = value if value is not None and math.isfinite(value) else None
    return out


def cka_summary(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, float]]:
    """``{(method, task): start/end linear CKA to the pretrained body, mean over seeds, n seeds}``
    (:func:`cka_points`); a seed with a non-finite first or last value (a diverged body) is left out."""
    per_cell: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for r in rows:
        values = cka_points(r)
        if len(values) < 2:
            continue
        first, last = values[min(values)], values[max(values)]
        if first is not None and last is not None:
            per_cell[(r["method_label"], r["task_label"])].append((first, last))
    return {key: {"start": sum(v[0] for v in seeds) / len(seeds), "end": sum(v[1] for v in seeds) / len(seeds),
                  "n": len(seeds)} for key, seeds in per_cell.items()}


def _comparison_table(summary: dict[tuple[str, str], dict[str, float]], baseline: str, end: str, start: str,
                      show_n: bool) -> list[str]:
    """Markdown rows: ``end (change)`` per method and task, and the count of tasks where a method
    ends above the ``baseline`` row."""
    methods = list(dict.fromkeys(m for m, _ in summary))
    tasks = list(dict.fromkeys(t for _, t in summary))
    lines = ["| method | " + " | ".join(tasks) + f" | tasks above {baseline} |", "|---" * (len(tasks) + 2) + "|"]
    for m in methods:
        cells, above, compared = [], 0, 0
        for t in tasks:
            s = summary.get((m, t))
            if s is None:
                cells.append("—")
                continue
            cells.append(f"{s[end]:.3f} ({s[end] - s[start]:+.3f})" + (f" n={s['n']}" if show_n else ""))
            b = summary.get((baseline, t))
            if m != baseline and b is not None and math.isfinite(s[end]) and math.isfinite(b[end]):
                compared += 1
                above += s[end] > b[end]
        count = f"{above} of {compared}" if compared else "—"
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {count} |")
    return lines


def reuse_markdown(rows: list[dict[str, Any]], baseline: str = "finetune",
                   skip: set[str] | frozenset[str] = frozenset()) -> str:
    """A markdown section (empty when no run measured reuse): one row per method label, one column
    per task, ``end accuracy (change)``; then each label's count of tasks where it ends above the
    ``baseline`` method. ``skip``: registered method names left out (reference rows). A from-scratch
    body's row is the control: what the probe finds in a body that never learned the source.
    Where runs logged it, a second table gives the linear CKA to the pretrained body the same way."""
    name_of = {r["method_label"]: r.get("method", r["method_label"]) for r in rows}
    summary = {k: v for k, v in reuse_summary(rows).items() if name_of[k[0]] not in skip}
    if not summary:
        return ""
    methods = list(dict.fromkeys(m for m, _ in summary))
    # The baseline's row: the label that is the method's own name, else the first label running it.
    baseline = baseline if baseline in methods else next((m for m in methods if name_of[m] == baseline), baseline)
    lines = [
        "## Knowledge reuse",
        "",
        "Source linear-probe accuracy of the body at the end of the last training stage (change from its "
        "start, before that stage trained), mean over seeds; higher = more source knowledge kept. "
        "Measured on held-out source-proxy samples (`diagnostics.reuse_samples`).",
        "",
        *_comparison_table(summary, baseline, "end_acc", "start_acc", show_n=False),
    ]
    cka = {k: v for k, v in cka_summary(rows).items() if name_of[k[0]] not in skip}
    if cka:
        lines += [
            "",
            "Linear CKA of the body's source features to the pretrained body's on the same held-out samples "
            "(1 = the pretrained representation kept, up to rotation and scale; a random body scores low even "
            "where a source linear probe cannot tell it from a pretrained one), end of the last training stage "
            "(change from its start), mean over the n seeds that logged it.",
            "",
            *_comparison_table(cka, baseline, "end", "start", show_n=True),
        ]
    return "\n".join(lines) + "\n"
