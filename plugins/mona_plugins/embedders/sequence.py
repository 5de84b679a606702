"""ORCA's 1-D embedder and a tabular one: a sequence or feature vector to body tokens."""

from __future__ import annotations

import math

import torch
from torch import nn

from mona_kit.api import Embedder

from ._common import check_input, check_rank, position_copy, smallest_divisor, token_budget
from .configs import Seq1dConfig, TabularConfig


class _TokenEmbedder(Embedder):
    """Shared tail: LayerNorm, then the (optional) copy of the body's positions."""

    label = "embedder"

    def _finish_init(self, config, task, body, n: int, grid=None):
        self.config = config
        self.input_shape = tuple(task.input_shape)
        self.num_tokens = n
        self.norm = nn.LayerNorm(body.width)
        self.positions = position_copy(body, n, grid) if config.positions else None

    def _finish(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = self.norm(tokens)
        return tokens if self.positions is None else tokens + self.positions


class Seq1dConv(_TokenEmbedder):
    """``[B, C, L]`` -> Conv1d (kernel = stride = s, the smallest divisor of L with L/s <= budget) -> LN (+ positions)."""

    label = "embedder 'seq1d-conv'"

    def __init__(self, config: Seq1dConfig, *, task, body):
        super().__init__()
        check_rank(self.label, task, (2,), "use 'grid2d-patch' for (C, H, W) or 'tabular' for (F,) inputs.")
        channels, length = task.input_shape
        stride = smallest_divisor(length, token_budget(body, config.max_tokens))
        self.proj = nn.Conv1d(channels, body.width, kernel_size=stride, stride=stride)
        self.geometry = {"kind": "seq", "length": length, "stride": stride}
        self._finish_init(config, task, body, length // stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(self.label, x, self.input_shape)
        return self._finish(self.proj(x).transpose(1, 2))


class Tabular(_TokenEmbedder):
    """``[B, F]`` -> tokens: each group of g features (one feature when F fits the budget) gets its own linear map."""

    label = "embedder 'tabular'"

    def __init__(self, config: TabularConfig, *, task, body):
        super().__init__()
        check_rank(self.label, task, (1,), "use 'seq1d-conv' for (C, L) or 'grid2d-patch' for (C, H, W) inputs.")
        (features,) = task.input_shape
        group = math.ceil(features / token_budget(body, config.max_tokens))
        n = math.ceil(features / group)
        self.pad = n * group - features
        self.weight = nn.Parameter(torch.randn(n, group, body.width) / math.sqrt(group))
        self.bias = nn.Parameter(torch.zeros(n, body.width))
        self.geometry = {"kind": "tabular", "features": features, "group": group}
        self._finish_init(config, task, body, n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(self.label, x, self.input_shape)
        if self.pad:
            x = nn.functional.pad(x, (0, self.pad))
        x = x.view(len(x), self.num_tokens, -1)
        return self._finish(torch.einsum("bng,ngd->bnd", x, self.weight) + self.bias)
