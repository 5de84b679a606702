"""PDEBench tasks read from the published HDF5 files in a folder the user gives (``root``).

Two published layouts:

- single file: datasets ``[N, T, X(, Y)]`` under ``tensor`` (or ``density``/``pressure``/``Vx``/``Vy``
  for CFD), plus ``x-coordinate``/``t-coordinate``; 2-D Darcy has ``nu [N, X, Y]`` (input) and
  ``tensor [N, 1, X, Y]`` (output);
- one group per sample (``"0000"``, ``"0001"``, ...), each with ``data [T, X(, Y), C]``.

The task is a single-step map from time step ``input_step`` to ``target_step``. As in PDEBench,
the first ``test_fraction`` (10 %) of the samples is the test split; validation is carved from
the rest with a seed, so the test split never selects a model.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np
import torch

from mona_kit.api import DataError, TaskSpec, config, option

from .common import SplitOptions, assemble, dataset, require_files, root_folder, validate

GET = "PDEBench on DaRUS (https://darus.uni-stuttgart.de/dataverse/sciml_benchmark; download script: pdebench/data_download)"
CITATION = "Takamoto et al., PDEBench: An Extensive Benchmark for Scientific Machine Learning, NeurIPS 2022"


@attrs.frozen
class PdeTask:
    name: str
    file: str
    layout: str  #: "tensor" | "fields" | "groups" | "darcy"
    dims: int  #: spatial dimensions
    channels: int
    reduced_resolution: int
    summary: str
    fields: tuple[str, ...] = ("tensor",)


TASKS = (
    PdeTask("pdebench-advection", "1D_Advection_Sols_beta0.4.hdf5", "tensor", 1, 1, 4, "PDEBench 1-D advection (beta 0.4)"),
    PdeTask("pdebench-burgers", "1D_Burgers_Sols_Nu1.0.hdf5", "tensor", 1, 1, 1, "PDEBench 1-D Burgers (nu 1.0)"),
    PdeTask("pdebench-diffusion-sorption", "1D_diff-sorp_NA_NA.h5", "groups", 1, 1, 1, "PDEBench 1-D diffusion-sorption"),
    PdeTask("pdebench-diffusion-reaction-1d", "ReacDiff_Nu0.5_Rho1.0.hdf5", "tensor", 1, 1, 1, "PDEBench 1-D diffusion-reaction (nu 0.5, rho 1.0)"),
    PdeTask("pdebench-cfd-1d", "1D_CFD_Rand_Eta0.1_Zeta0.1_periodic_Train.hdf5", "fields", 1, 3, 1, "PDEBench 1-D compressible Navier-Stokes (density, pressure, Vx)", ("density", "pressure", "Vx")),
    PdeTask("pdebench-shallow-water", "2D_rdb_NA_NA.h5", "groups", 2, 1, 1, "PDEBench 2-D shallow water (radial dam break)"),
    PdeTask("pdebench-darcy", "2D_DarcyFlow_beta1.0_Train.hdf5", "darcy", 2, 1, 1, "PDEBench 2-D Darcy flow (beta 1.0): nu -> steady state"),
    PdeTask("pdebench-diffusion-reaction-2d", "2D_diff-react_NA_NA.h5", "groups", 2, 2, 1, "PDEBench 2-D diffusion-reaction (activator, inhibitor)"),
    PdeTask("pdebench-cfd-2d", "2D_CFD_Rand_M1.0_Eta0.1_Zeta0.1_periodic_128_Train.hdf5", "fields", 2, 4, 2, "PDEBench 2-D compressible Navier-Stokes (density, pressure, Vx, Vy)", ("density", "pressure", "Vx", "Vy")),
)


def options_for(task: PdeTask):
    @config
    class PdeOptions(SplitOptions):
        root: str = option(help="folder holding the PDEBench file (required)")
        file: str = option(task.file, help="file name inside root")
        input_step: int = option(0, min=0, help="time index of the input state")
        target_step: int = option(-1, help="time index of the target state (-1 = last)")
        reduced_resolution: int = option(task.reduced_resolution, min=1, help="keep every r-th grid point (ORCA's choice is the default)")
        max_samples: int | None = option(None, min=1, help="read only the first N samples of the file (None = all)")
        test_fraction: float = option(0.1, min=0, max=1, min_exclusive=True, max_exclusive=True, help="first share of samples used as test (PDEBench: 0.1)")

    PdeOptions.__name__ = PdeOptions.__qualname__ = "".join(p.title() for p in task.name.split("-")) + "Options"
    return PdeOptions


def _open(path: Path):
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"{path}: not a readable HDF5 file ({exc}); the file is truncated or corrupt, download it again from {GET}.") from exc


def _dataset(f, key: str, path: Path, ndim: int):
    import h5py

    if key not in f:
        raise DataError(f"{path}: no dataset {key!r} (found {sorted(f.keys())[:8]}); is this the right PDEBench file?")
    d = f[key]
    if not isinstance(d, h5py.Dataset):
        raise DataError(f"{path}: {key!r} is an HDF5 {type(d).__name__}, not a dataset; is this the right PDEBench file?")
    # real numbers only: a compound dtype cannot be cast, a complex one would silently lose its imaginary part
    if d.dtype.kind not in "biuf":
        raise DataError(f"{path}: dataset {key!r} holds {d.dtype} values, expected real numbers; is this the right PDEBench file?")
    if len(d.shape) != ndim:
        raise DataError(f"{path}: dataset {key!r} has shape {d.shape}, expected {ndim} axes.")
    return d


def read_pairs(task: PdeTask, path: Path, opts) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and targets ``[N, C, X(, Y)]`` as float32 numpy arrays."""
    r = opts.reduced_resolution
    space = (slice(None, None, r),) * task.dims
    n = opts.max_samples
    with _open(path) as f:
        try:
            if task.layout == "darcy":
                nu = _dataset(f, "nu", path, 3)
                out = _dataset(f, "tensor", path, 4)
                x = np.asarray(nu[slice(n)][(slice(None),) + space], dtype=np.float32)[:, None]
                y = np.asarray(out[slice(n)][(slice(None), slice(None)) + space], dtype=np.float32)
            elif task.layout in ("tensor", "fields"):
                xs, ys = [], []
                for key in task.fields:
                    d = _dataset(f, key, path, 2 + task.dims)
                    steps = d.shape[1]
                    ti, tt = _steps(opts, steps, path)
                    xs.append(np.asarray(d[slice(n), ti], dtype=np.float32)[(slice(None),) + space])
                    ys.append(np.asarray(d[slice(n), tt], dtype=np.float32)[(slice(None),) + space])
                x, y = np.stack(xs, 1), np.stack(ys, 1)
            else:  # groups
                import h5py

                keys = sorted(k for k in f.keys() if isinstance(f[k], h5py.Group))
                if not keys:
                    raise DataError(f"{path}: no sample groups ('0000', '0001', ...); is this the right PDEBench file?")
                keys = keys[:n] if n else keys
                xs, ys = [], []
                for k in keys:
                    d = _dataset(f[k], "data", path, 2 + task.dims)
                    ti, tt = _steps(opts, d.shape[0], path)
                    xs.append(np.asarray(d[ti], dtype=np.float32)[space + (slice(None),)])
                    ys.append(np.asarray(d[tt], dtype=np.float32)[space + (slice(None),)])
                x, y = np.moveaxis(np.stack(xs), -1, 1), np.moveaxis(np.stack(ys), -1, 1)
        except DataError:
            raise
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise DataError(f"{path}: reading failed ({type(exc).__name__}: {exc}); the file is truncated or corrupt.") from exc
    if x.shape[1] != task.channels:
        raise DataError(f"{path}: samples have {x.shape[1]} channels, expected {task.channels} for {task.name}.")
    # every task maps a state to a state of the same grid and channels; Darcy reads two datasets that may disagree
    if y.shape[1:] != x.shape[1:]:
        raise DataError(f"{path}: targets have shape {tuple(y.shape[1:])} per sample but inputs {tuple(x.shape[1:])} "
                        f"(channels, grid); the input and output datasets must match - is this the right PDEBench file?")
    return x, y


