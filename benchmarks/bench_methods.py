"""Cost of one step of each method's characteristic stage against one fine-tuning step,
on the same target batch and body (minilm-l6, darcy-16, 16 tokens, batch 16).

Targets (issues 5 and 15): MoNA stage-1 step <= 3x a fine-tuning step (stretch 2.5x) with every body
parameter in the inner loop. ``cpu_ratio`` compares CPU seconds (one thread), which a loaded machine
cannot stretch. Run with ``pytest benchmarks/bench_methods.py --benchmark-only -p no:cacheprovider``.
"""

from __future__ import annotations

import os

import pytest
import torch
from _timing import interleaved_times, ratio_info

from mona_kit.engine import Session
from mona_kit.kit import load_kit
from mona_kit.runconfig import RunConfig
from mona_plugins.methods.meta_align import grad_align_loss, inner_parameter_names, meta_terms

CONFIG = {
    "task": {"name": "darcy-16", "max_train": 64},
    "backbone": "minilm-l6",
    "embedder": {"name": "grid2d-patch", "patch": 4},
    "method": "mona",
    "train": {"batch_size": 16},
    "device": os.environ.get("MONA_KIT_BENCH_DEVICE", "cpu"),  # python -m mona_kit.gpu_check sets cuda
}
SOURCE_BATCH = 16
SOURCE_TOKENS = 16  # MoNA option source_tokens: the target batch has 16 tokens too


@pytest.fixture(scope="module")
def setup():
    torch.set_num_threads(1)
    kit = load_kit(entry_points=False)
    session = Session(kit, RunConfig.from_dict(CONFIG), progress=False)
    model = session.build_model().train()
    target = session.to_device(next(iter(session.loader(session.task.train, shuffle=True))))
    source = session.to_device(next(iter(session.source_batches("train", batch_size=SOURCE_BATCH, shuffle=True))))
    src_tokens, src_mask = session.embed_source_tokens(source)
    src_tokens, src_mask = src_tokens[:, :SOURCE_TOKENS], src_mask[:, :SOURCE_TOKENS]
    objective = kit.objectives.get("align-uniform").build().to(session.device)
    return session, model, target, (src_tokens, src_mask, source["y"]), objective


def finetune_step(session, model, target, optimizer):
    loss = session.task_loss(model(target["x"]), target["y"])
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def mona_step(session, model, target, source, objective, optimizer, names, *, surrogate=False):
    src_tokens, src_mask, y_s = source
    if surrogate:
        total, _ = grad_align_loss(model, session.task_loss, objective, target["x"], target["y"], src_tokens, src_mask, y_s,
                                   names=names, inner_lr=1e-3, lam=0.5)
    else:
        loss_task, loss_src = meta_terms(model, session.task_loss, objective, target["x"], target["y"], src_tokens, src_mask, y_s,
                                         names=names, inner_steps=1, inner_lr=1e-3)
        total = loss_task + 0.5 * loss_src
    optimizer.zero_grad(set_to_none=True)
    total.backward(inputs=[p for g in optimizer.param_groups for p in g["params"]])  # as MetaAlignStage: meta grads only
    optimizer.step()


@pytest.mark.parametrize("inner", ["all", "norm"])
def test_mona_step_vs_finetune_step(benchmark, setup, inner):
    session, model, target, source, objective = setup
    for p in model.parameters():
        p.requires_grad_(True)
    ft_opt = torch.optim.AdamW(model.parameters(), lr=0.0, fused=True)  # as make_optimizer; lr 0: the model stays as it is
    meta_opt = torch.optim.AdamW(list(model.embedder.parameters()) + list(model.head.parameters()), lr=0.0)
    names = inner_parameter_names(model, (inner,))
    times = interleaved_times({
        "finetune": lambda: finetune_step(session, model, target, ft_opt),
        "mona": lambda: mona_step(session, model, target, source, objective, meta_opt, names),
        "mona_grad_align": lambda: mona_step(session, model, target, source, objective, meta_opt, names, surrogate=True),
    }, rounds=6, warmup=1, cpu=(cpu := {}))
    info = ratio_info(times, "mona", "finetune")
    info["grad_align_ratio"] = ratio_info(times, "mona_grad_align", "finetune")["ratio"]
    info["cpu_ratio"] = ratio_info(cpu, "mona", "finetune")["ratio"]  # one thread: CPU seconds, robust to load
    info["grad_align_cpu_ratio"] = ratio_info(cpu, "mona_grad_align", "finetune")["ratio"]
    benchmark.extra_info.update(info, inner_params=inner, source_batch=SOURCE_BATCH, target_batch=16, tokens=16)
    print(f"\nMoNA stage-1 step / fine-tune step (inner_params={inner}): {info['ratio']:.2f} "
          f"(median {info['median_ratio']:.2f}; CPU time {info['cpu_ratio']:.2f}); mona-grad-align: {info['grad_align_ratio']:.2f} "
          f"(CPU time {info['grad_align_cpu_ratio']:.2f})")
    benchmark.pedantic(lambda: mona_step(session, model, target, source, objective, meta_opt, names), rounds=2, iterations=1)
