"""Embedder alignment (ORCA's first stage): pull the distribution of embedded target data
towards the embedded source proxy under a registered distance objective."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import attrs
import torch

from mona_kit.api import LoopStage, Setup, pool_tokens

if TYPE_CHECKING:
    from mona_kit.api import Session


def distance_objective(session: Session, name: str, options: dict):
    return session.kit.build_objective(name, "distance", options, purpose="embedder alignment").to(session.device)


@attrs.define(kw_only=True)
class AlignStage(LoopStage):
    """Train only the target embedder to minimise ``objective(source, embedded target)``.

    One optimiser step per epoch over a fixed target subset, as ORCA does; the training loop
    (``mona_kit.loop``) adds the non-finite policy and mid-stage resume.
    """

    name: str = "align"
    objective: str = "otdd"
    objective_options: dict = attrs.field(factory=dict)
    epochs: int = 60
    lr: float = 1e-3
    max_source: int = 5000
    target_samples: int = 256
    pseudo_label_k: int = 10

    # Filled by setup: the objective bound to the source, the fixed target subset and its labels.
    _bound: Any = attrs.field(default=None, init=False)
    _batch: dict[str, torch.Tensor] | None = attrs.field(default=None, init=False)
    _labels: torch.Tensor | None = attrs.field(default=None, init=False)

    def bind(self, session: Session) -> Any:
        """The objective bound to the embedded source proxy and its labels."""
        objective = distance_objective(session, self.objective, self.objective_options)
        xs, ys = (t.to(session.device) for t in session.source_features(None, "train", self.max_source))
        return objective.bind_source(xs, ys)

    def target_labels(self, session: Session, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """Class labels of the target subset (k-means pseudo-labels for regression and dense tasks)."""
        return session.class_labels(batch["y"].cpu(), self.pseudo_label_k).to(session.device)

    def setup(self, session: Session, model) -> Setup:
        self._bound = self.bind(session)
        train = session.task.train
        n = min(self.target_samples, len(train))
        g = torch.Generator().manual_seed(session.config.seed)
        index = torch.randperm(len(train), generator=g)[:n].tolist()
        batch = session.to_device(torch.utils.data.default_collate([train[i] for i in index]))
        labels = self.target_labels(session, batch)
        info = session.dist
        if info.enabled:  # each rank aligns its contiguous share of the target subset; DDP averages
            share = slice(info.rank * n // info.world_size, (info.rank + 1) * n // info.world_size)
            batch = {k: v[share] for k, v in batch.items()}
            labels = labels[share] if labels is not None else None
        self._batch, self._labels = batch, labels
        model.set_trainable(("embedder",))
        named = [(f"embedder.{k}", p) for k, p in model.embedder.named_parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW([p for _, p in named], lr=self.lr)
        return Setup(params=named, optimizer=optimizer, total_steps=self.epochs, forward=session.ddp(model.embedder),
                     advice="lower method.align_lr")

    def model_mode(self, model) -> None:
        model.train()

    def batches(self, session: Session, epoch: int):
        """One optimiser step per alignment epoch, each over the same fixed target subset."""
        return itertools.repeat(None, self.epochs)

    def training_step(self, session: Session, embedder, batch, step: int):
        loss = self._bound(pool_tokens(embedder(self._batch["x"])), self._labels)
        return loss, {"distance": loss.item(), "objective": self.objective}
