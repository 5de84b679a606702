"""The contracts every component meets. Plugins subclass these (or match them).

Shapes use B = batch, N = tokens, D = the body's width. Samples are
``dict[str, Tensor]`` with ``"x"`` (input, channels first) and ``"y"`` (target).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs
import torch
from torch import nn
from torch.utils.data import Dataset

from .errors import ConfigError, did_you_mean

TaskType = Literal["classification", "multilabel", "regression", "dense1d", "dense2d"]
TASK_TYPES = ("classification", "multilabel", "regression", "dense1d", "dense2d")

#: The parameter groups a body exposes, so methods freeze by group, not by attribute surgery.
BODY_GROUPS = ("embeddings", "attention", "mlp", "norm", "position", "head", "other")

#: The output rank each task type's heads, losses and metrics assume (None: any rank).
_OUTPUT_RANK = {"classification": 1, "multilabel": 1, "regression": None, "dense1d": 2, "dense2d": 3}
_OUTPUT_FORM = {"classification": "(num_classes,)", "multilabel": "(num_classes,)", "dense1d": "(C, L)", "dense2d": "(C, H, W)"}


def _shape(value: Any) -> Any:
    """A list or tuple of integers (numpy's too) as a tuple of ints; anything else is left for the check."""
    if isinstance(value, (list, tuple)) and all(isinstance(d, numbers.Integral) and not isinstance(d, bool) for d in value):
        return tuple(int(d) for d in value)
    return value


def _is_shape(value: Any, *, empty: bool = False) -> bool:
    if not isinstance(value, tuple) or (not value and not empty):
        return False
    return all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in value)


def _task_type_hint(value: str) -> str:
    """did_you_mean, plus abbreviations ('cls' -> classification) that difflib finds too far off."""
    hint = did_you_mean(value, TASK_TYPES)
    typed = value.lower()
    if hint or not typed:
        return hint

    def abbreviates(full: str) -> bool:  # typed's letters appear in full, in order, from the first one
        letters = iter(full)
        return typed[0] == full[0] and all(c in letters for c in typed)

    found = [t for t in TASK_TYPES if abbreviates(t)]
    return f" Did you mean {', '.join(repr(f) for f in found)}?" if found else ""


@attrs.frozen(kw_only=True)
class TaskSpec:
    """What a task is: shapes, kind, loss, metric and where it comes from."""

    name: str
    task_type: TaskType
    #: One sample's input, channels first: (C, L) for sequences, (C, H, W) for grids, (F,) for tabular.
    input_shape: tuple[int, ...] = attrs.field(converter=_shape)
    #: One sample's target: (num_classes,) for classification/multilabel, (k,) for regression,
    #: (C, L) for dense1d, (C, H, W) for dense2d.
    output_shape: tuple[int, ...] = attrs.field(converter=_shape)
    loss: str  #: a registered objective with role "task-loss"
    metric: str  #: a registered metric
    higher_is_better: bool = False
    modality: str = "unknown"  #: e.g. "pde-2d", "dna", "physiological", "motion", "text", "image"
    license: str = ""
    citation: str = ""
    source: str = ""  #: where the files are (a path or a package)
    labelled: bool = True  #: has class labels (classification); others get k-means pseudo-labels

    def __attrs_post_init__(self) -> None:
        # Checked here, once, so a bad spec fails with a ConfigError instead of deep in a conv or a head.
        for key in ("name", "loss", "metric"):
            if not isinstance(getattr(self, key), str):
                raise ConfigError(f"TaskSpec {key} must be a str, got {type(getattr(self, key)).__name__} {getattr(self, key)!r}.")
        where = f"TaskSpec {self.name!r}"
        if self.task_type not in TASK_TYPES:
            hint = _task_type_hint(self.task_type) if isinstance(self.task_type, str) else ""
            raise ConfigError(f"{where}: task_type {self.task_type!r} is not one of {', '.join(TASK_TYPES)}.{hint}")
        # input_shape () is allowed: a text proxy's samples are strings, with no tensor shape.
        if not _is_shape(self.input_shape, empty=True):
            raise ConfigError(f"{where}: input_shape must be a tuple of positive ints, like (3, 64); got {self.input_shape!r}.")
        if not _is_shape(self.output_shape):
            raise ConfigError(f"{where}: output_shape must be a non-empty tuple of positive ints, like (4,); got {self.output_shape!r}.")
        rank = _OUTPUT_RANK[self.task_type]
        if rank is not None and len(self.output_shape) != rank:
            raise ConfigError(
                f"{where}: a {self.task_type} task's output_shape is {_OUTPUT_FORM[self.task_type]}, "
                f"got {self.output_shape!r}."
            )

    @property
    def num_classes(self) -> int | None:
        return self.output_shape[0] if self.task_type in ("classification", "multilabel") else None


