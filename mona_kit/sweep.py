"""Sweeps: methods x tasks x seeds, one run directory per cell, then tables and plots.

A profile (YAML) names the cells::

    name: cpu
    output: benchmarks/results/cpu
    seeds: [0, 1, 2]
    base: {backbone: minilm-l6, train: {...}}          # shared by every cell
    tasks:                                              # label -> config keys for that task
      darcy-16: {task: {name: darcy-16, max_train: 300}, embedder: {name: grid2d-patch, patch: 4}}
      burgers-1d: {task: burgers-1d, method_options: {specialist: {patience: null}}}   # this task only
    keep_checkpoints: false                             # drop a finished cell's checkpoints
    methods:                                            # label -> method (name + options)
      finetune: finetune
      orca: {name: orca, align_epochs: 20}
      orca-{objective}: {name: orca, objective: "*distance"}   # one cell per registered distance

``"*distance"`` / ``"*representation"`` expand to every registered objective of that role,
so an objective a third-party plugin registers joins the sweep by name alone.

Each cell runs as its own ``mona-kit run`` process (peak memory per cell, isolation, and the
exact command a user re-runs). Finished cells are skipped; interrupted ones resume. Every cell's
config is checked before the first one trains, and a cell's process dies with the sweep's.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import attrs
import yaml

from .atomic_io import atomic_write_text, write_failed
from .errors import ConfigError, MonaError
from .run_records import damaged_record
from .runconfig import COMPONENT_KEYS, RunConfig, apply_overrides
from .yamlsafe import load_yaml_text

PROFILE_KEYS = ("name", "output", "seeds", "tasks", "methods", "base", "description", "keep_checkpoints", "submitit")
#: numpy seeds the global RNG modulo 2**32 and the engine adds offsets to the seed: keep seeds in 32 bits.
MAX_SEED = 2**32 - 1
#: Registry of each component key of a run config (``source`` is a dataset).
_KINDS = {"task": "datasets", "source": "datasets", "backbone": "backbones", "embedder": "embedders",
          "head": "heads", "method": "methods"}


@attrs.frozen
class Cell:
    method: str  #: label in the table
    task: str  #: label in the table
    seed: int
    config: dict[str, Any]  #: the plain run config

    @property
    def key(self) -> str:
        return f"{self.method}/{self.task}/seed{self.seed}"


# --- profiles ------------------------------------------------------------------------------------


def _load_profile_yaml(text: str, where: str) -> Any:
    """The one place a profile's YAML is parsed: the bounded loader (aliases, depth, size, duplicate
    keys), every failure one line naming the profile."""
    return load_yaml_text(text, what=f"sweep profile {where}")


def check_label(label: Any, what: str) -> str:
    """A label names a folder under the sweep's output: one plain path component, never a path."""
    if not isinstance(label, str) or not label.strip():
        raise ConfigError(f"sweep {what} {label!r} must be a non-empty string (it names a folder of the sweep).")
    bad = (
        label in (".", "..") or ".." in label or "\x00" in label
        or any(sep in label for sep in ("/", "\\"))
        or PurePosixPath(label).is_absolute() or PureWindowsPath(label).drive
        or label != label.strip()
    )
    if bad:
        raise ConfigError(
            f"sweep {what} {label!r} is not a plain folder name (no '/', '\\', '..', drive or surrounding spaces); "
            f"rename it in the profile."
        )
    return label


