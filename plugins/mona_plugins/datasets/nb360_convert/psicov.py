"""PSICOV (protein.zip): per-residue features to 57 pair channels, Cb distance maps as targets, 128x128 windows."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mona_kit.api import DataError

from ..safe_pickle import safe_npy_load, safe_pickle_load
from .common import WINDOW, check_options, find_base, load_plain_npz, progress
from .npz_writer import NpzStream, write_splits

PSICOV_PAD = 10
PSICOV_CHANNELS = 57
PSICOV_SETS = ("deepcov", "psicov", "cameo")
PSICOV_FEATURES = ("ss", "pssm", "sa", "entropy", "ccmpred", "freecon", "potential")
EXPORT_HINT = (
    "export its arrays yourself with numpy, e.g. np.savez('ID.npz', **{k: np.asarray(v) for k, v in d.items() if k != 'seq'}) "
    "for a features dict, or np.savez('ID-cb.npz', cb_map=cb_map) for a distance file, and put the .npz beside the original"
)


def read_id_list(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(f"nb360-psicov: missing {path}; unpack protein.zip completely.")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable text list of protein ids ({type(exc).__name__}); unpack protein.zip again.") from exc
    ids = [line.split()[0] for line in text.splitlines() if line.strip()]
    if not ids:
        raise DataError(f"{path}: lists no proteins.")
    return ids


def _find(base: Path, sub: str, names: tuple[str, ...]) -> Path | None:
    for s in PSICOV_SETS:
        for n in names:
            p = base / s / sub / n
            if p.is_file():
                return p
    return None


def _numbers(value: Any, path: Path, key: str) -> np.ndarray:
    """``value`` as a float64 array, or a DataError naming ``path`` and ``key`` (text, objects, complex)."""
    try:
        a = np.asarray(value)
    except ValueError as exc:  # ragged nested lists
        raise DataError(f"{path}: {key!r} is not an array of numbers ({exc}); {EXPORT_HINT}.") from exc
    if a.dtype.kind not in "biuf":
        raise DataError(f"{path}: {key!r} holds {a.dtype} values, expected real numbers; the file is not a PSICOV {key} array.")
    return a.astype(np.float64)


def psicov_features(base: Path, pid: str) -> dict[str, np.ndarray]:
    """The feature dict of ``pid``: ``ID.npz`` (numpy export) if present, else the pickle, read safely."""
    path = _find(base, "features", (f"{pid}.npz", f"{pid}.pkl"))
    if path is None:
        raise DataError(f"nb360-psicov: no features/{pid}.pkl under {base}/{{{','.join(PSICOV_SETS)}}}; unpack protein.zip completely.")
    if path.suffix == ".npz":
        d = load_plain_npz(path)
    else:
        try:
            d = safe_pickle_load(path)
        except DataError as exc:
            raise DataError(f"{exc} If the file is intact but holds other objects, {EXPORT_HINT}.") from exc
    if not isinstance(d, dict):
        raise DataError(f"{path}: expected a dict of feature arrays, got {type(d).__name__}.")
    d = {(k.decode() if isinstance(k, bytes) else k): v for k, v in d.items()}
    missing = [k for k in PSICOV_FEATURES if k not in d]
    if missing:
        raise DataError(f"{path}: no feature(s) {missing} (expected {list(PSICOV_FEATURES)}).")
    out = {k: _numbers(d[k], path, k) for k in PSICOV_FEATURES}
    for k, a in out.items():
        # Inf (or overflow in the float32 output) would be stored as a made-up 3.4e38; NaN is stored as 0, as
        # the published pipeline's loaders fill it, and counted (convert_psicov says how many)
        if np.any(np.abs(a[~np.isnan(a)]) > np.finfo(np.float32).max):
            raise DataError(f"{path}: feature {k!r} contains Inf or values beyond float32; the file is damaged - unpack protein.zip again or clean the array.")
    return out


def psicov_pair_channels(f: dict[str, np.ndarray], where: Path | str) -> np.ndarray:
    """57 pair channels [57, L, L]: each 1-D feature twice (along columns, then along rows), then the 3 pair maps."""
    ss, pssm = f["ss"], f["pssm"]
    if ss.ndim != 2 or ss.shape[0] != 3:
        raise DataError(f"{where}: 'ss' has shape {ss.shape}, expected [3, L].")
    L = ss.shape[1]
    expected = {"pssm": (L, 22), "sa": (L,), "entropy": (L,), "ccmpred": (L, L), "freecon": (L, L), "potential": (L, L)}
    for k, shape in expected.items():
        if f[k].shape != shape:
            raise DataError(f"{where}: {k!r} has shape {f[k].shape}, expected {list(shape)} for a protein of length {L}.")
    singles = [*ss, *pssm.T, f["sa"], f["entropy"]]  # 3 + 22 + 1 + 1 = 27 per-residue rows
    x = np.empty((PSICOV_CHANNELS, L, L), dtype=np.float32)
    c = 0
    for v in singles:
        x[c] = v[None, :]  # value of residue j at (i, j)
        x[c + 1] = v[:, None]  # value of residue i at (i, j)
        c += 2
    for k in ("ccmpred", "freecon", "potential"):
        x[c] = f[k]
        c += 1
    return x


def psicov_distances(base: Path, pid: str, length: int) -> np.ndarray:
    """The Cb distance map of ``pid`` with PDNet's clean-up (values < 1 A -> 1 A, diagonal from neighbours)."""
    path = _find(base, "distance", (f"{pid}-cb.npz", f"{pid}-cb.npy"))
    if path is None:
        raise DataError(f"nb360-psicov: no distance/{pid}-cb.npy under {base}/{{{','.join(PSICOV_SETS)}}}; unpack protein.zip completely.")
    if path.suffix == ".npz":
        cb = load_plain_npz(path).get("cb_map")
        if cb is None:
            raise DataError(f"{path}: expected an array 'cb_map'.")
    else:
        try:
            obj = safe_npy_load(path)
        except DataError as exc:
            raise DataError(f"{exc} If the file is intact but holds other objects, {EXPORT_HINT}.") from exc
        items = list(obj) if isinstance(obj, (tuple, list, np.ndarray)) and np.ndim(obj) == 1 and len(obj) == 3 else None
        if items is None:
            raise DataError(f"{path}: expected a saved tuple (length, sequence, distance map).")
        cb = items[2]
    y = _numbers(cb, path, "cb_map")
    if np.any(np.isinf(y)):  # NaN marks a residue without coordinates (kept); Inf is no distance at all
        raise DataError(f"{path}: the distance map contains Inf; NaN marks missing distances, Inf is not valid - unpack protein.zip again.")
    n = y.shape[0] if y.ndim == 2 else -1
    if y.ndim != 2 or y.shape[1] != n or n < 2:
        raise DataError(f"{path}: distance map has shape {y.shape}, expected [L, L].")
    if n > length or ("cameo" not in path.parts and n != length):
        raise DataError(f"{path}: distance map is {n}x{n} but the features describe {length} residues.")
    with np.errstate(invalid="ignore"):
        y[y < 1.0] = 1.0
    y[0, 0], y[n - 1, n - 1] = y[0, 1], y[n - 1, n - 2]
    for q in range(1, n - 1):
        if np.isnan(y[q, q]):
            continue
        left, right = y[q, q - 1], y[q, q + 1]
        y[q, q] = 1.0 if np.isnan(left) and np.isnan(right) else right if np.isnan(left) else left if np.isnan(right) else (left + right) / 2
    out = np.full((length, length), np.nan)
    out[:n, :n] = y
    return out


