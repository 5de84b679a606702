"""Normalisation of inputs and regression targets, fitted on the training split.

PDE fields come in physical units (Darcy's pressure is ~1e-2, its permeability 3..12); a new
embedder and head start far from that scale and spend most of a short budget finding it. As in
FNO and ORCA, inputs and targets are standardised with training statistics (inputs per point,
targets by one global mean and scale by default; see :func:`resolve_mode`). The statistics live
*inside* the model as buffers, applied by hooks:

- the embedder standardises its input (a forward pre-hook), so every method that calls
  ``model.embedder(x)`` directly (MoNA's inner loop, PaRe) sees the same input;
- the head maps its output back to original units (a forward hook), so metrics and predictions
  are always in the task's own units, and checkpoints carry the statistics;
- the training loss is taken in standardised units (:class:`StandardizedLoss`), so gradients
  do not shrink with the targets' scale.

Both the restore and the loss run in fp32 even under bf16/fp16 autocast. A target far from zero
relative to its spread (diffusion-reaction-1d's field sits at 0.73 +- 0.0185) rounded to bf16 in
original units moves in steps of 2^-8 = 0.0039, a fifth of a standard deviation: the loss could not
see errors below that, and bf16 training stalled at validation nRMSE 0.0012 where fp32 went on.
"""

from __future__ import annotations

import attrs
import torch
from torch import nn
from torch.nn import functional as F

#: How a tensor is standardised: per element of a sample ("pointwise", FNO's UnitGaussianNormalizer),
#: per channel, by one scalar ("global"), or not at all.
MODES = ("pointwise", "channel", "global", "none")
#: Task types whose targets are numbers to regress (classification targets are labels).
REGRESSION_TYPES = ("regression", "dense1d", "dense2d")
#: Added to the standard deviation: a field fixed at a boundary (Darcy's zero pressure) has std 0.
EPS = 1e-5


@attrs.frozen
class Standardizer:
    """``(t - mean) / std`` and back; ``mean`` and ``std`` broadcast against one sample."""

    mean: torch.Tensor
    std: torch.Tensor


def fit(samples: torch.Tensor, mode: str) -> Standardizer | None:
    """Statistics of ``samples`` (N, *shape) under ``mode``; None for ``"none"``."""
    if mode == "none":
        return None
    t = samples.double()
    if mode == "pointwise":
        mean, std = t.mean(0), t.std(0, unbiased=False)
    elif mode == "channel":
        dims = [0] + list(range(2, t.ndim))
        mean, std = t.mean(dims), t.std(dims, unbiased=False)
        shape = (-1,) + (1,) * (t.ndim - 2)
        mean, std = mean.reshape(shape), std.reshape(shape)
    elif mode == "global":
        mean, std = t.mean(), t.std(unbiased=False)
    else:
        raise ValueError(f"unknown normalisation mode {mode!r}; modes are {MODES}")
    return Standardizer(mean.float(), (std + EPS).float())


def resolve_mode(mode: str, task_type: str, *, target: bool = False) -> str:
    """``auto``: inputs of regression and PDE tasks pointwise, their targets by one global scale;
    classification inputs and labels not at all (the time-series loaders standardise their series
    themselves; one-hot DNA stays one-hot).

    Targets are not standardised pointwise by default: measured on darcy-16 (fine-tuning, 200 steps),
    pointwise targets stalled at validation relative L2 0.27 while global ones kept falling (0.28 and
    going down, like no normalisation); a field pinned at a boundary has a near-zero spread there,
    and dividing by it distorts what the loss weighs.
    """
    if mode != "auto":
        return mode
    if task_type not in REGRESSION_TYPES:
        return "none"
    return "global" if target else "pointwise"


def stack_column(dataset, key: str, limit: int | None = None) -> torch.Tensor:
    """Column ``key`` of a split as one tensor (tensor datasets directly, others sample by sample)."""
    tensors = getattr(dataset, "tensors", None)
    if isinstance(tensors, dict) and torch.is_tensor(tensors.get(key)):
        column = tensors[key]
        return column if limit is None else column[:limit]
    n = len(dataset) if limit is None else min(limit, len(dataset))
    return torch.stack([torch.as_tensor(dataset[i][key]) for i in range(n)])


