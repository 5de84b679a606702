"""2-D embedders: ORCA's patch projection for token bodies, and a stem stand-in for CNN bodies."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mona_kit.api import ConfigError, Embedder

from ._common import check_input, check_rank, grid_for, token_budget
from .configs import CnnStemConfig, Grid2dConfig
from .sequence import _TokenEmbedder


def tiled_kernel(pretrained: torch.Tensor, channels: int, patch: int) -> torch.Tensor:
    """A ``[D, C_src, p0, p0]`` patch kernel for ``channels`` inputs and patch ``patch``.

    Source channels are tiled over the target ones and scaled by C_src / C, so a constant
    input gives the same response as in the source modality.
    """
    w = pretrained.detach().float()
    if w.shape[-1] != patch or w.shape[-2] != patch:
        w = F.interpolate(w, size=(patch, patch), mode="bilinear", align_corners=False) * (w.shape[-1] / patch) ** 2
    src = w.shape[1]
    return w[:, [i % src for i in range(channels)]] * (src / channels)


class Grid2dPatch(_TokenEmbedder):
    """``[B, C, H, W]`` -> resize -> Conv2d (kernel = stride = patch) -> LN (+ positions), row-major tokens."""

    label = "embedder 'grid2d-patch'"

    def __init__(self, config: Grid2dConfig, *, task, body):
        super().__init__()
        check_rank(self.label, task, (3,), "use 'seq1d-conv' for (C, L) or 'tabular' for (F,) inputs.")
        channels, height, width = task.input_shape
        budget = token_budget(body, config.max_tokens)
        pretrained = body.patch_projection()
        size = (config.size, config.size) if config.size else (height, width)
        patch = config.patch or (pretrained.shape[-1] if pretrained is not None else None)
        if patch is None:
            patch = next(p for p in range(1, max(size) + 1) if math.ceil(size[0] / p) * math.ceil(size[1] / p) <= budget)
        gh, gw = grid_for(size, patch, budget)
        self.size = (gh * patch, gw * patch)
        self.proj = nn.Conv2d(channels, body.width, kernel_size=patch, stride=patch)
        if pretrained is not None and config.init == "pretrained":
            with torch.no_grad():
                self.proj.weight.copy_(tiled_kernel(pretrained, channels, patch))
        self.geometry = {"kind": "grid", "grid": (gh, gw), "size": self.size, "patch": patch}
        self._finish_init(config, task, body, gh * gw, grid=(gh, gw))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(self.label, x, self.input_shape)
        if tuple(x.shape[-2:]) != self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        return self._finish(self.proj(x).flatten(2).transpose(1, 2))


class CnnStem(Embedder):
    """For CNN bodies: ``[B, C, H, W]`` (or ``[B, C, L]``, folded into a square) -> the stem map ``[B, *stem_shape]``.

    Resize to the stem map's grid, then 3x3 conv + BatchNorm (+ activation), as a stem ends.
    ``num_tokens`` is what the body then emits (its final map, ``body.max_tokens``).
    """

    label = "embedder 'cnn-stem'"

    def __init__(self, config: CnnStemConfig, *, task, body):
        super().__init__()
        check_rank(self.label, task, (2, 3), "give (C, L) or (C, H, W) inputs.")
        if body.family != "cnn" or not body.stem_shape:
            raise ConfigError(
                f"{self.label} needs a CNN body with a stem_shape, got a {body.family} body; use 'grid2d-patch' or "
                f"'seq1d-conv' for transformer bodies."
            )
        self.config = config
        self.input_shape = tuple(task.input_shape)
        self.stem_shape = tuple(body.stem_shape)
        stem_channels, sh, sw = self.stem_shape
        self.fold = math.isqrt(self.input_shape[1] - 1) + 1 if len(self.input_shape) == 2 else None
        self.conv = nn.Conv2d(self.input_shape[0], stem_channels, kernel_size=3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(stem_channels)
        self.act = nn.ReLU() if config.activation == "relu" else nn.Identity()
        self.num_tokens = body.max_tokens
        grid = getattr(body, "feature_grid", None)
        if grid is None:
            side = math.isqrt(body.max_tokens)
            grid = (side, side) if side * side == body.max_tokens else (1, body.max_tokens)
        self.geometry = {"kind": "grid", "grid": tuple(grid), "size": (sh, sw)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(self.label, x, self.input_shape)
        if self.fold is not None:  # a sequence, padded and folded row-major into a square
            x = F.pad(x, (0, self.fold**2 - x.shape[-1])).view(len(x), x.shape[1], self.fold, self.fold)
        x = F.interpolate(x, size=self.stem_shape[1:], mode="bilinear", align_corners=False)
        return self.act(self.bn(self.conv(x)))
