"""``fno``: a small Fourier Neural Operator (Li et al., ICLR 2021) trained from scratch, for dense
1-D and 2-D grid tasks.

The input field plus its grid coordinates is lifted pointwise to ``width`` channels, passes
``layers`` Fourier layers ``v -> gelu(K v + W v)`` (K: multiply the lowest ``modes`` Fourier
modes by learned complex weights; W: a pointwise linear map; no activation after the last), and
is projected pointwise to the output channels. Only Fourier modes are learned, so the model
takes any grid size: it also scores extra splits at other resolutions (darcy-16's test-32).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from mona_kit.api import ConfigError, TrainStage, config, option

from .common import TRAINABLE, ReferenceMethod, ReferenceModel

if TYPE_CHECKING:
    from mona_kit.api import Session


@config
class FnoConfig:
    width: int = option(32, min=1, help="channels of the Fourier layers")
    modes: int = option(12, min=1, help="Fourier modes kept per dimension (capped by the grid)")
    layers: int = option(4, min=1, help="Fourier layers")
    epochs: int | None = option(None, min=1, help="training epochs (None = train.epochs)")
    lr: float = option(1e-3, min=0, min_exclusive=True, help="learning rate (AdamW, train.scheduler)")
    patience: int | None = option(None, min=1, help="validation passes without a gain before training stops (None = train.patience)")


class SpectralConv(nn.Module):
    """K: the lowest modes of the real FFT times learned complex matrices ``[in, out]`` per mode.

    1-D keeps modes ``0..m-1``. 2-D keeps ``m x m`` blocks at both ends of the first axis (positive
    and negative frequencies); the real FFT's last axis holds only non-negative ones. Complex
    weights are stored as real ``[..., 2]`` pairs (safetensors-friendly).
    """

    def __init__(self, channels: int, modes: int, dims: int):
        super().__init__()
        self.modes, self.dims = modes, dims
        blocks = 1 if dims == 1 else 2
        scale = 1.0 / (channels * channels)
        self.weight = nn.Parameter(scale * torch.rand(blocks, channels, channels, *([modes] * dims), 2))

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        # cuFFT has no bf16 transform and CUDA no half-complex matmul: under autocast the spectral path runs in fp32.
        with torch.autocast(device_type=v.device.type, enabled=False):
            return self._spectral(v.float())

    def _spectral(self, v: torch.Tensor) -> torch.Tensor:
        w = torch.view_as_complex(self.weight)
        if self.dims == 1:
            length = v.shape[-1]
            vf = torch.fft.rfft(v)
            m = min(self.modes, vf.shape[-1])
            out = torch.zeros_like(vf)
            out[..., :m] = torch.einsum("bix,iox->box", vf[..., :m], w[0, ..., :m])
            return torch.fft.irfft(out, n=length)
        h, wd = v.shape[-2:]
        vf = torch.fft.rfft2(v)
        m1, m2 = min(self.modes, max(1, h // 2)), min(self.modes, vf.shape[-1])
        out = torch.zeros_like(vf)
        out[..., :m1, :m2] = torch.einsum("bixy,ioxy->boxy", vf[..., :m1, :m2], w[0, ..., :m1, :m2])
        out[..., -m1:, :m2] = torch.einsum("bixy,ioxy->boxy", vf[..., -m1:, :m2], w[1, ..., :m1, :m2])
        return torch.fft.irfft2(out, s=(h, wd))


def grid_coordinates(v: torch.Tensor) -> torch.Tensor:
    """``[B, dims, *grid]`` coordinates in [0, 1] for a field ``[B, C, *grid]``."""
    axes = [torch.linspace(0, 1, n, device=v.device, dtype=v.dtype) for n in v.shape[2:]]
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack(mesh).unsqueeze(0).expand(len(v), -1, *v.shape[2:])


class Fno(ReferenceModel):
    def __init__(self, spec, cfg: FnoConfig):
        super().__init__(spec.input_shape, spec.output_shape)
        dims = len(spec.input_shape) - 1
        conv = nn.Conv1d if dims == 1 else nn.Conv2d
        self.lift = conv(spec.input_shape[0] + dims, cfg.width, 1)
        self.spectral = nn.ModuleList(SpectralConv(cfg.width, cfg.modes, dims) for _ in range(cfg.layers))
        self.pointwise = nn.ModuleList(conv(cfg.width, cfg.width, 1) for _ in range(cfg.layers))
        self.project = nn.Sequential(conv(cfg.width, 4 * cfg.width, 1), nn.GELU(), conv(4 * cfg.width, spec.output_shape[0], 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = self.lift(torch.cat([x, grid_coordinates(x)], dim=1))
        for i, (k, w) in enumerate(zip(self.spectral, self.pointwise)):
            v = k(v) + w(v)
            if i < len(self.spectral) - 1:
                v = F.gelu(v)
        return self.project(v)


def check_grid_task(spec, what: str) -> None:
    if spec.task_type not in ("dense1d", "dense2d") or len(spec.input_shape) not in (2, 3):
        raise ConfigError(f"{what} maps grid fields to grid fields (dense1d/dense2d); task {spec.name!r} is {spec.task_type}.")
    if tuple(spec.input_shape[1:]) != tuple(spec.output_shape[1:]):
        raise ConfigError(
            f"{what} predicts on its input grid, but task {spec.name!r} maps {tuple(spec.input_shape)} to "
            f"{tuple(spec.output_shape)}; use linear or knn."
        )


class FnoMethod(ReferenceMethod):
    model_name = "fno"
    normalized = True

    def __init__(self, cfg: FnoConfig):
        self.cfg = cfg

    def check(self, session: Session) -> None:
        check_grid_task(session.spec, "fno")

    def make_model(self, session: Session) -> Fno:
        return Fno(session.spec, self.cfg)

    def stages(self, session: Session):
        return [TrainStage(name="fno", trainable=TRAINABLE, epochs=self.cfg.epochs, lr=self.cfg.lr, patience=self.cfg.patience,
                           embedder_lr=self.cfg.lr, track_reuse=False)]

