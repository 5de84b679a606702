"""Sweeps: a profile's cells (:mod:`mona_kit.sweep_profile`), one run directory per cell, then
tables and plots.

Each cell runs as its own ``mona-kit run`` process (peak memory per cell, isolation, and the
exact command a user re-runs). Finished cells are skipped; interrupted ones resume. Every cell's
config is checked before the first one trains, and a cell's process dies with the sweep's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from .atomic_io import atomic_write_text, write_failed
from .errors import ConfigError, MonaError
from .run_lock import RunLock
from .run_records import read_mapping
from .sweep_profile import Cell

# --- cell folders --------------------------------------------------------------------------------


def cell_dir(output: Path, cell: Cell) -> Path:
    """``OUTPUT/cells/METHOD/TASK/seedN``, refused if it would resolve outside ``OUTPUT/cells``."""
    root = Path(output) / "cells"
    path = root / cell.method / cell.task / f"seed{cell.seed}"
    if root.resolve() not in path.resolve().parents:  # '..' or a symlink would lead elsewhere
        raise ConfigError(
            f"sweep cell {cell.key} would be written outside the output folder's cells {str(root)!r} (a '..' or a "
            f"symlink); rename its labels or remove the link."
        )
    return path


def check_output(output: Path) -> None:
    """The output folder (or the first part of its path that exists) must be a folder."""
    output = Path(output)
    for folder in (output, *output.parents):
        if folder.exists():
            if not folder.is_dir():
                raise ConfigError(f"sweep output {str(output)!r}: {str(folder)!r} is a file, not a folder; choose another --output.")
            return


def check_sweep_folder(output: Path) -> None:
    """A sweep writes its report (table.md, results.csv, ...) into ``output``: refuse a folder that holds
    one of those files but no sweep's ``cells/`` folder — the file is someone else's and would be replaced."""
    from .report import REPORT_FILES

    output = Path(output)
    if not output.is_dir() or (output / "cells").is_dir():
        return
    held = [name for name in REPORT_FILES if (output / name).exists()]
    if held:
        raise ConfigError(f"sweep output {str(output)!r} holds {', '.join(held)} but no sweep's cells/ folder; the sweep's "
                          f"report would replace {'it' if len(held) == 1 else 'them'}. Choose a new or empty folder with --output.")


def _canonical(config: dict[str, Any]) -> str:
    """A cell's config as comparable text, independent of where the sweep folder lives (output_dir
    and run_name are derived from the cell's place, so a moved folder is the same cell)."""
    plain = {k: v for k, v in config.items() if k not in ("output_dir", "run_name")}
    return json.dumps(yaml.safe_load(yaml.safe_dump(plain)), sort_keys=True, default=str)


def _recorded_config(config_file: Path) -> dict[str, Any] | None:
    """The config a started cell recorded (None before it started); damaged: a one-line error."""
    return read_mapping(config_file, yaml.safe_load, (yaml.YAMLError,)) if config_file.is_file() else None



def read_cell_results(path: Path, cell: Cell | None = None) -> dict[str, Any]:
    """A cell's ``results.json`` (read like every run's, :func:`mona_kit.summary.read_results`); a
    damaged or incomplete one is a one-line error naming the file and the cell to rerun. With ``cell``,
    the file must be that cell's: a table must never average in another run's numbers."""
    from .summary import as_number, read_results

    try:
        data = read_results(Path(path).parent)
    except MonaError as exc:
        raise _damaged_results(path) from exc
    metric, test = data.get("metric"), data.get("test")
    if not isinstance(metric, str) or not isinstance(test, dict) or not isinstance(data.get("seed"), int):
        raise _damaged_results(path)
    if not isinstance(data.get("val"), dict) or as_number(test.get(metric)) is None:  # 'nan'/'inf' strings are numbers
        raise _damaged_results(path)
    # the task's registered name, as the run recorded it (a dataset's spec may call itself otherwise)
    components = data.get("components") if isinstance(data.get("components"), dict) else {}
    held = (data.get("method"), components.get("task", data.get("task")), data.get("seed"))
    if cell is not None and held != cell_identity(cell.config):
        method, task, seed = held
        raise ConfigError(
            f"{str(path)!r} holds the results of {method} on {task} with seed {seed}, not those of cell {cell.key}; "
            f"delete its cell folder {str(Path(path).parent)!r} to rerun the cell, or put the right file back."
        )
    return data


def _damaged_results(path: Path) -> MonaError:
    return ConfigError(
        f"{str(path)!r} is damaged (not the results.json a run writes); delete its cell folder "
        f"{str(Path(path).parent)!r} to rerun the cell, or restore the file."
    )


