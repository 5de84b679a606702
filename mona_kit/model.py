"""Model assembly: embedder -> body -> head, with parameters in named groups."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from .components import BODY_GROUPS, Backbone, Embedder, Head

#: Model-level groups: the body's groups plus the new target parts.
MODEL_GROUPS = ("embedder", "head") + tuple(f"body.{g}" for g in BODY_GROUPS)


class CrossModalModel(nn.Module):
    """``head(body(embedder(x)))``. The body keeps its pretrained weights; embedder and head are new."""

    def __init__(self, embedder: Embedder, body: Backbone, head: Head):
        super().__init__()
        self.embedder = embedder
        self.body = body
        self.head = head

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.embedder(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.embedder(x)))

    def named_parameter_groups(self) -> dict[str, list[tuple[str, nn.Parameter]]]:
        """Group -> [(qualified name, parameter)] (a body's ``param_groups()`` gives names only): ``embedder``, ``head`` and ``body.<group>``."""
        groups: dict[str, list[tuple[str, nn.Parameter]]] = {g: [] for g in MODEL_GROUPS}
        groups["embedder"] = [(f"embedder.{n}", p) for n, p in self.embedder.named_parameters()]
        groups["head"] = [(f"head.{n}", p) for n, p in self.head.named_parameters()]
        body_params = dict(self.body.named_parameters())
        for group, names in self.body.param_groups().items():
            groups[f"body.{group}"] = [(f"body.{n}", body_params[n]) for n in names]
        return groups

    def set_trainable(self, names: Iterable[str]) -> None:
        """Train exactly the named groups; freeze every other parameter."""
        names = set(names)
        unknown = names - set(MODEL_GROUPS)
        if unknown:
            raise ValueError(f"unknown parameter group(s) {sorted(unknown)}; groups are {MODEL_GROUPS}")
        for group, params in self.named_parameter_groups().items():
            for _, p in params:
                p.requires_grad_(group in names)
