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
import re
import shutil
import time
from pathlib import Path
from typing import Any

import yaml

from .atomic_io import atomic_write_text, write_failed
from .errors import MonaError
from .run_lock import LOCK, RunLock
from .run_records import damaged_line, read_json_record, read_mapping


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


#: Written when mona-kit creates a run directory: only a folder holding it may be replaced (--overwrite).
MARKER = ".mona-kit-run"
#: With --overwrite, the replaced run's entries wait here until the new run has started (its loggers
#: included): a start that fails puts them back, so a refused start never costs the old run. Only a kill
#: in that window leaves it; it counts as content (a run without --overwrite is refused, a resume keeps it).
REPLACED = ".mona-kit-replaced"
#: Entries mona-kit itself leaves in a run directory that holds nothing else yet.
_OWN_ENTRIES = {MARKER, LOCK}


def check_run_name(name: Any) -> str:
    """``run_name`` as one plain folder name: no separators, no ``..``, not ``.``, not absolute, not empty."""
    if not isinstance(name, str):
        raise MonaError(f"run_name must be a folder name, got {name!r}; give one such as run_name=my-run.")
    if not name.strip():
        raise MonaError(f"run_name {name!r} is empty; give a folder name such as run_name=my-run.")
    if "/" in name or "\\" in name or name in (".", "..") or os.path.isabs(name):
        raise MonaError(
            f"run_name {name!r} is not a plain folder name (no '/', '\\', '..' or absolute paths); the run "
            f"directory always lies inside output_dir - set output_dir for another place."
        )
    if not name.isprintable():
        raise MonaError(f"run_name {name!r} holds control characters; use a plain folder name.")
    return name