def psicov_padded(base: Path, pid: str) -> tuple[np.ndarray, np.ndarray]:
    """Features [57, l, l] and distances [l, l] padded by PSICOV_PAD (features 0, distances 100 A)."""
    x0 = psicov_pair_channels(psicov_features(base, pid), f"{base}/*/features/{pid}")
    L = x0.shape[-1]
    y0 = psicov_distances(base, pid, L)
    h, l = PSICOV_PAD // 2, L + PSICOV_PAD
    x = np.zeros((PSICOV_CHANNELS, l, l), dtype=np.float32)
    x[:, h : h + L, h : h + L] = x0
    y = np.full((l, l), 100.0, dtype=np.float32)
    y[h : h + L, h : h + L] = y0
    return x, y


def _canvas(x: np.ndarray, y: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    l = x.shape[-1]
    cx = np.zeros((PSICOV_CHANNELS, size, size), dtype=np.float32)
    cy = np.full((size, size), 100.0, dtype=np.float32)
    cx[:, :l, :l], cy[:l, :l] = x, y
    return cx, cy


def psicov_windows(x: np.ndarray, y: np.ndarray, train: bool, rng: np.random.Generator, crops: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Train: ``crops`` random 128 windows (the whole map when it fits); test: tiles covering the map."""
    l = x.shape[-1]
    if train:
        if l <= WINDOW:
            yield _canvas(x, y, WINDOW)
            return
        for _ in range(crops):
            r, c = rng.integers(0, l - WINDOW + 1, size=2)
            yield x[:, r : r + WINDOW, c : c + WINDOW], y[r : r + WINDOW, c : c + WINDOW]
        return
    cx, cy = _canvas(x, y, WINDOW * math.ceil(l / WINDOW))
    for r in range(0, cx.shape[-1], WINDOW):
        for c in range(0, cx.shape[-1], WINDOW):
            yield cx[:, r : r + WINDOW, c : c + WINDOW], cy[r : r + WINDOW, c : c + WINDOW]


def convert_psicov(src: Path, dest: Path, **options) -> list[Path]:
    """PDNet/NAS-Bench-360 protein folder -> ``protein/psicov_{train,test}.npz``."""
    opts = check_options("nb360-psicov", options, {"seed": 0, "crops": 1, "clip": 16.0}, {"seed": 0, "crops": 1, "clip": 0})  # clip 0: none
    base = find_base(Path(src), "deepcov.lst", ("protein",), "nb360-psicov", "deepcov.lst, psicov.lst, deepcov/ and psicov/ from protein.zip")
    lists = {"protein/psicov_train.npz": read_id_list(base / "deepcov.lst"), "protein/psicov_test.npz": read_id_list(base / "psicov.lst")}
    rng = np.random.default_rng(opts["seed"])
    shapes = {"x": (PSICOV_CHANNELS, WINDOW, WINDOW), "y": (1, WINDOW, WINDOW)}

    filled: dict[str, int] = {}  # protein -> NaN feature values stored as 0

    def produce(rel: str, out: NpzStream) -> None:
        train = rel.endswith("train.npz")
        for pid in progress(lists[rel], rel, "proteins"):
            x, y = psicov_padded(base, pid)
            if np.isnan(x).any():
                filled[pid] = int(np.isnan(x).sum())
                x = np.nan_to_num(x, nan=0.0)
            for wx, wy in psicov_windows(x, y, train, rng, opts["crops"]):
                wy = np.nan_to_num(wy, nan=0.0)  # missing distances (NaN) are stored as 0
                if train and opts["clip"] > 0:
                    wy = np.minimum(wy, opts["clip"])
                out.add(x=wx, y=wy[None])

    written = write_splits(Path(dest), {rel: shapes for rel in lists}, produce)
    if filled:  # said, not silent: a reader can judge whether these proteins should be left out
        first = ", ".join(f"{pid} ({n})" for pid, n in list(filled.items())[:5])
        print(f"nb360-psicov: {sum(filled.values())} NaN feature values in {len(filled)} protein(s) were stored as 0: "
              f"{first}{' ...' if len(filled) > 5 else ''}", file=sys.stderr)
    return written


