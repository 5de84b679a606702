"""A user's own datasets as a task: ``(x, y)`` samples wrapped into a :class:`TaskData` whose
:class:`TaskSpec` is inferred from the first training sample and a few stated facts.

Used by :func:`mona_kit.api.fit`; nothing is registered globally.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from .components import TASK_TYPES, TaskData, TaskSpec
from .errors import ConfigError, DataError, did_you_mean

#: Task loss and metric of each task type when the caller names none.
DEFAULT_LOSS = {"classification": "cross-entropy", "multilabel": "bce", "regression": "mse", "dense1d": "mse", "dense2d": "mse"}
DEFAULT_METRIC = {
    "classification": "zero-one-error", "multilabel": "one-minus-map", "regression": "nrmse", "dense1d": "nrmse",
    "dense2d": "nrmse",
}
#: Keyword facts ``fit`` accepts about a user's datasets (everything else is a run-config key).
SPEC_FACTS = ("name", "task_type", "metric", "loss", "num_classes", "higher_is_better", "modality")
SPLITS = ("train", "val", "test")


def is_datasets(task: Any) -> bool:
    """Whether ``task`` is the user's own splits (a TaskData, or train/val/test datasets)."""
    if isinstance(task, TaskData):
        return True
    if isinstance(task, Mapping):
        return "name" not in task
    return isinstance(task, Sequence) and not isinstance(task, (str, bytes, bytearray))


def _pair(sample: Any, split: str, index: int) -> tuple[Any, Any]:
    if isinstance(sample, Mapping):
        if "x" not in sample or "y" not in sample:
            raise DataError(f"{split} sample {index} is a mapping without 'x' and 'y'; give (x, y) pairs or {{'x': ..., 'y': ...}}.")
        return sample["x"], sample["y"]
    if isinstance(sample, Sequence) and len(sample) >= 2:
        return sample[0], sample[1]
    raise DataError(
        f"{split} sample {index} is a {type(sample).__name__}; a dataset for fit yields (x, y) pairs "
        f"(e.g. a TensorDataset(x, y)) or {{'x': ..., 'y': ...}}."
    )


def _numeric(value: Any, what: str, split: str, index: int) -> torch.Tensor:
    """``value`` as a tensor, or a DataError naming the sample (torch's own error names no sample)."""
    try:
        return torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise DataError(
            f"{split} sample {index}: {what} is a {type(value).__name__} that is not numeric; fit's inputs and "
            f"targets must be numeric arrays or tensors (e.g. torch.tensor, numpy arrays) - encode text or categories first."
        ) from exc


class Samples(Dataset):
    """A user's dataset as mona-kit samples: ``{"x": float32 input, "y": target}``."""

    def __init__(self, dataset: Dataset, split: str, task_type: str):
        self.dataset, self.split, self.task_type = dataset, split, task_type

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        x, y = _pair(self.dataset[index], self.split, index)
        x = _numeric(x, "x", self.split, index).float()
        y = _numeric(y, "y", self.split, index)
        if self.task_type == "classification":
            y = y.long().reshape(()) if y.numel() == 1 else y.long()
        else:
            y = y.float()
            if self.task_type == "regression" and y.dim() == 0:
                y = y.reshape(1)
        return {"x": x, "y": y}


def _splits(task: Any) -> dict[str, Dataset]:
    if isinstance(task, Mapping):
        missing = [s for s in SPLITS if s not in task]
        extra = [str(k) for k in task if k not in SPLITS]
        if missing or extra:
            raise ConfigError(
                f"fit's datasets need exactly the keys train, val and test (missing {missing or 'none'}, "
                f"unknown {extra or 'none'}); val selects the model, test is only reported."
            )
        return {s: task[s] for s in SPLITS}
    if len(task) != 3:
        raise ConfigError(
            f"fit takes three datasets (train, val, test), got {len(task)}; val selects the model, test is only "
            f"reported - carve a validation set from train if you have none."
        )
    return dict(zip(SPLITS, task))


