"""The one-writer lock of a run directory: an OS ``flock`` that a dead holder never keeps."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from .atomic_io import FILE_MODE, write_failed
from .errors import MonaError

#: Held (flock) by the one process writing a run directory; its text names that process.
LOCK = ".mona-kit-lock"


class RunLock:
    """An OS lock (``flock``) on ``<run dir>/.mona-kit-lock``, held while one process writes the run.

    The kernel drops it when the process dies (kill -9 included), so a dead holder never blocks a
    resume; the file's text (pid, host, start) only names a live holder in the refusal.
    """

    def __init__(self, folder: Path):
        self.path = Path(folder) / LOCK
        self.fd: int | None = None

    def holder(self) -> str:
        try:
            info = json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            info = {}
        if not isinstance(info, dict) or "pid" not in info:
            return "another process"
        return f"process {info.get('pid')} on host {info.get('host')} (since {info.get('since')})"

    def busy(self, folder: Path) -> MonaError:
        return MonaError(
            f"run directory {str(folder)!r} is in use by {self.holder()}; wait for it to finish or stop it, then "
            f"retry (two writers would mix their records)."
        )

    def probe(self) -> None:
        """Refuse if a live process holds the lock; writes nothing."""
        import fcntl

        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return  # no lock file: nobody has ever written this folder
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
        except BlockingIOError:
            raise self.busy(self.path.parent) from None
        finally:
            os.close(fd)

    def acquire(self) -> "RunLock":
        import fcntl

        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        except OSError as exc:
            raise write_failed(self.path, exc) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise self.busy(self.path.parent) from None
        self.fd = fd
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
        except OSError as exc:
            self.release()
            raise write_failed(self.path, exc) from exc
        return self

    def release(self) -> None:
        """Drop the lock; the emptied file tells later readers that nobody holds it."""
        import fcntl

        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass  # the kernel still drops the lock below
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
