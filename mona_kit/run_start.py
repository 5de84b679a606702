"""A run's start and its undoing: the folder (replacing one with --overwrite), config.yaml, env.json
and the loggers; a failure or Ctrl-C before the first event leaves the folder as it was."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from .distributed import barrier
from .env_record import environment_record
from .kit import Kit
from .loggers import open_loggers
from .resume_rules import config_hash
from .runconfig import RunConfig
from .runs import LOCK, MARKER, REPLACED, RunDir


def start_run(kit: Kit, session, resolved: dict[str, Any], stack, *, path: Path, overwrite: bool,
              resumed: RunDir | None) -> RunDir:
    """Everything before the run's first event: a new run's folder (replacing one with ``overwrite``),
    config.yaml and env.json with the config's hash, then the loggers (rank 0). A failure or Ctrl-C in
    between leaves the folder as it was, a replaced run put back; once started, the replaced run is gone."""
    info = session.dist
    if resumed is None and not info.is_main:
        barrier(info)  # rank 0 makes the folder
        return RunDir(path)
    if resumed is None:
        made = _folders_to_make(path)
        kept = set() if made else _entries(path) & {MARKER, LOCK}  # the rest is this run's (or was replaced)
        run_dir = RunDir.create(path, overwrite=overwrite)  # a refused create changed nothing
        stack.callback(run_dir.release)
    else:
        run_dir, made, kept = resumed, [], _entries(resumed.path)
    try:
        if resumed is None:
            run_dir.write_config(resolved)
            env = environment_record(kit, session.config.seed, str(session.device))
            run_dir.write_json("env.json", env | {"world_size": info.world_size, "config_sha256": config_hash(run_dir.read_config())})
            barrier(info)
        if session.config.loggers and info.is_main:
            attach_loggers(kit, session.config, run_dir, resolved, stack)
    except (Exception, KeyboardInterrupt):  # a full disk, a refused logger, Ctrl-C: no run was started
        if info.is_main:
            undo_start(run_dir, made, kept, restore=resumed is None)
        raise
    if resumed is None and info.is_main:
        run_dir.drop_replaced()
    return run_dir


def _entries(folder: Path) -> set[str]:
    return {e.name for e in folder.iterdir()} if folder.is_dir() else set()


def _folders_to_make(path: Path) -> list[Path]:
    """The run directory and those of its parents that do not exist yet, innermost first."""
    made = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        made.append(folder)
    return made


def undo_start(run_dir: RunDir, made: list[Path], kept: set[str], *, restore: bool) -> None:
    """Remove what this run wrote before its loggers started, and nothing that was there before: the
    folders it made (parents only while empty: another run may have started there meanwhile), or, in a
    folder that existed, every entry but ``kept`` - then (``restore``, a new run) put back the run that
    --overwrite moved aside. The lock is released as the run's stack unwinds."""
    folder = run_dir.path
    if made:
        shutil.rmtree(made[0], ignore_errors=True)
        for parent in made[1:]:
            try:
                parent.rmdir()
            except OSError:
                break
        return
    for entry in folder.iterdir():
        if entry.name in kept or entry.name == REPLACED:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    if restore:
        run_dir.restore_replaced()


def attach_loggers(kit: Kit, config: RunConfig, run_dir: RunDir, resolved: dict[str, Any], stack) -> None:
    """Open the run's loggers and give them its config and environment; every event run_dir.log
    writes from here on goes to them too. They close as the run ends, told whether it finished."""
    loggers = open_loggers(kit, config.loggers, run_dir.path)
    run_dir.loggers = loggers

    def close(exc_type, exc, tb) -> bool:
        run_dir.loggers = None
        loggers.close("failed" if exc_type is not None else "finished")
        return False  # an error goes on up

    stack.push(close)
    loggers.log_config(resolved, run_dir.read_json("env.json") or {})
