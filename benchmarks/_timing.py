"""Interleaved timing for ratios measured in one run.

On a shared CPU, load from other processes only ever adds time, so each candidate's minimum
over interleaved rounds is the least disturbed estimate, and drift hits every candidate alike.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def _sync() -> None:
    """GPU work is asynchronous: wait for it so a timing covers it (no-op on the CPU)."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def interleaved_times(candidates: dict[str, Callable[[], object]], rounds: int = 10, warmup: int = 2,
                      cpu: dict[str, list[float]] | None = None) -> dict[str, list[float]]:
    """Wall-clock seconds per call of each candidate, rounds interleaved. With ``cpu`` (a dict to
    fill), also the process's CPU seconds per call: with one thread, that is the work itself, which
    other processes on a shared CPU cannot stretch (they only delay it)."""
    for _ in range(warmup):
        for fn in candidates.values():
            fn()
    _sync()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    if cpu is not None:
        cpu.update({name: [] for name in candidates})
    for _ in range(rounds):
        for name, fn in candidates.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            _sync()
            times[name].append(time.perf_counter() - start)
            if cpu is not None:
                cpu[name].append(time.process_time() - start_cpu)
    return times


def ratio_info(times: dict[str, list[float]], numerator: str, denominator: str) -> dict[str, float]:
    """``ratio`` of minima (and of medians, for reference) plus both minima in seconds."""
    return {
        "ratio": round(min(times[numerator]) / min(times[denominator]), 4),
        "median_ratio": round(statistics.median(times[numerator]) / statistics.median(times[denominator]), 4),
        f"{numerator}_min_s": round(min(times[numerator]), 5),
        f"{denominator}_min_s": round(min(times[denominator]), 5),
    }
