"""Tables from run directories: one row per run (sweep tables live in mona_kit.report)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any


def read_results(path: Path) -> dict:
    """A run's ``results.json`` ({} when absent); a damaged one (not JSON, or val/test/metric not what a
    run writes) is a one-line error naming the file."""
    from .run_records import check_split_results, damaged_record, read_json_record

    file = Path(path) / "results.json"
    data = read_json_record(file) or {}
    check_split_results(file, data)
    if "metric" in data and not isinstance(data["metric"], str):
        raise damaged_record(file)
    return data


def as_number(x: Any) -> float | None:
    """A metric as a float: runs record a non-finite value as the string 'nan' / 'inf' (JSON has none)."""
    if isinstance(x, bool):
        return None
    if isinstance(x, (int, float)):
        return float(x)
    if isinstance(x, str):
        try:
            return float(x)
        except ValueError:
            return None
    return None


def _fmt(x: Any) -> str:
    x = as_number(x)
    if x is None or math.isnan(x):
        return "-"
    return f"{x:.4g}"


def method_provenance(kit: Any) -> dict[str, str]:
    """Registered method -> its ``provenance`` metadata (where its implementation comes from, e.g.
    "a reconstruction: no public code exists"), for every method that declares one."""
    return {e.name: str(e.meta["provenance"]) for e in kit.methods if e.meta.get("provenance")}


def provenance_note(labels: Sequence[str], text: str) -> str:
    """The line said under a table for the rows ``labels`` of a method that declares ``text``."""
    return f"{', '.join(labels)}: {text.rstrip('.')}."


def comparison_table(paths: Sequence[Path], provenance: Mapping[str, str] | None = None) -> str:
    """Markdown table: method, task, validation and test metric, wall time; below it, the
    ``provenance`` of each method shown that declares one."""
    rows = ["| method | task | metric | val | test | time (s) |", "|---|---|---|---|---|---|"]
    shown: list[str] = []
    for path in paths:
        r = read_results(path)
        if not r:
            rows.append(f"| ? | ? | ? | - | - | - |  ({path}: no results.json)")
            continue
        m = r.get("metric")
        val, test = (r.get(split) if isinstance(r.get(split), dict) else {} for split in ("val", "test"))
        rows.append(
            f"| {r.get('method', '?')} | {r.get('task', '?')} | {m} {'↑' if r.get('higher_is_better') else '↓'} | "
            f"{_fmt(val.get(m))} | {_fmt(test.get(m))} | {as_number(r.get('wall_time_s')) or 0:.0f} |"
        )
        shown.append(str(r.get("method", "")))
    notes = [provenance_note([name], provenance[name]) for name in dict.fromkeys(shown) if (provenance or {}).get(name)]
    return "\n".join(rows + ([""] + notes if notes else []))


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Over the finite values (a diverged seed's NaN is counted apart, see report.aggregate)."""
    values = [v for v in map(as_number, values) if v is not None and math.isfinite(v)]
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)
