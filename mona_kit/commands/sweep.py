"""``mona-kit sweep PROFILE [key=value ...]``: methods x tasks x seeds, resumable, then
``table.md``, ``results.csv``, ``errors.png`` and ``knowledge-reuse.png`` in the profile's output.
``--report-only`` redraws them from finished cells."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from tqdm.auto import tqdm


def configure(parser) -> None:
    parser.add_argument("items", nargs="+", metavar="PROFILE|key=value", help="a sweep profile (YAML) and overrides for every cell")
    parser.add_argument("--output", type=Path, default=None, help="output folder (default: the profile's)")
    parser.add_argument("--report-only", action="store_true", help="only rebuild the table and plots")
    parser.add_argument("--only", default=None, help="comma-separated method labels to run")


def run(args, kit) -> int:
    from ..report import write_report
    from ..sweep import apply_cli_overrides, cells, collect, expand_methods, read_profile, run_cell
    from .run import split_items

    path, overrides = split_items(args.items)
    profile = apply_cli_overrides(read_profile(Path(path)), overrides)
    output = args.output or Path(profile["output"])
    todo = list(cells(profile, kit))
    if args.only:
        keep = set(args.only.split(","))
        todo = [c for c in todo if c.method in keep]
    if not args.report_only:
        failures = []
        bar = tqdm(todo, desc=f"sweep {profile['name']}", dynamic_ncols=True)
        for cell in bar:
            bar.set_postfix_str(cell.key)
            result = run_cell(output, cell, keep_checkpoints=bool(profile.get("keep_checkpoints", False)))
            status = result["status"]
            if status == "failed":
                failures.append((cell.key, result["error"], result["log"]))
            tqdm.write(f"{cell.key}: {status}" + (f" ({result['error']})" if status == "failed" else
                       f" test {result['metric']}={result['test'][result['metric']]:.4g} in {result['wall_time_s']:.0f}s"))
        for key, error, log in failures:
            print(f"FAILED {key}: {error} (log: {log})", file=sys.stderr)
    rows = collect(output)
    # Tables and plots list methods and tasks in the profile's order.
    method_order = {label: i for i, label in enumerate(expand_methods(profile["methods"], kit))}
    task_order = {label: i for i, label in enumerate(profile["tasks"])}
    rows.sort(key=lambda r: (method_order.get(r["method_label"], len(method_order)),
                             task_order.get(r["task_label"], len(task_order)), r["seed"]))
    command = "mona-kit sweep " + " ".join(shlex.quote(a) for a in args.items)
    for p in write_report(output, rows, title=f"{profile['name']}: {len(rows)} cells", command=command):
        print(p)
    return 0
