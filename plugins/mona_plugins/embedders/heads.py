"""Task heads: body features ``[B, N, D]`` -> predictions ``[B, *output_shape]``."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mona_kit.api import ConfigError, Head

from ._common import check_input
from .configs import DenseHeadConfig, PooledHeadConfig


class PooledHead(Head):
    """Mean-pool the tokens, then Linear (classification, multilabel with BCE, regression)."""

    def __init__(self, config: PooledHeadConfig, *, task, body, embedder, label: str = "head"):
        super().__init__()
        self.config = config
        self.label = label
        self.output_shape = tuple(task.output_shape)
        self.feature_shape = (embedder.num_tokens, body.width)
        self.dropout = nn.Dropout(config.dropout)
        self.fc = nn.Linear(body.width, math.prod(self.output_shape))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        check_input(self.label, features, self.feature_shape)
        return self.fc(self.dropout(features.mean(dim=1))).view(len(features), *self.output_shape)


class Dense1dHead(Head):
    """Each token emits its slice of s samples: ``[B, N, D] -> [B, C_out, N*s]``, resized to L if N*s != L."""

    label = "head 'dense-1d'"

    def __init__(self, config: DenseHeadConfig, *, task, body, embedder):
        super().__init__()
        if len(task.output_shape) != 2:
            raise ConfigError(f"{self.label} predicts (C, L) targets, task {task.name!r} has {tuple(task.output_shape)}.")
        self.config = config
        self.channels, self.length = task.output_shape
        self.feature_shape = (embedder.num_tokens, body.width)
        self.per_token = math.ceil(self.length / embedder.num_tokens)
        self.fc = nn.Linear(body.width, self.channels * self.per_token)
        self.refine = nn.Conv1d(self.channels, self.channels, 3, padding=1) if config.refine else None

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        check_input(self.label, features, self.feature_shape)
        b, n, _ = features.shape
        y = self.fc(features).view(b, n, self.channels, self.per_token).permute(0, 2, 1, 3).reshape(b, self.channels, -1)
        if y.shape[-1] != self.length:
            y = F.interpolate(y, size=self.length, mode="linear", align_corners=False)
        return y if self.refine is None else y + self.refine(y)


class Dense2dHead(Head):
    """Tokens back to the embedder's grid, pixel-shuffled up by r, resized to the target grid."""

    label = "head 'dense-2d'"

    def __init__(self, config: DenseHeadConfig, *, task, body, embedder):
        super().__init__()
        grid = embedder.geometry.get("grid")
        if grid is None:
            raise ConfigError(
                f"{self.label} needs an embedder with a token grid (grid2d-patch, cnn-stem), got geometry "
                f"{embedder.geometry.get('kind')!r}; choose a grid embedder."
            )
        if len(task.output_shape) != 3:
            raise ConfigError(f"{self.label} predicts (C, H, W) targets, task {task.name!r} has {tuple(task.output_shape)}.")
        self.config = config
        self.channels, self.height, self.width = task.output_shape
        self.grid = tuple(grid)
        self.feature_shape = (embedder.num_tokens, body.width)
        self.scale = max(1, math.ceil(max(self.height / self.grid[0], self.width / self.grid[1])))
        self.fc = nn.Linear(body.width, self.channels * self.scale**2)
        self.refine = nn.Conv2d(self.channels, self.channels, 3, padding=1) if config.refine else None

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        check_input(self.label, features, self.feature_shape)
        y = self.fc(features).transpose(1, 2).reshape(len(features), -1, *self.grid)
        y = F.pixel_shuffle(y, self.scale)
        if y.shape[-2:] != (self.height, self.width):
            y = F.interpolate(y, size=(self.height, self.width), mode="bilinear", align_corners=False)
        return y if self.refine is None else y + self.refine(y)
