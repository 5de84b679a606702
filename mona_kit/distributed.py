"""Distributed runs on PyTorch's own engine: ``torchrun`` + ``torch.distributed``.

Launch with ``torchrun --nproc-per-node N -m mona_kit run CONFIG`` (gloo on CPU, NCCL on GPU).
Only the engine talks to ``torch.distributed``; plugins ask the session.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import math
import os
from collections.abc import Iterable, Iterator

import attrs
import torch
import torch.distributed as dist

from .errors import ConfigError, MonaError

#: Seconds a collective waits for the other ranks before the job fails (env MONA_KIT_DIST_TIMEOUT).
#: Long enough for a slow evaluation on rank 0 while the others wait at a barrier; short enough
#: that a stopped or hung rank ends the job instead of stalling it forever.
DEFAULT_DIST_TIMEOUT_S = 300.0


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


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}={raw!r} is not an integer; launch with torchrun, which sets it.") from None


def world_size_from_env() -> int:
    """The number of ranks torchrun started (1 outside torchrun)."""
    return max(1, _env_int("WORLD_SIZE", 1))


def dist_timeout_s() -> float:
    """Seconds a collective may wait for the other ranks: ``MONA_KIT_DIST_TIMEOUT`` or the default."""
    raw = os.environ.get("MONA_KIT_DIST_TIMEOUT", "").strip()
    if not raw:
        return DEFAULT_DIST_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"MONA_KIT_DIST_TIMEOUT={raw!r} must be a positive number of seconds (e.g. 300); fix the variable.")
    return value


def check_global_batch(batch_size: int, world_size: int | None = None, *, option: str = "train.batch_size") -> None:
    """Refuse a global batch the ranks cannot split evenly (world size from the environment by default).

    Called when the config is built, so the error comes before any run folder is made.
    """
    world = world_size_from_env() if world_size is None else world_size
    if world > 1 and batch_size % world:
        raise ConfigError(
            f"{option}={batch_size} is a global batch and must divide by the {world} ranks; "
            f"choose a multiple of {world}."
        )


LAUNCH = "launch with torchrun (torchrun --nproc-per-node N -m mona_kit run ...), which sets it"


def check_launch_env(world: int, *, joined: bool = False) -> tuple[int, int]:
    """This process's ``(RANK, LOCAL_RANK)`` when ``WORLD_SIZE`` > 1, checked before any process group is
    joined: torch would fail on a missing MASTER_ADDR with a traceback, and on a rank outside the world
    only after a rendezvous timeout, blaming a stopped rank. ``joined``: a group exists already (made by
    the caller's own code), so the rendezvous variables are not needed."""
    if "RANK" not in os.environ or not os.environ["RANK"].strip():
        raise ConfigError(f"WORLD_SIZE={world} is set but RANK is not; {LAUNCH} (or unset WORLD_SIZE for one process).")
    ranks = {}
    for name, default in (("RANK", 0), ("LOCAL_RANK", 0)):
        value = ranks[name] = _env_int(name, default)
        if not 0 <= value < world:
            raise ConfigError(
                f"environment variable {name}={value} is outside 0..{world - 1} (WORLD_SIZE={world}); {LAUNCH}."
            )
    if not joined:
        for name in ("MASTER_ADDR", "MASTER_PORT"):
            if not os.environ.get(name, "").strip():
                raise ConfigError(
                    f"WORLD_SIZE={world} is set but {name} is not; {LAUNCH} (or unset WORLD_SIZE for one process)."
                )
        port = _env_int("MASTER_PORT", 0)
        if not 0 < port < 65536:
            raise ConfigError(f"environment variable MASTER_PORT={port} is not a TCP port (1..65535); {LAUNCH}.")
    return ranks["RANK"], ranks["LOCAL_RANK"]


def init_from_env(device_name: str) -> DistInfo:
    """Join the process group torchrun describes in the environment (no-op for one process).

    Collectives time out after :func:`dist_timeout_s`, so a stopped rank ends the job with one
    line on the others instead of stalling them forever.
    """
    world = world_size_from_env()
    if world <= 1:
        return DistInfo()
    rank, local = check_launch_env(world, joined=dist.is_initialized())
    if not dist.is_initialized():
        timeout = datetime.timedelta(seconds=dist_timeout_s())
        use_cuda = device_name != "cpu" and torch.cuda.is_available()
        if use_cuda:
            torch.cuda.set_device(local)
        with collective("joining the process group", DistInfo(rank=rank, world_size=world, local_rank=local)):
            dist.init_process_group(backend="nccl" if use_cuda else "gloo", timeout=timeout)
    return DistInfo(rank=rank, world_size=world, local_rank=local)


class CollectiveTimeout(MonaError):
    """Another rank did not reach a collective in time (stopped, hung or dead)."""


def _is_peer_failure(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(w in text for w in ("timed out", "timeout", "connection closed", "connection reset", "broken pipe"))


@contextlib.contextmanager
def collective(what: str, info: DistInfo) -> Iterator[None]:
    """Turn a collective that failed because of another rank into one line naming this rank."""
    try:
        yield
    except (RuntimeError, OSError) as exc:  # DistBackendError and DistStoreError are RuntimeErrors
        if not _is_peer_failure(exc):
            raise
        raise CollectiveTimeout(
            f"rank {info.rank} of {info.world_size}: {what} failed waiting for the other ranks "
            f"(limit {dist_timeout_s():g} s, {type(exc).__name__}); a rank stopped, hung or died - check its "
            f"output, or raise MONA_KIT_DIST_TIMEOUT if a step legitimately takes longer."
        ) from exc


def barrier(info: DistInfo) -> None:
    if info.enabled:
        with collective("a barrier", info):
            dist.barrier()


def all_reduce_mean_(info: DistInfo, tensors: Iterable[torch.Tensor | None]) -> None:
    """Average tensors (gradients) across ranks in place."""
    if not info.enabled:
        return
    with collective("averaging gradients", info):
        for t in tensors:
            if t is not None:
                dist.all_reduce(t, op=dist.ReduceOp.SUM)
                t.div_(info.world_size)


def broadcast_object(info: DistInfo, obj):
    if not info.enabled:
        return obj
    box = [obj]
    with collective("a broadcast from rank 0", info):
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
    with collective("comparing plugins across ranks", info):
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
    check_global_batch(batch_size, info.world_size, option="batch_size (train.batch_size or a method's source batch)")
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