@attrs.frozen(kw_only=True)
class TaskData:
    """A task's splits. ``val`` is for model selection; ``test`` only for the final report."""

    spec: TaskSpec
    train: Dataset
    val: Dataset
    test: Dataset
    #: Additional evaluation splits, e.g. ``{"test-32": ...}`` for super-resolution.
    extra: Mapping[str, Dataset] = attrs.field(factory=dict)
    #: "validation": select the best state on ``val``; "fixed-budget": ``val`` is too small to select
    #: on (a few samples would pick a lucky step), so training runs its whole budget and keeps the end.
    selection: str = attrs.field(default="validation", validator=attrs.validators.in_(("validation", "fixed-budget")))

    def splits(self) -> dict[str, Dataset]:
        return {"train": self.train, "val": self.val, "test": self.test, **dict(self.extra)}


class SourceEmbedder(nn.Module):
    """The source model's own input embedding f_s (kept frozen), for source proxy data.

    ``prepare`` turns a proxy dataset's raw samples (``{"text": str, "y": ...}`` for text,
    ``{"x": image tensor, "y": ...}`` for images) into tensors once; ``forward`` embeds a
    collated batch of prepared samples into tokens (and a padding mask, or None).
    """

    modality: str = "unknown"

    def prepare(self, dataset: Dataset, *, max_tokens: int) -> Dataset:  # pragma: no cover - interface
        raise NotImplementedError

    def forward(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError  # pragma: no cover - interface


class Backbone(nn.Module):
    """A pretrained body g: token sequence in, token features out.

    Transformer bodies take ``tokens [B, N, D]`` (+ optional mask ``[B, N]``, 1 = keep);
    CNN bodies take the feature map their stem would produce, ``[B, *stem_shape]``.
    Both return features ``[B, N, D]``.
    """

    width: int  #: D
    max_tokens: int  #: token budget (learned positions) or, for CNNs, tokens of the final map
    source_modality: str  #: "text" or "image"
    family: Literal["transformer", "cnn"] = "transformer"
    #: For CNN bodies: the stem output (C, H, W) the embedder must produce.
    stem_shape: tuple[int, ...] | None = None

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError  # pragma: no cover - interface

    def source_embedder(self) -> SourceEmbedder:
        """f_s: a frozen copy of the pretrained input embedding."""
        raise NotImplementedError  # pragma: no cover - interface

    def position_embeddings(self) -> torch.Tensor | None:
        """Pretrained learned positions ``[max_tokens, D]``, or None."""
        return None

    def patch_projection(self) -> torch.Tensor | None:
        """Pretrained patch-projection conv weight ``[D, C, p, p]``, or None."""
        return None

    def param_groups(self) -> dict[str, list[str]]:
        """Group name (one of BODY_GROUPS) -> names of this module's parameters, each exactly once."""
        raise NotImplementedError  # pragma: no cover - interface


class Embedder(nn.Module):
    """f_t: target input ``[B, *input_shape]`` -> body input (tokens ``[B, N, D]`` or a stem map)."""

    num_tokens: int
    #: What heads need to map tokens back: e.g. {"kind": "seq", "length": L, "stride": s}
    #: or {"kind": "grid", "grid": (h, w), "size": (H, W)}.
    geometry: dict[str, Any]


class Head(nn.Module):
    """h_t: body features ``[B, N, D]`` -> prediction ``[B, *output_shape]``."""


class Metric:
    """A metric over a whole split: ``metric(predictions, targets) -> float``."""

    higher_is_better: bool = False

    def __call__(self, predictions: torch.Tensor, targets: torch.Tensor) -> float:
        raise NotImplementedError  # pragma: no cover - interface

    def standard_error(self, value: float, n: int) -> float | None:
        """The sampling standard error of ``value`` measured on ``n`` samples, for a metric that has a
        known one (an error rate: binomial), else None. The plateau check does not count a gain in
        the best validation metric smaller than this as progress: on 800 validation images an
        error rate moves in steps of 1/800, and the best of a flat, noisy curve keeps creeping down."""
        return None


class DistanceObjective(nn.Module):
    """A distance between two labelled feature sets ``xs [n, d]``, ``xt [m, d]``.

    ``bind_source`` lets an objective compute source-side terms once and reuse them
    across alignment steps (OTDD caches the source class-to-class distances).
    """

    needs_labels: bool = False

    def forward(self, xs, ys, xt, yt) -> torch.Tensor:
        raise NotImplementedError  # pragma: no cover - interface

    def bind_source(self, xs: torch.Tensor, ys: torch.Tensor | None) -> Callable[..., torch.Tensor]:
        return lambda xt, yt=None: self(xs, ys, xt, yt)


class RepresentationObjective(nn.Module):
    """A loss on one labelled feature set: ``objective(z [n, d], y [n]) -> scalar``."""

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError  # pragma: no cover - interface
