"""Cosmic (deepCR ACS/WFC tars): the fixed 128x128 crop of each image and its cosmic-ray mask."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mona_kit.api import DataError

from ..safe_pickle import safe_npy_load
from .common import WINDOW, check_options, load_plain_npy, progress, resolve_listed
from .npz_writer import NpzStream, write_splits


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
        for p in progress(lists["train" if rel.endswith("train.npz") else "test"], rel, "images"):
            x, y = cosmic_sample(p, opts["offset"])
            out.add(x=x, y=y)

    return write_splits(Path(dest), {"cosmic/cosmic_train.npz": shapes, "cosmic/cosmic_test.npz": shapes}, produce)


