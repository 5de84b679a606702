"""Thread settings for a fine-tuning step (minilm-l6, 16 tokens, batch 16) on a shared CPU.

OpenMP's wait policy is read once at process start, so each setting runs in a worker process of
its own; the parent asks the workers for one timed step in turn (interleaved rounds, so load
drift hits every setting alike) and compares minima:

- ``active``: torch's default threads, OpenMP's default (spinning) wait policy;
- ``passive``: the same threads with ``OMP_WAIT_POLICY=PASSIVE`` (the ``mona-kit`` CLI's default);
- ``one-thread``: ``torch.set_num_threads(1)``.

Run with ``pytest benchmarks/bench_threads.py --benchmark-only -p no:cacheprovider``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

WORKER = r"""
import sys, time, torch
sys.path.insert(0, sys.argv[1])
import bench_step
_, _, step = bench_step.build(16)
if sys.argv[2] == "1":  # after build, which sets the machine's thread count
    torch.set_num_threads(1)
step(); step()
print(torch.get_num_threads(), flush=True)
for line in sys.stdin:
    start = time.perf_counter()
    step()
    print(time.perf_counter() - start, flush=True)
"""

SETTINGS = {"active": ("ACTIVE", "0"), "passive": ("PASSIVE", "0"), "one-thread": ("ACTIVE", "1")}


def test_omp_wait_policy_and_threads(benchmark):
    here = str(Path(__file__).parent)
    workers, threads = {}, {}
    for name, (policy, one) in SETTINGS.items():
        env = {**os.environ, "OMP_WAIT_POLICY": policy}
        workers[name] = subprocess.Popen([sys.executable, "-c", WORKER, here, one], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True, env=env)
    try:
        for name, proc in workers.items():
            threads[name] = int(proc.stdout.readline())
        times: dict[str, list[float]] = {name: [] for name in workers}

        def one_round():
            for name, proc in workers.items():
                proc.stdin.write("step\n")
                proc.stdin.flush()
                times[name].append(float(proc.stdout.readline()))

        start = time.perf_counter()
        for _ in range(6):
            one_round()
        best = {name: min(t) for name, t in times.items()}
        info = {f"{name}_min_s": round(t, 5) for name, t in best.items()}
        info |= {f"{name}_threads": n for name, n in threads.items()}
        info["passive_over_active"] = round(best["passive"] / best["active"], 4)
        info["one_thread_over_active"] = round(best["one-thread"] / best["active"], 4)
        benchmark.extra_info.update(info)
        print(f"\nstep min: active {best['active']:.4f} s, passive {best['passive']:.4f} s, one thread "
              f"{best['one-thread']:.4f} s; passive/active {info['passive_over_active']:.3f}, "
              f"one-thread/active {info['one_thread_over_active']:.3f} ({time.perf_counter() - start:.0f} s)")
        benchmark.pedantic(one_round, rounds=1, iterations=1)
    finally:
        for proc in workers.values():
            proc.stdin.close()
            proc.wait(timeout=60)
