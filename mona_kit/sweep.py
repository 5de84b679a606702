"""Sweeps: methods x tasks x seeds, one run directory per cell, then tables and plots.

A profile (YAML) names the cells::

    name: cpu
    output: benchmarks/results/cpu
    seeds: [0, 1, 2]
    base: {backbone: minilm-l6, train: {...}}          # shared by every cell
    tasks:                                              # label -> config keys for that task
      darcy-16: {task: {name: darcy-16, max_train: 300}, embedder: {name: grid2d-patch, patch: 4}}
    keep_checkpoints: false                             # drop a finished cell's checkpoints
    methods:                                            # label -> method (name + options)
      finetune: finetune
      orca: {name: orca, align_epochs: 20}
      orca-{objective}: {name: orca, objective: "*distance"}   # one cell per registered distance

``"*distance"`` / ``"*representation"`` expand to every registered objective of that role,
so an objective a third-party plugin registers joins the sweep by name alone.

Each cell runs as its own ``mona-kit run`` process (peak memory per cell, isolation, and the
exact command a user re-runs). Finished cells are skipped; interrupted ones resume.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import yaml

from .errors import ConfigError
from .runconfig import RunConfig, apply_overrides
from .runs import atomic_write_text


@attrs.frozen
class Cell:
    method: str  #: label in the table
    task: str  #: label in the table
    seed: int
    config: dict[str, Any]  #: the plain run config

    @property
    def key(self) -> str:
        return f"{self.method}/{self.task}/seed{self.seed}"


def read_profile(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"sweep profile {str(path)!r} does not exist; see benchmarks/profiles/ for examples.")
    data = yaml.safe_load(path.read_text()) or {}
    missing = [k for k in ("name", "output", "seeds", "tasks", "methods") if k not in data]
    if missing:
        raise ConfigError(f"sweep profile {str(path)!r} needs {', '.join(missing)}; see benchmarks/profiles/cpu.yaml.")
    unknown = set(data) - {"name", "output", "seeds", "tasks", "methods", "base", "description", "keep_checkpoints"}
    if unknown:
        raise ConfigError(f"sweep profile {str(path)!r} has unknown keys {sorted(unknown)}.")
    return data


def expand_methods(methods: dict[str, Any], kit) -> dict[str, dict[str, Any]]:
    """label -> method mapping, with ``"*role"`` objectives expanded over the registry."""
    out: dict[str, dict[str, Any]] = {}
    for label, spec in methods.items():
        spec = {"name": spec} if isinstance(spec, str) else dict(spec)
        wildcard = [k for k, v in spec.items() if isinstance(v, str) and v.startswith("*")]
        if not wildcard:
            out[label] = spec
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
            out[label.replace("{" + key + "}", name)] = {**spec, key: name}
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


def cells(profile: dict[str, Any], kit) -> Iterator[Cell]:
    base = profile.get("base") or {}
    for method_label, method in expand_methods(profile["methods"], kit).items():
        for task_label, task_cfg in profile["tasks"].items():
            for seed in profile["seeds"]:
                config = deep_merge(base, task_cfg or {})
                config["method"] = method
                config["seed"] = seed
                RunConfig.from_dict(config)  # a bad profile fails before the first cell runs
                yield Cell(method=method_label, task=task_label, seed=seed, config=config)


def cell_dir(output: Path, cell: Cell) -> Path:
    return Path(output) / "cells" / cell.method / cell.task / f"seed{cell.seed}"


def run_cell(output: Path, cell: Cell, *, python: str = sys.executable, keep_checkpoints: bool = False) -> dict[str, Any]:
    """Run (or resume, or skip) one cell in its own process; returns its results or a failure record.

    A finished or started cell is reused only if the profile still gives it the same config."""
    run_dir = cell_dir(output, cell)
    if (run_dir / "results.json").is_file():
        config_file = run_dir.parent / f"seed{cell.seed}.yaml"
        expected = yaml.safe_dump({**cell.config, "output_dir": str(run_dir.parent), "run_name": run_dir.name}, sort_keys=False)
        if config_file.is_file() and config_file.read_text() != expected:
            raise ConfigError(
                f"cell {cell.key} was run with another config ({config_file}); the profile changed. Use a new "
                f"output folder (--output) or delete {run_dir.parent} to rerun it."
            )
        return {"status": "done", **json.loads((run_dir / "results.json").read_text())}
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    config_file = run_dir.parent / f"seed{cell.seed}.yaml"
    config = {**cell.config, "output_dir": str(run_dir.parent), "run_name": run_dir.name}
    text = yaml.safe_dump(config, sort_keys=False)
    if config_file.is_file() and config_file.read_text() != text:
        raise ConfigError(
            f"cell {cell.key} was started with another config ({config_file}); the profile changed. Use a new "
            f"output folder (--output) or delete {run_dir.parent} to rerun it."
        )
    atomic_write_text(config_file, text)
    if (run_dir / "config.yaml").is_file():
        cmd = [python, "-m", "mona_kit", "run", "--resume", str(run_dir), "--no-progress", "--no-plots"]
    else:
        cmd = [python, "-m", "mona_kit", "run", str(config_file), "--no-progress", "--no-plots", "--overwrite"]
    started = time.time()
    log = run_dir.parent / f"seed{cell.seed}.log"
    with open(log, "a") as fh:
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT)
    if proc.returncode != 0 or not (run_dir / "results.json").is_file():
        tail = log.read_text().strip().splitlines()[-1:] or ["(no output)"]
        return {"status": "failed", "error": tail[0], "log": str(log), "seconds": time.time() - started}
    if not keep_checkpoints:  # a finished cell's weights (~90 MB per stage for MiniLM) are not needed to re-run it
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    return {"status": "ran", **json.loads((run_dir / "results.json").read_text())}


def collect(output: Path) -> list[dict[str, Any]]:
    """Every finished cell's results, labelled by its place in the sweep."""
    rows = []
    for results in sorted(Path(output).glob("cells/*/*/seed*/results.json")):
        r = json.loads(results.read_text())
        seed_dir = results.parent
        r.update(method_label=seed_dir.parent.parent.name, task_label=seed_dir.parent.name, run_dir=str(seed_dir))
        rows.append(r)
    return rows


def apply_cli_overrides(profile: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``key=value`` overrides apply to every cell's base config."""
    profile = dict(profile)
    profile["base"] = apply_overrides(profile.get("base") or {}, overrides) if overrides else profile.get("base") or {}
    return profile
