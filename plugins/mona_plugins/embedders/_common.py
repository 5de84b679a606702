"""Shape helpers every embedder and head shares."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mona_kit.api import ConfigError, ShapeError


def fmt(shape) -> str:
    return "[B, " + ", ".join(str(s) for s in shape) + "]"


def check_input(component: str, x: torch.Tensor, expected: tuple[int, ...]) -> None:
    """One-line ShapeError when a batch does not have the per-sample shape a component was built for."""
    if tuple(x.shape[1:]) != tuple(expected):
        raise ShapeError(
            f"{component} was built for inputs {fmt(expected)} but got {list(x.shape)}; build it for this "
            f"task (its input_shape is {tuple(x.shape[1:])}) or reshape the data to {fmt(expected)}."
        )


def check_rank(component: str, task, ranks: tuple[int, ...], hint: str) -> None:
    if len(task.input_shape) not in ranks:
        raise ConfigError(
            f"{component} takes inputs of rank {' or '.join(map(str, ranks))}, task {task.name!r} has input_shape "
            f"{tuple(task.input_shape)}; {hint}"
        )


def token_budget(body, override: int | None) -> int:
    """The most tokens an embedder may emit: the body's budget, or a smaller configured one."""
    if override is not None and override > body.max_tokens and body.position_embeddings() is not None:
        raise ConfigError(
            f"embedder max_tokens={override} exceeds the body's {body.max_tokens} learned positions; "
            f"use max_tokens <= {body.max_tokens} or raise the backbone's max_tokens."
        )
    return override or body.max_tokens


def position_copy(body, n: int, grid: tuple[int, int] | None = None) -> nn.Parameter | None:
    """A trainable copy of the body's learned positions for ``n`` tokens (None if it has none).

    Sequence positions are truncated to ``n``; a body with a 2-D position grid (attribute
    ``position_grid``, e.g. a ViT) has its grid resampled to ``grid``.
    """
    pos = body.position_embeddings()
    if pos is None:
        return None
    pos = pos.detach().clone().float()
    pos_grid = getattr(body, "position_grid", None)
    if pos_grid is not None:
        target = grid or (1, n)
        pos = pos.T.reshape(1, -1, *pos_grid)
        pos = F.interpolate(pos, size=target, mode="bilinear", align_corners=False)[0].flatten(1).T
    elif pos.shape[0] < n:
        pos = F.interpolate(pos.T[None], size=n, mode="linear", align_corners=False)[0].T
    return nn.Parameter(pos[:n].contiguous())


def smallest_divisor(length: int, budget: int) -> int:
    """The smallest s dividing ``length`` with ``length / s <= budget`` (ORCA's 1-D stride)."""
    return next(s for s in range(1, length + 1) if length % s == 0 and length // s <= budget)


def grid_for(size: tuple[int, int], patch: int, budget: int) -> tuple[int, int]:
    """Patch grid covering ``size``, shrunk evenly until it has at most ``budget`` tokens."""
    gh, gw = math.ceil(size[0] / patch), math.ceil(size[1] / patch)
    while gh * gw > budget:
        scale = math.sqrt(budget / (gh * gw))
        gh, gw = max(1, min(gh - 1, math.floor(gh * scale))), max(1, min(gw - 1, math.floor(gw * scale)))
    return gh, gw

