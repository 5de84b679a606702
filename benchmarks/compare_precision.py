"""bf16 against fp32 at the same settings (issue 15): is the bf16 metric inside fp32's seed spread?

Reads the bf16 cells of ``benchmarks/results/bf16-main-cpu`` and the fp32 cells of the same method
and task in ``benchmarks/results/main-cpu``, or, for a task whose column left the profile, in its
archive (``main-cpu-r5``: the 16-token darcy-16 column, which the bf16 profile still runs), and prints one markdown row per task:
fp32 mean ± std and range, bf16's seeds and their mean ± std, the gap between the two means in units
of the pooled seed std, and whether bf16's mean and how many of its seeds lie within the fp32 range
widened by one fp32 standard deviation on each side. Usage::

    python benchmarks/compare_precision.py [BF16_DIR] [FP32_DIR ...]   # the first FP32_DIR with a task's cells wins
    python benchmarks/compare_precision.py > benchmarks/results/precision/table.md   # the copy the README quotes
"""

from __future__ import annotations

import sys
from pathlib import Path

from mona_kit.summary import as_number, mean_std
from mona_kit.sweep import read_cell_results

ROOT = Path(__file__).resolve().parents[1]
#: fp32 sweeps searched in order: the main table, then the archive that holds its 16-token darcy-16 cells.
FP32_DEFAULT = ("main-cpu", "main-cpu-r5")


def cell_metrics(folder: Path, method: str) -> dict[str, list[float]]:
    """``{task label: [test metric per seed]}`` of one method's finished cells under a sweep folder.
    Keyed by the cell folder's task label, not the results' task name: main-cpu's darcy-16-p2 column
    runs task darcy-16 too, at other settings."""
    out: dict[str, list[float]] = {}
    for path in sorted((folder / "cells" / method).glob("*/seed*/results.json")):
        result = read_cell_results(path)  # a damaged file is a one-line error naming the cell
        value = as_number(result["test"].get(result["metric"]))
        out.setdefault(path.parent.parent.name, []).append(value if value is not None else float("nan"))
    return out


def _shown(folder: Path) -> str:
    """A folder as the reader would type it: relative to the checkout when it lies inside it."""
    try:
        return str(folder.resolve().relative_to(ROOT))
    except ValueError:
        return str(folder)


def main(argv: list[str]) -> int:
    bf16_dir = Path(argv[0]) if argv else ROOT / "benchmarks/results/bf16-main-cpu"
    fp32_dirs = [Path(a) for a in argv[1:]] or [ROOT / "benchmarks/results" / name for name in FP32_DEFAULT]
    bf16, fp32 = cell_metrics(bf16_dir, "finetune"), {}
    for folder in fp32_dirs:
        for task, values in cell_metrics(folder, "finetune").items():
            fp32.setdefault(task, values)
    if not bf16:
        print(f"no finished bf16 cells under {bf16_dir}; run: mona-kit sweep benchmarks/profiles/bf16-main-cpu.yaml", file=sys.stderr)
        return 2
    print(f"bf16 cells of `{_shown(bf16_dir)}` against the fp32 cells of "
          f"{', then '.join(f'`{_shown(d)}`' for d in fp32_dirs)} (fine-tuning; test metric, lower is better); "
          "made by `python benchmarks/compare_precision.py`.\n")
    print("| task | fp32 mean ± std | fp32 range | bf16 seeds | bf16 mean ± std | bf16 / fp32 mean | "
          "gap / pooled std | bf16 mean within spread (seeds inside) |")
    print("|---|---|---|---|---|---|---|---|")
    for task, values in sorted(bf16.items()):
        ref = fp32.get(task, [])
        seeds = ", ".join(f"{v:.4g}" for v in values)
        if len(ref) < 2:
            print(f"| {task} | (fp32 seeds missing) | | {seeds} | | | | |")
            continue
        mean, std = mean_std(ref)
        low, high = min(ref) - std, max(ref) + std
        b_mean, b_std = mean_std(values)
        pooled = ((std**2 + b_std**2) / 2) ** 0.5 if len(values) > 1 else std
        gap = (b_mean - mean) / pooled if pooled else float("nan")
        inside = sum(low <= v <= high for v in values)
        ratio = b_mean / mean if mean else float("nan")
        b_spread = f"{b_mean:.4g} ± {b_std:.2g}" if len(values) > 1 else f"{b_mean:.4g}"
        print(f"| {task} | {mean:.4g} ± {std:.2g} (n={len(ref)}) | {min(ref):.4g} – {max(ref):.4g} | {seeds} | "
              f"{b_spread} | {ratio:.3f} | {gap:+.2f} | {'yes' if low <= b_mean <= high else 'NO'} "
              f"({inside} of {len(values)}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