def safe_name(text: str) -> str:
    """``text`` made into a valid run_name part (component names may hold ':' or '/')."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "run"


def run_path(output_dir: str | Path, run_name: Any) -> Path:
    """``<output_dir>/<run_name>`` with ``~`` expanded; refused unless it resolves inside output_dir."""
    root = Path(os.path.expanduser(str(output_dir)))
    path = root / check_run_name(run_name)
    inside(root, path, what="run directory")
    return path


def inside(root: Path, path: Path, *, what: str) -> None:
    """Refuse ``path`` unless it resolves (symlinks followed) strictly inside ``root``."""
    real_root, real = Path(root).resolve(), Path(path).resolve()
    if real == real_root or real_root not in real.parents:
        raise MonaError(
            f"{what} {str(path)!r} resolves to {str(real)!r}, outside output_dir {str(real_root)!r} (a symlink or "
            f"'..'); choose another run_name or output_dir."
        )


_MARKER_HEAD = '{"made_by": "mona-kit"'


def is_run_dir(path: Path) -> bool:
    """True when mona-kit made ``path`` (its marker file says so; a prefix suffices, so a kill while
    the marker was written still leaves the folder recognisably mona-kit's)."""
    try:
        with open(Path(path) / MARKER, "rb") as fh:
            return fh.read(len(_MARKER_HEAD)).decode("utf-8", "replace") == _MARKER_HEAD
    except OSError:
        return False


def _write_marker(path: Path) -> None:
    """A plain write (not a rename): the run's first atomic write stays config.yaml."""
    info = {"made_by": "mona-kit", "run_name": path.name, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    text = json.dumps(info) + "\n"
    with open(path / MARKER, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def _refusal(path: Path, *, overwrite: bool, api: str | None = None) -> str | None:
    """Why a new run may not start in the existing folder ``path`` (None: it may), for the CLI or, with
    ``api`` (the arguments of the Python API that named the folder, e.g. ``"run_dir="``), in its terms."""
    if not _foreign(path):
        return None
    another = api or "run_name or output_dir"
    if not is_run_dir(path):
        if overwrite:
            flag, instead = ("overwrite=True", another) if api else ("--overwrite", "run_name")
            return (f"{flag} refused: {str(path)!r} is not a folder mona-kit made (no {MARKER} file), so it is never "
                    f"deleted; choose another {instead}, or move the folder away yourself.")
        return (f"run directory {str(path)!r} already exists and is not a mona-kit run folder (no {MARKER} file), so it "
                f"is neither replaced nor resumed; choose another {another}.")
    if overwrite:
        return None
    if api:
        return (f"run directory {str(path)!r} already exists; pass overwrite=True to replace it, choose another {api}, "
                f"or continue it with 'mona-kit run --resume {path}'.")
    return (f"run directory {str(path)!r} already exists; pass --overwrite (in Python: fit(..., overwrite=True)) to "
            f"replace it, continue it with 'mona-kit run --resume {path}', or choose another run_name.")


def _remove(entry: Path) -> None:
    """Delete a file, link or folder (a link is removed, never followed)."""
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry)
    elif entry.exists() or entry.is_symlink():
        entry.unlink()


def _foreign(path: Path) -> list[str]:
    """Entries of an existing folder other than mona-kit's own bookkeeping files."""
    return sorted(e.name for e in path.iterdir() if e.name not in _OWN_ENTRIES)


class RunDir:
    """One run's directory and its records."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.lock: RunLock | None = None
        self.loggers = None  #: the run's experiment loggers (mona_kit.loggers.Loggers), fed by log()

    @staticmethod
    def check_target(path: Path, *, overwrite: bool = False, api: str | None = None) -> None:
        """Refuse a new run at ``path`` before anything is built (nothing is written): an existing
        file, a run without --overwrite, a folder mona-kit did not make, a live run. ``api``: the Python
        API's arguments that named the folder (``"run_dir="``), named in the refusal instead of the CLI's."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise MonaError(
                f"run directory {str(path)!r} is an existing file, not a folder; choose another {api or 'run_name or output_dir'}."
            )
        if not path.exists():
            return
        refusal = _refusal(path, overwrite=overwrite, api=api)
        if refusal is not None:
            raise MonaError(refusal)
        RunLock(path).probe()

    @classmethod
    def create(cls, path: Path, *, overwrite: bool = False) -> "RunDir":
        """Make (or, with ``overwrite``, empty) the run directory and lock it; the caller releases."""
        path = Path(path)
        cls.check_target(path, overwrite=overwrite)
        run_dir = cls(path)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MonaError(f"cannot write run directory {str(path)!r}: {exc.strerror}; choose a writable output_dir.") from exc
        run_dir.acquire()
        try:
            run_dir._clear_for_new_run(overwrite)
        except BaseException:
            run_dir.release()
            raise
        return run_dir

    def _clear_for_new_run(self, overwrite: bool) -> None:
        """Under the lock: check again (another process may have won the race), empty a replaced run,
        and write the marker that makes this folder mona-kit's."""
        path = self.path
        foreign = _foreign(path)
        refusal = _refusal(path, overwrite=overwrite)
        if refusal is not None:
            raise MonaError(refusal)
        try:
            self._move_aside(foreign)
            _write_marker(path)
        except OSError as exc:
            raise MonaError(f"cannot write run directory {str(path)!r}: {exc.strerror}; choose a writable output_dir.") from exc

    def _move_aside(self, foreign: list[str]) -> None:
        """Renames within the folder (no copy, nothing lost if the process dies): the replaced run's
        entries and marker go into REPLACED; one left by an earlier killed start is dropped first."""
        aside = self.path / REPLACED
        _remove(aside)
        foreign = [name for name in foreign if name != REPLACED]
        if not foreign:
            return
        aside.mkdir()
        try:
            for name in [*foreign, MARKER]:  # the lock file stays: it is what this process holds
                if (self.path / name).exists() or (self.path / name).is_symlink():
                    os.replace(self.path / name, aside / name)
        except OSError:
            self.restore_replaced()  # a rename refused half-way: the old run whole again, then the error
            raise

    def drop_replaced(self) -> None:
        """The new run has started: the run it replaced is gone for good."""
        _remove(self.path / REPLACED)

    def restore_replaced(self) -> None:
        """The new run did not start: put the replaced run back (after the caller removed the new run's
        entries), its marker over the one this run wrote."""
        aside = self.path / REPLACED
        if not aside.is_dir():
            return
        try:
            for entry in aside.iterdir():
                os.replace(entry, self.path / entry.name)
            aside.rmdir()
        except OSError as exc:
            raise MonaError(
                f"the run that --overwrite was replacing could not be put back ({exc.strerror}): what is left of it is in "
                f"{str(aside)!r}; move it back into {str(self.path)!r} yourself."
            ) from exc

    @classmethod
    def open(cls, path: Path, *, to_write: bool = False) -> "RunDir":
        """An existing run directory. ``to_write`` (a resume): only a folder mona-kit made, so that a
        user's folder that happens to hold a config.yaml is never locked, cleaned or written into."""
        path = Path(os.path.expanduser(str(path)))
        if not path.exists():
            raise MonaError(
                f"{str(path)!r} does not exist; pass the folder a run created (mona-kit run prints it as 'run directory: ...')."
            )
        if not (path / "config.yaml").is_file():
            raise MonaError(f"{str(path)!r} is not a run directory (no config.yaml); pass the folder a run created.")
        if to_write and not is_run_dir(path):
            raise MonaError(
                f"{str(path)!r} holds a config.yaml but is not a folder mona-kit made (no {MARKER} file); --resume "
                f"continues only runs mona-kit started - start a new run with that config instead."
            )
        return cls(path)

    def acquire(self) -> None:
        """Become the one writer of this run (refused with the holder's name while another lives)."""
        self.lock = RunLock(self.path).acquire()

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def drop_stale_tmp(self) -> None:
        """A kill -9 mid-write leaves a temporary file that no rename will ever claim."""
        for stale in list(self.path.glob(".*.tmp")) + list(self.checkpoints.glob(".*.tmp")):
            stale.unlink(missing_ok=True)

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    def write_config(self, plain: dict[str, Any]) -> None:
        atomic_write_text(self.path / "config.yaml", yaml.safe_dump(plain, sort_keys=False))

    def read_config(self) -> dict[str, Any]:
        return read_mapping(self.path / "config.yaml", yaml.safe_load, (yaml.YAMLError,))

    def write_json(self, name: str, data: dict[str, Any]) -> None:
        atomic_write_text(self.path / name, json.dumps(_jsonable(data), indent=2, sort_keys=False) + "\n")

    def read_json(self, name: str) -> dict[str, Any] | None:
        return read_json_record(self.path / name)

    def log(self, event: dict[str, Any]) -> None:
        path = self.metrics
        line = json.dumps(_jsonable(event)) + "\n"
        size = self.metrics_bytes()
        try:
            with open(path, "a") as fh:
                fh.write(line)
        except OSError as exc:
            self._truncate(size)  # no half line left for the next event to be glued onto
            raise write_failed(path, exc) from exc
        if self.loggers is not None:  # the one place events are written: loggers see each as it lands
            self.loggers.log_event(event)

    def metrics_bytes(self) -> int:
        """Size of metrics.jsonl: checkpoints record it so a resume can cut the log back to them."""
        try:
            return self.metrics.stat().st_size
        except FileNotFoundError:
            return 0

    def truncate_metrics(self, size: int | None) -> None:
        """Cut metrics.jsonl back to ``size`` bytes (what a checkpoint recorded), so a resumed run does
        not log the steps between that checkpoint and the kill twice. ``None`` (a run from before
        offsets were recorded) only drops a line cut by the kill."""
        if size is None:
            size = self._last_newline()
        if 0 <= size < self.metrics_bytes():
            self._truncate(size)

    def _last_newline(self) -> int:
        try:
            data = self.metrics.read_bytes()
        except FileNotFoundError:
            return 0
        return data.rfind(b"\n") + 1

    def _truncate(self, size: int) -> None:
        try:
            with open(self.metrics, "r+b") as fh:
                fh.truncate(size)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise write_failed(self.metrics, exc) from exc

    def events(self) -> list[dict[str, Any]]:
        """Every logged event. A last line without its newline is one a kill cut mid-write (or one being
        written now) and is skipped; any other line that is not a JSON object is damage, named by line."""
        p = self.metrics
        if not p.is_file():
            return []
        try:
            text = p.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            line = p.read_bytes()[: exc.start].count(b"\n") + 1
            raise damaged_line(p, line) from exc
        lines = text.split("\n")
        out = []
        for number, line in enumerate(lines, start=1):
            if number == len(lines):  # after the last newline: empty, or cut by a kill
                break
            try:
                event = json.loads(line)
            except json.JSONDecodeError as exc:
                raise damaged_line(p, number) from exc
            if not isinstance(event, dict):
                raise damaged_line(p, number)
            out.append(event)
        return out
