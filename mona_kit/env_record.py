"""What a run records of its environment (env.json): versions, plugins, CPU, threads, git hash, command line."""

from __future__ import annotations

import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def git_hash(cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd or Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def environment_record(kit, seed: int, device: str) -> dict[str, Any]:
    import importlib.metadata as md

    versions = {}
    for dist in ("mona-kit", "torch", "torchvision", "timm", "transformers", "pluggy", "attrs", "torchdata", "numpy", "pot"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            versions[dist] = None
    return {
        "seed": seed,
        "device": device,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_model": cpu_model(),  # kernels differ between CPUs: the same config can round differently
        "cpu_threads": _torch_threads(),  # a sweep's launcher shares the cores out between its cells
        "versions": versions,
        "plugins": {name: {"distribution": i.distribution, "version": i.version} for name, i in kit.plugins.items()},
        "git": git_hash(),
        "argv": sys.argv,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def cpu_model() -> str | None:
    """The CPU's model name (Linux: /proc/cpuinfo; elsewhere what the platform reports), or None."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip() or None
    except OSError:
        pass
    return platform.processor() or None


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()
