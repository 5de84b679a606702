"""Validation carving and size caps for dataset plugins: :class:`SplitOptions` and :func:`assemble_task`.

A dataset whose source has no validation split carves one from train with a fixed seed, and every
split can be capped to a seeded random subset for CPU runs; first- and third-party datasets share
this one implementation (public through :mod:`mona_kit.api`).
"""

from __future__ import annotations

from .components import TaskData, TaskSpec
from .config import SEED_MAX, config, option
from .data import TensorDictDataset, cap, carve_validation, validation_size


@config
class SplitOptions:
    """Options every dataset takes: validation carving and size caps (subclass it for a dataset's config)."""

    val_fraction: float = option(0.2, min=0, max=1, min_exclusive=True, max_exclusive=True, help="share of train carved out as validation when the source has none")
    min_val: int = option(
        100, min=0, help="validation gets at least this many samples when train can spare them; smaller sets train for a fixed budget"
    )
    split_seed: int = option(0, min=0, max=SEED_MAX, help="seed of the validation carve and of size caps")
    max_train: int | None = option(None, min=1, help="cap on training samples (None = all)")
    max_val: int | None = option(None, min=1, help="cap on validation samples (None = all)")
    max_test: int | None = option(None, min=1, help="cap on test samples (None = all)")
    cache: bool = option(True, help="keep preprocessed tensors in the cache dir ($MONA_KIT_CACHE)")


def assemble_task(
    spec: TaskSpec,
    opts: SplitOptions,
    train: TensorDictDataset,
    test: TensorDictDataset,
    val: TensorDictDataset | None = None,
    extra: dict[str, TensorDictDataset] | None = None,
) -> TaskData:
    """A TaskData: validation carved from train when ``val`` is None, then the size caps (seeded).

    When train is too small to give up a validation set worth selecting on, the task is marked
    ``selection="fixed-budget"`` (runs train for their budget instead of selecting on a handful).
    """
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
