"""benchmarks/perf_table.py: the README's performance table is read from a committed pytest-benchmark
JSON file, with each target's verdict computed, not typed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import perf_table  # noqa: E402


def bench(name: str, extra: dict | None = None, median: float = 0.1) -> dict:
    return {"name": name, "extra_info": extra or {}, "stats": {"median": median}}


RUN = {
    "machine_info": {"cpu": {"brand_raw": "Test CPU", "count": 2, "flags": ["avx512_bf16"]}},
    "commit_info": {"id": "abcdef0123", "dirty": False},
    "datetime": "2026-12-03T11:41:05",
    "benchmarks": [
        bench("test_finetune_step_fraction_of_matmul_peak[64]", {"cpu_fraction_of_peak": 0.81, "fraction_of_peak": 0.7,
                                                                 "step_gflop": 67.1, "step_gflops_per_s": 40.0, "mm_peak_gflops_per_s": 55.0}),
        bench("test_bf16_step_vs_fp32_step[16]", {"cpu_ratio": 0.42, "ratio": 0.48}),
        bench("test_bf16_step_vs_fp32_step[64]", {"cpu_ratio": 0.65, "ratio": 0.6}),
        bench("test_mona_step_vs_finetune_step[all]", {"cpu_ratio": 3.37, "ratio": 3.2, "grad_align_cpu_ratio": 3.27, "grad_align_ratio": 3.1}),
        bench("test_otdd_bound_step", median=0.24),
        bench("test_load_vs_step[gunpoint]", {"task": "gunpoint", "load_over_step": 0.0001}),
        bench("test_load_vs_step[darcy-16]", {"task": "darcy-16", "load_over_step": 0.0002}),
    ],
}


def test_rows_carry_the_runs_figures_and_computed_verdicts():
    rows = perf_table.rows(RUN)
    table = perf_table.markdown(RUN)
    assert "| 81.0 % in CPU time; 70.0 % wall clock (40.0 of 55.0 GFLOP/s) | met (≥ 75 %) |" in table
    assert "0.42× / 0.65× in CPU time (0.48× / 0.6× wall clock) | **missed** (≤ 0.6×) |" in table  # the worse of the two counts
    assert "3.37× in CPU time (3.2× wall clock) | **missed** (≤ 3×" in table
    assert "| 0.240 s median | met (≤ 0.5 s) |" in table
    assert "| 0.0002 (darcy-16) | met (≤ 0.05) |" in table and "worst of 2 offline tasks" in table
    assert table.startswith("Measured on Test CPU, 2 cores (native bf16),") and "commit abcdef0," in table
    assert len(rows) == 6 and not any("bench_compile" in r[0] for r in rows)  # absent from the run: no row, no made-up figure


def test_the_committed_table_is_made_from_the_committed_run():
    run = json.loads((ROOT / "benchmarks/results/perf/cpu.json").read_text())
    assert (ROOT / "benchmarks/results/perf/table.md").read_text() == perf_table.markdown(run)


def test_a_missing_or_foreign_file_is_one_line_and_exit_2(tmp_path, capsys):
    assert perf_table.main([str(tmp_path / "none.json")]) == 2
    (tmp_path / "x.json").write_text('{"a": 1}')
    assert perf_table.main([str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "does not exist" in err[0] and "no 'benchmarks' list" in err[1]