def _check_profile(data: Any, where: str) -> dict[str, Any]:
    if data is None:
        raise ConfigError(f"sweep profile {where} is empty; it needs name, output, seeds, tasks and methods (see benchmarks/profiles/tiny.yaml).")
    if not isinstance(data, dict):
        raise ConfigError(f"sweep profile {where} must hold a mapping of key: value, got a {type(data).__name__}; see benchmarks/profiles/tiny.yaml.")
    missing = [k for k in ("name", "output", "seeds", "tasks", "methods") if k not in data]
    if missing:
        raise ConfigError(f"sweep profile {where} needs {', '.join(missing)}; see benchmarks/profiles/cpu.yaml.")
    unknown = set(data) - set(PROFILE_KEYS)
    if unknown:
        raise ConfigError(f"sweep profile {where} has unknown keys {sorted(map(str, unknown))}; valid keys: {', '.join(PROFILE_KEYS)}.")
    check_label(data["name"], "name")
    if not isinstance(data["output"], str) or not data["output"].strip():
        raise ConfigError(f"sweep profile {where}: 'output' must be a folder path, got {data['output']!r}.")
    seeds = data["seeds"]
    if not isinstance(seeds, list) or not seeds:
        raise ConfigError(f"sweep profile {where}: 'seeds' must be a non-empty list of integers (e.g. seeds: [0, 1, 2]), got {seeds!r}.")
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise ConfigError(f"sweep profile {where}: seed {seed!r} must be an integer from 0 to {MAX_SEED}.")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"sweep profile {where}: 'seeds' lists a seed twice ({seeds}); each seed is one cell.")
    for key, what in (("tasks", "task"), ("methods", "method")):
        section = data[key]
        if not isinstance(section, dict) or not section:
            raise ConfigError(
                f"sweep profile {where}: '{key}' must be a non-empty mapping of label: {what} "
                f"(see benchmarks/profiles/tiny.yaml), got {section!r}."
            )
        for label, value in section.items():
            check_label(label, f"{what} label")
            if key == "tasks" and value is not None and not isinstance(value, dict):
                raise ConfigError(f"sweep task {label!r} must be a mapping of config keys (e.g. {{task: NAME}}), got {value!r}.")
            if key == "methods" and not (isinstance(value, str) or (isinstance(value, dict) and isinstance(value.get("name"), str))):
                raise ConfigError(f"sweep method {label!r} must be a method name or a mapping with 'name', got {value!r}.")
    for label, value in data["tasks"].items():  # after both sections are known to be mappings
        if value is not None and METHOD_OPTIONS in value:
            _check_method_options(value[METHOD_OPTIONS], label)
    if data.get("base") is not None and not isinstance(data["base"], dict):
        raise ConfigError(f"sweep profile {where}: 'base' must be a mapping of config keys, got {data['base']!r}.")
    from .launchers import check_submitit_section

    check_submitit_section(data.get("submitit"), f"sweep profile {where}")
    if not isinstance(data.get("keep_checkpoints", False), bool):
        raise ConfigError(f"sweep profile {where}: 'keep_checkpoints' must be true or false, got {data['keep_checkpoints']!r}.")
    return data


#: A task entry's key for options of some methods on that task only (e.g. a reference whose budget
#: should not follow this task's epochs); every other key of a task entry is a run-config key.
METHOD_OPTIONS = "method_options"


def _check_method_options(value: Any, task: str) -> None:
    """The shape of a task's method_options; its labels are checked against the expanded method
    labels (``orca-otdd``, not ``orca-{objective}``) when the cells are listed."""
    example = "e.g. method_options: {specialist: {patience: null}}"
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"sweep task {task!r}: '{METHOD_OPTIONS}' must map method labels to option mappings ({example}), got {value!r}.")
    for label, options in value.items():
        if not isinstance(options, dict) or not options or "name" in options:
            raise ConfigError(f"sweep task {task!r}: '{METHOD_OPTIONS}' of {label!r} must be a mapping of that method's "
                              f"options without 'name' ({example}), got {options!r}.")


def read_profile(path: Path) -> dict[str, Any]:
    path = Path(path)
    where = repr(str(path))
    if not path.exists():
        raise ConfigError(f"sweep profile {where} does not exist; see benchmarks/profiles/ for examples.")
    if not path.is_file():
        raise ConfigError(f"sweep profile {where} is not a file; pass a profile YAML (see benchmarks/profiles/).")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"sweep profile {where} is not UTF-8 text (byte {exc.start}); pass a profile YAML.") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read sweep profile {where}: {exc.strerror or type(exc).__name__}.") from exc
    try:
        data = _load_profile_yaml(text, where)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"sweep profile {where} is not valid YAML{line}; fix the syntax.") from exc
    except RecursionError as exc:
        raise ConfigError(f"sweep profile {where} is nested too deeply; flatten it.") from exc
    return _check_profile(data, where)


