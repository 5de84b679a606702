"""PaRe (Cai et al., ICML 2024): a patch-replacement curriculum from near-source to near-target.

In each batch a gate ``sigmoid(Linear(D -> 1))`` scores source and target tokens; the k
highest-scoring source tokens replace the k lowest-scoring target tokens, with k falling
linearly over epochs. Selection is Gumbel top-k with a straight-through gradient in the
first epochs and hard top-k after. Loss::

    l(h_t(g(f_t(x_t))), y_t) + w * [(1 - lam) * l(h_t(g(x_mix)), y_t) + lam * CE(h_src(g(x_mix)), y_src)],  lam = k/N
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import attrs
import torch
import torch.nn.functional as F
from torch import nn

from mona_kit.api import ALL_GROUPS, Method, TrainStage, config, cycle, masked_mean, option

if TYPE_CHECKING:
    from mona_kit.api import Session


@config
class PareConfig:
    start_ratio: float = option(0.64, min=0, max=1, help="fraction of target tokens replaced in the first epoch")
    end_ratio: float = option(0.17, min=0, max=1, help="fraction replaced in the last epoch")
    gumbel_epochs: int = option(1, min=0, help="epochs with Gumbel top-k (straight-through) before hard top-k")
    tau: float = option(0.9, min=0, min_exclusive=True, help="Gumbel temperature")
    weight: float | None = option(None, min=0, help="w (None: 1 for 2-D classification, 0.3 dense, 0.1 1-D)")
    source_batch_size: int = option(32, min=1, help="source proxy samples mixed into each batch")


def replaced_tokens(epoch: int, epochs: int, num_tokens: int, start: float, end: float) -> int:
    """k for this epoch: linear from ``start`` to ``end`` of the tokens over the epochs."""
    frac = start if epochs <= 1 else start + (end - start) * epoch / (epochs - 1)
    return max(1, min(num_tokens, int(round(frac * num_tokens))))


def default_weight(spec) -> float:
    if spec.task_type in ("dense1d", "dense2d", "regression"):
        return 0.3
    return 1.0 if len(spec.input_shape) == 3 else 0.1


def mix_tokens(target, source, gate, k: int, *, gumbel: bool, tau: float, generator=None, source_mask=None):
    """Replace the k lowest-scoring target tokens by the k highest-scoring source tokens
    (padding positions of the source, where ``source_mask`` is 0, are never picked first).

    The selected source tokens carry a straight-through factor (1 in the forward pass) whose
    gradient reaches the gate, so the gate learns which source tokens help.
    """
    n = target.shape[1]
    source = source[:, :n] if source.shape[1] >= n else F.pad(source, (0, 0, 0, n - source.shape[1]))
    s_logit = gate(source).squeeze(-1)  # [B, N]
    if source_mask is not None:
        m = source_mask[:, :n] if source_mask.shape[1] >= n else F.pad(source_mask, (0, n - source_mask.shape[1]))
        s_logit = s_logit.masked_fill(m == 0, -1e4)
    t_logit = gate(target).squeeze(-1)
    noisy = s_logit
    if gumbel:
        u = torch.rand(s_logit.shape, generator=generator, device=s_logit.device).clamp_(1e-9, 1 - 1e-9)
        noisy = (s_logit - torch.log(-torch.log(u))) / tau
    src_idx = noisy.topk(k, dim=1).indices  # [B, k]
    tgt_idx = t_logit.topk(k, dim=1, largest=False).indices
    soft = torch.sigmoid(noisy.gather(1, src_idx))
    straight = (1.0 - soft).detach() + soft  # value 1, gradient of the soft score
    picked = source.gather(1, src_idx.unsqueeze(-1).expand(-1, -1, source.shape[-1])) * straight.unsqueeze(-1)
    mixed = target.clone()
    mixed.scatter_(1, tgt_idx.unsqueeze(-1).expand(-1, -1, target.shape[-1]), picked)
    return mixed


@attrs.define(kw_only=True)
class PareStage(TrainStage):
    """Fine-tuning on the task loss plus the patch-replacement terms; the gate and the source
    head train beside the model."""

    name: str = "pare"
    trainable: tuple[str, ...] = ALL_GROUPS
    cfg: PareConfig
    gate: nn.Module
    source_head: nn.Module
    weight: float
    # Filled by setup: the source batches, the Gumbel noise's own RNG and the curriculum's epoch.
    _source: Iterator[Any] | None = attrs.field(default=None, init=False)
    _drawn: int = attrs.field(default=0, init=False)
    _generator: torch.Generator | None = attrs.field(default=None, init=False)
    _epoch: tuple[int, int] = attrs.field(default=(0, 1), init=False)

    whole_model_step = False  # the step reaches into embedder, body and head

    def extra_parameters(self, session: Session) -> list[tuple[str, nn.Parameter]]:
        return [(f"gate.{n}", p) for n, p in self.gate.named_parameters()] + [
            (f"source_head.{n}", p) for n, p in self.source_head.named_parameters()
        ]

    def setup(self, session: Session, model):
        self._source = cycle(lambda e: session.source_batches(
            "train", batch_size=self.cfg.source_batch_size, shuffle=True, seed_offset=3000 + e))
        self._drawn = 0
        self._generator = torch.Generator(device=session.device).manual_seed(session.config.seed)
        return super().setup(session, model)

    def on_epoch_start(self, session: Session, epoch: int, epochs: int) -> None:
        self._epoch = (epoch, epochs)

    def state_dict(self) -> dict[str, Any]:
        return {"source_batches": self._drawn, "gumbel_rng": self._generator.get_state(),
                "gate": self.gate.state_dict(), "source_head": self.source_head.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.gate.load_state_dict(state["gate"])
        self.source_head.load_state_dict(state["source_head"])
        for _ in range(state["source_batches"]):  # the same seeded order: skip what was mixed in
            next(self._source)
        self._drawn = state["source_batches"]
        self._generator.set_state(state["gumbel_rng"])

    def training_step(self, session: Session, model, batch, step: int):
        c = self.cfg
        epoch, epochs = self._epoch
        batch = session.to_device(batch)
        tokens = model.embedder(batch["x"])
        loss_t = session.task_loss(model.head(model.body(tokens)), batch["y"])
        sb = session.to_device(next(self._source))
        self._drawn += 1
        with torch.no_grad():
            src_tokens, src_mask = session.embed_source_tokens(sb)
        b = min(len(tokens), len(src_tokens))
        k = replaced_tokens(epoch, epochs, tokens.shape[1], c.start_ratio, c.end_ratio)
        mixed = mix_tokens(
            tokens[:b], src_tokens[:b], self.gate, k, gumbel=epoch < c.gumbel_epochs, tau=c.tau,
            generator=self._generator, source_mask=None if src_mask is None else src_mask[:b],
        )
        feats = model.body(mixed)
        lam = k / tokens.shape[1]
        loss_mix = session.task_loss(model.head(feats), batch["y"][:b])
        loss_src = F.cross_entropy(self.source_head(masked_mean(feats, None)), sb["y"][:b])
        loss = loss_t + self.weight * ((1 - lam) * loss_mix + lam * loss_src)
        return loss, {"loss": loss.item(), "replaced": k, "lam": lam}


class Pare(Method):
    uses_source = True

    def __init__(self, cfg: PareConfig):
        self.cfg = cfg

    def stages(self, session: Session):
        c = self.cfg
        width = session.pretrained_body.width
        gate = nn.Linear(width, 1).to(session.device)
        source_head = nn.Linear(width, session.source_task.spec.output_shape[0]).to(session.device)
        weight = c.weight if c.weight is not None else default_weight(session.spec)
        return [PareStage(cfg=c, gate=gate, source_head=source_head, weight=weight)]


def register_all(register):
    register(
        "pare",
        Pare,
        config=PareConfig,
        summary="PaRe: patch-replacement curriculum mixing source tokens into target batches, k falling over epochs",
    )
