"""Reading the records a run writes (progress.json, results-partial.json, checkpoint pointers,
config.yaml through read_mapping): a record that is cut, edited or replaced, or a damaged
metrics.jsonl line, is a one-line CheckpointError, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from .errors import CheckpointError, MonaError


def damaged_record(path: Path) -> MonaError:
    return CheckpointError(
        f"{str(path)!r} is damaged (not the file a run writes); restore it from a backup or start a new run."
    )


def read_mapping(path: Path, parse, errors: tuple[type[Exception], ...]) -> dict[str, Any]:
    """A mapping a run wrote; anything else (cut, edited, replaced) is a one-line CheckpointError."""
    try:
        data = parse(path.read_text())
    except errors + (UnicodeDecodeError,) as exc:
        raise damaged_record(path) from exc
    if not isinstance(data, dict):
        raise damaged_record(path)
    return data


def read_json_record(path: Path) -> dict[str, Any] | None:
    """A JSON record a run wrote (None when absent)."""
    path = Path(path)
    return read_mapping(path, json.loads, (json.JSONDecodeError,)) if path.is_file() else None


def record_count(record: dict[str, Any] | None, key: str) -> int | None:
    """An integer field of a run record (None when absent, or written before the field existed)."""
    value = (record or {}).get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def record_seconds(record: dict[str, Any] | None, key: str) -> float | None:
    """A number-of-seconds field of a run record (None when absent, or written before it was kept)."""
    value = (record or {}).get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def damaged_line(path: Path, line: int) -> MonaError:
    return CheckpointError(
        f"{str(path)!r} line {line} is damaged (not an event a run writes); delete that line (or restore the file "
        f"from a backup) and retry."
    )


def check_split_results(file: Path, data: dict[str, Any]) -> None:
    """Refuse results whose val/test entries are not mappings of metric -> value."""
    for split in ("val", "test"):
        if split in data and not isinstance(data[split], dict):
            raise damaged_record(file)


class Progress(NamedTuple):
    """What a run's progress.json and results-partial.json say of its finished stages."""

    done: list[str]  # finished stage names, in order
    partial: dict[str, Any]  # their results so far
    metrics_bytes: int | None  # metrics.jsonl's size when the last one ended
    elapsed_s: float | None  # the run's wall time then (None: none finished, or recorded before times were kept)


class _HasCheckpoints(Protocol):  # a RunDir, or anything with its checkpoints folder
    @property
    def checkpoints(self) -> Path: ...


def read_progress(run_dir: _HasCheckpoints) -> Progress:
    """The run's finished stages; a damaged record is a one-line CheckpointError."""
    progress_file = run_dir.checkpoints / "progress.json"
    progress = read_json_record(progress_file) or {"done": []}
    done = progress.get("done")
    if not isinstance(done, list) or not all(isinstance(d, str) for d in done):
        raise damaged_record(progress_file)
    partial_file = run_dir.checkpoints / "results-partial.json"
    partial = read_json_record(partial_file) or {}
    check_split_results(partial_file, partial)
    return Progress(done, partial, record_count(progress, "metrics_bytes"), record_seconds(progress, "elapsed_s"))
