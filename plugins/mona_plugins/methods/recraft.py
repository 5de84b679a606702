"""RECRAFT (Tran et al., arXiv 2601.18231, 2026): ORCA with a source-head "label matching" stage.

Written against the public plugin API (``mona_kit.stages``, ``mona_kit.config``,
``mona_kit.errors``) plus the first-party ORCA pieces (``align.AlignStage``, the registered
``otdd`` distance). Four stages, in the order of the reference code (``khiembk/RECRAFT``):

1. ``source-head``: a linear source head ``h_s`` on the pooled features of the frozen, pretrained
   body over the source proxy, ``h_s(pool(g(f_s(x_s))))``, trained with cross-entropy and, from
   ``penalty_start_epoch`` on, the gradient-norm penalty of :func:`gradient_norm_penalty`.
2. ``align``: ORCA's embedder alignment with OTDD and every label set to one class on both sides
   (unlabelled OT: the source proxy's labels and the target's classes are not used).
3. ``label-match``: for each target class c (k-means pseudo-classes for regression, dense and
   multilabel targets), minimise the entropy of the source head's *averaged* prediction
   ``H(mean_i softmax(h_s(pool(g(f_t(x_i))))))`` over a chunk of class-c samples, weighted by c's
   frequency (:func:`label_matching_loss`). The body stays frozen; the embedder (and, by default,
   the source head) are trained.
4. ``finetune``: ORCA's refinement of embedder, body and head (``TrainStage``, model selection on
   the validation split).

Reference defects not repeated: its 1-D source head applies softmax twice (here the head gives
logits and softmax is applied once, in the entropy); it selects checkpoints on the test split
(here: validation). Reference choices kept as defaults: tau = 0.4, rho = 100, 20 source-head
epochs with the penalty from epoch 10, AdamW (lr 1e-4, weight decay 0.05) with cosine decay over
the 20 epochs, source batch 4, 5,000 source samples; label matching 5 epochs, chunks of 20
samples, lr 1e-4, k = 10 pseudo-classes. Choices of this implementation: the frozen body runs in
eval mode while the source head trains (deterministic features); the reference's extra factor
``chunk size / number of batches of the class`` in the label-matching weight is dropped (it
mixes samples and batches); the source head lives on the model as ``model.source_head`` so the
runner's stage checkpoints carry it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import math

import attrs
import torch
import torch.nn.functional as F
from torch import nn

from mona_kit.api import ALL_GROUPS, ConfigError, LoopStage, Method, Setup, TrainStage, config, option

from .align import AlignStage, distance_objective
from .meta_align import math_attention
from .orca import orca_align_lr

if TYPE_CHECKING:
    from mona_kit.api import Session


@config
class RecraftConfig:
    # Stage 1: source head with the gradient-norm penalty.
    tau: float = option(0.4, min=0, help="tau: gradient norms up to tau are free (reference: 0.4)")
    rho: float = option(100.0, min=0, help="rho: weight of the gradient-norm penalty (reference: 100)")
    penalty_grad: str = option(
        "batch-mean", choices=("batch-mean", "per-sample"),
        help="gradient whose norm is penalised: of the batch-mean loss (the reference's code) or of each sample's own loss (its formula)",
    )
    head_epochs: int = option(20, min=0, help="source-head epochs over the source proxy (reference: 20)")
    penalty_start_epoch: int = option(10, min=0, help="first source-head epoch with the penalty (reference: 10; earlier ones: cross-entropy only)")
    head_lr: float = option(1e-4, min=0, min_exclusive=True, help="source-head AdamW LR (reference: 1e-4, cosine decay over head_epochs)")
    head_weight_decay: float = option(0.05, min=0, help="source-head AdamW weight decay (reference: 0.05)")
    head_batch_size: int = option(4, min=1, help="source proxy samples per source-head step (reference: 4)")
    max_source: int = option(5000, min=1, help="source proxy samples used by the source head and the alignment (reference: 5,000)")
    # Stage 2: unlabelled OTDD alignment (ORCA's stage).
    objective: str = option("otdd", help="registered distance objective of the alignment, given no labels (one class)")
    objective_options: dict = option(factory=dict, help="options for the alignment objective's config")
    align_epochs: int = option(60, min=0, help="embedder alignment epochs, one optimiser step each (reference: 60; 0 skips)")
    align_lr: float | None = option(None, min=0, min_exclusive=True, help="alignment LR (None: ORCA's rule, train.embedder_lr or train.lr, x10 if <= 1e-3)")
    target_samples: int = option(256, min=1, help="target samples embedded at each alignment step")
    # Stage 3: label matching.
    label_epochs: int = option(5, min=0, help="label-matching epochs (reference: 5; 0 skips)")
    label_max_samples: int = option(20, min=1, help="target samples of one class per label-matching step (reference: 20)")
    label_lr: float = option(1e-4, min=0, min_exclusive=True, help="label-matching AdamW LR (reference: 1e-4)")
    train_source_head: bool = option(True, help="label matching also trains the source head (reference: yes); False trains the embedder only")
    pseudo_label_k: int = option(10, min=2, help="k-means pseudo-classes for regression, dense and multilabel targets (reference: 10)")


# Objectives ----------------------------------------------------------------------------------
def gradient_norm_penalty(grad_norms: torch.Tensor, tau: float, rho: float) -> torch.Tensor:
    """``(rho / N) * sum_i max(0, ||grad_z l||_2,i - tau)^2`` over the N per-sample gradient norms.

    The norm of sample i is the L2 norm of the loss gradient with respect to that sample's
    embedded input tokens ``z_i = f_s(x_i)`` (all its tokens flattened). Zero while every norm is
    at most tau; a smooth hinge above it.
    """
    return rho * F.relu(grad_norms - tau).pow(2).mean()


def average_prediction_entropy(logits: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """``H(p_bar) = -sum_k p_bar_k log(p_bar_k + eps)``, ``p_bar = mean_i softmax(logits_i)``."""
    p = torch.softmax(logits.float(), dim=-1).mean(dim=0)
    return -(p * torch.log(p + eps)).sum()


def label_matching_loss(logits: torch.Tensor, class_weight: float) -> torch.Tensor:
    """One class's label-matching term: its frequency times the entropy of the averaged prediction."""
    return class_weight * average_prediction_entropy(logits)


