"""``sweep PROFILE --status``: where a long sweep stands, without running or writing anything.

Each cell is finished (results.json), running (a live process holds its run folder's lock), started
(an interrupted run's folder with its config, which the next sweep resumes from its last checkpoint)
or not started. The time left is estimated per unfinished cell from the wall times of finished cells:
the median of its own method on the same task, else of the other trained methods on that task
(reference rows fit in seconds and would make the estimate meaningless); an unfinished reference
cell goes by its own method on the other tasks instead (a mean predictor is not a fine-tuning run);
cells with none of these are counted, not guessed. Running and started cells count as whole cells,
and a finished cell's wall time leaves out its setup (and, for a cell resumed from a checkpoint
written before runs recorded their time, its earlier attempts): a rough guide, printed with its basis.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from .sweep import cell_dir, collect, locked_elsewhere
from .sweep_profile import Cell

STATES = ("finished", "running", "started", "not started")


def cell_state(output: Path, cell: Cell) -> str:
    """One of :data:`STATES` for ``cell`` in the sweep folder ``output``."""
    run_dir = cell_dir(output, cell)
    if (run_dir / "results.json").is_file():
        return "finished"
    if locked_elsewhere(run_dir):
        return "running"
    # A folder without the run's config (a cell that died while starting) is run afresh, not resumed.
    return "started" if (run_dir / "config.yaml").is_file() else "not started"


def _mark(states: list[str]) -> str:
    """A table entry: finished of all, then ▶k running and ◐k started (· when nothing has run)."""
    done = states.count("finished")
    if done == 0 and all(s == "not started" for s in states):
        return "·"
    text = f"{done}/{len(states)}"
    for symbol, state in (("▶", "running"), ("◐", "started")):
        if states.count(state):
            text += f" {symbol}{states.count(state)}"
    return text


#: The basis under which :func:`estimate` counts the cells it could not estimate.
NO_ESTIMATE = "no estimate (nothing finished to go by)"
REFERENCE_ELSEWHERE = "the same reference method on other tasks"


def estimate(cells: list[Cell], walls: dict[tuple[str, str], list[float]], references: set[str] = frozenset()) -> tuple[float, dict[str, int]]:
    """Seconds of cell time left for ``cells`` and how many were estimated on which basis;
    ``references``: method labels left out of the per-task fallback; their own cells fall back to the
    same reference method on the other tasks."""
    by_task: dict[str, list[float]] = defaultdict(list)
    by_reference: dict[str, list[float]] = defaultdict(list)
    for (method, task), values in walls.items():
        (by_reference[method] if method in references else by_task[task]).extend(values)
    seconds = 0.0
    basis = {"same method and task": 0, "other trained methods on the task": 0, REFERENCE_ELSEWHERE: 0, NO_ESTIMATE: 0}
    for cell in cells:
        if walls.get((cell.method, cell.task)):
            pool, how = walls[(cell.method, cell.task)], "same method and task"
        elif cell.method in references:
            pool, how = by_reference.get(cell.method), REFERENCE_ELSEWHERE
        else:
            pool, how = by_task.get(cell.task), "other trained methods on the task"
        if pool:
            seconds += statistics.median(pool)
            basis[how] += 1
        else:
            basis[NO_ESTIMATE] += 1
    return seconds, basis


def status_report(profile: dict[str, Any], output: Path, cells: list[Cell], *, profile_cells: list[Cell] | None = None,
                  cores: int, references: set[str] = frozenset()) -> str:
    """The status text for ``cells`` (the profile's, or the --only/--tasks/--seeds subset); the
    estimate goes by every finished cell of ``profile_cells`` (default ``cells``); ``references``:
    the labels of reference methods (see :func:`estimate`)."""
    states = {cell.key: cell_state(output, cell) for cell in cells}
    counts = {s: sum(v == s for v in states.values()) for s in STATES}
    methods = list(dict.fromkeys(c.method for c in cells))
    tasks = list(dict.fromkeys(c.task for c in cells))
    grid: dict[tuple[str, str], list[str]] = defaultdict(list)
    for cell in cells:
        grid[(cell.method, cell.task)].append(states[cell.key])
    lines = [f"sweep {profile['name']} ({Path(output).resolve()}): {counts['finished']} of {len(cells)} cells finished, "
             f"{counts['running']} running, {counts['started']} started (resumed by the next sweep), "
             f"{counts['not started']} not started", "",
             "| method | " + " | ".join(tasks) + " |", "|---" * (len(tasks) + 1) + "|"]
    for m in methods:
        lines.append(f"| {m} | " + " | ".join(_mark(grid[(m, t)]) if grid[(m, t)] else "" for t in tasks) + " |")
    lines += ["", "finished/cells; ▶ running, ◐ started, · nothing yet."]
    walls: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in collect(output, profile_cells or cells):  # the profile's finished cells, also those outside a subset
        if row.get("wall_time_s"):
            walls[(row["method_label"], row["task_label"])].append(float(row["wall_time_s"]))
    left = [c for c in cells if states[c.key] != "finished"]
    if left:
        lines.append(_time_left(left, walls, references, cores))
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    """Hours to one decimal, or whole minutes under an hour ("0.0 h" says nothing)."""
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{max(1, round(seconds / 60))} min"


def _time_left(left: list[Cell], walls: dict[tuple[str, str], list[float]], references: set[str], cores: int) -> str:
    seconds, basis = estimate(left, walls, references)
    unknown = basis[NO_ESTIMATE]
    estimated = len(left) - unknown
    text = f"Left: {len(left)} cells."
    if estimated:
        how = "; ".join(f"{n} from {b}" for b, n in basis.items() if n and b != NO_ESTIMATE)
        parallel = min(max(cores, 1), estimated)
        text += (f" The {estimated} with an estimate need about {_duration(seconds)} of cell time at the finished cells' "
                 f"median wall times ({how}); about {_duration(seconds / parallel)} with {parallel} at once, if they "
                 f"share out evenly.")
    if unknown:
        text += (f" {unknown} cells have no estimate: nothing comparable has finished yet (a trained method on "
                 f"their task; for a reference row, its method on any task).")
    return text + " Wall times come from whichever machines ran the cells and leave out setup: a rough guide."