def _fit_to(stat: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``stat`` for a batch ``t``; pointwise statistics are resampled to another grid size (a
    super-resolution split such as darcy's test-32), as a resolution-free operator would see them."""
    stat = stat.to(t.dtype)
    if stat.ndim == t.ndim - 1 and stat.ndim >= 2 and stat.shape[1:] != t.shape[2:]:
        mode = "linear" if stat.ndim == 2 else "bilinear" if stat.ndim == 3 else "trilinear"
        stat = F.interpolate(stat.unsqueeze(0), size=t.shape[2:], mode=mode, align_corners=True).squeeze(0)
    return stat


def _standardise_input(module: nn.Module, args: tuple) -> tuple:
    x, *rest = args
    return ((x - _fit_to(module.input_mean, x)) / _fit_to(module.input_std, x), *rest)


def _restore_output(module: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
    out = out.float()  # in original units bf16 would round away what the loss must see (module doc)
    return out * _fit_to(module.output_std, out) + _fit_to(module.output_mean, out)


def attach_input(module: nn.Module, stats: Standardizer | None) -> None:
    """``module`` standardises its first argument with ``stats`` (saved as buffers with the module)."""
    if stats is None:
        return
    module.register_buffer("input_mean", stats.mean.clone())
    module.register_buffer("input_std", stats.std.clone())
    module.register_forward_pre_hook(_standardise_input)


def attach_output(module: nn.Module, stats: Standardizer | None) -> None:
    """``module``'s output is mapped back to original units with ``stats`` (saved as buffers)."""
    if stats is None:
        return
    module.register_buffer("output_mean", stats.mean.clone())
    module.register_buffer("output_std", stats.std.clone())
    module.register_forward_hook(_restore_output)


class StandardizedLoss(nn.Module):
    """A task loss computed in standardised units: ``loss((pred - mean) / std, (y - mean) / std)``.

    Predictions leave the head in original units, but a loss taken there would hand the body
    gradients scaled by the targets' spread (Darcy's pressure std is ~1e-3), which lands them near
    Adam's epsilon and all but stops the body from learning. In standardised units they are O(1).
    """

    def __init__(self, loss: nn.Module, stats: Standardizer):
        super().__init__()
        self.loss = loss
        self.register_buffer("mean", stats.mean.clone(), persistent=False)
        self.register_buffer("std", stats.std.clone(), persistent=False)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        pred, target = pred.float(), target.float()  # fp32 under autocast too (module doc)
        mean, std = _fit_to(self.mean.to(pred.device), pred), _fit_to(self.std.to(pred.device), pred)
        return self.loss((pred - mean) / std, (target - mean) / std)


@attrs.frozen
class Normalization:
    """A run's fitted input and target statistics (either may be None: not normalised)."""

    inputs: Standardizer | None
    targets: Standardizer | None
    input_mode: str
    target_mode: str

    @classmethod
    def fit_task(cls, train, task_type: str, input_mode: str, target_mode: str) -> "Normalization":
        input_mode = resolve_mode(input_mode, task_type)
        target_mode = resolve_mode(target_mode, task_type, target=True) if task_type in REGRESSION_TYPES else "none"
        inputs = fit(stack_column(train, "x"), input_mode) if input_mode != "none" else None
        targets = fit(stack_column(train, "y"), target_mode) if target_mode != "none" else None
        return cls(inputs, targets, input_mode, target_mode)

    def attach(self, input_module: nn.Module, output_module: nn.Module) -> None:
        """Standardise what ``input_module`` receives and restore what ``output_module`` returns."""
        attach_input(input_module, self.inputs)
        attach_output(output_module, self.targets)

    def wrap_loss(self, loss: nn.Module) -> nn.Module:
        """The task loss the model trains on (standardised units when targets are standardised)."""
        return loss if self.targets is None else StandardizedLoss(loss, self.targets)

    def describe(self) -> dict[str, str]:
        return {"inputs": self.input_mode, "targets": self.target_mode}

