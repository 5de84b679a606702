"""Where a fine-tuning step and a MoNA stage-1 step spend their time (torch.profiler, one thread).

Usage: ``.venv/bin/python benchmarks/profile_steps.py [ROWS]`` from the repository root. Prints the
top operators of each step (self CPU time) and the share of matrix products and attention products.
Same setup as bench_methods.py (minilm-l6, darcy-16, 16 tokens, batch 16, inner_params=[all]).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).parent))

import bench_methods as bm  # noqa: E402

MATMUL = {"aten::mm", "aten::addmm", "aten::bmm", "aten::matmul"}
ATTENTION = {"aten::bmm", "aten::_softmax", "aten::_softmax_backward_data"}


def profiled(step, rows: int) -> None:
    for _ in range(2):
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    share = {name: sum(e.self_cpu_time_total for e in events if e.key in ops) / total
             for name, ops in (("matrix products", MATMUL), ("attention bmm/softmax", ATTENTION))}
    print(events.table(sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=40))
    print(", ".join(f"{k}: {v:.1%}" for k, v in share.items()) + f" of {total / 1e6:.3f} s self CPU time\n")


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 12
    session, model, target, source, objective = bm.setup.__wrapped__()
    for p in model.parameters():
        p.requires_grad_(True)
    ft_opt = torch.optim.AdamW(model.parameters(), lr=0.0)
    meta_opt = torch.optim.AdamW(list(model.embedder.parameters()) + list(model.head.parameters()), lr=0.0)
    names = bm.inner_parameter_names(model, ("all",))
    print("== fine-tuning step")
    profiled(lambda: bm.finetune_step(session, model, target, ft_opt), rows)
    print("== MoNA stage-1 step (inner_params=[all])")
    profiled(lambda: bm.mona_step(session, model, target, source, objective, meta_opt, names), rows)


if __name__ == "__main__":
    main()
