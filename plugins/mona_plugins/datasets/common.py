"""What every dataset here shares: split options and the assembly of a TaskData."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from mona_kit.components import TaskData, TaskSpec
from mona_kit.config import SEED_MAX, config, option
from mona_kit.data import TensorDictDataset, cap, carve_validation, check_arrays, validation_size
from mona_kit.errors import DataError


@config
class SplitOptions:
    """Options every dataset takes: validation carving and size caps for CPU runs."""

    val_fraction: float = option(0.2, min=0, max=1, min_exclusive=True, max_exclusive=True, help="share of train carved out as validation when the source has none")
    min_val: int = option(
        100, min=0, help="validation gets at least this many samples when train can spare them; smaller sets train for a fixed budget"
    )
    split_seed: int = option(0, min=0, max=SEED_MAX, help="seed of the validation carve and of size caps")
    max_train: int | None = option(None, min=1, help="cap on training samples (None = all)")
    max_val: int | None = option(None, min=1, help="cap on validation samples (None = all)")
    max_test: int | None = option(None, min=1, help="cap on test samples (None = all)")
    cache: bool = option(True, help="keep preprocessed tensors in the cache dir ($MONA_KIT_CACHE)")


def package_dir(module: str, hint: str) -> Path:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"package {module!r} is not installed, so its data cannot be read; install it: {hint}.")
    return Path(list(spec.submodule_search_locations)[0])


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


def assemble(
    spec: TaskSpec,
    opts: SplitOptions,
    train: TensorDictDataset,
    test: TensorDictDataset,
    val: TensorDictDataset | None = None,
    extra: dict[str, TensorDictDataset] | None = None,
) -> TaskData:
    """Carve validation from train when ``val`` is None, then apply the size caps (seeded)."""
    selection = "validation"
    if val is None:
        _, enough = validation_size(len(train), opts.val_fraction, opts.min_val)
        selection = "validation" if enough else "fixed-budget"
        tr, va = carve_validation(len(train), opts.val_fraction, opts.split_seed, opts.min_val)
        train, val = train.subset(tr), train.subset(va)
    seed = opts.split_seed
    return TaskData(
        selection=selection,
        spec=spec,
        train=cap(train, opts.max_train, seed),
        val=cap(val, opts.max_val, seed + 1),
        test=cap(test, opts.max_test, seed + 2),
        extra={k: cap(v, opts.max_test, seed + 3) for k, v in (extra or {}).items()},
    )


def split_off_test(x: torch.Tensor, y: torch.Tensor, n_test: int) -> tuple[tuple, tuple]:
    """The last ``n_test`` samples as test (sources that ship one pool of samples)."""
    if not 0 < n_test < len(x):
        raise DataError(f"cannot hold out {n_test} test samples from {len(x)}; lower test_size.")
    return (x[:-n_test], y[:-n_test]), (x[-n_test:], y[-n_test:])
