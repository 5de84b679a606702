"""How much a regression task's targets lose when rounded to bf16 in their original units.

Before commit 7930d60 the head's output was mapped back to original units under bf16 autocast, so a
bf16 run's loss saw its predictions rounded there. This prints, per task, the rounding error of the
training targets themselves: in standard deviations of the targets (what the standardised loss saw)
and as the task's relative error. A task whose rounding is far below the errors its models reach lost
nothing to it; one where the two meet (diffusion-reaction-1d) trained against a floor.

    python benchmarks/target_rounding.py [TASK[:n_train=N] ...]
"""

from __future__ import annotations

import sys

import torch

from mona_kit.kit import Kit, load_kit
from mona_kit.normalize import fit, stack_column

#: The regression columns of main-cpu, with its options.
DEFAULT_TASKS = ("darcy-16", "burgers-1d", "advection-1d:n_train=1250", "diffusion-reaction-1d:n_train=1250")


def parse(spec: str) -> tuple[str, dict[str, int]]:
    """``name[:key=int,...]`` -> (name, options)."""
    name, _, rest = spec.partition(":")
    options = {k: int(v) for k, v in (item.split("=", 1) for item in rest.split(",") if item)}
    return name, options


def rounding_row(name: str, options: dict[str, int], kit: Kit | None = None) -> str:
    kit = kit or load_kit()
    task = kit.datasets.get(name).build(options)
    y = stack_column(task.splits()["train"], "y").double()
    stats = fit(y.float(), "global")
    rounded = y.to(torch.bfloat16).double()
    rms_std = float((rounded - y).pow(2).mean().sqrt() / stats.std.double())
    error = kit.metrics.get(task.spec.metric).build()(rounded, y)  # the task's own metric (relative L2 or nRMSE)
    return f"| {name} | {float(stats.mean):.4g} | {float(stats.std):.4g} | {rms_std:.3g} | {error:.3g} |"


def main(argv: list[str]) -> int:
    kit = load_kit()
    print("| task | target mean | target std | bf16 rounding, RMS in std | bf16 rounding, task metric |")
    print("|---|---|---|---|---|")
    for spec in argv or DEFAULT_TASKS:
        print(rounding_row(*parse(spec), kit=kit))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