def _infer_type(y: torch.Tensor) -> str:
    if not y.is_floating_point() and y.dtype != torch.bool and y.numel() == 1:
        return "classification"
    if y.is_floating_point() and y.dim() <= 1:
        return "regression"
    if y.is_floating_point() and y.dim() in (2, 3):
        return "dense1d" if y.dim() == 2 else "dense2d"
    raise ConfigError(
        f"cannot tell the task type from a target of dtype {y.dtype} and shape {tuple(y.shape)}; "
        f"pass task_type= one of {', '.join(TASK_TYPES)}."
    )


def _labels(dataset: Dataset, split: str) -> torch.Tensor:
    tensors = getattr(dataset, "tensors", None)
    if isinstance(tensors, tuple) and len(tensors) >= 2 and torch.is_tensor(tensors[1]):
        return tensors[1].reshape(len(tensors[1]), -1)[:, 0].long()
    return torch.stack([_numeric(_pair(dataset[i], split, i)[1], "y", split, i).long().reshape(-1)[0] for i in range(len(dataset))])


#: The type each of fit's task facts takes (bool is refused where an int is meant).
FACT_TYPES: dict[str, tuple[type, str]] = {
    "name": (str, "a str"), "task_type": (str, "a str"), "metric": (str, "a str"), "loss": (str, "a str"),
    "num_classes": (int, "an int >= 1"), "higher_is_better": (bool, "True or False"), "modality": (str, "a str"),
}


def _check_facts(facts: Mapping[str, Any]) -> None:
    for key, value in facts.items():
        if value is None and key in ("task_type", "metric", "loss", "num_classes"):
            continue  # None: infer it, or take the task type's default
        kind, expected = FACT_TYPES[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise ConfigError(f"fit's {key}= takes {expected}, got {type(value).__name__} {value!r}.")
    if facts.get("num_classes") is not None and facts["num_classes"] < 1:
        raise ConfigError(f"fit's num_classes must be >= 1 (the number of classes), got {facts['num_classes']}; "
                          f"or leave it out to count the labels.")


def user_task(task: Any, *, name: str = "user-task", task_type: str | None = None, metric: str | None = None,
              loss: str | None = None, num_classes: int | None = None, higher_is_better: bool = False,
              modality: str = "unknown") -> TaskData:
    """The user's splits as a TaskData; the spec comes from the first training sample and the facts given."""
    if isinstance(task, TaskData):
        return task
    _check_facts({"name": name, "task_type": task_type, "metric": metric, "loss": loss, "num_classes": num_classes,
                  "higher_is_better": higher_is_better, "modality": modality})
    splits = _splits(task)
    for split, ds in splits.items():
        if not isinstance(ds, Dataset) and not (hasattr(ds, "__getitem__") and hasattr(ds, "__len__")):
            raise ConfigError(f"fit's {split} split is a {type(ds).__name__}, not a torch Dataset (e.g. TensorDataset(x, y)).")
        if len(ds) < 1:
            raise DataError(f"fit's {split} split is empty; every split needs samples.")
    x, y = _pair(splits["train"][0], "train", 0)
    x, y = _numeric(x, "x", "train", 0), _numeric(y, "y", "train", 0)
    if task_type is None:
        task_type = _infer_type(y)
    if task_type not in TASK_TYPES:
        raise ConfigError(f"task_type {task_type!r} is not one of {', '.join(TASK_TYPES)}.{did_you_mean(task_type, TASK_TYPES)}")
    if task_type == "classification":
        if num_classes is None:
            num_classes = 1 + max(int(_labels(ds, s).max()) for s, ds in splits.items())
        output_shape: tuple[int, ...] = (int(num_classes),)
    elif task_type == "regression":
        output_shape = tuple(y.shape) or (1,)
    else:
        output_shape = tuple(y.shape)
    if num_classes is not None and task_type != "classification" and (int(num_classes),) != output_shape:
        raise ConfigError(f"num_classes={num_classes} does not match targets of shape {output_shape} ({task_type}).")
    spec = TaskSpec(
        name=name, task_type=task_type, input_shape=tuple(x.shape), output_shape=output_shape,
        loss=loss or DEFAULT_LOSS[task_type], metric=metric or DEFAULT_METRIC[task_type],
        higher_is_better=bool(higher_is_better), modality=modality, source="python (fit)",
    )
    wrapped = {s: Samples(ds, s, task_type) for s, ds in splits.items()}
    return TaskData(spec=spec, **wrapped)
