"""What ``mona-kit describe run | train | diagnostics | profile`` prints: the keys of a run config, its
``train`` and ``diagnostics`` sections, and a sweep profile, with types, defaults and help (docs/runs.md)."""

from __future__ import annotations

from typing import Any

#: A sweep profile's keys (mona_kit.sweep_profile.PROFILE_KEYS), each with what it holds.
PROFILE_HELP = {
    "name": "the profile's label (a plain folder name)",
    "output": "folder of the cells (cells/METHOD/TASK/seedN/) and of table.md, results.csv and the plots",
    "seeds": "list of integer seeds; one cell per (method, task, seed)",
    "tasks": "label -> run-config keys for that task, e.g. darcy-16: {task: {name: darcy-16, max_train: 300}}; "
             "method_options: {METHOD_LABEL: {option: value}} there sets options of some methods on that task only",
    "methods": "label -> a method name or {name: METHOD, option: value}; \"*distance\" / \"*representation\" "
               "expand to every registered objective of that role (label orca-{objective})",
    "base": "run-config keys shared by every cell (backbone, train, diagnostics, threads, ...)",
    "description": "free text shown with the profile",
    "keep_checkpoints": "true keeps a finished cell's checkpoints/ (default false: removed once results.json exists)",
    "submitit": "executor settings for 'sweep --launcher submitit': partition, time_min, gpus_per_cell, cpus_per_cell, "
                "mem_gb, account, qos, constraint, setup, additional, cluster, folder (docs/distributed.md)",
}
REQUIRED_PROFILE_KEYS = ("name", "output", "seeds", "tasks", "methods")

SECTIONS = ("run", "train", "diagnostics", "profile")


def section_rows(name: str) -> list[dict[str, Any]]:
    """Rows (name, type, default, help, range) of one settings section."""
    from .config import describe_fields
    from .runconfig import DiagnosticsConfig, RunConfig, TrainConfig

    if name == "train":
        return describe_fields(TrainConfig)
    if name == "diagnostics":
        return describe_fields(DiagnosticsConfig)
    if name == "profile":
        from .sweep_profile import PROFILE_KEYS

        return [{"name": k, "type": "", "default": "(required)" if k in REQUIRED_PROFILE_KEYS else "-",
                 "help": PROFILE_HELP.get(k, ""), "range": ""} for k in PROFILE_KEYS]
    rows = []
    for row in describe_fields(RunConfig):
        if row["type"] == "ComponentRef":  # a name, or {name: NAME, option: value}
            row = {**row, "type": "NAME | {name: NAME, ...}", "default": row["default"].replace(
                "ComponentRef(name='auto', options={})", "auto")}
        elif row["name"] == "loggers":
            row = {**row, "type": "list of NAME | {name: NAME, ...}", "default": "[]"}
        elif row["name"] in ("train", "diagnostics"):
            row = {**row, "type": "section", "default": "-", "help": f"see 'mona-kit describe {row['name']}'"}
        rows.append(row)
    return rows


TITLES = {
    "run": "run config: the keys of a run config file (YAML) and of key=value overrides",
    "train": "run config section 'train': the training budget of every method's training stages (train.KEY=value)",
    "diagnostics": "run config section 'diagnostics': knowledge-reuse tracking (diagnostics.KEY=value)",
    "profile": "sweep profile: the keys of a 'mona-kit sweep PROFILE' file (see benchmarks/profiles/tiny.yaml)",
}
