"""Tables from run directories: one row per run (sweep tables live in mona_kit.report)."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path


def read_results(path: Path) -> dict:
    p = Path(path) / "results.json"
    return json.loads(p.read_text()) if p.is_file() else {}


def _fmt(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.4g}"


def comparison_table(paths: Sequence[Path]) -> str:
    """Markdown table: method, task, validation and test metric, wall time."""
    rows = ["| method | task | metric | val | test | time (s) |", "|---|---|---|---|---|---|"]
    for path in paths:
        r = read_results(path)
        if not r:
            rows.append(f"| ? | ? | ? | - | - | - |  ({path}: no results.json)")
            continue
        m = r["metric"]
        rows.append(
            f"| {r['method']} | {r['task']} | {m} {'↑' if r.get('higher_is_better') else '↓'} | "
            f"{_fmt(r.get('val', {}).get(m))} | {_fmt(r.get('test', {}).get(m))} | {r.get('wall_time_s', 0):.0f} |"
        )
    return "\n".join(rows)


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Over the finite values (a diverged seed's NaN is counted apart, see report.aggregate)."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)
