"""Two questions a sweep table is read for, answered from the same rows so that no prose has to copy
the numbers: how each transfer method stands against fine-tuning (seed by seed, and whether the two
sets of seeds overlap), and how far the best transfer method is from the task's specialist."""

from __future__ import annotations

import math
from typing import Any

from .report import aggregate
from .summary import as_number

ANCHOR_HEADING = "## Against fine-tuning"
SPECIALIST_HEADING = "## Against the specialist"


def _times(ratio: float) -> str:
    # Two decimals near 1, where rows differ by a few per cent; fewer once the gap is an order of magnitude.
    return f"{ratio:.2f}×" if ratio < 10 else f"{ratio:.1f}×" if ratio < 100 else f"{ratio:.0f}×"


def _higher(rows: list[dict[str, Any]], task: str) -> bool:
    return bool(next(r.get("higher_is_better", False) for r in rows if r["task_label"] == task))


def _per_seed(rows: list[dict[str, Any]], method: str, task: str) -> dict[Any, float]:
    values = {}
    for r in rows:
        if r["method_label"] == method and r["task_label"] == task:
            value = as_number(r.get("test", {}).get(r["metric"]))
            if value is not None and math.isfinite(value):
                values[r.get("seed")] = value
    return values


def versus(rows: list[dict[str, Any]], method: str, anchor: str, task: str) -> dict[str, Any] | None:
    """``method`` against ``anchor`` on ``task``: the ratio of their means, the seeds where ``method``
    is better (pairing equal seeds), and whether every seed of one is better than every seed of the
    other (``apart``: "ahead", "behind" or "" where the sets overlap). None where either has no finite
    seed."""
    mine, theirs = _per_seed(rows, method, task), _per_seed(rows, anchor, task)
    if not mine or not theirs:
        return None
    sign = 1.0 if _higher(rows, task) else -1.0  # sign * (a - b) > 0: a is better
    mean_mine, mean_theirs = sum(mine.values()) / len(mine), sum(theirs.values()) / len(theirs)
    ratio = mean_mine / mean_theirs if mean_theirs else math.nan
    paired = sorted(set(mine) & set(theirs), key=str)
    wins = sum(1 for s in paired if sign * (mine[s] - theirs[s]) > 0)
    worst_mine = min(sign * v for v in mine.values())
    best_mine = max(sign * v for v in mine.values())
    if worst_mine > max(sign * v for v in theirs.values()):
        apart = "ahead"
    elif best_mine < min(sign * v for v in theirs.values()):
        apart = "behind"
    else:
        apart = ""
    return {"ratio": ratio, "wins": wins, "paired": len(paired), "apart": apart}


def _versus_text(v: dict[str, Any] | None) -> str:
    if v is None:
        return "–"
    text = f"{_times(v['ratio'])} ({v['wins']}/{v['paired']})"
    return f"**{text}**" if v["apart"] else text


def anchor_markdown(rows: list[dict[str, Any]], *, references: set[str] | frozenset[str] = frozenset(),
                    anchor: str = "finetune") -> str:
    """The ``## Against fine-tuning`` section (empty when ``anchor`` has no cells)."""
    methods = list(dict.fromkeys(r["method_label"] for r in rows))
    if anchor not in methods:
        return ""
    refs = {r["method_label"] for r in rows if r.get("method", r["method_label"]) in references}
    tasks = list(dict.fromkeys(r["task_label"] for r in rows))
    others = [m for m in methods if m not in refs and m != anchor]
    if not others:
        return ""
    lines = [ANCHOR_HEADING, "",
             f"Each row of the transfer block against `{anchor}` on the test metric: the ratio of its mean to "
             f"`{anchor}`'s (for a ↓ metric below 1 is better, for a ↑ metric above 1), then (k/n): the seeds where "
             f"it is better, pairing equal seeds. **Bold**: the two sets of seeds do not overlap (every seed of one "
             f"is better than every seed of the other); otherwise the difference is inside the seed spread.",
             "",
             "| method | " + " | ".join(f"{t} {'↑' if _higher(rows, t) else '↓'}" for t in tasks) + " |",
             "|---" * (len(tasks) + 1) + "|"]
    for m in others:
        lines.append(f"| {m} | " + " | ".join(_versus_text(versus(rows, m, anchor, t)) for t in tasks) + " |")
    return "\n".join(lines)


def specialist_gaps(rows: list[dict[str, Any]], *, references: set[str] | frozenset[str] = frozenset(),
                    controls: set[str] | frozenset[str] = frozenset(), specialist: str = "specialist") -> list[dict[str, Any]]:
    """Per task: the transfer row with the best mean (rows of a method in ``controls``, which start
    from random weights, are not transfer and are left out), its mean, the ``specialist`` reference's
    mean, and the error ratio (best transfer over specialist; for a higher-is-better metric, the
    ratio of the errors ``1 - value``)."""
    agg = aggregate(rows)
    label_of = {r.get("method", r["method_label"]): r["method_label"] for r in rows}
    spec = label_of.get(specialist) if specialist in references else None
    if spec is None:
        return []
    left_out = {r["method_label"] for r in rows if r.get("method", r["method_label"]) in {*references, *controls}}
    gaps = []
    for task in dict.fromkeys(r["task_label"] for r in rows):
        ref = agg.get((spec, task))
        scored = [(m, a) for (m, t), a in agg.items()
                  if t == task and m not in left_out and not math.isnan(a["mean"])]
        if ref is None or math.isnan(ref["mean"]) or not scored:
            continue
        higher = ref["higher_is_better"]
        best, a = (max if higher else min)(scored, key=lambda item: item[1]["mean"])
        errors = (1 - a["mean"], 1 - ref["mean"]) if higher else (a["mean"], ref["mean"])
        ratio = errors[0] / errors[1] if errors[1] > 0 else math.inf
        gaps.append({"task": task, "method": best, "mean": a["mean"], "std": a["std"], "n": a["n"],
                     "specialist": ref["mean"], "ratio": ratio})
    return gaps


def specialist_markdown(rows: list[dict[str, Any]], *, references: set[str] | frozenset[str] = frozenset(),
                        controls: set[str] | frozenset[str] = frozenset(), specialist: str = "specialist",
                        within: float = 1.5) -> str:
    """The ``## Against the specialist`` section (empty without a ``specialist`` reference row)."""
    gaps = specialist_gaps(rows, references=references, controls=controls, specialist=specialist)
    if not gaps:
        return ""
    close = sum(1 for g in gaps if g["ratio"] <= within)
    lines = [SPECIALIST_HEADING, "",
             f"The best transfer row per task (mean over its seeds; controls from random weights left out) against the "
             f"`{specialist}` reference, trained from scratch for the task: error ratio, and whether it is within "
             f"{within:g}× ({close} of {len(gaps)} tasks).",
             "",
             f"| task | best transfer row | its test metric | `{specialist}` | ratio | within {within:g}× |",
             "|---|---|---|---|---|---|"]
    for g in gaps:
        lines.append(f"| {g['task']} | {g['method']} | {g['mean']:.4g} ± {g['std']:.2g} (n={g['n']}) | "
                     f"{g['specialist']:.4g} | {_times(g['ratio'])} | {'yes' if g['ratio'] <= within else 'no'} |")
    return "\n".join(lines)