def _steps(opts, steps: int, path: Path) -> tuple[int, int]:
    ti, tt = opts.input_step, opts.target_step
    for t in (ti, tt):
        if not -steps <= t < steps:
            raise DataError(f"{path}: time index {t} is outside the file's {steps} steps; change input_step/target_step.")
    return ti % steps, tt % steps


def make_loader(task: PdeTask):
    def load(opts):
        (path,) = require_files(root_folder(opts.root, task.name), [opts.file], what=task.name, get=GET)
        x, y = read_pairs(task, path, opts)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        spec = TaskSpec(
            name=task.name,
            task_type="dense1d" if task.dims == 1 else "dense2d",
            input_shape=tuple(xt.shape[1:]),
            output_shape=tuple(yt.shape[1:]),
            loss="mse",
            metric="nrmse",
            modality=f"pde-{task.dims}d",
            license="CC BY 4.0 (PDEBench data)",
            citation=CITATION,
            source=str(path),
            labelled=False,
        )
        validate(str(path), xt, yt, spec)
        n_test = int(len(xt) * opts.test_fraction)
        if not 0 < n_test < len(xt) - 1:
            raise DataError(f"{path}: {len(xt)} samples leave no test or train split with test_fraction {opts.test_fraction}.")
        return assemble(spec, opts, dataset(xt[n_test:], yt[n_test:]), dataset(xt[:n_test], yt[:n_test]))

    return load


def register_all(register) -> None:
    for t in TASKS:
        register(t.name, make_loader(t), config=options_for(t), summary=f"{t.summary}; file {t.file} in root; nRMSE", modality=f"pde-{t.dims}d", offline=False, files=[t.file])
