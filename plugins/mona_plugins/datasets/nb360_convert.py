"""Turn NAS-Bench-360's published PSICOV, Cosmic and FSD50K files into the numpy-only ``.npz``
files the ``nb360-psicov``, ``nb360-cosmic`` and ``nb360-fsd50k`` loaders read.

What is read (as NAS-Bench-360's and ORCA's loaders read it):

* PSICOV (``protein.zip``): ``deepcov.lst`` (train ids) and ``psicov.lst`` (test ids);
  ``{deepcov,psicov,cameo}/features/ID.pkl`` dicts of per-residue features (``ss`` [3,L],
  ``pssm`` [L,22], ``sa`` [L], ``entropy`` [L], pair maps ``ccmpred``/``freecon``/``potential`` [L,L])
  and ``{...}/distance/ID-cb.npy`` tuples ``(L, sequence, Cb distance map [L,L])``. Features become
  57 pair channels, the map is padded by 10 (5 each side; features 0, distances 100 A). Train
  proteins give one seeded random 128x128 crop (distances clipped at 16 A, as PDNet/ORCA train);
  test proteins are tiled into 128x128 windows covering the whole map (MAE8 ignores the padding).
* Cosmic (deepCR ACS/WFC tars): ``train_dirs.npy``/``test_dirs.npy`` path lists (ORCA's
  selection) or, without them, every image in ``npy_train``/``npy_test`` trees
  (``FILTER/PROPOSAL/VISIT/*.npy``, ``sky.npy`` skipped). Each image file is [2|3,H,W]: image,
  cosmic-ray mask, optional ignore mask; the fixed 128x128 crop at (64, 64) is kept.
* FSD50K (``audio.zip``): ``chunks/{tr,val,eval}.csv`` manifests (``files``, ``labels``, ``ext``),
  ``chunks/lbl_map.json`` (200 label names -> index) and 1-s 22,050 Hz wav chunks. Each chunk
  becomes a 96-band log-mel spectrogram (FSD50K paper settings), zero-centred, padded to 102 frames.

Pickled files go only through the restricted unpickler; everything is checked before anything is
written, and every output is written whole through a temporary file and a rename.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mona_kit.api import ConfigError, DataError, atomic_write_many

from .safe_pickle import safe_npy_load, safe_pickle_load

WINDOW = 128  # PSICOV and Cosmic crop size the loaders declare
PSICOV_PAD = 10
PSICOV_CHANNELS = 57
FSD_SR = 22050
FSD_MELS = 96
FSD_FRAMES = 102
FSD_CLASSES = 200


# Streaming .npz writer ------------------------------------------------------------------------------
#: How a failed write's one-line error ends: no split was renamed into place.
_WRITE_ADVICE = "(or point --root at another folder); no split was written."


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
    for t in targets:  # a folder in the way would fail the last rename after the others went through
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
        atomic_write_many({s.path: s.write_npz for s in streams.values()}, advice=_WRITE_ADVICE)
        done = True
    finally:
        for s in streams.values():
            s.discard()
        if not done:
            for p in reversed(made):
                _remove_empty(p)
    return targets


# Shared helpers --------------------------------------------------------------------------------------
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


# PSICOV ----------------------------------------------------------------------------------------------
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
        for pid in lists[rel]:
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


# Cosmic ----------------------------------------------------------------------------------------------
def cosmic_lists(base: Path, filter_name: str) -> dict[str, list[Path]]:
    """Image files per split: from ORCA's path lists when present, else by walking the npy trees."""
    out = {}
    for split in ("train", "test"):
        listed = base / f"{split}_dirs.npy"
        if listed.is_file():
            arr = safe_npy_load(listed)
            entries = [str(e) for e in np.asarray(arr).ravel()]
            out[split] = [resolve_listed(e, (base.parent, base), str(listed)) for e in entries]
            continue
        tree = base / f"npy_{split}"
        if not tree.is_dir():
            raise DataError(f"nb360-cosmic: neither {split}_dirs.npy nor npy_{split}/ in {base}; unpack deepCR.ACS-WFC.{split}.tar there.")
        files = [p for p in sorted(tree.glob("*/*/*/*.npy")) if p.name != "sky.npy" and (not filter_name or p.relative_to(tree).parts[0] == filter_name)]
        out[split] = files
    return out


def cosmic_sample(path: Path, offset: int) -> tuple[np.ndarray, np.ndarray]:
    a = load_plain_npy(path)
    if a.dtype.kind not in "biuf":  # text or complex would be cast (or fail) silently
        raise DataError(f"{path}: holds {a.dtype} values, expected real numbers (a deepCR image file).")
    if a.ndim != 3 or a.shape[0] not in (2, 3) or min(a.shape[1:]) < offset + WINDOW:
        raise DataError(f"{path}: shape {a.shape}, expected [2 or 3, H, W] (image, cosmic-ray mask[, ignore]) with H, W >= {offset + WINDOW}.")
    crop = np.s_[offset : offset + WINDOW, offset : offset + WINDOW]
    image, mask = a[0][crop].astype(np.float32), a[1][crop].astype(np.float32)
    if not np.all(np.isfinite(image)):
        raise DataError(f"{path}: image contains NaN or Inf.")
    if not np.all((mask == 0) | (mask == 1)):
        raise DataError(f"{path}: the cosmic-ray mask (plane 1) holds values other than 0 and 1.")
    return image[None], mask[None]


