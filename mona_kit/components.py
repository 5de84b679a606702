"""The contracts every component meets. Plugins subclass these (or match them).

Shapes use B = batch, N = tokens, D = the body's width. Samples are
``dict[str, Tensor]`` with ``"x"`` (input, channels first) and ``"y"`` (target).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs
import torch
from torch import nn
from torch.utils.data import Dataset

TaskType = Literal["classification", "multilabel", "regression", "dense1d", "dense2d"]
TASK_TYPES = ("classification", "multilabel", "regression", "dense1d", "dense2d")

#: The parameter groups a body exposes, so methods freeze by group, not by attribute surgery.
BODY_GROUPS = ("embeddings", "attention", "mlp", "norm", "position", "head", "other")


@attrs.frozen(kw_only=True)
class TaskSpec:
    """What a task is: shapes, kind, loss, metric and where it comes from."""

    name: str
    task_type: TaskType = attrs.field(validator=attrs.validators.in_(TASK_TYPES))
    #: One sample's input, channels first: (C, L) for sequences, (C, H, W) for grids, (F,) for tabular.
    input_shape: tuple[int, ...]
    #: One sample's target: (num_classes,) for classification/multilabel, (k,) for regression,
    #: (C, L) for dense1d, (C, H, W) for dense2d.
    output_shape: tuple[int, ...]
    loss: str  #: a registered objective with role "task-loss"
    metric: str  #: a registered metric
    higher_is_better: bool = False
    modality: str = "unknown"  #: e.g. "pde-2d", "dna", "physiological", "motion", "text", "image"
    license: str = ""
    citation: str = ""
    source: str = ""  #: where the files are (a path or a package)
    labelled: bool = True  #: has class labels (classification); others get k-means pseudo-labels

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
