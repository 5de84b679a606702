"""Contract checks for dataset and metric plugins. A plugin author runs them in their tests::

    from mona_kit.testing import check_task_data
    check_task_data(kit.datasets.get("my-task").build({"max_train": 64}), kit=kit)
"""

from __future__ import annotations

import math

import torch

from ..components import TaskData, TaskSpec

__all__ = ["check_task_data", "check_samples", "check_metric"]


def _fail(spec: TaskSpec | None, message: str) -> None:
    name = spec.name if spec is not None else "?"
    raise AssertionError(f"dataset {name!r}: {message}")


def _check_sample(spec: TaskSpec, split: str, index: int, sample, *, exact: bool) -> None:
    where = f"split {split!r} sample {index}"
    if not isinstance(sample, dict):
        _fail(spec, f"{where} is a {type(sample).__name__}, not a dict[str, Tensor]")
    if "y" not in sample:
        _fail(spec, f"{where} has no 'y'")
    if spec.modality == "text" and "x" not in sample:
        if not isinstance(sample.get("text"), str):
            _fail(spec, f"{where}: a text sample needs a 'text' string")
    else:
        x = sample.get("x")
        if not torch.is_tensor(x) or x.dtype != torch.float32:
            _fail(spec, f"{where}: 'x' must be a float32 tensor, got {getattr(x, 'dtype', type(x).__name__)}")
        shape = tuple(x.shape)
        if exact and shape != tuple(spec.input_shape):
            _fail(spec, f"{where}: 'x' has shape {shape}, the spec says {tuple(spec.input_shape)}")
        if not exact and (len(shape) != len(spec.input_shape) or shape[:1] != tuple(spec.input_shape[:1])):
            _fail(spec, f"{where}: 'x' has shape {shape}, incompatible with {tuple(spec.input_shape)}")
        if not torch.isfinite(x).all():
            _fail(spec, f"{where}: 'x' holds NaN or Inf")
    y = sample["y"]
    if not torch.is_tensor(y):
        _fail(spec, f"{where}: 'y' is not a tensor")
    if spec.task_type == "classification":
        if y.dtype != torch.long or y.ndim != 0:
            _fail(spec, f"{where}: a class label must be a 0-d int64 tensor, got {y.dtype} {tuple(y.shape)}")
        if not 0 <= int(y) < spec.output_shape[0]:
            _fail(spec, f"{where}: label {int(y)} outside 0..{spec.output_shape[0] - 1}")
        return
    if not y.is_floating_point():
        _fail(spec, f"{where}: 'y' must be floating point for {spec.task_type}, got {y.dtype}")
    if exact and tuple(y.shape) != tuple(spec.output_shape):
        _fail(spec, f"{where}: 'y' has shape {tuple(y.shape)}, the spec says {tuple(spec.output_shape)}")
    if not torch.isfinite(y).all():
        _fail(spec, f"{where}: 'y' holds NaN or Inf")
    if spec.task_type == "multilabel" and not ((y == 0) | (y == 1)).all():
        _fail(spec, f"{where}: multilabel targets must be 0/1")


def check_samples(task_data: TaskData, *, samples: int = 3) -> None:
    """Assert that every split is non-empty and that its first, middle and last samples agree with the spec
    (dtype, shape, finiteness, labels inside the declared classes). ``mona-kit data info`` runs this."""
    spec = task_data.spec
    for split, ds in task_data.splits().items():
        n = len(ds)
        if n < 1:
            _fail(spec, f"split {split!r} is empty")
        exact = split in ("train", "val", "test")
        for i in sorted({0, n // 2, n - 1})[:samples]:
            _check_sample(spec, split, i, ds[i], exact=exact)


def check_task_data(task_data: TaskData, *, kit=None, samples: int = 3, batch_size: int = 4) -> None:
    """Assert a dataset factory's output meets the contract (raises AssertionError naming the problem).

    Checks the spec, that train/val/test are distinct non-empty datasets, sample dicts
    (dtype, shape, finiteness, labels inside the declared classes) at the first, middle and last
    index of every split, that a batch collates through :func:`mona_kit.data.make_loader`, and,
    given a ``kit``, that the spec's loss and metric are registered.
    """
    if not isinstance(task_data, TaskData):
        _fail(None, f"factory returned {type(task_data).__name__}, not TaskData")
    spec = task_data.spec
    if not isinstance(spec, TaskSpec):
        _fail(None, "spec is not a TaskSpec")
    if spec.task_type in ("classification", "multilabel") and (len(spec.output_shape) != 1 or spec.output_shape[0] < 2):
        _fail(spec, f"{spec.task_type} needs output_shape (num_classes,) with >= 2 classes, got {spec.output_shape}")
    if not spec.license or not spec.source or not spec.citation:
        _fail(spec, "license, source and citation must be filled in")
    splits = {"train": task_data.train, "val": task_data.val, "test": task_data.test}
    same = [(a, b) for i, a in enumerate(splits) for b in list(splits)[i + 1:] if splits[a] is splits[b]]
    if same:
        _fail(spec, f"train, val and test must be distinct datasets: its {same[0][0]} and {same[0][1]} splits are the same object")
    from ..data import make_loader

    check_samples(task_data, samples=samples)
    for split, ds in task_data.splits().items():
        n = len(ds)
        batch = next(iter(make_loader(ds, batch_size=batch_size, shuffle=False)))
        if len(batch["y"]) != min(batch_size, n):
            _fail(spec, f"split {split!r}: a collated batch has {len(batch['y'])} targets, expected {min(batch_size, n)}")
    if kit is not None:
        loss = kit.objectives.get(spec.loss)
        if loss.meta.get("role") != "task-loss":
            _fail(spec, f"loss {spec.loss!r} is registered with role {loss.meta.get('role')!r}, not 'task-loss'")
        metric = kit.metrics.get(spec.metric).build()
        if bool(metric.higher_is_better) != spec.higher_is_better:
            _fail(spec, f"higher_is_better={spec.higher_is_better} disagrees with metric {spec.metric!r}")


def check_metric(metric, predictions: torch.Tensor, targets: torch.Tensor) -> float:
    """Assert a metric returns a finite float on the inputs and declares its direction."""
    if not isinstance(getattr(metric, "higher_is_better", None), bool):
        raise AssertionError(f"metric {metric!r} must declare higher_is_better (bool)")
    value = metric(predictions, targets)
    if not isinstance(value, float) or not math.isfinite(value):
        raise AssertionError(f"metric {metric!r} returned {value!r}, not a finite float")
    return value
