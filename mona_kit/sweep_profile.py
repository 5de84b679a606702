"""Sweep profiles: the YAML that names a sweep's cells (methods x tasks x seeds), checked in full
before any cell runs. A profile::

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
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import attrs
import yaml

from .errors import ConfigError, MonaError
from .runconfig import RunConfig, apply_overrides, check_components
from .yamlsafe import load_yaml_text

PROFILE_KEYS = ("name", "output", "seeds", "tasks", "methods", "base", "description", "keep_checkpoints", "submitit")
#: numpy seeds the global RNG modulo 2**32 and the engine adds offsets to the seed: keep seeds in 32 bits.
MAX_SEED = 2**32 - 1


@attrs.frozen
class Cell:
    method: str  #: label in the table
    task: str  #: label in the table
    seed: int
    config: dict[str, Any]  #: the plain run config

    @property
    def key(self) -> str:
        return f"{self.method}/{self.task}/seed{self.seed}"


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
    check_cell_owned_keys(data.get("base") or {}, f"sweep profile {where}: 'base'")
    for label, value in data["tasks"].items():
        check_cell_owned_keys(value or {}, f"sweep task {label!r}")
    from .launchers import check_submitit_section

    check_submitit_section(data.get("submitit"), f"sweep profile {where}")
    if not isinstance(data.get("keep_checkpoints", False), bool):
        raise ConfigError(f"sweep profile {where}: 'keep_checkpoints' must be true or false, got {data['keep_checkpoints']!r}.")
    return data


#: Run-config keys the sweep sets for every cell, and where to say instead what a profile means by them.
CELL_OWNED_KEYS = {
    "seed": "list seeds under 'seeds:' (or pass --seeds)",
    "method": "list methods (with their options) under 'methods:', and pick some with --only",
    "run_name": "each cell's folder is named METHOD/TASK/seedN",
    "output_dir": "set the profile's 'output:' (or pass --output)",
}


def check_cell_owned_keys(config: dict[str, Any], where: str) -> None:
    """A key the sweep sets for each cell would be dropped without a word: refuse it."""
    for key, instead in CELL_OWNED_KEYS.items():
        if key in config:
            raise ConfigError(f"{where} sets {key!r}, which the sweep sets for every cell; {instead}.")


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
    """What ``mona-kit run`` checks before training: the run config, then :func:`check_components`."""
    from .engine import parse_device

    run_config = RunConfig.from_dict(config)
    check_components(run_config, kit)
    parse_device(run_config.device)  # its form; whether it is on the machine is the launch's check (sweep_preflight)
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


def apply_cli_overrides(profile: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``key=value`` overrides apply to every cell's base config."""
    for item in overrides:
        check_cell_owned_keys({item.partition("=")[0].split(".")[0]: item}, f"sweep override {item!r}")
    profile = dict(profile)
    profile["base"] = apply_overrides(profile.get("base") or {}, overrides) if overrides else profile.get("base") or {}
    return profile
