"""The README's performance table, made from one committed pytest-benchmark run.

    pytest benchmarks/ --benchmark-only -p no:cacheprovider -q -s --benchmark-json=benchmarks/results/perf/cpu.json
    python benchmarks/perf_table.py [JSON] [TABLE_MD]     # defaults: benchmarks/results/perf/{cpu.json,table.md}
    python benchmarks/sync_doc_tables.py                   # copies table.md into README.md (block perf:whole)

Every figure is read from the ``extra_info`` each benchmark saved (ratios of interleaved minima, CPU-time
ratios beside wall-clock ones) or from its timing stats, so the table can always be traced to the run
that produced it; the run's machine and commit come from the JSON too.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
COMMAND = "pytest benchmarks/ --benchmark-only -p no:cacheprovider -q -s --benchmark-json=benchmarks/results/perf/cpu.json"


def by_name(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The run's benchmarks by test name, e.g. ``test_bf16_step_vs_fp32_step[64]``."""
    return {b["name"]: b for b in run["benchmarks"]}


def _x(value: float) -> str:
    return f"{value:.3g}×"


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def _verdict(met: bool) -> str:
    return "met" if met else "**missed**"


def rows(run: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(benchmark, measured, target and verdict) for every benchmark the run has; absent ones are skipped."""
    b = by_name(run)
    info = {name: bench.get("extra_info", {}) for name, bench in b.items()}
    out: list[tuple[str, str, str]] = []
    for tokens in (64, 16):
        i = info.get(f"test_finetune_step_fraction_of_matmul_peak[{tokens}]")
        if i:
            target = _verdict(i["cpu_fraction_of_peak"] >= 0.75) + " (≥ 75 %)" if tokens == 64 else "reported"
            out.append((f"`bench_step`: fine-tuning step (minilm-l6, batch 16, {tokens} tokens, {i['step_gflop']:.1f} GFLOP) "
                        "as a fraction of the fp32 `torch.mm` peak measured in the same run",
                        f"{_pct(i['cpu_fraction_of_peak'])} in CPU time; {_pct(i['fraction_of_peak'])} wall clock "
                        f"({i['step_gflops_per_s']:.1f} of {i['mm_peak_gflops_per_s']:.1f} GFLOP/s)", target))
    bf = [info.get(f"test_bf16_step_vs_fp32_step[{t}]") for t in (16, 64)]
    if all(bf):
        worst = max(i["cpu_ratio"] for i in bf)
        out.append(("`bench_step`: bf16 step / fp32 step (`train.precision=bf16`), 16 / 64 tokens",
                    f"{_x(bf[0]['cpu_ratio'])} / {_x(bf[1]['cpu_ratio'])} in CPU time "
                    f"({_x(bf[0]['ratio'])} / {_x(bf[1]['ratio'])} wall clock)", _verdict(worst <= 0.6) + " (≤ 0.6×)"))
    i = info.get("test_fused_adamw_step_vs_per_tensor_adamw_step")
    if i:
        out.append(("`bench_step`: step with fused AdamW (the default) / with torch's per-tensor AdamW",
                    f"{_x(i['cpu_ratio'])} in CPU time ({_x(i['ratio'])} wall clock)", "reported"))
    full, norm = info.get("test_mona_step_vs_finetune_step[all]"), info.get("test_mona_step_vs_finetune_step[norm]")
    if full:
        out.append(("`bench_methods`: MoNA stage-1 step / fine-tuning step, every body parameter in the inner loop (one thread, 16 tokens)",
                    f"{_x(full['cpu_ratio'])} in CPU time ({_x(full['ratio'])} wall clock)",
                    _verdict(full["cpu_ratio"] <= 3.0) + " (≤ 3×; the exact meta-gradient's matrix products alone cost 10/3×, below)"))
        out.append(("`bench_methods`: `mona-grad-align` step / fine-tuning step, every body parameter",
                    f"{_x(full['grad_align_cpu_ratio'])} in CPU time ({_x(full['grad_align_ratio'])} wall clock)", "reported"))
    if norm:
        out.append(("`bench_methods`: MoNA stage-1 step / fine-tuning step, `method.inner_params=[norm]`",
                    f"{_x(norm['cpu_ratio'])} in CPU time ({_x(norm['ratio'])} wall clock)", "reported"))
    i = info.get("test_omp_wait_policy_and_threads")
    if i:
        out.append(("`bench_threads`: 2-thread step with `OMP_WAIT_POLICY=PASSIVE` (the CLI's default) / OpenMP's spinning "
                    "default; one thread / that default",
                    f"{_x(i['passive_over_active'])}; {_x(i['one_thread_over_active'])} (wall clock)", "reported"))
    i = info.get("test_compiled_step_vs_eager_step")
    if i:
        pays = f"; the {i['compile_s']:.0f} s compile pays back after {i['break_even_steps']:,} steps" if i.get("break_even_steps") else ""
        out.append(("`bench_compile`: `torch.compile`d step / eager step (steady state, after the compile)",
                    f"{_x(i['cpu_ratio'])} in CPU time ({_x(i['ratio'])} wall clock){pays}", "reported"))
    i = info.get("test_assembly_vs_raw_transformers")
    if i:
        out.append(("`bench_assembly`: embedder → body → head / raw transformers, forward + backward (one thread)",
                    f"{_x(i['ratio'])} (wall clock)", _verdict(i["ratio"] <= 1.05) + " (≤ 1.05×)"))
    bound = b.get("test_otdd_bound_step")
    if bound:
        median = bound["stats"]["median"]
        pot = info.get("test_otdd_bound_step_pot_vs_torch", {})
        extra = f"; POT's log-domain Sinkhorn {_x(pot['pot_over_torch'])} as long" if pot else ""
        out.append(("`bench_otdd`: one OTDD step, 5,000 × 384-d source (10 classes, bound once) against 64 targets",
                    f"{median:.3f} s median{extra}", _verdict(median <= 0.5) + " (≤ 0.5 s)"))
    loads = {i["task"]: i["load_over_step"] for name, i in info.items() if name.startswith("test_load_vs_step[")}
    if loads:
        worst_task = max(loads, key=loads.__getitem__)
        out.append((f"`bench_data`: data loading per batch / a minilm-l6 training step, worst of {len(loads)} offline tasks",
                    f"{loads[worst_task]:.2g} ({worst_task})", _verdict(loads[worst_task] <= 0.05) + " (≤ 0.05)"))
    return out


def markdown(run: dict[str, Any]) -> str:
    """The table with a line naming the machine, the commit and the command that produced the run."""
    machine = run.get("machine_info", {})
    cpu = machine.get("cpu", {})
    commit = run.get("commit_info", {})
    where = f"{cpu.get('brand_raw') or machine.get('processor') or 'unknown CPU'}, {cpu.get('count', '?')} cores"
    flags = set(cpu.get("flags", []))
    if "avx512_bf16" in flags or "amx_bf16" in flags:
        where += " (native bf16)"
    torch_version = f", torch {machine['torch_version']}" if machine.get("torch_version") else ""
    head = (f"Measured on {where}{torch_version}, commit "
            f"{str(commit.get('id', '?'))[:7]}{' (uncommitted changes)' if commit.get('dirty') else ''}, {run.get('datetime', '?')[:10]}: "
            f"`{COMMAND}`, then `python benchmarks/perf_table.py`. Ratios are of interleaved minima measured in the one run; "
            "CPU-time ratios count the process's CPU seconds, which other processes on the machine cannot stretch.")
    lines = [head, "", "| benchmark | measured | target |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows(run)]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    source = Path(argv[0]) if argv else ROOT / "benchmarks/results/perf/cpu.json"
    target = Path(argv[1]) if len(argv) > 1 else source.with_name("table.md")
    if not source.is_file():
        print(f"{source} does not exist; make it with: {COMMAND}", file=sys.stderr)
        return 2
    try:
        run = json.loads(source.read_text())
    except json.JSONDecodeError as err:
        print(f"{source} is not a pytest-benchmark JSON file ({err}); re-run: {COMMAND}", file=sys.stderr)
        return 2
    if not isinstance(run, dict) or not isinstance(run.get("benchmarks"), list):
        print(f"{source} has no 'benchmarks' list: not a pytest-benchmark JSON file; re-run: {COMMAND}", file=sys.stderr)
        return 2
    target.write_text(markdown(run))
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
