"""``train.precision``: fp32, bf16 autocast (CPU and GPU) or fp16 autocast with a gradient scaler (GPU).

Master weights and optimiser state stay fp32 in every mode; autocast only runs the forward
(and so the matching backward) of matmul-heavy ops in the low-precision type. The training loop
(:func:`mona_kit.loop.fit`) applies it to every stage; code with its own loop uses it so::

    amp = precision_for(session)
    with amp.autocast():
        loss = ...
    amp.scale(loss).backward()
    if amp.unscale(optimizer, params) and check_gradients(...):   # fp16: skip an overflowed step
        clip(...); amp.step(optimizer)

Double backward (MoNA's meta-gradient) works under autocast: the inner ``autograd.grad`` graph
records the same casts as any forward.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

import torch

from .errors import ConfigError

PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")
_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(name: str, device: torch.device) -> None:
    """Refuse what cannot run on ``device`` (fp16 autocast with a scaler is a GPU mode)."""
    if name not in _DTYPES:
        raise ConfigError(f"train.precision must be one of {', '.join(PRECISIONS)}, got {name!r}.")
    if name == "fp16" and device.type != "cuda":
        raise ConfigError(
            f"train.precision=fp16 needs a CUDA device, but the run is on {device.type}; use train.precision=bf16 on the CPU."
        )


#: CPU flags (Linux /proc/cpuinfo) of native bf16 arithmetic: AVX-512 BF16 and AMX.
BF16_CPU_FLAGS: tuple[str, ...] = ("avx512_bf16", "amx_bf16")


def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool | None:
    """Whether this CPU computes in bf16 natively; None where that cannot be read (not Linux)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as handle:
            flags = next((line for line in handle if line.startswith("flags")), None)
    except OSError:
        return None
    if flags is None:
        return None
    words = set(flags.split(":", 1)[-1].split())
    return any(flag in words for flag in BF16_CPU_FLAGS)


def bf16_cpu_warning(name: str, device: torch.device, cpuinfo: str = "/proc/cpuinfo") -> str | None:
    """A one-line warning when bf16 is asked for on a CPU without native bf16: there autocast
    emulates it and a step is several times slower than fp32 (issue 15 measured a fine-tuning cell
    over 10x slower on an AVX2-only EPYC), so the option would cost time instead of saving it."""
    if name != "bf16" or device.type != "cpu" or cpu_has_native_bf16(cpuinfo) is not False:
        return None
    return (
        "warning: train.precision=bf16 on a CPU without native bf16 (no avx512_bf16 or amx_bf16 in "
        f"{cpuinfo}): it runs emulated and much slower than fp32; use train.precision=fp32 here."
    )


class Precision:
    """Autocast context, (scaled) backward and optimiser step for one stage's optimiser."""

    def __init__(self, name: str, device: torch.device | str) -> None:
        device = torch.device(device)
        check_precision(name, device)
        self.name = name
        self.device_type = device.type
        self.dtype = _DTYPES[name]
        # One scaler per stage: its scale adapts to that stage's losses.
        self.scaler = torch.amp.GradScaler(device.type) if name == "fp16" else None

    @property
    def enabled(self) -> bool:
        return self.dtype is not None

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        """The loss to backpropagate: scaled in fp16 (so small gradients do not underflow), else itself."""
        return self.scaler.scale(loss) if self.scaler is not None else loss

    def unscale(self, optimizer: torch.optim.Optimizer, params: Iterable[torch.Tensor]) -> bool:
        """Gradients back at their true scale (before clipping or checks). False when fp16
        overflowed: the scaler then skips this step and lowers its scale, as GradScaler does."""
        if self.scaler is None:
            return True
        self.scaler.unscale_(optimizer)
        grads = [p.grad for p in params if p.grad is not None]
        if not grads or torch.isfinite(torch.nn.utils.get_total_norm(grads)):
            return True
        self.scaler.step(optimizer)  # sees the recorded inf and does not step
        self.scaler.update()
        optimizer.zero_grad(set_to_none=True)
        return False

    @property
    def loss_scale(self) -> float | None:
        """fp16's current loss scale (None in fp32 and bf16)."""
        return float(self.scaler.get_scale()) if self.scaler is not None else None

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is None:
            optimizer.step()
            return
        self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self) -> dict[str, Any]:
        """The scaler's state for stage checkpoints (empty unless fp16)."""
        return self.scaler.state_dict() if self.scaler is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)


def precision_for(session) -> Precision:
    """A fresh :class:`Precision` for one stage of ``session`` (``train.precision``)."""
    return Precision(session.config.train.precision, session.device)
