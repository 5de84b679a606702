"""Re-derive finished cells' plateau records under the noise floor that runs record since it landed.

    python benchmarks/recheck_plateau.py benchmarks/results/main-cpu            # print what would change
    python benchmarks/recheck_plateau.py benchmarks/results/main-cpu --write    # and record it

Cells run before the plateau check learned the metric's sampling error (their records have no
``val_samples``; ``Metric.standard_error``) were judged by the 2 % rule alone. For a metric that declares a standard
error, this rebuilds the last training stage's validation curve from the cell's metrics.jsonl, checks
that the rule as recorded gives back the recorded improvement (else the cell is left alone and
named), and applies the same rule a new run applies. ``--write`` stores the new record in
results.json and keeps the old verdict under ``plateaued_before_noise_floor``, with ``rederived_by``
naming this script, so the change stays visible. Cells already carrying ``val_samples`` and metrics without
a standard error are left as they are.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import yaml

from mona_kit.atomic_io import atomic_write_text
from mona_kit.kit import load_kit
from mona_kit.plateau import plateau_record, sampling_error
from mona_kit.runs import RunDir, _jsonable
from mona_kit.summary import as_number

SCRIPT = "benchmarks/recheck_plateau.py"


def validation_curve(run_dir: Path, stage: str, metric: str, higher_is_better: bool) -> list[tuple[int, float]]:
    """(step, lower-is-better score) of a stage's validation passes; a step logged twice (a resumed
    run re-logging it) keeps its last value."""
    by_step: dict[int, float] = {}
    for event in RunDir(run_dir).events():  # the runs' own reader: a cut-off last line is skipped, damage named
        if event.get("stage") == stage and event.get("split") == "val" and "step" in event and metric in event:
            value = as_number(event[metric])  # runs write NaN / inf as strings
            if value is not None:
                by_step[int(event["step"])] = -value if higher_is_better else value
    return sorted(by_step.items())


def validation_samples(kit, config: dict[str, Any]) -> int:
    """How many validation samples the cell's task config gives (the split is seeded: the same one)."""
    options = dict(config["task"])
    name = options.pop("name")
    return len(kit.datasets.get(name).build(options).splits()["val"])


def recheck(kit, run_dir: Path, sizes: dict[str, int]) -> tuple[str, dict[str, Any] | None]:
    """(what happened, the new results.json content or None when nothing changes)."""
    results = json.loads((run_dir / "results.json").read_text())
    records = results.get("plateau") or {}
    if not records:
        return "no plateau record (a reference)", None
    stage, record = list(records.items())[-1]
    if "val_samples" in record:  # recorded (or re-derived) under the noise-aware rule already
        return "already has a noise floor", None
    metric = kit.metrics.get(results["metric"]).build()
    if metric.standard_error(0.5, 100) is None:
        return f"{results['metric']} declares no standard error", None
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    key = json.dumps(config["task"], sort_keys=True)
    if key not in sizes:
        sizes[key] = validation_samples(kit, config)
    n_val = sizes[key]
    history = validation_curve(run_dir, stage, results["metric"], results["higher_is_better"])
    sign = -1.0 if results["higher_is_better"] else 1.0
    args = (history, record["budget"], record["window"], record["tolerance"])
    plain = plateau_record(*args, stopped_early=record["stopped_early"])
    recorded = as_number(record["improvement"])
    if plain["improvement"] is None or recorded is None or not math.isfinite(recorded):
        return "left alone: no finite validation best before the window to measure a gain from", None
    if plain["plateaued"] != record["plateaued"] or not math.isclose(plain["improvement"], recorded, rel_tol=1e-9):
        return f"left alone: its logged curve gives improvement {plain['improvement']}, not the recorded {recorded}", None
    new = plateau_record(*args, stopped_early=record["stopped_early"], standard_error=sampling_error(metric, n_val))
    updated = {**record, **new, "val_samples": n_val, "plateaued_before_noise_floor": record["plateaued"], "rederived_by": SCRIPT}
    results["plateau"][stage] = updated
    verdict = "unchanged" if new["plateaued"] == record["plateaued"] else "now plateaued"
    cut = (1.0 - record["window"]) * record["budget"]
    best_before = min(s for step, s in history if step <= cut)
    gain = best_before - min(s for _, s in history)
    return (f"{verdict} (best validation {sign * best_before:.4g} -> {sign * (best_before - gain):.4g}: a gain of "
            f"{new['improvement']:.3g} relative, {gain:.4g} absolute; noise {new['noise']:.4g} on {n_val} samples)"), results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="a sweep's output folder (its cells/ are rechecked)")
    parser.add_argument("--write", action="store_true", help="record the re-derived plateau in each changed cell's results.json")
    args = parser.parse_args(argv)
    cells = sorted((args.results / "cells").glob("*/*/seed*/results.json"))
    if not cells:
        print(f"recheck_plateau: no finished cell under {args.results / 'cells'}; give a sweep's output folder.", file=sys.stderr)
        return 2
    kit = load_kit()
    sizes: dict[str, int] = {}
    for path in cells:
        what, updated = recheck(kit, path.parent, sizes)
        label = path.parent.relative_to(args.results / "cells")
        if updated is None and not what.startswith("left alone"):
            continue
        print(f"{label}: {what}")
        if updated is not None and args.write:
            atomic_write_text(path, json.dumps(_jsonable(updated), indent=2, sort_keys=False) + "\n")  # as runs write it
    return 0


if __name__ == "__main__":
    sys.exit(main())
