"""Embedder alignment (ORCA's first stage): pull the distribution of embedded target data
towards the embedded source proxy under a registered distance objective."""

from __future__ import annotations

import attrs
import torch
from tqdm.auto import tqdm

from mona_kit.api import Stage, pool_tokens


def distance_objective(session, name: str, options: dict):
    return session.kit.build_objective(name, "distance", options, purpose="embedder alignment").to(session.device)


@attrs.define(kw_only=True)
class AlignStage(Stage):
    """Train only the target embedder to minimise ``objective(source, embedded target)``.

    One optimiser step per epoch over a fixed target subset, as ORCA does.
    """

    name: str = "align"
    objective: str = "otdd"
    objective_options: dict = attrs.field(factory=dict)
    epochs: int = 60
    lr: float = 1e-3
    max_source: int = 5000
    target_samples: int = 256
    pseudo_label_k: int = 10

    def run(self, session, model) -> None:
        objective = distance_objective(session, self.objective, self.objective_options)
        xs, ys = (t.to(session.device) for t in session.source_features(None, "train", self.max_source))
        bound = objective.bind_source(xs, ys)
        train = session.task.train
        n = min(self.target_samples, len(train))
        g = torch.Generator().manual_seed(session.config.seed)
        index = torch.randperm(len(train), generator=g)[:n].tolist()
        batch = session.to_device(torch.utils.data.default_collate([train[i] for i in index]))
        yt = session.class_labels(batch["y"].cpu(), self.pseudo_label_k).to(session.device)
        info = session.dist
        if info.enabled:  # each rank aligns its contiguous share of the target subset; DDP averages
            share = slice(info.rank * n // info.world_size, (info.rank + 1) * n // info.world_size)
            batch, yt = {k: v[share] for k, v in batch.items()}, yt[share]
        model.set_trainable(("embedder",))
        embedder = session.ddp(model.embedder)
        params = [p for p in model.embedder.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=self.lr)
        model.train()
        for epoch in tqdm(range(self.epochs), desc=self.name, disable=not session.progress, leave=False):
            tokens = embedder(batch["x"])
            loss = bound(pool_tokens(tokens), yt)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            session.log(stage=self.name, step=epoch + 1, distance=loss.item(), objective=self.objective)
