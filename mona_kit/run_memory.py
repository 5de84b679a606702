"""Peak memory a run records: host RAM of the process, and the GPU allocator's peak of its device."""

from __future__ import annotations

import resource

import torch


def peak_memory_mb() -> float:
    """The process's peak resident memory (host RAM), in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cuda_in_use(device: torch.device) -> bool:
    """Whether ``device`` is a GPU whose allocator counters exist (reading them must not start CUDA)."""
    return device.type == "cuda" and torch.cuda.is_initialized()


def reset_peak_gpu_memory(device: torch.device) -> None:
    """Start ``device``'s peak-memory counter afresh, so that a run records its own peak and not an
    earlier run's in the same process (``mona-kit run --methods a,b``, the Python API in a loop)."""
    if _cuda_in_use(device):
        torch.cuda.reset_peak_memory_stats(device)


def peak_gpu_memory_mb(device: torch.device) -> float | None:
    """The most GPU memory torch allocated on ``device`` since the run began (this rank's GPU), in MB; None off CUDA."""
    if not _cuda_in_use(device):
        return None
    return torch.cuda.max_memory_allocated(device) / 2**20