def _pool(out: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over tokens ``[B, N, D] -> [B, D]`` (ignoring padding), a CNN map ``[B, C, H, W] -> [B, C]``."""
    if out.dim() != 3:
        return out.flatten(2).mean(-1)
    if mask is None:
        return out.mean(dim=1)
    m = mask.to(out.dtype).unsqueeze(-1)
    return (out * m).sum(1) / m.sum(1).clamp_min(1.0)


def source_head_terms(body, head, tokens, mask, labels, *, penalty: bool, tau: float, rho: float,
                      penalty_grad: str = "batch-mean") -> tuple[torch.Tensor, torch.Tensor]:
    """``(cross-entropy, gradient-norm penalty)`` of the source head over embedded source tokens."""
    if not penalty:
        with torch.no_grad():
            feats = _pool(body(tokens, mask) if mask is not None else body(tokens), mask)
        return F.cross_entropy(head(feats), labels), torch.zeros((), device=tokens.device)
    z = tokens.detach().requires_grad_(True)
    with math_attention():  # the penalty is differentiated twice
        feats = _pool(body(z, mask) if mask is not None else body(z), mask)
        logits = head(feats)
        ce = F.cross_entropy(logits, labels)
        graded = ce if penalty_grad == "batch-mean" else F.cross_entropy(logits, labels, reduction="sum")
        (grad_z,) = torch.autograd.grad(graded, z, create_graph=True)
    norms = grad_z.flatten(1).norm(dim=1)
    return ce, gradient_norm_penalty(norms, tau, rho)


# Stages --------------------------------------------------------------------------------------
@attrs.define(kw_only=True)
class SourceHeadStage(LoopStage):
    """Stage 1: train ``model.source_head`` on the source proxy over the frozen pretrained body."""

    name: str = "source-head"
    epochs: int = 20
    penalty_start_epoch: int = 10
    tau: float = 0.4
    rho: float = 100.0
    penalty_grad: str = "batch-mean"
    lr: float = 1e-4
    weight_decay: float = 0.05
    batch_size: int = 4
    max_source: int = 5000
    _optimizer: torch.optim.Optimizer | None = attrs.field(default=None, init=False)
    _penalty: bool = attrs.field(default=False, init=False)

    def batches(self, session: Session, epoch: int):
        return session.source_batches("train", batch_size=self.batch_size, shuffle=True, limit=self.max_source,
                                      seed_offset=4000 + epoch)

    def setup(self, session: Session, model) -> Setup:
        model.set_trainable(())
        model.source_head.requires_grad_(True)
        named = [(f"source_head.{n}", p) for n, p in model.source_head.named_parameters()]
        self._optimizer = torch.optim.AdamW([p for _, p in named], lr=self.lr, weight_decay=self.weight_decay)
        total = sum(len(self.batches(session, epoch)) for epoch in range(self.epochs))
        return Setup(params=named, optimizer=self._optimizer, total_steps=total, epochs=self.epochs,
                     advice="lower method.head_lr or method.rho")

    def model_mode(self, model) -> None:
        model.eval()  # the body is frozen: its features, not its dropout, are what the head sees

    def on_epoch_start(self, session: Session, epoch: int, epochs: int) -> None:
        # Cosine decay over the epochs, stepped per epoch (the reference's CosineAnnealingLR).
        for group in self._optimizer.param_groups:
            group["lr"] = 0.5 * self.lr * (1.0 + math.cos(math.pi * epoch / max(1, self.epochs)))
        self._penalty = epoch >= self.penalty_start_epoch

    def training_step(self, session: Session, model, batch, step: int):
        batch = session.to_device(batch)
        with torch.no_grad():
            tokens, mask = session.embed_source_tokens(batch)
        ce, pen = source_head_terms(model.body, model.source_head, tokens, mask, batch["y"], penalty=self._penalty,
                                    tau=self.tau, rho=self.rho, penalty_grad=self.penalty_grad)
        loss = ce + pen
        return loss, {"loss": loss.item(), "ce": ce.item(), "penalty": pen.item()}

    def teardown(self, session: Session, model) -> None:
        model.source_head.requires_grad_(False)
        model.train()


@attrs.define(kw_only=True)
class UnlabelledAlignStage(AlignStage):
    """Stage 2: ORCA's embedder alignment with every label set to one class (unlabelled OT)."""

    def bind(self, session: Session):
        objective = distance_objective(session, self.objective, self.objective_options)
        xs, _ = session.source_features(None, "train", self.max_source)
        return objective.bind_source(xs.to(session.device), None)  # None: one class (OTDD's convention)

    def target_labels(self, session: Session, batch):
        return None


@attrs.define(kw_only=True)
class LabelMatchStage(LoopStage):
    """Stage 3: per target class, minimise the entropy of the source head's averaged prediction."""

    name: str = "label-match"
    epochs: int = 5
    max_samples: int = 20
    lr: float = 1e-4
    train_source_head: bool = True
    pseudo_label_k: int = 10
    _plan: list[tuple[int, list[int], float]] = attrs.field(factory=list, init=False)

    def schedule(self, labels: torch.Tensor, seed: int) -> list[tuple[int, list[int], float]]:
        """Every step as (class, sample indices, class frequency): classes in a seeded random order
        per epoch, each class's samples shuffled into chunks of ``max_samples``; a last chunk of
        fewer than half that is dropped, as in the reference."""
        classes = sorted(set(labels.tolist()))
        by_class = {c: (labels == c).nonzero().flatten() for c in classes}
        out = []
        for epoch in range(self.epochs):
            g = torch.Generator().manual_seed(seed + 5000 + epoch)
            for ci in torch.randperm(len(classes), generator=g).tolist():
                c = classes[ci]
                members = by_class[c][torch.randperm(len(by_class[c]), generator=g)].tolist()
                weight = len(members) / len(labels)
                for lo in range(0, len(members), self.max_samples):
                    chunk = members[lo : lo + self.max_samples]
                    if len(chunk) == self.max_samples or len(chunk) >= max(1, self.max_samples // 2):
                        out.append((c, chunk, weight))
        return out

    def setup(self, session: Session, model) -> Setup:
        train = session.task.train
        ys = torch.stack([torch.as_tensor(train[i]["y"]) for i in range(len(train))])
        labels = session.class_labels(ys, self.pseudo_label_k).long().reshape(-1)
        self._plan = self.schedule(labels, session.config.seed)
        model.set_trainable(("embedder",))
        model.source_head.requires_grad_(self.train_source_head)
        named = [(f"embedder.{k}", p) for k, p in model.embedder.named_parameters() if p.requires_grad]
        if self.train_source_head:
            named += [(f"source_head.{k}", p) for k, p in model.source_head.named_parameters()]
        optimizer = torch.optim.AdamW([p for _, p in named], lr=self.lr)
        return Setup(params=named, optimizer=optimizer, total_steps=len(self._plan), advice="lower method.label_lr")

    def model_mode(self, model) -> None:
        model.train()

    def batches(self, session: Session, epoch: int):
        return iter(self._plan)  # (class, sample indices, weight): collated only when stepped

    def training_step(self, session: Session, model, item, step: int):
        c, chunk, weight = item
        train = session.task.train
        batch = session.to_device(torch.utils.data.default_collate([train[i] for i in chunk]))
        logits = model.source_head(_pool(model.body(model.embedder(batch["x"]))))
        loss = label_matching_loss(logits, weight)
        return loss, {"loss": loss.item(), "target_class": int(c)}

    def teardown(self, session: Session, model) -> None:
        model.set_trainable(())
        model.source_head.requires_grad_(False)


# Method --------------------------------------------------------------------------------------
class Recraft(Method):
    uses_source = True

    def __init__(self, cfg: RecraftConfig):
        self.cfg = cfg

    def build_model(self, session: Session, pretrained: bool):
        """embedder -> body -> head, plus ``source_head`` (Linear(D, source classes)), frozen outside
        stages 1 and 3; being a submodule, it is in every stage checkpoint."""
        model = super().build_model(session, pretrained)
        width = session.pretrained_body.width
        classes = session.source_task.spec.output_shape[0]
        generator = torch.Generator().manual_seed(session.config.seed + 7)
        head = nn.Linear(width, classes)
        with torch.no_grad():  # nn.Linear's default init, from the run's own seed
            bound = 1.0 / math.sqrt(width)
            head.weight.copy_(torch.empty_like(head.weight).uniform_(-bound, bound, generator=generator))
            head.bias.copy_(torch.empty_like(head.bias).uniform_(-bound, bound, generator=generator))
        head.requires_grad_(False)
        model.add_module("source_head", head.to(next(model.parameters()).device))
        return model

    def check(self, session: Session) -> None:
        super().check(session)
        c = self.cfg
        if c.penalty_start_epoch > c.head_epochs:
            raise ConfigError(
                f"method.penalty_start_epoch={c.penalty_start_epoch} is after the last source-head epoch "
                f"(method.head_epochs={c.head_epochs}); the gradient-norm penalty would never apply."
            )
        distance_objective(session, c.objective, dict(c.objective_options))

    def stages(self, session: Session):
        c = self.cfg
        return [
            SourceHeadStage(
                epochs=c.head_epochs, penalty_start_epoch=c.penalty_start_epoch, tau=c.tau, rho=c.rho,
                penalty_grad=c.penalty_grad, lr=c.head_lr, weight_decay=c.head_weight_decay,
                batch_size=c.head_batch_size, max_source=c.max_source,
            ),
            UnlabelledAlignStage(
                objective=c.objective, objective_options=dict(c.objective_options), epochs=c.align_epochs,
                lr=orca_align_lr(session, c.align_lr), max_source=c.max_source, target_samples=c.target_samples,
            ),
            LabelMatchStage(
                epochs=c.label_epochs, max_samples=c.label_max_samples, lr=c.label_lr,
                train_source_head=c.train_source_head, pseudo_label_k=c.pseudo_label_k,
            ),
            TrainStage(name="finetune", trainable=ALL_GROUPS),
        ]


def register_all(register):
    register(
        "recraft",
        Recraft,
        config=RecraftConfig,
        summary="RECRAFT: source head with a gradient-norm penalty, unlabelled OTDD alignment, label matching by entropy, then fine-tune",
    )
