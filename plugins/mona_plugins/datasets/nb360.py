"""NAS-Bench-360's ten tasks, read from the published files in a folder the user gives (``root``).

Layouts follow the files NAS-Bench-360 publishes (and ORCA reads). Pickle-based files (CIFAR-100
python batches, spherical ``.gz``, ECG ``.pkl``, satellite ``.npy`` object arrays) are read
with a safe unpickler that only rebuilds containers and numpy arrays. Three tasks ship as
trees of pickled per-sample features (PSICOV), per-exposure arrays (Cosmic) or audio chunks
(FSD50K); they load from numpy-only ``.npz`` files that ``mona-kit data convert NAME --from SRC
--root ROOT`` writes (see ``nb360_convert``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import attrs
import numpy as np
import torch

from mona_kit.api import DataError, TaskSpec, TensorDictDataset, config, option

from .common import SplitOptions, assemble, dataset, require_files, root_folder, validate
from .safe_pickle import safe_npy_load, safe_pickle_load

GET = "NAS-Bench-360 (https://nb360.ml.cmu.edu, files on https://pde-xd.s3.amazonaws.com)"
CITATION = "Tu et al., NAS-Bench-360: Benchmarking Neural Architecture Search on Diverse Tasks, NeurIPS 2022"
CIFAR_MEAN = (0.5071, 0.4867, 0.4408)
CIFAR_STD = (0.2675, 0.2565, 0.2761)
ECG_CLASSES = ("N", "A", "O", "~")


@attrs.frozen
class Nb360Task:
    name: str
    files: tuple[str, ...]
    task_type: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    loss: str
    metric: str
    modality: str
    read: Callable  # (paths, opts, spec) -> (train, val | None, test)
    summary: str


@config
class Nb360Options(SplitOptions):
    root: str = option(help="folder holding the NAS-Bench-360 files (required)")


@config
class DarcyOptions(Nb360Options):
    sub: int = option(5, min=1, help="subsample the 421x421 grid every sub points (5 -> 85x85)")
    n_train: int = option(1000, min=1, help="training samples read from smooth1")
    n_test: int = option(100, min=1, help="test samples read from smooth2")
    grid_channels: bool = option(False, help="append x/y coordinate channels to the input (ORCA does)")


@config
class EcgOptions(Nb360Options):
    window: int = option(1000, min=1, help="window length cut from each record")
    stride: int = option(500, min=1, help="stride between windows")
    test_fraction: float = option(0.1, min=0, max=1, min_exclusive=True, max_exclusive=True, help="share of records held out as test (by record, seeded)")


# Readers -----------------------------------------------------------------------------------------
def _numbers(a, where, key) -> np.ndarray:
    """``a`` as an array of real numbers (bool, int, float), or a one-line error naming ``where`` and ``key``."""
    a = np.asarray(a)
    if a.dtype.kind not in "biuf":  # text and objects fail deep inside numpy/torch; complex would lose its imaginary part
        raise DataError(f"{where}: {key!r} holds {a.dtype} values, expected real numbers; the file is not in the published format.")
    return a


def _array(obj, key, where: Path) -> np.ndarray:
    for k in (key, key.encode() if isinstance(key, str) else key):
        if isinstance(obj, dict) and k in obj:
            try:
                return _numbers(obj[k], where, key)
            except ValueError as exc:  # ragged nested lists
                raise DataError(f"{where}: {key!r} is not an array of numbers ({exc}).") from exc
    found = sorted(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
    raise DataError(f"{where}: expected an entry {key!r}, found {found}.")


def _npz(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: not a readable numpy-only .npz ({type(exc).__name__}: {exc}); the file is truncated, corrupt or holds pickled objects.") from exc
    except Exception as exc:  # zipfile.BadZipFile and friends
        raise DataError(f"{path}: not a readable .npz ({type(exc).__name__}); the file is truncated or corrupt.") from exc


def _checked(where, x: np.ndarray, y: np.ndarray, spec: TaskSpec, y_dtype=torch.long) -> TensorDictDataset:
    xt = torch.as_tensor(np.ascontiguousarray(x)).float()
    if y_dtype == torch.long and np.asarray(y).dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(np.asarray(y) == np.round(y)):
            raise DataError(f"{where}: class labels are not whole numbers.")
    yt = torch.as_tensor(np.ascontiguousarray(y)).to(y_dtype)
    validate(str(where), xt, yt, spec)
    return dataset(xt, yt)


def read_cifar100(paths, opts, spec):
    out = []
    mean = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    for p in paths:
        d = safe_pickle_load(p)
        x = _array(d, "data", p)
        if x.ndim != 2 or x.shape[1] != 3072:
            raise DataError(f"{p}: 'data' has shape {x.shape}, expected [N, 3072] uint8 rows.")
        y = _array(d, "fine_labels", p)
        xt = (torch.as_tensor(x.reshape(-1, 3, 32, 32)).float() / 255.0 - mean) / std
        out.append(_checked(p, xt.numpy(), y, spec))
    return out[0], None, out[1]


def read_spherical(paths, opts, spec):
    (p,) = paths
    d = safe_pickle_load(p, compressed=True)
    splits = []
    for split in ("train", "test"):
        part = d.get(split) if isinstance(d, dict) else None
        if part is None:
            raise DataError(f"{p}: expected a dict with 'train' and 'test' entries.")
        x = _array(part, "images", p).astype(np.float32) / 255.0
        splits.append(_checked(f"{p} ({split})", x, _array(part, "labels", p), spec))
    return splits[0], None, splits[1]


def _read_mat(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """MATLAB v5 via scipy; v7.3 (HDF5) via h5py, whose axes come reversed."""
    import scipy.io

    try:
        m = scipy.io.loadmat(path, variable_names=list(keys))
    except NotImplementedError:
        import h5py

        with h5py.File(path, "r") as f:
            m = {k: np.asarray(f[k]).T for k in keys if k in f}
    except (OSError, ValueError, TypeError) as exc:
        raise DataError(f"{path}: not a readable .mat file ({type(exc).__name__}: {exc}); the file is truncated or corrupt.") from exc
    missing = [k for k in keys if k not in m]
    if missing:
        raise DataError(f"{path}: no variable(s) {missing} (expected {list(keys)}).")
    return m


def read_darcy(paths, opts, spec):
    parts = []
    for p, n in zip(paths, (opts.n_train, opts.n_test)):
        m = _read_mat(p, ("coeff", "sol"))
        coeff, sol = m["coeff"], m["sol"]
        if coeff.ndim != 3 or coeff.shape != sol.shape:
            raise DataError(f"{p}: 'coeff' {coeff.shape} and 'sol' {sol.shape} must both be [N, 421, 421].")
        s = spec.input_shape[-1]
        x = coeff[:n, :: opts.sub, :: opts.sub][:, :s, :s].astype(np.float32)
        y = sol[:n, :: opts.sub, :: opts.sub][:, :s, :s].astype(np.float32)
        parts.append((p, x, y))
    (_, xtr, _), (_, xte, _) = parts
    mean, std = xtr.mean(0, keepdims=True), xtr.std(0, keepdims=True) + 1e-5  # ORCA's UnitGaussianNormalizer
    out = []
    for p, x, y in parts:
        x = ((x - mean) / std)[:, None]
        if opts.grid_channels:
            g = np.linspace(0, 1, x.shape[-1], dtype=np.float32)
            gx, gy = np.meshgrid(g, g, indexing="ij")
            grid = np.broadcast_to(np.stack([gx, gy])[None], (len(x), 2, *gx.shape))
            x = np.concatenate([x, grid], axis=1)
        out.append(_checked(p, x, y[:, None], spec, torch.float32))
    return out[0], None, out[1]


def read_npz_pairs(y_dtype):
    def read(paths, opts, spec):
        out = []
        for p in paths:
            z = _npz(p)
            y = _array(z, "y", p)
            # binary cross-entropy needs 0/1 targets (multilabel ones are checked by validate as well)
            if spec.loss == "bce" and not np.all((y == 0) | (y == 1)):
                raise DataError(f"{p}: 'y' holds values other than 0 and 1, but {spec.name} is trained with binary cross-entropy; "
                                f"reconvert it with `mona-kit data convert {spec.name}`.")
            out.append(_checked(p, _array(z, "x", p), y, spec, y_dtype))
        return out[0], (out[1] if len(out) == 3 else None), out[-1]

    return read


def read_ninapro(paths, opts, spec):
    out = []
    for i in range(3):
        xp, yp = paths[i], paths[i + 3]
        x = safe_npy_load(xp)
        y = safe_npy_load(yp)
        if not isinstance(x, np.ndarray) or x.ndim != 3:
            raise DataError(f"{xp}: expected an array [N, 52, 16] of EMG windows, got {getattr(x, 'shape', type(x).__name__)}.")
        x = _numbers(x, xp, "EMG windows").astype(np.float32).transpose(0, 2, 1)[:, None]  # [N, 1, 16, 52]
        # labels as stored: _checked refuses fractions instead of truncating them
        out.append(_checked(f"{xp} / {yp}", x, _numbers(y, yp, "labels"), spec))
    return out[0], out[1], out[2]


def read_ecg(paths, opts, spec):
    (p,) = paths
    d = safe_pickle_load(p)
    if not isinstance(d, dict) or "data" not in d or "label" not in d:
        raise DataError(f"{p}: expected a dict with 'data' (list of 1-D records) and 'label' (N/A/O/~).")
    records, labels = list(d["data"]), [str(v) for v in d["label"]]
    if len(records) != len(labels):
        raise DataError(f"{p}: {len(records)} records but {len(labels)} labels; the file is truncated.")
    bad = sorted(set(labels) - set(ECG_CLASSES))
    if bad:
        raise DataError(f"{p}: labels {bad} are outside the declared classes {list(ECG_CLASSES)}.")
    y_all = np.array([ECG_CLASSES.index(v) for v in labels])
    perm = np.random.default_rng(opts.split_seed).permutation(len(records))
    n_test = max(1, int(round(len(records) * opts.test_fraction)))
    out = []
    for idx, split in ((perm[n_test:], "train"), (perm[:n_test], "test")):
        xs, ys = [], []
        for i in sorted(idx):
            r = np.asarray(records[i], dtype=np.float64).ravel()
            if not np.all(np.isfinite(r)):
                raise DataError(f"{p}: record {i} contains NaN or Inf; clean the file.")
            r = (r - r.mean()) / (r.std() + 1e-8)
            for s in range(0, len(r) - opts.window + 1, opts.stride):
                xs.append(r[s : s + opts.window])
                ys.append(y_all[i])
        if not xs:
            raise DataError(f"{p}: no {split} record is at least {opts.window} samples long; lower window.")
        out.append(_checked(f"{p} ({split})", np.stack(xs)[:, None].astype(np.float32), np.array(ys), spec))
    return out[0], None, out[1]


def read_satellite(paths, opts, spec):
    out = []
    for p in paths:
        d = safe_npy_load(p)
        if isinstance(d, np.ndarray) and d.dtype == object and d.shape == ():
            d = d.item()
        if not isinstance(d, dict):
            raise DataError(f"{p}: expected a saved dict with 'data' and 'label'.")
        x = _array(d, "data", p).astype(np.float32)[:, None]
        y = _array(d, "label", p)
        # labels are 1-based in the files; int64 first (uint8 0 - 1 would wrap), floats kept so _checked refuses fractions
        y = y.astype(np.int64 if y.dtype.kind in "biu" else np.float64) - 1
        out.append(_checked(p, x, y, spec))
    return out[0], None, out[1]


def read_deepsea(paths, opts, spec):
    (p,) = paths
    z = _npz(p)
    out = []
    for split in ("train", "val", "test"):
        x = _array(z, f"x_{split}", p)
        if x.ndim != 3:
            raise DataError(f"{p}: 'x_{split}' has shape {x.shape}, expected [N, 1000, 4].")
        out.append(_checked(f"{p} ({split})", x.transpose(0, 2, 1), _array(z, f"y_{split}", p), spec, torch.float32))
    return tuple(out)


TASKS = (
    Nb360Task("nb360-cifar100", ("cifar-100-python/train", "cifar-100-python/test"), "classification", (3, 32, 32), (100,),
              "cross-entropy", "zero-one-error", "image", read_cifar100,
              "NAS-Bench-360 CIFAR-100 (python batches, read safely): 3x32x32 -> 100 classes; 0-1 error"),
    Nb360Task("nb360-spherical", ("s2_cifar100.gz",), "classification", (3, 60, 60), (100,),
              "cross-entropy", "zero-one-error", "spherical-image", read_spherical,
              "NAS-Bench-360 Spherical (s2_cifar100.gz, read safely): 3x60x60 -> 100 classes; 0-1 error"),
    Nb360Task("nb360-darcy", ("piececonst_r421_N1024_smooth1.mat", "piececonst_r421_N1024_smooth2.mat"), "dense2d", (1, 85, 85), (1, 85, 85),
              "relative-l2", "relative-l2", "pde-2d", read_darcy,
              "NAS-Bench-360 Darcy flow (.mat, coeff/sol subsampled to 85x85); relative L2"),
    Nb360Task("nb360-psicov", ("protein/psicov_train.npz", "protein/psicov_test.npz"), "dense2d", (57, 128, 128), (1, 128, 128),
              "mse", "mae8", "protein", read_npz_pairs(torch.float32),
              "NAS-Bench-360 PSICOV (protein.zip -> `mona-kit data convert`): 57x128x128 pair features -> 1x128x128 distances (A); MAE8"),
    Nb360Task("nb360-cosmic", ("cosmic/cosmic_train.npz", "cosmic/cosmic_test.npz"), "dense2d", (1, 128, 128), (1, 128, 128),
              "bce", "one-minus-auroc", "astronomy", read_npz_pairs(torch.float32),
              "NAS-Bench-360 Cosmic (deepCR tars -> `mona-kit data convert`): 1x128x128 images -> 0/1 cosmic-ray masks; 1-AUROC"),
    Nb360Task("nb360-ninapro", tuple(f"ninaPro/{s}" for s in ("ninapro_train.npy", "ninapro_val.npy", "ninapro_test.npy", "label_train.npy", "label_val.npy", "label_test.npy")),
              "classification", (1, 16, 52), (18,), "cross-entropy", "zero-one-error", "emg", read_ninapro,
              "NAS-Bench-360 NinaPro DB5 (.npy): EMG 1x16x52 -> 18 gestures; 0-1 error"),
    Nb360Task("nb360-fsd50k", ("fsd50k/fsd50k_train.npz", "fsd50k/fsd50k_val.npz", "fsd50k/fsd50k_test.npz"), "multilabel", (1, 96, 102), (200,),
              "bce", "one-minus-map", "audio", read_npz_pairs(torch.float32),
              "NAS-Bench-360 FSD50K (audio.zip -> `mona-kit data convert`): 1x96x102 log-mel -> 200 labels; 1-mAP"),
    Nb360Task("nb360-ecg", ("challenge2017.pkl",), "classification", (1, 1000), (4,),
              "cross-entropy", "one-minus-macro-f1", "physiological", read_ecg,
              "NAS-Bench-360 ECG (PhysioNet 2017 challenge2017.pkl, read safely): 1x1000 windows -> N/A/O/~; 1-macro-F1"),
    Nb360Task("nb360-satellite", ("satellite_train.npy", "satellite_test.npy"), "classification", (1, 46), (24,),
              "cross-entropy", "zero-one-error", "satellite", read_satellite,
              "NAS-Bench-360 Satellite (.npy dicts, read safely): 1x46 time series -> 24 land-cover classes; 0-1 error"),
    Nb360Task("nb360-deepsea", ("deepsea_filtered.npz",), "multilabel", (4, 1000), (36,),
              "bce", "one-minus-auroc", "dna", read_deepsea,
              "NAS-Bench-360 DeepSEA (deepsea_filtered.npz): one-hot 4x1000 -> 36 chromatin labels; 1-AUROC"),
)

#: Tasks whose published format is converted first: what to download and the command that converts it.
CONVERSION = {
    "nb360-psicov": "protein.zip, unzip it and run `mona-kit data convert nb360-psicov --from UNZIPPED_DIR --root {root}`",
    "nb360-cosmic": "cosmic/deepCR.ACS-WFC.train.tar and .test.tar, unpack both into one folder and run `mona-kit data convert nb360-cosmic --from THAT_DIR --root {root}`",
    "nb360-fsd50k": "audio/audio.zip, unzip it and run `mona-kit data convert nb360-fsd50k --from UNZIPPED_DIR --root {root}`",
}

OPTIONS = {"nb360-darcy": DarcyOptions, "nb360-ecg": EcgOptions}


def make_loader(task: Nb360Task):
    def load(opts):
        root = root_folder(opts.root, task.name)
        get = GET if task.name not in CONVERSION else f"{GET}: download {CONVERSION[task.name].format(root=root)}"
        paths = require_files(root, list(task.files), what=task.name, get=get)
        input_shape = task.input_shape
        if isinstance(opts, DarcyOptions):
            s = len(range(0, 421, opts.sub))
            input_shape = (3 if opts.grid_channels else 1, s, s)
        spec = TaskSpec(
            name=task.name,
            task_type=task.task_type,
            input_shape=input_shape,
            output_shape=(1, input_shape[1], input_shape[2]) if task.name == "nb360-darcy" else task.output_shape,
            loss=task.loss,
            metric=task.metric,
            modality=task.modality,
            license="see the NAS-Bench-360 page for each source dataset's licence",
            citation=CITATION,
            source=str(root),
            labelled=task.task_type in ("classification", "multilabel"),
        )
        train, val, test = task.read(paths, opts, spec)
        return assemble(spec, opts, train, test, val)

    return load


def _converter(name: str):
    """The converter of ``name``, imported only when a conversion runs (plugin import stays light)."""

    def convert(src, dest, **options):
        from .nb360_convert import CONVERTERS

        return CONVERTERS[name](src, dest, **options)

    convert.__qualname__ = f"convert[{name}]"
    return convert


def register_all(register) -> None:
    for t in TASKS:
        extra = {"convert": _converter(t.name)} if t.name in CONVERSION else {}
        register(t.name, make_loader(t), config=OPTIONS.get(t.name, Nb360Options), summary=t.summary, modality=t.modality, offline=False, files=list(t.files), **extra)
