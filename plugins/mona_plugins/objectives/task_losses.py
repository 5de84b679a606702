"""Task losses (role "task-loss"): ``loss(prediction, target) -> scalar``."""

from __future__ import annotations

import torch
from torch import nn


class RelativeL2Loss(nn.Module):
    """Mean over samples of ``||pred - y||_2 / ||y||_2`` (FNO's LpLoss, p = 2): scale-free for dense regression."""

    def __init__(self, eps: float = 1e-12):
        super().__init__()
        self.eps = eps

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        n = prediction.shape[0]
        diff = (prediction - target).reshape(n, -1).norm(dim=1)
        ref = target.reshape(n, -1).norm(dim=1).clamp_min(self.eps)
        return (diff / ref).mean()


class BCELoss(nn.Module):
    """Binary cross-entropy on logits; targets are 0/1 of the prediction's shape (multilabel, masks)."""

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.binary_cross_entropy_with_logits(prediction, target.to(prediction.dtype))


class CrossEntropyLoss(nn.Module):
    """Cross-entropy of logits ``[B, C]`` against class indices ``[B]``."""

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(prediction, target.long())


class MSELoss(nn.Module):
    """Mean squared error (targets cast to the prediction's dtype)."""

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(prediction, target.to(prediction.dtype))


def register_all(register):
    register("cross-entropy", CrossEntropyLoss, role="task-loss", summary="cross-entropy of logits vs class indices (classification)")
    register("bce", BCELoss, role="task-loss", summary="binary cross-entropy with logits (multilabel, pixel masks)")
    register("mse", MSELoss, role="task-loss", summary="mean squared error (regression, dense maps)")
    register("relative-l2", RelativeL2Loss, role="task-loss", summary="mean over samples of ||pred-y||/||y|| (dense regression, FNO's LpLoss)")
