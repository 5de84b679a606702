"""Read pickle-based benchmark files without running untrusted code.

Several published formats (CIFAR-100 python batches, NAS-Bench-360's spherical ``.gz``, ECG
``.pkl`` and satellite ``.npy`` object arrays) are pickles. A plain ``pickle.load`` can execute
arbitrary code, so this unpickler only rebuilds plain containers, strings, numbers and numpy
arrays; anything else is refused with a one-line DataError that says to convert the file.
"""

from __future__ import annotations

import gzip
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from mona_kit.api import DataError

#: (module, name) pairs a numpy-array pickle needs; nothing that can run code.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # Python-2 pickles of byte strings
    ("collections", "OrderedDict"),
}


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, file, where: str):
        super().__init__(file, encoding="latin1")
        self.where = where

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise DataError(
            f"{self.where}: the pickle asks for {module}.{name}, which a safe reader does not load; "
            f"convert the file to .npz (numpy arrays only) and point the loader at it."
        )


def safe_pickle_load(path: str | Path, *, compressed: bool = False) -> Any:
    """Unpickle ``path`` allowing only containers, scalars, strings and numpy arrays."""
    opener = gzip.open if compressed else open
    try:
        with opener(path, "rb") as fh:
            return _SafeUnpickler(fh, str(path)).load()
    except DataError:
        raise
    except (EOFError, pickle.UnpicklingError, OSError, ValueError, TypeError, AttributeError) as exc:
        raise DataError(f"{path}: not a readable pickle ({type(exc).__name__}: {exc}); the file is truncated or corrupt.") from exc


def safe_npy_load(path: str | Path) -> Any:
    """``np.load`` for ``.npy`` files; object arrays go through the safe unpickler."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = reader(fh)
            if not dtype.hasobject:
                fh.seek(0)
                return np.load(fh, allow_pickle=False)
            obj = _SafeUnpickler(io.BytesIO(fh.read()), str(path)).load()
    except DataError:
        raise
    except (EOFError, pickle.UnpicklingError, OSError, ValueError, TypeError) as exc:
        raise DataError(f"{path}: not a readable .npy file ({type(exc).__name__}: {exc}); the file is truncated or corrupt.") from exc
    return obj
