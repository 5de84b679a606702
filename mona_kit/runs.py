"""Run directories: resolved config, environment record, metrics log, results, checkpoints.

Layout of ``<output_dir>/<run_name>/``::

    config.yaml      the resolved config (every default filled in) - re-run it as is
    env.json         versions, plugins, git hash, seed, device, command line
    metrics.jsonl    one JSON object per logged event (stage, step, values)
    results.json     final metrics (val for selection, test for the report), time, memory
    checkpoints/     resumable state (see mona_kit.checkpoint)
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from .errors import MonaError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: Mode of a freshly written record: what ``open()`` would give (mkstemp alone gives 0600).
FILE_MODE = 0o666 & ~_umask()


def write_failed(path: Path, exc: OSError) -> MonaError:
    """The one-line error for a record or checkpoint that could not be written (full disk, read-only)."""
    reason = exc.strerror or type(exc).__name__
    return MonaError(
        f"cannot write {str(path)!r}: {reason}; free disk space or make the folder writable (or choose another "
        f"output_dir). The previous version of the file is intact; resume with run --resume RUN_DIR."
    )


def atomic_replace(path: Path, write) -> None:
    """Write ``path`` through ``write(tmp_path)`` to a temporary file, fsync it, rename it over ``path``
    and fsync the folder: a crash or a full disk leaves the previous file whole, never half a file."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        os.chmod(tmp, FILE_MODE)
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(path.parent)
    except OSError as exc:
        raise write_failed(path, exc) from exc
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file, fsync and rename, so a crash never leaves half a file."""
    atomic_replace(path, lambda tmp: Path(tmp).write_text(text))


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if hasattr(value, "item") and callable(value.item):
        return _jsonable(value.item())
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def git_hash(cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd or Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def environment_record(kit, seed: int, device: str) -> dict[str, Any]:
    import importlib.metadata as md

    versions = {}
    for dist in ("mona-kit", "torch", "torchvision", "timm", "transformers", "pluggy", "attrs", "torchdata", "numpy", "pot"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            versions[dist] = None
    return {
        "seed": seed,
        "device": device,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": versions,
        "plugins": {name: {"distribution": i.distribution, "version": i.version} for name, i in kit.plugins.items()},
        "git": git_hash(),
        "argv": sys.argv,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def damaged_record(path: Path) -> MonaError:
    from .errors import CheckpointError

    return CheckpointError(
        f"{str(path)!r} is damaged (not the file a run writes); restore it from a backup or start a new run."
    )


def _read_mapping(path: Path, parse, errors: tuple[type[Exception], ...]) -> dict[str, Any]:
    """A mapping a run wrote; anything else (cut, edited, replaced) is a one-line CheckpointError."""
    try:
        data = parse(path.read_text())
    except (*errors, UnicodeDecodeError) as exc:
        raise damaged_record(path) from exc
    if not isinstance(data, dict):
        raise damaged_record(path)
    return data


def read_json_record(path: Path) -> dict[str, Any] | None:
    """A JSON record a run wrote (None when absent)."""
    path = Path(path)
    return _read_mapping(path, json.loads, (json.JSONDecodeError,)) if path.is_file() else None


class RunDir:
    """One run's directory and its records."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @classmethod
    def create(cls, path: Path, *, overwrite: bool = False) -> "RunDir":
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise MonaError(
                f"run directory {str(path)!r} is an existing file, not a folder; choose another run_name or output_dir."
            )
        if path.exists() and any(path.iterdir()):
            if not overwrite:
                raise MonaError(
                    f"run directory {str(path)!r} already exists; pass --overwrite to replace it, "
                    f"--resume {path} to continue it, or choose another run_name."
                )
            shutil.rmtree(path)
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe = path / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise MonaError(f"cannot write run directory {str(path)!r}: {exc.strerror}; choose a writable output_dir.") from exc
        return cls(path)

    @classmethod
    def open(cls, path: Path) -> "RunDir":
        path = Path(path)
        if not (path / "config.yaml").is_file():
            raise MonaError(f"{str(path)!r} is not a run directory (no config.yaml); pass the folder a run created.")
        return cls(path)

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def write_config(self, plain: dict[str, Any]) -> None:
        atomic_write_text(self.path / "config.yaml", yaml.safe_dump(plain, sort_keys=False))

    def read_config(self) -> dict[str, Any]:
        return _read_mapping(self.path / "config.yaml", yaml.safe_load, (yaml.YAMLError,))

    def write_json(self, name: str, data: dict[str, Any]) -> None:
        atomic_write_text(self.path / name, json.dumps(_jsonable(data), indent=2, sort_keys=False) + "\n")

    def read_json(self, name: str) -> dict[str, Any] | None:
        return read_json_record(self.path / name)

    def log(self, event: dict[str, Any]) -> None:
        path = self.path / "metrics.jsonl"
        try:
            with open(path, "a") as fh:
                fh.write(json.dumps(_jsonable(event)) + "\n")
        except OSError as exc:
            raise write_failed(path, exc) from exc

    def events(self) -> list[dict[str, Any]]:
        p = self.path / "metrics.jsonl"
        if not p.is_file():
            return []
        out = []
        for line in p.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by a kill mid-write
                continue
        return out
