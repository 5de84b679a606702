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
#: Fewer seeds than this on either side and "the sets do not overlap" says nothing (one seed each
#: always "separates"); with 3 against 3 and no real difference it still happens 1 time in 10.
MIN_SEEDS_APART = 2


def _times(ratio: float) -> str:
    # Two decimals near 1, where rows differ by a few per cent; fewer once the gap is an order of magnitude.
    if not math.isfinite(ratio):
        return "–"
    return f"{ratio:.2f}×" if ratio < 10 else f"{ratio:.1f}×" if ratio < 100 else f"{ratio:.0f}×"


def _higher(rows: list[dict[str, Any]], task: str) -> bool:
    return bool(next(r.get("higher_is_better", False) for r in rows if r["task_label"] == task))


def _per_seed(rows: list[dict[str, Any]], method: str, task: str) -> dict[Any, float]:
    """Seed -> test metric; a diverged seed's value is NaN (kept, so that it counts against its row)."""
    values = {}
    for r in rows:
        if r["method_label"] == method and r["task_label"] == task:
            value = as_number(r.get("test", {}).get(r["metric"]))
            values[r.get("seed")] = value if value is not None and math.isfinite(value) else math.nan
    return values


def _label_of(rows: list[dict[str, Any]], method: str) -> str | None:
    """The row label of a registered method: the label equal to its name if there is one, else the first."""
    labels = list(dict.fromkeys(r["method_label"] for r in rows if r.get("method", r["method_label"]) == method))
    return method if method in labels else (labels[0] if labels else None)


def versus(rows: list[dict[str, Any]], method: str, anchor: str, task: str) -> dict[str, Any] | None:
    """``method`` against ``anchor`` on ``task``, over the seeds both have: the ratio of their means
    (finite seeds only), the seeds where ``method`` is better (a diverged seed loses to a finite one),
    how many of those seeds diverged on either side, and whether every seed of one is better than
    every seed of the other (``apart``: "ahead", "behind", or "" where the sets overlap or either
    side has fewer than MIN_SEEDS_APART seeds). None where they share no seed."""
    mine, theirs = _per_seed(rows, method, task), _per_seed(rows, anchor, task)
    seeds = sorted(set(mine) & set(theirs), key=str)
    if not seeds:
        return None
    sign = 1.0 if _higher(rows, task) else -1.0  # sign * (a - b) > 0: a is better

    def score(value: float) -> float:  # higher is better; a diverged seed is the worst possible
        return -math.inf if math.isnan(value) else sign * value

    wins = sum(1 for s in seeds if score(mine[s]) > score(theirs[s]))
    diverged = sum(1 for s in seeds if math.isnan(mine[s]) or math.isnan(theirs[s]))
    finite = [s for s in seeds if not (math.isnan(mine[s]) or math.isnan(theirs[s]))]
    ratio = math.nan
    if finite:
        mean_theirs = sum(theirs[s] for s in finite) / len(finite)
        ratio = (sum(mine[s] for s in finite) / len(finite)) / mean_theirs if mean_theirs else math.nan
    apart = ""
    if len(seeds) >= MIN_SEEDS_APART:
        ours, others = [score(mine[s]) for s in seeds], [score(theirs[s]) for s in seeds]
        apart = "ahead" if min(ours) > max(others) else "behind" if max(ours) < min(others) else ""
    return {"ratio": ratio, "wins": wins, "paired": len(seeds), "diverged": diverged, "apart": apart}


def _versus_text(v: dict[str, Any] | None) -> str:
    if v is None:
        return "–"
    text = f"{_times(v['ratio'])} ({v['wins']}/{v['paired']})"
    if v["diverged"]:
        text += f" {v['diverged']} diverged"
    return f"**{text}**" if v["apart"] else text


