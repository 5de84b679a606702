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

from collections.abc import Callable
from pathlib import Path

from .common import check_options
from .cosmic import convert_cosmic
from .fsd50k import LogMel, convert_fsd50k
from .npz_writer import NpzStream, write_splits
from .psicov import convert_psicov

__all__ = ["CONVERTERS", "SOURCES", "LogMel", "NpzStream", "check_options", "write_splits"]

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
