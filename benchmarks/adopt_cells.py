"""Reuse the finished cells of one sweep profile in another where both profiles ask for the same run.

    python benchmarks/adopt_cells.py FROM_PROFILE TO_PROFILE [--dry-run]

variants-main-cpu's ``orca-otdd``, ``mona-align-uniform`` and ``recraft-otdd`` rows spell out the
default objective of main-cpu's ``orca``, ``mona`` and ``recraft`` rows: the same runs, cell for cell
(63 cells, over a day of this CPU). A TO cell is adopted from the FROM cell of the same task label and
seed when the FROM cell has finished (``results.json`` and its ``seedN.log``), the TO cell has not
started (no cell folder, no ``seedN.yaml``), and the two configs are equal once each one's method
section is written out with every default of the method's config class (output_dir and run_name
aside, as the sweep compares them). The cell folder (without checkpoints) and its log are copied; the
TO sweep's ``seedN.yaml`` is written as the sweep would write it, so a later ``mona-kit sweep`` counts
the cell as done; ``adopted.json`` in the cell names where it came from, and the report's copy of the
cell's own config.yaml still records the folder it ran in.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from mona_kit.config import to_dict
from mona_kit.kit import load_kit
from mona_kit.sweep_profile import Cell, cells, read_profile

PLACE = ("output_dir", "run_name")  # derived from where a cell lives, not part of what it runs


def run_identity(config: dict[str, Any], kit) -> str:
    """A cell config as comparable text, its method options written out with their defaults."""
    method = dict(config["method"])
    name = method.pop("name")
    options = to_dict(kit.methods.get(name).make_config(method)) or {}
    plain = {k: v for k, v in config.items() if k not in PLACE} | {"method": {"name": name, **options}}
    return json.dumps(yaml.safe_load(yaml.safe_dump(plain)), sort_keys=True, default=str)


def _cell_dir(output: Path, cell: Cell) -> Path:
    return output / "cells" / cell.method / cell.task / f"seed{cell.seed}"


def _finished(folder: Path) -> bool:
    return (folder / "results.json").is_file() and (folder.parent / f"{folder.name}.log").is_file()


def adoptions(source: dict[str, Any], target: dict[str, Any], kit) -> list[tuple[Cell, Path, Cell, Path]]:
    """(FROM cell, its folder, TO cell, its folder) for every TO cell that can take a finished FROM cell."""
    src_out, dst_out = Path(source["output"]), Path(target["output"])
    by_place: dict[tuple[str, int, str], tuple[Cell, Path]] = {}
    for cell in cells(source, kit):
        folder = _cell_dir(src_out, cell)
        if _finished(folder):
            by_place[(cell.task, cell.seed, run_identity(cell.config, kit))] = (cell, folder)
    found = []
    for cell in cells(target, kit):
        folder = _cell_dir(dst_out, cell)
        if folder.exists() or (folder.parent / f"seed{cell.seed}.yaml").exists():
            continue  # started or finished here: the sweep's own record wins
        match = by_place.get((cell.task, cell.seed, run_identity(cell.config, kit)))
        if match:
            found.append((match[0], match[1], cell, folder))
    return found


def adopt(src_cell: Cell, src: Path, dst_cell: Cell, dst: Path) -> None:
    """Copy one finished cell, its log and a config record in the TO sweep's layout."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("checkpoints"))
    shutil.copyfile(src.parent / f"{src.name}.log", dst.parent / f"{dst.name}.log")
    record = {**dst_cell.config, "output_dir": str(dst.parent), "run_name": dst.name}
    (dst.parent / f"{dst.name}.yaml").write_text(yaml.safe_dump(record, sort_keys=False))
    note = {"adopted_from": str(src), "from_method": src_cell.method,
            "why": "the same run: equal configs once each method's defaults are written out"}
    (dst / "adopted.json").write_text(json.dumps(note, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="FROM profile (its finished cells are copied)")
    parser.add_argument("target", type=Path, help="TO profile (its unstarted cells receive them)")
    parser.add_argument("--dry-run", action="store_true", help="list what would be adopted, copy nothing")
    args = parser.parse_args(argv)
    kit = load_kit()
    found = adoptions(read_profile(args.source), read_profile(args.target), kit)
    for src_cell, src, dst_cell, dst in found:
        print(f"{'would adopt' if args.dry_run else 'adopted'} {dst} <- {src}")
        if not args.dry_run:
            adopt(src_cell, src, dst_cell, dst)
    print(f"{len(found)} cell(s){' (dry run)' if args.dry_run else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
