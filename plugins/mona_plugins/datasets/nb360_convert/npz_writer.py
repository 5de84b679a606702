"""Write a converted split as one ``.npz`` streamed to disk, and several splits all or nothing."""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mona_kit.api import DataError, MonaError, atomic_write_many

#: How a failed write's one-line error ends (the error itself names any split already replaced).
_WRITE_ADVICE = "(or point --root at another folder), then convert again."


def _write_error(path: Path, exc: OSError) -> DataError:
    return DataError(f"cannot write {path}: {exc.strerror or type(exc).__name__}; point --root at a writable folder with free space.")


class NpzStream:
    """Collect samples of fixed shape key by key on disk, then write one ``.npz`` to a temporary file.

    Samples go to raw temporary files beside the target (whose folder must exist), so a split far
    larger than memory can be written; :func:`write_splits` renames the finished file into place.
    """

    def __init__(self, path: Path, shapes: dict[str, tuple[int, ...]], dtype=np.float32):
        self.path = Path(path)
        self.shapes = shapes
        self.dtype = np.dtype(dtype)
        self.count = 0
        self._raw: dict[str, Path] = {}
        self._fh: dict = {}
        try:
            for k in shapes:
                # unique names: a stale or blocking file of the same name can never be clobbered or block us
                fd, raw = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.{k}.", suffix=".part")
                self._raw[k] = Path(raw)
                self._fh[k] = os.fdopen(fd, "wb")
        except OSError as exc:
            self.discard()
            raise _write_error(self.path, exc) from exc

    def add(self, **sample: np.ndarray) -> None:
        for key, shape in self.shapes.items():
            a = np.ascontiguousarray(sample[key], dtype=self.dtype)
            if a.shape != shape:
                raise DataError(f"{self.path.name}: sample {key!r} has shape {a.shape}, expected {shape}.")
            try:
                self._fh[key].write(a.tobytes())
            except OSError as exc:
                raise _write_error(self.path, exc) from exc
        self.count += 1

    def write_npz(self, tmp: str) -> None:
        """Write the whole ``.npz`` to ``tmp`` (:func:`write_splits` renames it into place)."""
        for fh in self._fh.values():
            fh.close()
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            for key, shape in self.shapes.items():
                with zf.open(f"{key}.npy", "w", force_zip64=True) as out:
                    header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": (self.count, *shape)}
                    np.lib.format.write_array_header_2_0(out, header)
                    with open(self._raw[key], "rb") as src:
                        while block := src.read(1 << 24):
                            out.write(block)

    def discard(self) -> None:
        for fh in self._fh.values():
            fh.close()
        for p in self._raw.values():
            p.unlink(missing_ok=True)


def _make_folders(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; the ones created, outermost first (to undo a failed convert)."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()][::-1]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        for p in reversed(missing):
            _remove_empty(p)
        blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
        why = f"{blocker} is a file, not a folder" if blocker else exc.strerror or type(exc).__name__
        raise DataError(f"cannot create the folder {folder}: {why}; point --root at a folder (it is created if missing).") from exc
    return missing


def _remove_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # not empty or already gone: someone else's files stay


def write_splits(dest: Path, outputs: dict[str, dict[str, tuple[int, ...]]], produce: Callable[[str, NpzStream], None]) -> list[Path]:
    """Fill one stream per output file, write each to a temporary file, and rename them only when all
    succeeded: on any error no output, temporary file or folder this call created is left behind."""
    dest = Path(dest)
    targets = [dest / rel for rel in outputs]
    for t in targets:  # a folder in the way: refused now, not after hours of converting (atomic_write_many would, then)
        if t.exists() and not t.is_file():
            raise DataError(f"{t} exists and is not a file; remove it or choose another --root.")
    made: list[Path] = []
    streams: dict[str, NpzStream] = {}
    done = False
    try:
        for t in targets:
            made += _make_folders(t.parent)
        for rel, shapes in outputs.items():
            streams[rel] = NpzStream(dest / rel, shapes)
        for rel, stream in streams.items():
            produce(rel, stream)
            if stream.count == 0:
                raise DataError(f"{rel}: the source gave no samples; check the source folder.")
        try:
            atomic_write_many({s.path: s.write_npz for s in streams.values()}, advice=_WRITE_ADVICE)
        except MonaError as exc:
            raise DataError(str(exc)) from exc  # the converter's error type, whatever the write met
        done = True
    finally:
        for s in streams.values():
            s.discard()
        if not done:
            for p in reversed(made):
                _remove_empty(p)
    return targets