def cell_identity(config: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(method, task, seed) of a plain or a resolved run config: what a cell's folder must hold."""
    def name(value: Any) -> Any:
        return value.get("name") if isinstance(value, dict) else value

    return name(config.get("method")), name(config.get("task")), config.get("seed")


def _refuse_changed(cell: Cell, run_dir: Path) -> None:
    """A cell started before must still get the same config from the profile (its place aside), and
    its folder must hold a run of this cell (a folder copied or moved in from another cell would be
    resumed, or reported, under the wrong label)."""
    config_file = run_dir.parent / f"seed{cell.seed}.yaml"
    for folder in (run_dir.parent.parent.parent, run_dir.parent.parent, run_dir.parent, run_dir):
        if folder.exists() and not folder.is_dir():
            raise ConfigError(
                f"cell {cell.key}: {str(folder)!r} is a file where the sweep keeps a folder; move it away to run the cell."
            )
    recorded = _recorded_config(config_file)
    state = "run" if (run_dir / "results.json").is_file() else "started"
    # A cell whose run never began (it failed its own checks: no config.yaml) holds nothing to protect:
    # run_cell rewrites its seedN.yaml with the current config.
    began = (run_dir / "config.yaml").is_file() or state == "run"
    if recorded is not None and began and _canonical(recorded) != _canonical(cell.config):
        raise ConfigError(
            f"cell {cell.key} was {state} with another config ({config_file}): the profile or the sweep's "
            f"key=value overrides changed since. Use a new output folder (--output), or delete {str(run_dir)!r} "
            f"and {str(config_file)!r} to rerun this cell."
        )
    run_config = _recorded_config(run_dir / "config.yaml")
    held = cell_identity(run_config) if run_config is not None else (None, None, None)
    if None not in held and held != cell_identity(cell.config):  # (a config a run writes names all three)
        method, task, seed = held
        raise ConfigError(
            f"cell {cell.key}'s folder {str(run_dir)!r} holds a run of {method} on {task} with seed {seed}, not this "
            f"cell's; move that folder away (or delete it) to run the cell."
        )


def check_existing(output: Path, todo: list[Cell]) -> None:
    """Before anything runs: every cell already started must still have the profile's config, and
    every finished one must have readable results."""
    for cell in todo:
        run_dir = cell_dir(output, cell)
        _refuse_changed(cell, run_dir)
        if (run_dir / "results.json").is_file():
            read_cell_results(run_dir / "results.json", cell)


# --- running a cell ------------------------------------------------------------------------------

#: Started as ``python -c`` in front of ``mona-kit``: ask Linux to SIGKILL this process when its parent
#: (the sweep) dies, even by kill -9, so no cell keeps writing its folder as an orphan. If the sweep
#: died before the request was made, exit instead. Elsewhere (no prctl) it runs as is.
_CHILD_BOOT = """\
import os, sys
parent = int(sys.argv.pop(1))
try:
    import ctypes, signal
    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
except (OSError, AttributeError, TypeError):  # not Linux
    pass
if os.getppid() != parent:
    sys.exit(137)
import runpy
runpy.run_module("mona_kit", run_name="__main__", alter_sys=True)
"""


def child_command(python: str, argv: list[str]) -> list[str]:
    """``python -m mona_kit ARGV...`` that dies with this process."""
    return [python, "-c", _CHILD_BOOT, str(os.getpid()), *argv]


def locked_elsewhere(run_dir: Path) -> str | None:
    """Who holds the run folder's lock when a live process does (None when free): the run's own OS
    lock (mona_kit.run_lock.RunLock), which a dead holder never keeps."""
    if not Path(run_dir).is_dir():
        return None
    try:
        RunLock(run_dir).probe()
    except ImportError:  # no fcntl (not POSIX): the run itself refuses a second writer
        return None
    except MonaError as exc:
        return str(exc)
    return None


#: The cell processes this sweep has running: a launcher running several at once ends them all when
#: the sweep is interrupted (each also dies with the sweep's process, see _CHILD_BOOT).
_LIVE: set[subprocess.Popen] = set()
_LIVE_LOCK = threading.Lock()
_STOPPING = threading.Event()


def stop_live_cells() -> None:
    """End every cell process this sweep started that still runs (an interrupted sweep), and any
    that a launcher thread starts after this call."""
    _STOPPING.set()
    with _LIVE_LOCK:
        live = list(_LIVE)
    for proc in live:
        if proc.poll() is None:
            proc.kill()


def allow_cells() -> None:
    """A launcher starting: cells may start again (after an earlier stop in this process)."""
    _STOPPING.clear()


def _wait_cell(cmd: list[str], log, env: dict[str, str] | None) -> int:
    child_env = {**os.environ, **env} if env else None
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=child_env)
    with _LIVE_LOCK:
        _LIVE.add(proc)
    if _STOPPING.is_set():  # the stop came while this one was starting: it copied the list before the add
        proc.kill()
    try:
        return proc.wait()
    finally:
        with _LIVE_LOCK:
            _LIVE.discard(proc)


