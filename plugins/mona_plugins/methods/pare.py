"""PaRe (Cai et al., ICML 2024): a patch-replacement curriculum from near-source to near-target.

In each batch a gate ``sigmoid(Linear(D -> 1))`` scores source and target tokens; the k
highest-scoring source tokens replace the k lowest-scoring target tokens, with k falling
linearly over epochs. Selection is Gumbel top-k with a straight-through gradient in the
first epochs and hard top-k after. Loss::

    l(h_t(g(f_t(x_t))), y_t) + w * [(1 - lam) * l(h_t(g(x_mix)), y_t) + lam * CE(h_src(g(x_mix)), y_src)],  lam = k/N
"""

from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import nn

from mona_kit.api import ALL_GROUPS, Method, TrainStage, config, masked_mean, option


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


class Pare(Method):
    uses_source = True

    def __init__(self, cfg: PareConfig):
        self.cfg = cfg

    def stages(self, session):
        c = self.cfg
        body = session.pretrained_body
        gate = nn.Linear(body.width, 1).to(session.device)
        num_source_classes = session.source_task.spec.output_shape[0]
        source_head = nn.Linear(body.width, num_source_classes).to(session.device)
        weight = c.weight if c.weight is not None else default_weight(session.spec)
        state = {"epoch": 0, "epochs": max(1, session.config.train.epochs)}
        source_iter = _source_cycle(session, c.source_batch_size)
        generator = torch.Generator(device=session.device).manual_seed(session.config.seed)
        drawn = {"source_batches": 0}

        def get_state() -> dict:  # saved with the stage checkpoint, so a resume mixes the same batches
            return {"source_batches": drawn["source_batches"], "gumbel_rng": generator.get_state()}

        def set_state(saved: dict) -> None:
            for _ in range(saved["source_batches"]):
                next(source_iter)
            drawn["source_batches"] = saved["source_batches"]
            generator.set_state(saved["gumbel_rng"])

        def on_epoch_start(epoch: int, epochs: int) -> None:
            state["epoch"], state["epochs"] = epoch, epochs

        def step_loss(session, model, batch, step):
            tokens = model.embedder(batch["x"])
            loss_t = session.task_loss(model.head(model.body(tokens)), batch["y"])
            sb = session.to_device(next(source_iter))
            drawn["source_batches"] += 1
            with torch.no_grad():
                src_tokens, src_mask = session.embed_source_tokens(sb)
            b = min(len(tokens), len(src_tokens))
            k = replaced_tokens(state["epoch"], state["epochs"], tokens.shape[1], c.start_ratio, c.end_ratio)
            mixed = mix_tokens(
                tokens[:b], src_tokens[:b], gate, k, gumbel=state["epoch"] < c.gumbel_epochs, tau=c.tau, generator=generator,
                source_mask=None if src_mask is None else src_mask[:b],
            )
            feats = model.body(mixed)
            lam = k / tokens.shape[1]
            loss_mix = session.task_loss(model.head(feats), batch["y"][:b])
            loss_src = F.cross_entropy(source_head(masked_mean(feats, None)), sb["y"][:b])
            session.log(stage="pare", step=step, replaced=k, lam=lam)
            return loss_t + weight * ((1 - lam) * loss_mix + lam * loss_src)

        return [
            TrainStage(
                name="pare",
                trainable=ALL_GROUPS,
                step_loss=step_loss,
                extra_modules=(gate, source_head),
                on_epoch_start=on_epoch_start,
                extra_state=(get_state, set_state),
            )
        ]


def _source_cycle(session, batch_size: int):
    epoch = 0
    while True:
        for batch in session.source_batches("train", batch_size=batch_size, shuffle=True, seed_offset=3000 + epoch):
            yield batch
        epoch += 1


def register_all(register):
    register(
        "pare",
        Pare,
        config=PareConfig,
        summary="PaRe: patch-replacement curriculum mixing source tokens into target batches, k falling over epochs",
    )
