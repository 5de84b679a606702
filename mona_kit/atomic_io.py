"""Writes that a crash or a full disk cannot leave half-done: temporary file, fsync, rename, fsync
of the folder; and the one-line error for a write the OS refused (whichever library wrapped it)."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from .errors import MonaError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: Mode of a freshly written record: what ``open()`` would give (mkstemp alone gives 0600).
FILE_MODE = 0o666 & ~_umask()


#: What to do after freeing space, for a run's records and checkpoints (the default) ...
RESUME_ADVICE = "(or choose another output_dir). The previous version of the file is intact; resume with run --resume RUN_DIR."
#: ... and for what a command makes again from scratch (reports, plots).
RERUN_ADVICE = "and run the command again; the previous version of the file is intact."


def write_failed(path: Path, exc: BaseException, advice: str = RESUME_ADVICE) -> MonaError:
    """The one-line error for a record or checkpoint that could not be written (full disk, read-only)."""
    reason = io_failure_reason(exc) or type(exc).__name__
    return MonaError(f"cannot write {str(path)!r}: {reason}; free disk space or make the folder writable {advice}")


#: How writer libraries report an OS error they met: safetensors (Rust) and torch.save (C++) wrap
#: it in their own exception types instead of raising OSError.
_OS_ERROR_CODE = re.compile(r"(?:Os \{ code: |\[Errno |errno[ =:]*|os error )(\d+)")
_IO_WORDS = re.compile(r"(?i)ioerror|os error|os \{ code|errno|file write failed|failed writing|unexpected pos|no space|disk quota|read-only file system")


def io_failure_reason(exc: BaseException) -> str | None:
    """The OS reason behind a failed write (``'No space left on device'``), or None when ``exc``
    is not an I/O failure at all (a bug, which keeps its traceback)."""
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    text = str(exc)
    if not _IO_WORDS.search(text):
        return None
    code = _OS_ERROR_CODE.search(text)
    if code:
        return os.strerror(int(code.group(1)))
    first = " ".join(text.split())[:120]
    return f"the write failed ({type(exc).__name__}: {first})"


def atomic_replace(path: Path, write: Callable[[str], object], *, advice: str = RESUME_ADVICE) -> None:
    """Write ``path`` through ``write(tmp_path)`` to a temporary file, fsync it, rename it over ``path``
    and fsync the folder: a crash or a full disk leaves the previous file whole, never half a file.
    ``advice`` ends the error's line (:data:`RESUME_ADVICE` for a run's records)."""
    atomic_write_many({Path(path): write}, advice=advice)


def atomic_write_many(writes: Mapping[Path, Callable[[str], object]], *, advice: str = RESUME_ADVICE) -> list[Path]:
    """Write several files together: each through ``write(tmp_path)`` to a temporary file beside it
    (mode as ``open()`` gives, fsynced); only when every write succeeded are they renamed into place,
    then each folder is fsynced so the renames survive a crash. A failed write leaves every previous
    file whole and no temporary file behind; the renames themselves are one by one, so the rare
    failure of one after another went through names the files already replaced. A target that is a
    folder, or named twice, is refused before anything is written. Returns the paths written."""
    targets = [Path(p) for p in writes]
    _check_targets(targets)
    staged: list[tuple[Path, Path]] = []  # (temporary file, target), not yet renamed
    replaced: list[Path] = []
    path = Path()
    try:
        for path, write in zip(targets, writes.values()):
            staged.append((_staged_copy(path, write), path))
        while staged:
            tmp, path = staged[0]
            os.replace(tmp, path)
            staged.pop(0)
            replaced.append(path)
        for folder in dict.fromkeys(p.parent for p in targets):
            _fsync_dir(folder)
    except MonaError:
        raise  # a writer's own one-line error
    except Exception as exc:  # OSError, or a writer library's wrapper of one (SafetensorError, RuntimeError)
        if io_failure_reason(exc) is None:
            raise
        error = write_failed(path, exc, advice)
        if replaced:  # the previous versions of these are gone: say so rather than "intact"
            done = ", ".join(repr(str(p)) for p in replaced)
            error = MonaError(f"{error} Already replaced before the failure: {done}.")
        raise error from exc
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
    return targets


def _check_targets(targets: list[Path]) -> None:
    """Refuse what would fail only at the renames, after earlier files were replaced."""
    seen: dict[str, Path] = {}
    for path in targets:
        key = os.path.abspath(path)
        if key in seen:
            raise MonaError(f"{str(path)!r} is named twice ({str(seen[key])!r}) among the files to write; name each file once.")
        seen[key] = path
        if path.exists() and not path.is_file():
            raise MonaError(f"{str(path)!r} exists and is not a file; remove it or write somewhere else.")


def _staged_copy(path: Path, write: Callable[[str], object]) -> Path:
    """``write`` run on a new temporary file beside ``path``, given open()'s mode and fsynced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.close(fd)
        os.chmod(name, FILE_MODE)
        write(name)
        os.chmod(name, FILE_MODE)  # again: some writers (safetensors) recreate the file as 0600
        with open(name, "rb") as fh:
            os.fsync(fh.fileno())
    except BaseException:  # no temporary file stays behind
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


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


def atomic_write_text(path: Path, text: str, *, advice: str = RESUME_ADVICE) -> None:
    """Write via a temporary file, fsync and rename, so a crash never leaves half a file."""
    atomic_replace(path, lambda tmp: Path(tmp).write_text(text), advice=advice)
