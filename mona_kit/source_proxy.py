"""Session services only the methods that read the source proxy use (ORCA, MoNA, PaRe, RECRAFT):
f_s and the proxy's prepared splits and batches, pooled source and target features, (pseudo-)class
labels and the knowledge-reuse probes.

:class:`mona_kit.engine.Session` inherits them; they rely on its ``config``, ``kit``, ``device``,
``task``, ``spec``, ``pretrained_body``, ``resolved_name``, ``loader``, ``to_device`` and ``log``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sized
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn

from .components import TaskData
from .errors import ConfigError, DataError

if TYPE_CHECKING:
    from .components import Backbone, TaskSpec
    from .kit import Kit
    from .model import CrossModalModel
    from .registry import Entry
    from .runconfig import RunConfig


class SourceProxyServices:
    """The source-proxy half of the session (a mixin of :class:`mona_kit.engine.Session`)."""

    if TYPE_CHECKING:  # what engine.Session provides
        config: RunConfig
        kit: Kit
        device: torch.device
        backbone_entry: Entry

        @property
        def task(self) -> TaskData: ...
        @property
        def spec(self) -> TaskSpec: ...
        @property
        def pretrained_body(self) -> Backbone: ...
        def resolved_name(self, key: str) -> str: ...
        def loader(self, dataset: Any, *, shuffle: bool, batch_size: int | None = None, seed_offset: int = 0) -> Any: ...
        def to_device(self, batch: Mapping[str, Any]) -> dict[str, Any]: ...
        def log(self, **event: Any) -> None: ...

    @cached_property
    def source_embedder(self):
        f_s = self.pretrained_body.source_embedder().to(self.device)
        f_s.eval()
        for p in f_s.parameters():
            p.requires_grad_(False)
        return f_s

    @cached_property
    def source_task(self) -> TaskData:
        name = self.resolved_name("source")
        entry = self.kit.datasets.get(name)
        data = entry.build(self.config.source.options)
        modality = data.spec.modality
        body_modality = self.pretrained_body.source_modality
        if modality != body_modality:
            raise ConfigError(
                f"source proxy {name!r} is {modality} data but body {self.backbone_entry.name!r} was pretrained on "
                f"{body_modality}; choose a {body_modality} proxy (source: NAME)."
            )
        return data

    @cached_property
    def source_splits(self) -> dict[str, torch.utils.data.Dataset]:
        """Proxy splits prepared by f_s (tokenised or resized) once."""
        max_tokens = self.pretrained_body.max_tokens
        out = {}
        for split, ds in (("train", self.source_task.train), ("test", self.source_task.test)):
            out[split] = self.source_embedder.prepare(ds, max_tokens=max_tokens)
        return out

    def source_batches(self, split: str, *, batch_size: int, shuffle: bool, limit: int | None = None, seed_offset: int = 0):
        dataset = self.source_splits[split]
        n = len(cast(Sized, dataset))
        if limit is not None and limit < n:
            # A seeded random subset: proxy files are often sorted by class.
            keep = torch.randperm(n, generator=torch.Generator().manual_seed(self.config.seed))[:limit]
            dataset = torch.utils.data.Subset(dataset, sorted(keep.tolist()))
        return self.loader(dataset, shuffle=shuffle, batch_size=batch_size, seed_offset=seed_offset)

    def embed_source_tokens(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """f_s of a prepared source batch, with padding columns no sample uses cut off
        (text proxies are padded to the token budget; attention over pure padding is wasted work)."""
        tokens, mask = self.source_embedder(self.to_device(batch))
        if mask is not None and tokens.dim() == 3:
            longest = int(mask.sum(1).max())
            tokens, mask = tokens[:, :longest], mask[:, :longest]
        return tokens, mask

    def embed_source(self, body: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Mean-pooled body features of a source proxy batch: ``pool(g(f_s(x_s)))``."""
        tokens, mask = self.embed_source_tokens(batch)
        feats = body(tokens, mask) if mask is not None else body(tokens)
        return masked_mean(feats, mask)

    @torch.no_grad()
    def source_features(self, body: nn.Module | None, split: str, limit: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Pooled features of up to ``limit`` source proxy samples: through ``body``, or the
        embedded tokens themselves (ORCA's alignment space) when ``body`` is None."""
        was_training = body.training if body is not None else False
        if body is not None:
            body.eval()
        feats, labels = [], []
        for batch in self.source_batches(split, batch_size=self.config.train.eval_batch_size, shuffle=False, limit=limit):
            if body is None:
                tokens, mask = self.embed_source_tokens(batch)
                feats.append(masked_mean(tokens, mask).float().cpu())
            else:
                feats.append(self.embed_source(body, batch).float().cpu())
            labels.append(batch["y"].cpu())
        if body is not None:
            body.train(was_training)
        return torch.cat(feats), torch.cat(labels)

    @torch.no_grad()
    def target_features(self, model: CrossModalModel, split: str, limit: int, *, through_body: bool):
        """Pooled embedder tokens (or body features) of up to ``limit`` target samples, and their targets."""
        dataset = self.task.splits()[split]
        n = len(cast(Sized, dataset))
        if limit < n:
            keep = torch.randperm(n, generator=torch.Generator().manual_seed(self.config.seed))[:limit]
            dataset = torch.utils.data.Subset(dataset, sorted(keep.tolist()))
        feats, targets = [], []
        model.eval()
        for batch in self.loader(dataset, shuffle=False):
            batch = self.to_device(batch)
            tokens = model.embedder(batch["x"])
            out = model.body(tokens) if through_body else tokens
            feats.append(pool_tokens(out).float().cpu())
            targets.append(batch["y"].cpu())
        model.train()
        return torch.cat(feats), torch.cat(targets)

    def class_labels(self, targets: torch.Tensor, k: int = 10) -> torch.Tensor:
        """Class labels, or k-means pseudo-labels of flattened targets for regression and dense tasks."""
        if self.spec.task_type == "classification":
            return targets.long()
        from .diagnostics import pseudo_labels

        return torch.as_tensor(pseudo_labels(targets.reshape(len(targets), -1).float(), k=k, seed=self.config.seed))

    @torch.no_grad()
    def pretrained_source_features(self, split: str, limit: int) -> torch.Tensor:
        """The loaded (pretrained) body's pooled features of the probe samples: the reference the
        training body is compared with. Computed once per run, on a temporary copy of the body (the
        loaded one stays on the CPU); draws nothing from the global random generators."""
        cache: dict[tuple[str, int], torch.Tensor] = self.__dict__.setdefault("_pretrained_source_features", {})
        if (split, limit) not in cache:
            body = copy.deepcopy(self.pretrained_body).to(self.device)
            cache[(split, limit)] = self.source_features(body, split, limit)[0]
            del body
        return cache[(split, limit)]

    def measure_reuse(self, model: CrossModalModel, *, stage: str, step: int) -> dict[str, float]:
        """How well the current body still separates source classes (MoNA paper, Section 3), and how
        much of the pretrained body's source representation it keeps (linear CKA on the same held-out
        samples; a random body that passes the pretrained token embeddings through scores well on the
        probe but not here)."""
        from .diagnostics import davies_bouldin, linear_probe_accuracy

        n = self.config.diagnostics.reuse_samples
        xtr, ytr = self.source_features(model.body, "train", n)
        xte, yte = self.source_features(model.body, "test", n)
        values = {
            "davies_bouldin": float(davies_bouldin(xtr, ytr)),
            "probe_accuracy": float(linear_probe_accuracy(xtr, ytr, xte, yte, seed=self.config.seed)),
            "cka_to_pretrained": _finite_cka(xte, self.pretrained_source_features("test", n)),
        }
        self.log(stage=stage, step=step, event="knowledge-reuse", **values)
        return values


def _finite_cka(features: torch.Tensor, reference: torch.Tensor) -> float:
    """CKA, or NaN for a diverged body (non-finite or constant features): logged, not raised, as the
    probe's values are."""
    from .diagnostics import linear_cka

    if not bool(torch.isfinite(features).all()):
        return float("nan")
    try:
        return linear_cka(features, reference)
    except DataError:
        return float("nan")


def pool_tokens(out: torch.Tensor) -> torch.Tensor:
    """``[B, N, D] -> [B, D]``; a CNN stem map ``[B, C, H, W] -> [B, C]``."""
    return out.mean(dim=1) if out.dim() == 3 else out.flatten(2).mean(-1)


def masked_mean(tokens: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over tokens ``[B, N, D] -> [B, D]``, ignoring padding where ``mask`` is 0."""
    if mask is None:
        return tokens.mean(dim=1)
    m = mask.to(tokens.dtype).unsqueeze(-1)
    return (tokens * m).sum(1) / m.sum(1).clamp_min(1.0)
