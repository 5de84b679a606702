"""benchmarks/compare_precision.py sets bf16 cells beside fp32's seeds of the same task, taking a task's
fp32 cells from the first sweep folder that has them (main-cpu, then the archive of a column that left
it), and says when there is nothing to compare."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import compare_precision  # noqa: E402


def _cells(root: Path, task: str, values: list[float]) -> Path:
    for seed, value in enumerate(values):
        cell = root / "cells" / "finetune" / task / f"seed{seed}"
        cell.mkdir(parents=True)
        (cell / "results.json").write_text(json.dumps({"metric": "nrmse", "seed": seed, "val": {"nrmse": value}, "test": {"nrmse": value}}))
    return root


def _row(out: str, task: str) -> list[str]:
    (line,) = [line for line in out.splitlines() if line.startswith(f"| {task} |")]
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_a_task_takes_its_fp32_seeds_from_the_first_folder_that_has_them(tmp_path, capsys):
    bf16 = _cells(tmp_path / "bf16", "darcy", [0.11, 0.12, 0.10])
    _cells(bf16, "burgers", [0.5])
    main = _cells(tmp_path / "main", "burgers", [0.06, 0.07, 0.08])
    archive = _cells(tmp_path / "archive", "darcy", [0.10, 0.11, 0.12])
    _cells(archive, "burgers", [9.0, 9.0, 9.0])  # shadowed: main has burgers
    assert compare_precision.main([str(bf16), str(main), str(archive)]) == 0
    out = capsys.readouterr().out
    darcy, burgers = _row(out, "darcy"), _row(out, "burgers")
    assert darcy[1] == "0.11 ± 0.01 (n=3)" and darcy[4] == "0.11 ± 0.01" and darcy[7].startswith("yes (3 of 3)")
    assert burgers[1] == "0.07 ± 0.01 (n=3)" and burgers[7] == "NO (0 of 1)"


def test_a_task_with_fewer_than_two_fp32_seeds_says_so(tmp_path, capsys):
    bf16 = _cells(tmp_path / "bf16", "dna", [0.2])
    main = _cells(tmp_path / "main", "dna", [0.21])
    assert compare_precision.main([str(bf16), str(main)]) == 0
    assert _row(capsys.readouterr().out, "dna")[1] == "(fp32 seeds missing)"


def test_no_bf16_cells_is_exit_2_with_the_command_to_run(tmp_path, capsys):
    assert compare_precision.main([str(tmp_path / "none")]) == 2
    assert "mona-kit sweep benchmarks/profiles/bf16-main-cpu.yaml" in capsys.readouterr().err
