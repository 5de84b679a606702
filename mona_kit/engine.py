"""The engine: builds a run's components from the config and gives stages what they need.

Plugins never pick devices, seed RNGs or talk to other processes themselves: they
ask the :class:`Session` (``session.device``, ``session.loader(...)``,
``session.evaluate(...)``).
"""

from __future__ import annotations

import copy
import random
import sys
from collections.abc import Mapping
from functools import cached_property
from typing import Any

import numpy as np
import torch
from torch import nn

from .checkpoint import StageCheckpoint
from .components import Backbone, TaskData
from .errors import ConfigError
from .kit import Kit
from .model import CrossModalModel
from .normalize import Normalization
from .registry import check_built
from .runconfig import ComponentRef, RunConfig
from .source_proxy import SourceProxyServices, masked_mean, pool_tokens  # noqa: F401 - public here too


def parse_device(name: str) -> torch.device | None:
    """The device a ``device`` setting names (None for ``auto``), whether or not it is on this machine."""
    if name == "auto":
        return None
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"device {name!r} is not a torch device; use auto, cpu, cuda or cuda:N.") from exc
    # Other torch devices (mps, xpu, meta ...) would fail later, inside a component, blaming its plugin.
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(
            f"device {name!r}: mona-kit runs on the CPU or NVIDIA GPUs (CUDA) only, not {device.type}; "
            f"use device=auto, cpu, cuda or cuda:N."
        )
    return device


def resolve_device(name: str) -> torch.device:
    """The device a ``device`` setting names on this machine (``auto``: a GPU if one is visible)."""
    device = parse_device(name)
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but no CUDA GPU is visible; use device=cpu.")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise ConfigError(
            f"device {name!r} asked for, but {count} CUDA GPU(s) are visible (cuda:0..cuda:{count - 1}); choose one of them."
        )
    return device


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        # Deterministic mode also NaN-fills every new tensor (about a tenth of a training step on the
        # CPU); kernels write their whole output, so the fill changes no result.
        torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]  # a module property


def pick_auto(kit: Kit, kind: str, **facts: Any) -> str:
    """Choose the default embedder or head from what entries declare in their metadata.

    Embedders declare ``input_rank`` (len of a sample's input shape) and ``body_family``;
    heads declare ``task_types``. Among matching entries, ``default=True`` wins.
    """
    matches = []
    for entry in kit.registry(kind):
        meta = entry.meta
        if kind == "embedders":
            if facts["input_rank"] not in meta.get("input_ranks", ()):
                continue
            if facts["body_family"] not in meta.get("body_families", ("transformer",)):
                continue
        else:
            if facts["task_type"] not in meta.get("task_types", ()):
                continue
        matches.append(entry)
    if not matches:
        what = ", ".join(f"{k}={v}" for k, v in facts.items())
        raise ConfigError(f"no registered {kind[:-1]} handles {what}; name one in the config ({kind[:-1]}: NAME).")
    defaults = [e for e in matches if e.meta.get("default")]
    return (defaults or matches)[0].name


def build_task(entry, cfg) -> TaskData:
    """A dataset entry's splits from its validated config, refused if the factory returns anything else."""
    task = entry.factory(cfg) if cfg is not None else entry.factory()
    check_built(entry, task)
    return task


def build_body(entry, cfg, pretrained: bool, *, who: str) -> Backbone:
    """A backbone entry's body from its validated config; ``pretrained=False`` needs a 'pretrained' option."""
    if not pretrained and (cfg is None or not hasattr(cfg, "pretrained")):
        raise ConfigError(
            f"{who} needs a randomly initialised body, but backbone "
            f"{entry.name!r} has no 'pretrained' option; add one to its config class."
        )
    if not pretrained:
        import attrs

        cfg = attrs.evolve(cfg, pretrained=False)
    body = entry.factory(cfg) if cfg is not None else entry.factory()
    check_built(entry, body)
    return body


def auto_name(kit: Kit, key: str, spec, body: Backbone) -> str:
    """The embedder (by input rank and body family) or head (by task type) ``auto`` stands for."""
    if key == "embedder":
        return pick_auto(kit, "embedders", input_rank=len(spec.input_shape), body_family=body.family)
    if key == "head":
        return pick_auto(kit, "heads", task_type=spec.task_type)
    raise KeyError(key)


