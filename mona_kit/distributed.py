"""Distributed runs on PyTorch's own engine: ``torchrun`` + ``torch.distributed``.

Launch with ``torchrun --nproc-per-node N -m mona_kit run CONFIG`` (gloo on CPU, NCCL on GPU).
Only the engine talks to ``torch.distributed``; plugins ask the session.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable

import attrs
import torch
import torch.distributed as dist

from .errors import MonaError


@attrs.frozen
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_from_env(device_name: str) -> DistInfo:
    """Join the process group torchrun describes in the environment (no-op for one process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        use_cuda = device_name != "cpu" and torch.cuda.is_available()
        if use_cuda:
            torch.cuda.set_device(local)
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(rank=rank, world_size=world, local_rank=local)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def all_reduce_mean_(info: DistInfo, tensors: Iterable[torch.Tensor | None]) -> None:
    """Average tensors (gradients) across ranks in place."""
    if not info.enabled:
        return
    for t in tensors:
        if t is not None:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
            t.div_(info.world_size)


def broadcast_object(info: DistInfo, obj):
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def plugin_fingerprint(kit) -> dict[str, str]:
    """plugin name -> 'version:hash of its registered names' (what every rank must agree on)."""
    out = {}
    for name, info in sorted(kit.plugins.items()):
        contributed = json.dumps(kit.contributions(name), sort_keys=True)
        out[name] = f"{info.version}:{hashlib.sha256(contributed.encode()).hexdigest()[:12]}"
    return out


def check_same_plugins(info: DistInfo, kit) -> None:
    """Stop at start-up when ranks loaded different plugins or versions."""
    if not info.enabled:
        return
    mine = plugin_fingerprint(kit)
    gathered: list = [None] * info.world_size
    dist.all_gather_object(gathered, mine)
    reference = gathered[0]
    for rank, theirs in enumerate(gathered):
        if theirs == reference:
            continue
        only0 = sorted(set(reference) - set(theirs))
        only_r = sorted(set(theirs) - set(reference))
        differ = sorted(k for k in set(reference) & set(theirs) if reference[k] != theirs[k])
        parts = []
        if only0:
            parts.append(f"only rank 0 loaded {', '.join(only0)}")
        if only_r:
            parts.append(f"only rank {rank} loaded {', '.join(only_r)}")
        if differ:
            parts.append(f"{', '.join(differ)} differ (rank 0 {[reference[k] for k in differ]}, rank {rank} {[theirs[k] for k in differ]})")
        raise MonaError(
            f"ranks loaded different plugins: {'; '.join(parts)}. Install the same plugins on every node "
            f"(or set MONA_KIT_PLUGINS the same everywhere)."
        )


def shard_indices(n: int, batch_size: int, seed: int, info: DistInfo) -> list[int]:
    """This rank's part of each full global batch of one seeded epoch order.

    Global batch b is ``perm[b*B:(b+1)*B]`` - the order one process would see - and rank r
    takes its contiguous slice, so the mean of the ranks' gradients is the global batch's
    gradient. The last incomplete global batch is dropped so every rank runs the same number
    of steps (a rank without a batch would leave the others waiting in all-reduce).
    """
    if batch_size % info.world_size:
        raise MonaError(
            f"train.batch_size {batch_size} is the global batch and must divide by the {info.world_size} ranks; "
            f"choose a multiple of {info.world_size}."
        )
    if n < batch_size:
        raise MonaError(
            f"the training split has {n} samples, fewer than one global batch of {batch_size}; under torchrun "
            f"lower train.batch_size (a multiple of {info.world_size})."
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed))).tolist()
    per_rank = batch_size // info.world_size
    out = []
    for start in range(0, n - batch_size + 1, batch_size):
        out.extend(perm[start + info.rank * per_rank : start + (info.rank + 1) * per_rank])
    return out
