"""Does ``torch.compile`` pay for a fine-tuning step on this CPU? (minilm-l6, 16 tokens, batch 16)

Reports the compiled step's steady-state time against the eager step (interleaved minima in one
run), the one-off compile time, and the steps a stage needs before the compile has paid for
itself. mona-kit keeps eager mode unless this says otherwise: a stage on the 2-core CPU runs a
few hundred to a few thousand steps, and every new batch shape (the last, partial batch of an
epoch) compiles again. Run with ``pytest benchmarks/bench_compile.py --benchmark-only -p no:cacheprovider``
(the compile alone takes minutes on 2 cores).
"""

from __future__ import annotations

import math
import time

import torch
from _timing import interleaved_times, ratio_info

import bench_step


def test_compiled_step_vs_eager_step(benchmark):
    model, batch, _ = bench_step.build(16)
    session_loss = torch.nn.functional.mse_loss
    compiled = torch.compile(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.0)  # lr 0: every round times the same model
    target = torch.zeros_like(model(batch["x"])).detach()

    def step(module):
        def run():
            loss = session_loss(module(batch["x"]), target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return run

    start = time.perf_counter()
    step(compiled)()  # the compile (forward and backward graphs)
    compile_s = time.perf_counter() - start
    times = interleaved_times({"compiled": step(compiled), "eager": step(model)}, rounds=6, warmup=1, cpu=(cpu := {}))
    info = ratio_info(times, "compiled", "eager")
    info["cpu_ratio"] = ratio_info(cpu, "compiled", "eager")["ratio"]
    saved = info["eager_min_s"] - info["compiled_min_s"]
    info |= {"compile_s": round(compile_s, 1), "break_even_steps": math.ceil(compile_s / saved) if saved > 0 else None,
             "threads": torch.get_num_threads()}
    benchmark.extra_info.update(info)
    print(f"\ncompiled step / eager step: {info['ratio']:.3f} (median {info['median_ratio']:.3f}; CPU time {info['cpu_ratio']:.3f}); compile "
          f"{compile_s:.0f} s, pays after {info['break_even_steps']} steps")
    benchmark.pedantic(step(compiled), rounds=2, iterations=1)
