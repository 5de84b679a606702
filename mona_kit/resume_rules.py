"""What ``run --resume`` may change and what it must find as the run left it: the recorded config
(by hash), the plugin versions, the resolved defaults, and the learning rates a resume may lower after
a non-finite stop (recorded in env.json so that a later resume applies them again)."""

from __future__ import annotations

import json
import time
from typing import Any

from .checkpoint import StageCheckpoint
from .errors import CheckpointError, ConfigError
from .kit import Kit
from .run_records import damaged_record
from .runconfig import RunConfig, apply_overrides, parse_overrides
from .runs import RunDir

#: What ``run --resume RUN_DIR key=value`` may change, and only after a non-finite stop: the
#: learning rates the stop message advises lowering. Anything else would make the run a hybrid.
RESUME_KEYS = (
    "train.lr", "train.embedder_lr", "method.inner_lr", "method.meta_lr",  # fine-tuning, MoNA
    "method.align_lr", "method.head_lr", "method.label_lr",  # ORCA's alignment, RECRAFT's stages
)


def _diff(a: Any, b: Any, path: str = "") -> str | None:
    """The first field where two plain configs differ, as 'path: a != b'."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            found = _diff(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
            if found:
                return found
        return None
    return None if a == b else f"{path}: {a!r} (checkpoint) != {b!r} (now)"


def config_hash(plain: dict[str, Any]) -> str:
    """SHA-256 of a config as parsed (formatting and comments do not count, values do)."""
    import hashlib

    return hashlib.sha256(json.dumps(plain, sort_keys=True, default=str).encode()).hexdigest()


def check_config_hash(run_dir: RunDir) -> dict[str, Any]:
    """The run's config.yaml, refused if it is not the one the run wrote (its hash is in env.json)."""
    recorded = run_dir.read_config()
    expected = (run_dir.read_json("env.json") or {}).get("config_sha256")
    if expected is not None and config_hash(recorded) != expected:
        raise CheckpointError(
            f"{str(run_dir.path / 'config.yaml')!r} was edited after the run started (its hash no longer matches "
            f"env.json); resuming would mix two configs - restore the file, or start a new run with the new config."
        )
    return recorded


def recorded_overrides(run_dir: RunDir) -> list[dict[str, Any]]:
    """Learning-rate changes earlier resumes applied (env.json ``resume_overrides``)."""
    found = (run_dir.read_json("env.json") or {}).get("resume_overrides") or []
    if not isinstance(found, list) or not all(isinstance(o, dict) and isinstance(o.get("set"), str) for o in found):
        raise damaged_record(run_dir.path / "env.json")
    return found


def check_resume_overrides(run_dir: RunDir, overrides: list[str]) -> list[str]:
    """Refuse every resume-time override except a learning rate after a non-finite stop."""
    for item in overrides:
        key = item.partition("=")[0]
        if key not in RESUME_KEYS:
            raise ConfigError(
                f"run --resume takes no {item!r}: a resumed run keeps the config it started with (changing it "
                f"would give a hybrid run); only a learning rate ({', '.join(RESUME_KEYS)}) may change, after a "
                f"non-finite stop. Start a new run for other settings."
            )
    if overrides and not stopped_nonfinite(run_dir):
        raise ConfigError(
            f"run --resume {run_dir.path} {' '.join(overrides)}: a learning rate may change on resume only after "
            f"the run stopped on a non-finite loss or gradient, and this one did not; resume without it."
        )
    return list(overrides)


def stopped_nonfinite(run_dir: RunDir) -> bool:
    """True when the run's last logged event is a non-finite stop."""
    events = run_dir.events()
    return bool(events) and events[-1].get("event") == "stopped-nonfinite"


def _set_path(plain: dict[str, Any], key: str, value: Any) -> None:
    head, _, tail = key.partition(".")
    section = plain.setdefault(head, {})
    if isinstance(section, dict):
        section[tail] = value


def _get_path(plain: dict[str, Any], key: str) -> Any:
    head, _, tail = key.partition(".")
    section = plain.get(head)
    return section.get(tail) if isinstance(section, dict) else None


def check_resumable(run_dir: RunDir, resolved: dict[str, Any], kit: Kit, override_keys: tuple[str, ...] = ()) -> None:
    """Refuse to resume with other component versions or a config that resolves differently (the
    learning rates a resume changed explicitly, ``override_keys``, excepted)."""
    recorded = check_config_hash(run_dir)
    saved_env = run_dir.read_json("env.json") or {}
    for name, info in (saved_env.get("plugins") or {}).items():
        now = kit.plugins.get(name)
        if now is None or now.version != info.get("version"):
            have = now.version if now else "not loaded"
            raise CheckpointError(
                f"run {str(run_dir.path)!r} was made with plugin {name} {info.get('version')}, now {have}; "
                f"install that version to resume, or start a new run."
            )
    for key in override_keys:
        _set_path(recorded, key, _get_path(resolved, key))
    diff = _diff(recorded, resolved)
    if diff:
        raise CheckpointError(
            f"run {str(run_dir.path)!r} cannot resume: its config resolves differently now ({diff}); "
            f"components changed their defaults - start a new run."
        )


def resume_config(run_dir: RunDir, config: RunConfig, overrides: list[str]) -> tuple[RunConfig, list[str], tuple[str, ...]]:
    """The config a resume runs: the recorded one with every learning-rate change (earlier resumes'
    and this one's) applied; returns it, the new changes and every changed key."""
    check_config_hash(run_dir)
    parse_overrides(overrides)  # a key given twice: refused, as in a new run
    new = check_resume_overrides(run_dir, list(overrides))
    every = [o["set"] for o in recorded_overrides(run_dir)] + new
    if every:
        config = RunConfig.from_dict(apply_overrides(config.to_plain(), every, allow_repeats=True))
    return config, new, tuple(dict.fromkeys(o.partition("=")[0] for o in every))


def record_overrides(run_dir: RunDir, new: list[str], resolved: dict[str, Any], stage: str, index: int) -> None:
    """Apply a resume's learning-rate change: this stage restarts from its start (its mid-stage
    checkpoint was made at the old rate), and env.json records what changed, where and when."""
    StageCheckpoint(run_dir.checkpoints, index).clear()
    env = run_dir.read_json("env.json") or {}
    before = run_dir.read_config()
    for previous in recorded_overrides(run_dir):
        key, _, _ = previous["set"].partition("=")
        _set_path(before, key, previous.get("value"))
    records = list(env.get("resume_overrides") or [])
    for item in new:
        key = item.partition("=")[0]
        records.append({
            "set": item, "key": key, "was": _get_path(before, key), "value": _get_path(resolved, key),
            "from_stage": stage, "stage_index": index, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        })
    run_dir.write_json("env.json", env | {"resume_overrides": records})