def run_cell(output: Path, cell: Cell, *, python: str = sys.executable, keep_checkpoints: bool = False,
             env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run (or resume, or skip) one cell in its own process; returns its results or a failure record.

    A finished or started cell is reused only if the profile still gives it the same config. ``env``
    adds variables to the cell process's environment (its thread count, under a launcher)."""
    run_dir = cell_dir(output, cell)
    config_file = run_dir.parent / f"seed{cell.seed}.yaml"
    _refuse_changed(cell, run_dir)
    if (run_dir / "results.json").is_file():
        return {"status": "done", **read_cell_results(run_dir / "results.json", cell)}
    holder = locked_elsewhere(run_dir)
    if holder:  # another sweep (or a user's run) is writing this cell: leave it alone
        return {"status": "running elsewhere", "error": holder}
    try:
        run_dir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MonaError(f"cannot create {str(run_dir.parent)!r}: {exc.strerror}; choose a writable --output.") from exc
    # output_dir follows the folder (a moved sweep writes where it now is); the comparison above ignores it.
    text = yaml.safe_dump({**cell.config, "output_dir": str(run_dir.parent), "run_name": run_dir.name}, sort_keys=False)
    if not config_file.is_file() or config_file.read_text() != text:
        atomic_write_text(config_file, text)
    if (run_dir / "config.yaml").is_file():
        argv = ["run", "--resume", str(run_dir), "--no-progress", "--no-plots"]
    else:
        argv = ["run", str(config_file), "--no-progress", "--no-plots", "--overwrite"]
    argv += ["--checkpoints", "all" if keep_checkpoints else "none"]  # the cell's own retention (a run keeps final)
    started = time.time()
    log = run_dir.parent / f"seed{cell.seed}.log"
    try:
        with open(log, "a") as fh:
            returncode = _wait_cell(child_command(python, argv), fh, env)
    except OSError as exc:  # the log cannot be opened (full disk, read-only folder)
        raise write_failed(log, exc) from exc
    if returncode != 0 or not (run_dir / "results.json").is_file():
        holder = locked_elsewhere(run_dir)
        if holder:  # another process took the cell between our check and the child's start
            return {"status": "running elsewhere", "error": holder}
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or [f"(no output; exit status {returncode})"]
        return {"status": "failed", "error": tail[0], "log": str(log), "seconds": time.time() - started}
    if not keep_checkpoints:  # a finished cell's weights (~90 MB per stage for MiniLM) are not needed to re-run it
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    return {"status": "ran", **read_cell_results(run_dir / "results.json", cell)}


def collect(output: Path, cells: list[Cell]) -> list[dict[str, Any]]:
    """The results of every finished cell of ``cells`` (the profile's), labelled by its place in the
    sweep. A damaged ``results.json``, one that is another cell's, or a task whose cells report different
    metrics stops the report with a one-line error naming the file (a table silently missing a cell, or
    averaging in another run's numbers, would lie). Folders that are no cell of the profile are not
    read: :func:`stray_cells` names them."""
    rows = []
    metric_of: dict[str, tuple[str, Path]] = {}
    for cell in cells:
        results = cell_dir(output, cell) / "results.json"
        if not results.is_file():
            continue
        r = read_cell_results(results, cell)
        first = metric_of.setdefault(cell.task, (r["metric"], results))
        if r["metric"] != first[0]:
            raise ConfigError(
                f"{str(results)!r} reports {r['metric']!r} where {str(first[1])!r} (the same task) reports "
                f"{first[0]!r}: one of them is damaged; delete its cell folder to rerun the cell."
            )
        r.update(method_label=cell.method, task_label=cell.task, run_dir=str(results.parent))
        rows.append(r)
    return rows


def stray_cells(output: Path, cells: list[Cell]) -> list[str]:
    """Finished runs under ``OUTPUT/cells`` that are no cell of the profile (a copied seed folder, a
    method the profile no longer has): left out of the report, and named so that nobody wonders why."""
    known = {cell_dir(output, cell) for cell in cells}
    root = Path(output) / "cells"
    return [str(r.parent.relative_to(root)) for r in sorted(root.glob("*/*/*/results.json")) if r.parent not in known]