def anchor_markdown(rows: list[dict[str, Any]], *, references: set[str] | frozenset[str] = frozenset(),
                    anchor: str = "finetune") -> str:
    """The ``## Against fine-tuning`` section (empty when no row runs the ``anchor`` method)."""
    anchor_label = _label_of(rows, anchor)
    if anchor_label is None:
        return ""
    methods = list(dict.fromkeys(r["method_label"] for r in rows))
    refs = {r["method_label"] for r in rows if r.get("method", r["method_label"]) in references}
    tasks = list(dict.fromkeys(r["task_label"] for r in rows))
    others = [m for m in methods if m not in refs and m != anchor_label]
    if not others:
        return ""
    lines = [ANCHOR_HEADING, "",
             f"Each row of the transfer block against `{anchor_label}` on the test metric, over the seeds both "
             f"have: the ratio of its mean to `{anchor_label}`'s (for a ↓ metric below 1 is better, for a ↑ metric "
             f"above 1), then (k/n): the seeds where it is better (a diverged seed loses). **Bold**: the two "
             f"sets of seeds do not overlap (every seed of one is better than every seed of the other), shown "
             f"only with {MIN_SEEDS_APART} or more seeds; with three against three that also happens by chance "
             f"1 time in 10 when the two do not differ. Otherwise the difference is inside the seed spread.",
             "",
             "| method | " + " | ".join(f"{t} {'↑' if _higher(rows, t) else '↓'}" for t in tasks) + " |",
             "|---" * (len(tasks) + 1) + "|"]
    for m in others:
        lines.append(f"| {m} | " + " | ".join(_versus_text(versus(rows, m, anchor_label, t)) for t in tasks) + " |")
    return "\n".join(lines)


def _error_ratio(value: float, reference: float, higher: bool) -> float:
    """How many times the reference's error ``value`` has: the ratio of the values for a ↓ metric; for
    a ↑ metric bounded by 1 (accuracy, AUROC) the ratio of ``1 - value``; NaN for any other ↑ metric."""
    if higher:
        if not (0 <= value <= 1 and 0 <= reference <= 1):
            return math.nan
        value, reference = 1 - value, 1 - reference
    return value / reference if reference > 0 else math.inf


def specialist_gaps(rows: list[dict[str, Any]], *, references: set[str] | frozenset[str] = frozenset(),
                    controls: set[str] | frozenset[str] = frozenset(), specialist: str = "specialist") -> list[dict[str, Any]]:
    """Per task: the transfer row with the best mean (rows of a method in ``controls``, which start
    from random weights, are not transfer and are left out), its mean, the best row of the
    ``specialist`` reference method (a profile may run it under several labels) and the error ratio."""
    if specialist not in references:
        return []
    agg = aggregate(rows)
    method_of = {r["method_label"]: r.get("method", r["method_label"]) for r in rows}
    left_out = {label for label, method in method_of.items() if method in {*references, *controls}}
    gaps = []
    for task in dict.fromkeys(r["task_label"] for r in rows):
        pick = max if _higher(rows, task) else min
        specs = [(m, a) for (m, t), a in agg.items() if t == task and method_of[m] == specialist and not math.isnan(a["mean"])]
        scored = [(m, a) for (m, t), a in agg.items() if t == task and m not in left_out and not math.isnan(a["mean"])]
        if not specs or not scored:
            continue
        spec, ref = pick(specs, key=lambda item: item[1]["mean"])
        best, a = pick(scored, key=lambda item: item[1]["mean"])
        gaps.append({"task": task, "method": best, "mean": a["mean"], "std": a["std"], "n": a["n"], "runs": a["runs"],
                     "specialist_label": spec, "specialist": ref["mean"],
                     "ratio": _error_ratio(a["mean"], ref["mean"], _higher(rows, task))})
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
             f"The best transfer row per task (mean over its finite seeds; controls from random weights left out) "
             f"against the best row of the `{specialist}` reference, trained from scratch for the task: how many "
             f"times the specialist's error it has (for a ↑ metric bounded by 1, the ratio of 1 − value; – for "
             f"other ↑ metrics), and whether that is within {within:g}× ({close} of {len(gaps)} tasks).",
             "",
             "| task | best transfer row | its test metric | specialist row | its test metric | ratio | "
             f"within {within:g}× |",
             "|---|---|---|---|---|---|---|"]
    for g in gaps:
        n = f"n={g['n']}" + (f" of {g['runs']}" if g["n"] < g["runs"] else "")
        verdict = "–" if math.isnan(g["ratio"]) else "yes" if g["ratio"] <= within else "no"
        lines.append(f"| {g['task']} | {g['method']} | {g['mean']:.4g} ± {g['std']:.2g} ({n}) | {g['specialist_label']} | "
                     f"{g['specialist']:.4g} | {_times(g['ratio'])} | {verdict} |")
    return "\n".join(lines)
