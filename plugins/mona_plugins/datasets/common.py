"""What every dataset here shares: file lookup, sample checks, and (from mona_kit.api) split options and
the assembly of a TaskData (``SplitOptions``, ``assemble``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from mona_kit.api import DataError, SplitOptions, TaskSpec, TensorDictDataset, check_arrays  # noqa: F401 - SplitOptions re-exported
from mona_kit.api import assemble_task as assemble  # noqa: F401 - dataset modules import it from here


def package_dir(module: str, hint: str) -> Path:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"package {module!r} is not installed, so its data cannot be read; install it: {hint}.")
    return Path(list(spec.submodule_search_locations)[0])


def root_folder(root: str, what: str) -> Path:
    """``root`` with ``~`` expanded, or a one-line error when it names an unknown user (``~nouser/x``)."""
    try:
        return Path(root).expanduser()
    except RuntimeError as exc:  # pathlib cannot find that user's home
        raise DataError(f"{what}: root {root!r} starts with ~ but that home folder is unknown here; give the folder's full path.") from exc


def require_files(folder: Path, names: list[str], *, what: str, get: str) -> list[Path]:
    """Every ``names`` file under ``folder``, or a one-line error listing what is missing and where to get it."""
    paths = [folder / n for n in names]
    missing = [n for n, p in zip(names, paths) if not p.is_file()]
    if missing:
        raise DataError(
            f"{what}: missing {', '.join(missing)} in {folder} (expected files: {', '.join(names)}); get them from {get}."
        )
    return paths


def dataset(x: torch.Tensor, y: torch.Tensor) -> TensorDictDataset:
    return TensorDictDataset({"x": x, "y": y})


def validate(where: str, x: torch.Tensor, y: torch.Tensor, spec: TaskSpec) -> None:
    """check_arrays against what the spec declares."""
    classification = spec.task_type == "classification"
    check_arrays(
        where,
        x,
        y,
        input_shape=spec.input_shape,
        target_shape=None if classification else spec.output_shape,
        num_classes=spec.num_classes if spec.task_type in ("classification", "multilabel") else None,
        multilabel=spec.task_type == "multilabel",
    )


def split_off_test(x: torch.Tensor, y: torch.Tensor, n_test: int) -> tuple[tuple, tuple]:
    """The last ``n_test`` samples as test (sources that ship one pool of samples)."""
    if not 0 < n_test < len(x):
        raise DataError(f"cannot hold out {n_test} test samples from {len(x)}; lower test_size.")
    return (x[:-n_test], y[:-n_test]), (x[-n_test:], y[-n_test:])
