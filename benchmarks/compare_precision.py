"""bf16 against fp32 at the same settings (issue 15): is the bf16 metric inside fp32's seed spread?

Reads the bf16 cells of ``benchmarks/results/bf16-main-cpu`` and the fp32 cells of the same method
and task in ``benchmarks/results/main-cpu`` (three seeds), and prints one markdown row per task:
fp32 mean ± std and range, the bf16 value(s), and whether bf16 lies within the fp32 range widened
by one standard deviation on each side. Usage::

    python benchmarks/compare_precision.py [BF16_DIR] [FP32_DIR]
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from mona_kit.summary import as_number, mean_std
from mona_kit.sweep import read_cell_results

ROOT = Path(__file__).resolve().parents[1]


def cell_metrics(folder: Path, method: str) -> dict[str, list[float]]:
    """``{task: [test metric per seed]}`` of one method's finished cells under a sweep folder."""
    out: dict[str, list[float]] = {}
    for path in sorted((folder / "cells" / method).glob("*/seed*/results.json")):
        result = read_cell_results(path)  # a damaged file is a one-line error naming the cell
        value = as_number(result["test"].get(result["metric"]))
        out.setdefault(result["task"], []).append(value if value is not None else float("nan"))
    return out


def main(argv: list[str]) -> int:
    bf16_dir = Path(argv[0]) if argv else ROOT / "benchmarks/results/bf16-main-cpu"
    fp32_dir = Path(argv[1]) if len(argv) > 1 else ROOT / "benchmarks/results/main-cpu"
    bf16, fp32 = cell_metrics(bf16_dir, "finetune"), cell_metrics(fp32_dir, "finetune")
    if not bf16:
        print(f"no finished bf16 cells under {bf16_dir}; run: mona-kit sweep benchmarks/profiles/bf16-main-cpu.yaml", file=sys.stderr)
        return 2
    print("| task | fp32 mean ± std (3 seeds) | fp32 range | bf16 | bf16 / fp32 mean | within spread |")
    print("|---|---|---|---|---|---|")
    for task, values in sorted(bf16.items()):
        ref = fp32.get(task, [])
        if len(ref) < 2:
            print(f"| {task} | (fp32 seeds missing) | | {', '.join(f'{v:.4g}' for v in values)} | | |")
            continue
        mean, std = mean_std(ref)
        low, high = min(ref) - std, max(ref) + std
        inside = all(low <= v <= high for v in values)
        ratio = statistics.mean(values) / mean if mean else float("nan")
        print(f"| {task} | {mean:.4g} ± {std:.2g} | {min(ref):.4g} – {max(ref):.4g} | "
              f"{', '.join(f'{v:.4g}' for v in values)} | {ratio:.3f} | {'yes' if inside else 'NO'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
