"""Darcy flow and Burgers tasks read from the files neuraloperator 0.3.0 ships (the package is never imported)."""

from __future__ import annotations

from pathlib import Path

import attrs
import torch

from mona_kit.api import DataError, TaskSpec, config, load_torch_file, option

from .common import SplitOptions, assemble, dataset, package_dir, require_files, validate

GET = "PyPI: pip install --no-deps neuraloperator==0.3.0"
LICENSE = "MIT (neuraloperator package data)"
FNO_CITATION = "Li et al., Fourier Neural Operator for Parametric PDEs, ICLR 2021"


def data_dir() -> Path:
    return package_dir("neuralop", GET) / "datasets" / "data"


def load_pt(path: Path, keys: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """``torch.load(weights_only=True)`` with one-line errors for truncated files and missing keys."""
    try:
        data = load_torch_file(path)
    except Exception as exc:
        raise DataError(f"{path}: cannot be read as a torch file ({type(exc).__name__}); the file is truncated or corrupt, reinstall it ({GET}).") from exc
    if not isinstance(data, dict) or any(k not in data or not torch.is_tensor(data[k]) for k in keys):
        found = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise DataError(f"{path}: expected tensors under keys {list(keys)}, found {found}.")
    return data


@config
class DarcyOptions(SplitOptions):
    pass


def darcy_spec(source: str) -> TaskSpec:
    return TaskSpec(
        name="darcy-16",
        task_type="dense2d",
        input_shape=(1, 16, 16),
        output_shape=(1, 16, 16),
        loss="relative-l2",
        metric="relative-l2",
        modality="pde-2d",
        license=LICENSE,
        citation=FNO_CITATION,
        source=source,
        labelled=False,
    )


def load_darcy(opts: DarcyOptions):
    """Permeability (1,16,16) -> pressure (1,16,16); 1,000 train (val carved), 50 test, 50 test-32."""
    folder = data_dir()
    train_p, test_p, test32_p = require_files(
        folder, ["darcy_train_16.pt", "darcy_test_16.pt", "darcy_test_32.pt"], what="darcy-16", get=GET
    )
    spec = darcy_spec(str(folder))

    def read(path: Path, res: int):
        d = load_pt(path, ("x", "y"))
        x, y = d["x"].float().unsqueeze(1), d["y"].float().unsqueeze(1)
        validate(str(path), x, y, attrs.evolve(spec, input_shape=(1, res, res), output_shape=(1, res, res)))
        return dataset(x, y)

    return assemble(spec, opts, read(train_p, 16), read(test_p, 16), extra={"test-32": read(test32_p, 32)})


@config
class BurgersOptions(SplitOptions):
    target_step: int = option(16, min=0, max=16, help="time index (0..16) of the target slice; input is the initial condition")
    test_size: int = option(200, min=1, help="samples held out as the test split (the last ones in the file)")


def load_burgers(opts: BurgersOptions):
    """Initial condition (1,16) -> the state at ``target_step`` (1,16); viscosity 0.01."""
    folder = data_dir()
    (path,) = require_files(folder, ["burgers_lowres.pt"], what="burgers-1d", get=GET)
    d = load_pt(path, ("input", "output"))
    inp, out = d["input"], d["output"]
    if out.ndim != 3 or not 0 <= opts.target_step < out.shape[1]:
        raise DataError(f"{path}: output has shape {tuple(out.shape)}; target_step must index its time axis (0..{out.shape[1] - 1 if out.ndim == 3 else '?'}).")
    x = inp.float().unsqueeze(1)
    y = out[:, opts.target_step].float().unsqueeze(1)
    spec = TaskSpec(
        name="burgers-1d",
        task_type="dense1d",
        input_shape=(1, 16),
        output_shape=(1, 16),
        loss="mse",
        metric="nrmse",
        modality="pde-1d",
        license=LICENSE,
        citation=FNO_CITATION,
        source=str(path),
        labelled=False,
    )
    validate(str(path), x, y, spec)
    n_test = opts.test_size
    if not 0 < n_test < len(x) - 1:
        raise DataError(f"burgers-1d: test_size {n_test} must lie in 1..{len(x) - 2}.")
    return assemble(spec, opts, dataset(x[:-n_test], y[:-n_test]), dataset(x[-n_test:], y[-n_test:]))


def register_all(register) -> None:
    register("darcy-16", load_darcy, config=DarcyOptions, summary="Darcy flow 16x16 (neuraloperator files): permeability -> pressure; relative L2; extra split test-32", modality="pde-2d", offline=True, license=LICENSE)
    register("burgers-1d", load_burgers, config=BurgersOptions, summary="Burgers 1-D (neuraloperator burgers_lowres.pt): initial condition -> later time slice; nRMSE", modality="pde-1d", offline=True, license=LICENSE)