def expand_methods(methods: dict[str, Any], kit) -> dict[str, dict[str, Any]]:
    """label -> method mapping, with ``"*role"`` objectives expanded over the registry."""
    out: dict[str, dict[str, Any]] = {}

    def put(label: str, spec: dict[str, Any], origin: str) -> None:
        check_label(label, "method label")
        if label in out:
            raise ConfigError(f"sweep method label {label!r} is given twice (again by {origin!r}); rename one.")
        out[label] = spec

    for label, spec in methods.items():
        spec = {"name": spec} if isinstance(spec, str) else dict(spec)
        wildcard = [k for k, v in spec.items() if isinstance(v, str) and v.startswith("*")]
        if not wildcard:
            put(label, spec, label)
            continue
        key = wildcard[0]
        role = spec[key][1:]
        if "{" + key + "}" not in label:
            raise ConfigError(f"sweep method {label!r} expands {key}: {spec[key]!r}, so its label needs '{{{key}}}'.")
        names = [e.name for e in kit.objectives if e.meta.get("role") == role]
        if not names:
            raise ConfigError(
                f"sweep method {label!r}: no registered objective has role {role!r} "
                f"(roles: distance, representation, task-loss)."
            )
        for name in names:
            put(label.replace("{" + key + "}", name), {**spec, key: name}, label)
    return out


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``extra`` over ``base``; nested mappings merge (a task's ``train: {epochs: 9}`` keeps the base lr)."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def check_cell_config(config: dict[str, Any], kit) -> RunConfig:
    """What ``mona-kit run`` checks before training: the run config, then every named component's
    options against its registry (``auto`` components are chosen at build time)."""
    run_config = RunConfig.from_dict(config)
    for key in COMPONENT_KEYS:
        ref = getattr(run_config, key)
        if ref.name == "auto":
            continue
        kit.registry(_KINDS[key]).get(ref.name).make_config(ref.options)
    return run_config


def _check_method_option_labels(profile: dict[str, Any], methods: dict[str, dict[str, Any]], kit) -> None:
    """Each task's method_options must name cell labels (a wildcard's expansions, e.g. ``orca-otdd``)
    and must not set the key a wildcard expanded: that cell's label would name another objective."""
    expanded_from: dict[str, set[str]] = {}
    for label, spec in profile["methods"].items():
        wild = {k for k, v in spec.items() if isinstance(v, str) and v.startswith("*")} if isinstance(spec, dict) else set()
        for name in expand_methods({label: spec}, kit):
            expanded_from[name] = wild
    for task, entry in profile["tasks"].items():
        for label, options in ((entry or {}).get(METHOD_OPTIONS) or {}).items():
            if label not in methods:
                raise ConfigError(f"sweep task {task!r}: '{METHOD_OPTIONS}' names {label!r}, which is not a method label of "
                                  f"this profile's cells (labels: {', '.join(methods)}).")
            fixed = sorted(expanded_from.get(label, set()) & set(options))
            if fixed:
                raise ConfigError(f"sweep task {task!r}: '{METHOD_OPTIONS}' of {label!r} sets {fixed[0]!r}, which its label "
                                  f"expands over; leave it out (or add a method with that {fixed[0]} to the profile).")


def cells(profile: dict[str, Any], kit) -> Iterator[Cell]:
    """Every cell of the profile, each config checked (a bad one fails before any cell runs when the
    caller lists them all first)."""
    base = profile.get("base") or {}
    methods = expand_methods(profile["methods"], kit)
    _check_method_option_labels(profile, methods, kit)
    tasks = {}  # label -> (run-config keys, method_options), split once
    for task_label, entry in profile["tasks"].items():
        task_cfg = dict(entry or {})
        tasks[task_label] = (task_cfg, task_cfg.pop(METHOD_OPTIONS, None) or {})
    for method_label, method in methods.items():
        for task_label, (task_cfg, per_method) in tasks.items():
            for seed in profile["seeds"]:
                config = deep_merge(base, task_cfg)
                config["method"] = {**method, **per_method.get(method_label, {})}
                config["seed"] = seed
                cell = Cell(method=method_label, task=task_label, seed=seed, config=config)
                try:
                    check_cell_config(config, kit)
                except MonaError as exc:
                    raise ConfigError(f"sweep cell {cell.key}: {exc}") from exc
                yield cell


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


def _canonical(config: dict[str, Any]) -> str:
    """A cell's config as comparable text, independent of where the sweep folder lives (output_dir
    and run_name are derived from the cell's place, so a moved folder is the same cell)."""
    plain = {k: v for k, v in config.items() if k not in ("output_dir", "run_name")}
    return json.dumps(yaml.safe_load(yaml.safe_dump(plain)), sort_keys=True, default=str)


def _recorded_config(config_file: Path) -> dict[str, Any] | None:
    if not config_file.is_file():
        return None
    try:
        data = yaml.safe_load(config_file.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise damaged_record(config_file) from exc
    if not isinstance(data, dict):
        raise damaged_record(config_file)
    return data


def read_cell_results(path: Path) -> dict[str, Any]:
    """A cell's ``results.json`` (read like every run's, :func:`mona_kit.summary.read_results`); a
    damaged or incomplete one is a one-line error naming the file and the cell to rerun."""
    from .summary import read_results

    try:
        data = read_results(Path(path).parent)
    except MonaError as exc:
        raise _damaged_results(path) from exc
    metric = data.get("metric")
    if not isinstance(metric, str) or not isinstance(data.get("test"), dict) or not isinstance(data.get("seed"), int):
        raise _damaged_results(path)
    return data


def _damaged_results(path: Path) -> MonaError:
    return ConfigError(
        f"{str(path)!r} is damaged (not the results.json a run writes); delete its cell folder "
        f"{str(Path(path).parent)!r} to rerun the cell, or restore the file."
    )


def _refuse_changed(cell: Cell, run_dir: Path) -> None:
    """A cell started before must still get the same config from the profile (its place aside)."""
    config_file = run_dir.parent / f"seed{cell.seed}.yaml"
    recorded = _recorded_config(config_file)
    if recorded is not None and _canonical(recorded) != _canonical(cell.config):
        state = "run" if (run_dir / "results.json").is_file() else "started"
        raise ConfigError(
            f"cell {cell.key} was {state} with another config ({config_file}); the profile changed. Use a new "
            f"output folder (--output) or delete {run_dir.parent} to rerun it."
        )


def check_existing(output: Path, todo: list[Cell]) -> None:
    """Before anything runs: every cell already started must still have the profile's config, and
    every finished one must have readable results."""
    for cell in todo:
        run_dir = cell_dir(output, cell)
        _refuse_changed(cell, run_dir)
        if (run_dir / "results.json").is_file():
            read_cell_results(run_dir / "results.json")


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
    lock (mona_kit.runs.RunLock), which a dead holder never keeps."""
    from . import runs

    lock = getattr(runs, "RunLock", None)
    if lock is None or not Path(run_dir).is_dir():
        return None
    try:
        lock(run_dir).probe()
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
        return {"status": "done", **read_cell_results(run_dir / "results.json")}
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
    return {"status": "ran", **read_cell_results(run_dir / "results.json")}


def collect(output: Path) -> list[dict[str, Any]]:
    """Every finished cell's results, labelled by its place in the sweep. A damaged ``results.json``
    stops the report with a one-line error naming the file (a table silently missing a cell would lie)."""
    rows = []
    for results in sorted(Path(output).glob("cells/*/*/seed*/results.json")):
        r = read_cell_results(results)
        seed_dir = results.parent
        r.update(method_label=seed_dir.parent.parent.name, task_label=seed_dir.parent.name, run_dir=str(seed_dir))
        rows.append(r)
    return rows


def apply_cli_overrides(profile: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``key=value`` overrides apply to every cell's base config."""
    profile = dict(profile)
    profile["base"] = apply_overrides(profile.get("base") or {}, overrides) if overrides else profile.get("base") or {}
    return profile
