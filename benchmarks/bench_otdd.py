"""OTDD cost of one ORCA alignment step: 5,000 source samples (384-d, 10 classes) vs 64 targets.

Target: one bound step (forward + backward, source bound once by ``bind_source``) <= 0.5 s on the
2-core CPU. Also timed: the unbound call (binds the source every time) and the same bound step with
POT's log-domain Sinkhorn instead of the own torch solver; the POT/torch ratio is in extra_info.
Runs on one thread: the step is many small ops, which are slower with two threads on a shared
2-core machine.

Run: /work/venv/bin/pytest benchmarks/bench_otdd.py --benchmark-only -p no:cacheprovider
"""

import time

import attrs
import pytest
import torch

from mona_kit.kit import load_kit

N_SOURCE, N_TARGET, DIM, CLASSES = 5000, 64, 384, 10


@pytest.fixture(scope="module")
def data():
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(CLASSES, DIM, generator=g)
    ys = torch.arange(N_SOURCE) % CLASSES
    xs = centres[ys] + torch.randn(N_SOURCE, DIM, generator=g)
    yt = torch.arange(N_TARGET) % CLASSES
    xt = torch.randn(N_TARGET, DIM, generator=g) * 1.5 + 0.3
    return xs, ys, xt, yt


@pytest.fixture(scope="module")
def otdd():
    return load_kit().objectives.get("otdd").build()


@pytest.fixture(scope="module")
def bound(otdd, data):
    xs, ys, _, _ = data
    start = time.perf_counter()
    b = otdd.bind_source(xs, ys)
    return b, time.perf_counter() - start


def _step(fn, xt, yt):
    x = xt.clone().requires_grad_(True)
    loss = fn(x, yt)
    loss.backward()
    return float(loss)


def test_otdd_bound_step(benchmark, data, bound):
    _, _, xt, yt = data
    fn, bind_seconds = bound
    value = benchmark.pedantic(_step, args=(fn, xt, yt), rounds=5, warmup_rounds=1)
    benchmark.extra_info.update(bind_seconds=round(bind_seconds, 3), value=value, threads=torch.get_num_threads())


def test_otdd_unbound_call(benchmark, otdd, data):
    xs, ys, xt, yt = data
    benchmark.pedantic(lambda: _step(lambda x, y: otdd(xs, ys, x, y), xt, yt), rounds=1, iterations=1)


def test_otdd_bound_step_pot_vs_torch(benchmark, otdd, data, bound):
    """The same bound step with POT's ``ot.solve(method="sinkhorn_log")`` for the source-target
    problems (the cached source self-term is shared: POT's n x n solve is impractical)."""
    _, _, xt, yt = data
    fn, _ = bound
    torch_times = []
    for _ in range(3):
        start = time.perf_counter()
        torch_value = _step(fn, xt, yt)
        torch_times.append(time.perf_counter() - start)
    torch_seconds = sorted(torch_times)[1]
    torch_cfg = otdd.cfg
    otdd.cfg = attrs.evolve(torch_cfg, backend="pot")  # the bound closure reads self.cfg
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # POT warns that it did not converge
            pot_value = benchmark.pedantic(_step, args=(fn, xt, yt), rounds=1, iterations=1)
    finally:
        otdd.cfg = torch_cfg
    pot_seconds = benchmark.stats.stats.median
    benchmark.extra_info.update(
        torch_seconds=round(torch_seconds, 4),
        pot_seconds=round(pot_seconds, 4),
        pot_over_torch=round(pot_seconds / torch_seconds, 2),
        torch_value=torch_value,
        pot_value=pot_value,
        relative_value_gap=abs(pot_value - torch_value) / abs(torch_value),
    )
