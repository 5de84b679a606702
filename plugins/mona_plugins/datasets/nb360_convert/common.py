"""What every NAS-Bench-360 converter shares: the crop size, finding the source, plain-array loads, option checks."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from mona_kit.api import ConfigError, DataError

T = TypeVar("T")

WINDOW = 128  # PSICOV and Cosmic crop size the loaders declare


def progress(items: Iterable[T], what: str, unit: str) -> Iterable[T]:
    """``items`` with a progress bar on stderr while it is a terminal (tqdm's own check: none in logs
    or pipes), so a conversion of thousands of files shows that it is moving and how far it has got."""
    from tqdm.auto import tqdm

    return tqdm(items, desc=what, unit=f" {unit}", disable=None, dynamic_ncols=True)


def find_base(src: Path, marker: str, subdirs: Iterable[str], what: str, expected: str) -> Path:
    """``src`` or the first of its ``subdirs`` that holds ``marker``."""
    for cand in [src, *(src / s for s in subdirs)]:
        if (cand / marker).exists():
            return cand
    raise DataError(f"{what}: no {marker} in {src} (expected {expected}); point --from at the unpacked download.")


def resolve_listed(entry: str, roots: Iterable[Path], where: str) -> Path:
    """A path written in a published list (often absolute on the authors' machine, or ./-relative)
    found under one of ``roots`` by its longest existing suffix."""
    p = Path(entry)
    if p.is_absolute() and p.is_file():
        return p
    parts = [x for x in p.parts if x not in (".", "/", "")]
    for i in range(len(parts)):
        for root in roots:
            cand = root.joinpath(*parts[i:])
            if cand.is_file():
                return cand
    raise DataError(f"{where}: listed file {entry!r} is not under {', '.join(map(str, roots))}; unpack the whole download there.")


def load_plain_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: not a readable numeric .npy ({type(exc).__name__}: {exc}); the file is truncated, corrupt or pickled.") from exc


def load_plain_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as exc:  # BadZipFile, ValueError for pickled members, OSError
        raise DataError(f"{path}: not a readable numpy-only .npz ({type(exc).__name__}); the file is truncated, corrupt or pickled.") from exc


def check_options(name: str, given: dict[str, Any], defaults: dict[str, Any], minimum: dict[str, float] | None = None) -> dict[str, Any]:
    """``given`` on top of ``defaults``, each of the default's type (int, float or str) and at least
    ``minimum[key]``; a bool, a fraction for an int, NaN/Inf or a value below the minimum is refused."""
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ConfigError(f"{name} convert: unknown option(s) {unknown}; known: {', '.join(f'{k}={v}' for k, v in defaults.items())}.")
    out = dict(defaults)
    for k, v in given.items():
        kind = type(defaults[k])
        bad = ConfigError(f"{name} convert: option {k}={v!r} is not {'a whole number' if kind is int else 'a finite number' if kind is float else 'a name'}; "
                          f"give e.g. {k}={defaults[k]}.")
        if isinstance(v, bool) or v is None:  # YAML's true/null: never meant as 1 or a name
            raise bad
        if kind is str:
            out[k] = str(v)
            continue
        if not (kind is int and isinstance(v, int)):  # an int stays exact; others go through float
            try:
                v = float(v)
            except (TypeError, ValueError) as exc:
                raise bad from exc
            if not math.isfinite(v) or (kind is int and not v.is_integer()):
                raise bad
        out[k] = kind(v)
        low = (minimum or {}).get(k)
        if low is not None and out[k] < low:
            raise ConfigError(f"{name} convert: option {k}={v!r} is below {low}; give {k}>={low} (default {defaults[k]}).")
    return out