def convert_cosmic(src: Path, dest: Path, **options) -> list[Path]:
    """deepCR ACS/WFC npy trees -> ``cosmic/cosmic_{train,test}.npz`` (fixed 128x128 crop)."""
    opts = check_options("nb360-cosmic", options, {"offset": 64, "filter": ""}, {"offset": 0})
    src = Path(src)
    markers = ("train_dirs.npy", "npy_train")
    base = next((b for b in (src, src / "cosmic") for m in markers if (b / m).exists()), None)
    if base is None:
        raise DataError(f"nb360-cosmic: no train_dirs.npy or npy_train/ in {src} (expected the unpacked deepCR.ACS-WFC train/test tars); point --from at that folder.")
    lists = cosmic_lists(base, opts["filter"])
    shapes = {"x": (1, WINDOW, WINDOW), "y": (1, WINDOW, WINDOW)}

    def produce(rel: str, out: NpzStream) -> None:
        for p in lists["train" if rel.endswith("train.npz") else "test"]:
            x, y = cosmic_sample(p, opts["offset"])
            out.add(x=x, y=y)

    return write_splits(Path(dest), {"cosmic/cosmic_train.npz": shapes, "cosmic/cosmic_test.npz": shapes}, produce)


# FSD50K ----------------------------------------------------------------------------------------------
def read_wav(path: Path) -> np.ndarray:
    """Mono float samples in [-1, 1) at FSD_SR, tiled to at least one second (as the FSD50K loaders do)."""
    import scipy.io.wavfile

    try:
        sr, data = scipy.io.wavfile.read(path)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .wav ({type(exc).__name__}: {exc}).") from exc
    if sr != FSD_SR:
        raise DataError(f"{path}: sample rate {sr} Hz, expected {FSD_SR} Hz (NAS-Bench-360's resampled chunks).")
    if data.dtype.kind == "i":  # PCM_16 / PCM_32
        x = data.astype(np.float64) / float(2 ** (8 * data.dtype.itemsize - 1))
    elif data.dtype.kind == "u":  # 8-bit PCM is offset binary
        x = (data.astype(np.float64) - 128.0) / 128.0
    else:
        x = data.astype(np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if x.size == 0:
        raise DataError(f"{path}: holds no samples.")
    if not np.all(np.isfinite(x)):  # a float wav can: it would become a NaN spectrogram
        raise DataError(f"{path}: holds NaN or Inf samples; the chunk is damaged - unzip audio.zip again.")
    if x.size < FSD_SR:
        x = np.tile(x, FSD_SR // x.size + 1)[:FSD_SR]
    return x.astype(np.float32)


class LogMel:
    """96-band log-mel features with the FSD50K paper's settings as NAS-Bench-360 computes them:
    30 ms Hann windows, 10 ms hop, 1920-point FFT, HTK mel scale, power -> dB (80 dB floor), zero mean."""

    def __init__(self, sr: int = FSD_SR, n_mels: int = FSD_MELS):
        import torch

        self.n_fft, self.win, self.hop = n_mels * 20, int(sr * 0.03), int(sr * 0.01)
        self.window = torch.hann_window(self.win, dtype=torch.float64)
        freqs = np.linspace(0, sr // 2, self.n_fft // 2 + 1)
        mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731 - HTK scale
        edges = 700.0 * (10 ** (np.linspace(mel(0.0), mel(sr / 2), n_mels + 2) / 2595.0) - 1.0)
        rising = (freqs[:, None] - edges[None, :-2]) / np.diff(edges)[None, :-1]
        falling = (edges[None, 2:] - freqs[:, None]) / np.diff(edges)[None, 1:]
        self.fbank = torch.from_numpy(np.clip(np.minimum(rising, falling), 0.0, None))  # [freqs, mels]

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        import torch

        spec = torch.stft(torch.from_numpy(audio.astype(np.float64)), self.n_fft, hop_length=self.hop, win_length=self.win,
                          window=self.window, center=True, pad_mode="reflect", return_complex=True).abs() ** 2
        power = (self.fbank.T @ spec).numpy()  # [mels, frames]
        db = 10.0 * np.log10(np.maximum(power, 1e-10))
        db = np.maximum(db, db.max() - 80.0)
        return (db - db.mean()).astype(np.float32)


def fit_frames(spec: np.ndarray, size: int = FSD_FRAMES) -> np.ndarray:
    """Pad (with the minimum, centred) or centre-crop the time axis to ``size`` frames."""
    n = spec.shape[1]
    if n < size:
        left = (size - n) // 2
        return np.pad(spec, ((0, 0), (left, size - n - left)), constant_values=spec.min())
    start = (n - size) // 2
    return spec[:, start : start + size]


def read_label_map(path: Path) -> dict[str, int]:
    try:
        m = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not readable JSON ({type(exc).__name__}: {exc}).") from exc
    # ints only: 3.0 or "3" would pass a sort but cannot index the label vector
    if not isinstance(m, dict) or not all(type(v) is int for v in m.values()) or sorted(m.values()) != list(range(FSD_CLASSES)):
        raise DataError(f"{path}: expected {FSD_CLASSES} label names mapped to indices 0..{FSD_CLASSES - 1}.")
    return m


def read_manifest(path: Path, labels: dict[str, int]) -> dict[str, list[tuple[str, np.ndarray]]]:
    """Chunks grouped by clip (``ext``), each with its 200-d multi-hot label."""
    if not path.is_file():
        raise DataError(f"nb360-fsd50k: missing {path}; unpack audio.zip completely.")
    clips: dict[str, list[tuple[str, np.ndarray]]] = {}
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if not {"files", "labels", "ext"} <= set(reader.fieldnames or ()):
                raise DataError(f"{path}: expected columns files, labels, ext; found {reader.fieldnames}.")
            for row in reader:
                if any(row[k] is None for k in ("files", "labels", "ext")):  # DictReader fills a short row with None
                    raise DataError(f"{path}: line {reader.line_num} has fewer columns than the header; unzip audio.zip again.")
                y = np.zeros(FSD_CLASSES, dtype=np.float32)
                for name in row["labels"].split(","):
                    if name not in labels:
                        raise DataError(f"{path}: label {name!r} is not in lbl_map.json.")
                    y[labels[name]] = 1.0
                clips.setdefault(row["ext"], []).append((row["files"], y))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: not a readable UTF-8 CSV ({type(exc).__name__}: {exc}); unzip audio.zip again.") from exc
    return clips


def convert_fsd50k(src: Path, dest: Path, **options) -> list[Path]:
    """NAS-Bench-360 audio folder -> ``fsd50k/fsd50k_{train,val,test}.npz`` of log-mel chunks."""
    opts = check_options("nb360-fsd50k", options, {"seed": 0, "chunks_per_clip": 1}, {"seed": 0, "chunks_per_clip": 0})  # 0: all
    src = Path(src)
    meta = find_base(src, "lbl_map.json", ("chunks", "data/chunks", "audio/chunks"), "nb360-fsd50k", "chunks/tr.csv, val.csv, eval.csv, lbl_map.json from audio.zip")
    labels = read_label_map(meta / "lbl_map.json")
    manifests = {"fsd50k/fsd50k_train.npz": "tr.csv", "fsd50k/fsd50k_val.npz": "val.csv", "fsd50k/fsd50k_test.npz": "eval.csv"}
    clips = {rel: read_manifest(meta / name, labels) for rel, name in manifests.items()}
    roots = tuple(dict.fromkeys((meta.parent, src, meta)))
    rng = np.random.default_rng(opts["seed"])
    logmel = LogMel()

    def produce(rel: str, out: NpzStream) -> None:
        for ext in sorted(clips[rel]):
            chunks = sorted(clips[rel][ext], key=lambda c: c[0])
            k = opts["chunks_per_clip"]
            if 0 < k < len(chunks):  # ORCA samples one random chunk per clip; keep a seeded choice
                chunks = [chunks[i] for i in sorted(rng.choice(len(chunks), size=k, replace=False))]
            for f, y in chunks:
                wav = resolve_listed(f, roots, str(meta / manifests[rel]))
                out.add(x=fit_frames(logmel(read_wav(wav)))[None], y=y)

    shapes = {"x": (1, FSD_MELS, FSD_FRAMES), "y": (FSD_CLASSES,)}
    return write_splits(Path(dest), {rel: shapes for rel in manifests}, produce)


#: Registered dataset name -> converter ``(src, dest, **options) -> written paths``.
CONVERTERS: dict[str, Callable[..., list[Path]]] = {
    "nb360-psicov": convert_psicov,
    "nb360-cosmic": convert_cosmic,
    "nb360-fsd50k": convert_fsd50k,
}

#: What ``--from`` must point at, per converter (used in help and error messages).
SOURCES = {
    "nb360-psicov": "the unzipped protein.zip (deepcov.lst, psicov.lst, deepcov/, psicov/)",
    "nb360-cosmic": "the unpacked deepCR.ACS-WFC train/test tars (npy_train/, npy_test/ or ORCA's train_dirs.npy/test_dirs.npy)",
    "nb360-fsd50k": "the unzipped audio.zip (chunks/tr.csv, val.csv, eval.csv, lbl_map.json and the wav chunks)",
}
