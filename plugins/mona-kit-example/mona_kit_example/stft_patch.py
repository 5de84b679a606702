"""The stft-patch embedder: a (C, L) signal as a time-frequency image, cut into patches.

    x [B, C, L] --STFT per channel--> |S| [B, C, F, T] --pad, conv patch (kernel = stride)-->
    [B, D, F', T'] --flatten--> tokens [B, F'*T', D] --LayerNorm, + positions--> body

Positions start from the body's pretrained learned positions (as the first-party 1-D
embedder does) but are the embedder's own copy, so the body stays untouched.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mona_kit.api import Embedder, ShapeError

from .configs import StftPatchConfig


def stft_grid(length: int, n_fft: int, hop: int) -> tuple[int, int]:
    """(frequency bins, frames) of ``torch.stft(..., center=True)`` on ``length`` samples."""
    return n_fft // 2 + 1, length // hop + 1


def fit_patch(bins: int, frames: int, patch: int, budget: int) -> tuple[int, int]:
    """Patch (pf, pt) starting square at ``patch``, grown along the axis with more patches until
    the token count fits ``budget``."""
    pf = pt = max(1, patch)
    while math.ceil(bins / pf) * math.ceil(frames / pt) > budget:
        if math.ceil(frames / pt) >= math.ceil(bins / pf) and pt < frames:
            pt += 1
        elif pf < bins:
            pf += 1
        else:
            pt += 1
    return pf, pt


class StftPatchEmbedder(Embedder):
    """f_t for audio-like signals on a transformer body: ``[B, C, L] -> [B, N, D]``."""

    def __init__(self, cfg: StftPatchConfig, *, task, body):
        super().__init__()
        if len(task.input_shape) != 2:
            raise ShapeError(
                f"embedder 'stft-patch' takes (C, L) signals, but task {task.name!r} has input shape "
                f"{tuple(task.input_shape)}; choose another embedder (mona-kit list embedders)."
            )
        channels, length = task.input_shape
        hop = cfg.hop or max(1, cfg.n_fft // 4)
        if cfg.n_fft < 2 or cfg.n_fft // 2 >= length:
            raise ShapeError(
                f"embedder 'stft-patch': n_fft={cfg.n_fft} does not fit signals of length {length}; "
                f"set embedder.n_fft between 2 and {2 * length - 1}."
            )
        self.config, self.task_name, self.input_shape = cfg, task.name, (channels, length)
        self.n_fft, self.hop, self.log_magnitude = cfg.n_fft, hop, cfg.log_magnitude
        bins, frames = stft_grid(length, cfg.n_fft, hop)
        self.patch = fit_patch(bins, frames, cfg.patch, body.max_tokens)
        self.grid = (math.ceil(bins / self.patch[0]), math.ceil(frames / self.patch[1]))
        self.pad = (0, self.grid[1] * self.patch[1] - frames, 0, self.grid[0] * self.patch[0] - bins)
        self.num_tokens = self.grid[0] * self.grid[1]
        self.geometry = {"kind": "grid", "grid": self.grid, "size": (bins, frames)}
        self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)
        self.proj = nn.Conv2d(channels, body.width, kernel_size=self.patch, stride=self.patch)
        self.norm = nn.LayerNorm(body.width)
        pretrained = body.position_embeddings()
        start = (
            pretrained[: self.num_tokens].detach().clone()
            if pretrained is not None and len(pretrained) >= self.num_tokens
            else torch.zeros(self.num_tokens, body.width)
        )
        self.position = nn.Parameter(start.float())

    def spectrogram(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, L] -> [B, C, F, T]`` STFT magnitudes (log1p-compressed by default)."""
        b, c, length = x.shape
        spec = torch.stft(
            x.reshape(b * c, length).float(),
            n_fft=self.n_fft,
            hop_length=self.hop,
            window=self.window,
            center=True,
            return_complex=True,
        ).abs()
        if self.log_magnitude:
            spec = torch.log1p(spec)
        return spec.reshape(b, c, *spec.shape[-2:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[1:]) != self.input_shape:
            raise ShapeError(
                f"embedder 'stft-patch' was built for task {self.task_name!r} inputs {self.input_shape}, got "
                f"{tuple(x.shape[1:])}; build the embedder for this task's input shape."
            )
        image = F.pad(self.spectrogram(x), self.pad)
        tokens = self.proj(image).flatten(2).transpose(1, 2)  # [B, N, D], frequency-major
        return self.norm(tokens) + self.position