def assemble_model(kit: Kit, spec, body: Backbone, embedder: ComponentRef, head: ComponentRef) -> CrossModalModel:
    """embedder -> ``body`` -> head for a task spec (``auto`` names resolved; no statistics, no device)."""
    emb_name = auto_name(kit, "embedder", spec, body) if embedder.name == "auto" else embedder.name
    head_name = auto_name(kit, "head", spec, body) if head.name == "auto" else head.name
    emb = kit.embedders.get(emb_name).build(embedder.options, task=spec, body=body)
    out = kit.heads.get(head_name).build(head.options, task=spec, body=body, embedder=emb)
    return CrossModalModel(emb, body, out)


class Session(SourceProxyServices):
    """One run's resolved components plus the services stages use: components, data, evaluation,
    logging and the distributed primitives here; what only source-proxy methods use (f_s, proxy
    batches, pooled features, pseudo-labels, knowledge-reuse probes) in :class:`SourceProxyServices`."""

    def __init__(self, kit: Kit, config: RunConfig, *, run=None, progress: bool = True):
        self.kit = kit
        self.config = config
        self.run = run
        self.progress = progress
        from .distributed import check_same_plugins, init_from_env

        self.dist = init_from_env(config.device)
        self.device = resolve_device(config.device)
        if self.device.type == "cuda" and self.dist.enabled:
            self.device = torch.device("cuda", self.dist.local_rank)
        check_same_plugins(self.dist, kit)
        from .precision import bf16_cpu_warning, check_precision

        check_precision(config.train.precision, self.device)  # fp16 on a CPU fails before any data is read
        slow_bf16 = bf16_cpu_warning(config.train.precision, self.device)
        if slow_bf16 and self.dist.is_main:
            print(slow_bf16, file=sys.stderr)
        self.progress = progress and self.dist.is_main
        #: The running stage's mid-stage checkpoints: the runner sets it around each stage, the
        #: training loop (``mona_kit.loop``) alone saves and loads through it; None outside a run.
        self.stage_checkpoint: StageCheckpoint | None = None
        if config.threads:
            torch.set_num_threads(config.threads)
        seed_everything(config.seed, config.deterministic)
        self.task_entry = kit.datasets.get(config.task.name)
        self.backbone_entry = kit.backbones.get(config.backbone.name)
        self.method_entry = kit.methods.get(config.method.name)
        # Validate every config up front: a typo fails before any data is read.
        self.method = self.method_entry.build(config.method.options)
        self.backbone_config = self.backbone_entry.make_config(config.backbone.options)
        self.task_config = self.task_entry.make_config(config.task.options)
        self.results: dict[str, Any] = {}

    # Components ----------------------------------------------------------------------------
    @cached_property
    def task(self) -> TaskData:
        return build_task(self.task_entry, self.task_config)

    @property
    def spec(self):
        return self.task.spec

    def _build_body(self, pretrained: bool) -> Backbone:
        return build_body(self.backbone_entry, self.backbone_config, pretrained, who=f"method {self.method_entry.name!r}")

    @cached_property
    def pretrained_body(self) -> Backbone:
        """The body as loaded (kept on the CPU, never trained): stage resets and f_s come from here."""
        return self._build_body(pretrained=True)

    def resolved_name(self, key: str) -> str:
        ref: ComponentRef = getattr(self.config, key)
        if ref.name != "auto":
            return ref.name
        if key in ("embedder", "head"):
            return auto_name(self.kit, key, self.spec, self.pretrained_body)
        if key == "source":  # the backbone's registration names its proxy (meta source_proxy=NAME)
            proxy = self.backbone_entry.meta.get("source_proxy")
            if not isinstance(proxy, str):
                raise ConfigError(
                    f"backbone {self.backbone_entry.name!r} names no default source proxy (its registration has no "
                    f"source_proxy=NAME); set source: NAME in the config."
                )
            return proxy
        raise KeyError(key)

    def build_model(self, *, pretrained: bool = True) -> CrossModalModel:
        """embedder -> body -> head, freshly built (a copy of the loaded body, or a random one)."""
        torch.manual_seed(self.config.seed)
        body = copy.deepcopy(self.pretrained_body) if pretrained else self._build_body(pretrained=False)
        embedder = ComponentRef(name=self.resolved_name("embedder"), options=self.config.embedder.options)
        head = ComponentRef(name=self.resolved_name("head"), options=self.config.head.options)
        model = assemble_model(self.kit, self.spec, body, embedder, head)
        self.normalization.attach(model.embedder, model.head)
        return model.to(self.device)

    @cached_property
    def normalization(self) -> Normalization:
        """Input and target statistics of the training split (``train.normalize_*``), for the model's hooks."""
        cfg = self.config.train
        return Normalization.fit_task(self.task.train, self.spec.task_type, cfg.normalize_inputs, cfg.normalize_targets)

    def reset_body(self, model: CrossModalModel) -> None:
        """Put the pretrained weights back into the model's body (MoNA's stage 2 starts there)."""
        model.body.load_state_dict(self.pretrained_body.state_dict())

    @cached_property
    def task_loss(self) -> nn.Module:
        from .kit import scalar_output_check

        entry = self.kit.objectives.get(self.spec.loss)
        loss = entry.build()
        loss.register_forward_hook(scalar_output_check(entry))  # a per-sample loss would fail later, unnamed
        return self.normalization.wrap_loss(loss)

    @cached_property
    def metric(self):
        return self.kit.metrics.get(self.spec.metric).build()

    def component_names(self) -> dict[str, str]:
        return {
            "task": self.task_entry.name,
            "backbone": self.backbone_entry.name,
            "embedder": self.resolved_name("embedder"),
            "head": self.resolved_name("head"),
            "method": self.method_entry.name,
        }

    # Data -----------------------------------------------------------------------------------
    def loader(self, dataset, *, shuffle: bool, batch_size: int | None = None, seed_offset: int = 0):
        """Batches of a split. Under torchrun, a shuffled loader yields this rank's slice of each
        global batch (``batch_size`` is global); evaluation loaders see the whole split."""
        from .data import make_loader
        from .distributed import shard_indices

        bs = batch_size or (self.config.train.batch_size if shuffle else self.config.train.eval_batch_size)
        if shuffle and self.dist.enabled:
            indices = shard_indices(len(dataset), bs, self.config.seed + seed_offset, self.dist)
            dataset = torch.utils.data.Subset(dataset, indices)
            bs, shuffle = bs // self.dist.world_size, False
        return make_loader(
            dataset,
            batch_size=bs,
            shuffle=shuffle,
            seed=self.config.seed + seed_offset,
            kind=self.config.train.loader,
            num_workers=self.config.train.num_workers,
        )

    def to_device(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        return {k: (v.to(self.device) if torch.is_tensor(v) else v) for k, v in batch.items()}

    @torch.no_grad()
    def predict(self, model: nn.Module, dataset) -> tuple[torch.Tensor, torch.Tensor]:
        was_training = model.training
        model.eval()
        preds, targets = [], []
        for batch in self.loader(dataset, shuffle=False):
            batch = self.to_device(batch)
            # fp32 even after bf16/fp16 training: the metric sees unrounded predictions
            preds.append(model(batch["x"]).float().cpu())
            targets.append(batch["y"].cpu())
        model.train(was_training)
        return torch.cat(preds), torch.cat(targets)

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        dataset = self.task.splits()[split]
        preds, targets = self.predict(model, dataset)
        return {
            self.spec.metric: float(self.metric(preds, targets)),
            "loss": float(self.task_loss(preds, targets)),
        }

    def log(self, **event: Any) -> None:
        if self.run is not None and self.dist.is_main:
            self.run.log(event)

    # Distributed ----------------------------------------------------------------------------
    def ddp(self, module: nn.Module) -> nn.Module:
        """``module`` wrapped in DistributedDataParallel under torchrun; itself otherwise."""
        if not self.dist.enabled or not any(p.requires_grad for p in module.parameters()):
            return module
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=True)

    def all_finite(self, value: torch.Tensor) -> bool:
        """Whether ``value`` is finite on every rank (one rank's NaN must stop or skip all of them)."""
        ok = torch.isfinite(value).all().to(torch.float32).reshape(1)
        if self.dist.enabled:
            import torch.distributed as dist

            from .distributed import collective

            with collective("agreeing that the loss is finite", self.dist):
                dist.all_reduce(ok, op=dist.ReduceOp.MIN)
        return bool(ok.item())

    def sync_gradients(self, params) -> None:
        """Average gradients across ranks explicitly (for steps DDP cannot wrap: double backward)."""
        from .distributed import all_reduce_mean_

        all_reduce_mean_(self.dist, [p.grad for p in params])
