"""Data loading time per batch vs one training step, for every offline target task.

Run: ``pytest benchmarks/bench_data.py --benchmark-only -p no:cacheprovider``.
The benchmark times fetching + collating one batch (torch DataLoader, batch 32); the training
step (forward, backward, AdamW) of ``minilm-l6`` with the task's auto embedder and head is
timed in the same run. ``extra_info["load_over_step"]`` is the ratio (target <= 0.05). If the
MiniLM body cannot be built, a tiny MLP stands in and ``extra_info["model"]`` says so.
"""

from __future__ import annotations

import time

import pytest
import torch

from mona_kit.data import make_loader
from mona_kit.kit import load_kit

BATCH = 32
KIT = load_kit(entry_points=False)
TARGETS = [e.name for e in KIT.datasets if e.meta.get("offline") and not e.meta.get("proxy")]
_MODEL_CACHE: dict = {}


def build_model(spec):
    """embedder -> minilm-l6 -> head, chosen as the engine would (auto by task and body)."""
    from mona_kit.engine import pick_auto
    from mona_kit.model import CrossModalModel

    if "body" not in _MODEL_CACHE:
        _MODEL_CACHE["body"] = KIT.backbones.get("minilm-l6").build({})
    import copy

    body = copy.deepcopy(_MODEL_CACHE["body"])
    emb = KIT.embedders.get(pick_auto(KIT, "embedders", input_rank=len(spec.input_shape), body_family=body.family))
    head = KIT.heads.get(pick_auto(KIT, "heads", task_type=spec.task_type))
    embedder = emb.build({}, task=spec, body=body)
    return CrossModalModel(embedder, body, head.build({}, task=spec, body=body, embedder=embedder)), "minilm-l6"


def tiny_model(spec):
    import math

    out = math.prod(spec.output_shape)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(256), torch.nn.ReLU(), torch.nn.Linear(256, out), torch.nn.Unflatten(1, spec.output_shape))
    return net, "tiny-mlp (stand-in)"


def step_time(task, batch) -> tuple[float, str]:
    try:
        model, name = build_model(task.spec)
    except Exception as exc:  # pragma: no cover - only when the body is unavailable
        model, name = tiny_model(task.spec)
        name += f"; minilm-l6 failed: {type(exc).__name__}"
    loss_fn = KIT.objectives.get(task.spec.loss).build()
    model(batch["x"])  # materialise lazy layers before creating the optimiser
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    times = []
    for _ in range(4):
        t0 = time.perf_counter()
        loss = loss_fn(model(batch["x"]), batch["y"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return sorted(times[1:])[1], name  # median after a warm-up step


@pytest.mark.parametrize("name", TARGETS)
def test_load_vs_step(benchmark, name, tmp_path_factory, monkeypatch):
    torch.set_num_threads(1)
    opts = {"n_train": 400, "n_test": 100} if name in ("advection-1d", "diffusion-reaction-1d") else {}
    task = KIT.datasets.get(name).build(opts)
    loader = make_loader(task.train, batch_size=BATCH, shuffle=True, seed=0)
    n_batches = len(loader)

    def one_epoch():
        count = 0
        for _ in loader:
            count += 1
        return count

    benchmark.pedantic(one_epoch, rounds=5, iterations=1, warmup_rounds=1)
    load_per_batch = benchmark.stats.stats.median / n_batches
    batch = next(iter(loader))
    step, model = step_time(task, batch)
    benchmark.extra_info.update(
        {"task": name, "model": model, "batch": BATCH, "load_per_batch_s": load_per_batch, "step_s": step, "load_over_step": load_per_batch / step}
    )
    print(f"\n{name}: load {load_per_batch * 1e3:.3f} ms/batch, step {step * 1e3:.1f} ms ({model}), ratio {load_per_batch / step:.4f}")
