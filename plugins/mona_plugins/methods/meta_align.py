"""MoNA's stage 1: meta-learn the target embedder (and head) so that fine-tuning the body
on the target task keeps the body's source knowledge.

One meta step, for a target batch (x_t, y_t) and a labelled source batch (x_s, y_s):

    inner:  theta' = theta - alpha * grad_theta L_task(h(g_theta(f_t(x_t))), y_t)     (K times, graph kept)
    outer:  L_src  = objective(pool(g_theta'(f_s(x_s))), y_s)                     (align-uniform by default)
    update: f_t, h_t  <-  minimise L_task(theta) + lambda * L_src(theta')

f_t reaches L_src only through theta', i.e. through the inner gradient: the update needs the
second-order term (double backward). ``second_order=False`` drops it (first-order MAML), which
gives f_t no outer gradient at all - kept as an option to show exactly that.

The inner update is differentiated with ``torch.func.functional_call`` over the body's
parameters and ``torch.autograd.grad(create_graph=True)``: no parameter is patched in place.
The body itself is not updated here; stage 2 fine-tunes from the pretrained body.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import torch
from torch.func import functional_call

from mona_kit.api import ConfigError, LoopStage, Setup, cycle, masked_mean

if TYPE_CHECKING:
    from mona_kit.api import Session

#: What to change when the meta step diverges.
ADVICE = "lower method.inner_lr or method.meta_lr"


def math_attention():
    """Double backward needs the math attention kernel (fused SDPA kernels have no second derivative)."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        return sdpa_kernel(SDPBackend.MATH)
    except ImportError:  # pragma: no cover - older torch
        return contextlib.nullcontext()


def inner_parameter_names(model, groups: Sequence[str]) -> list[str]:
    """Body parameter names (relative to the body) adapted in the inner loop."""
    all_groups = model.body.param_groups()
    if "all" in groups:
        return [n for names in all_groups.values() for n in names]
    unknown = [g for g in groups if g not in all_groups]
    if unknown:
        raise ConfigError(f"inner_params names unknown body group(s) {unknown}; groups: {sorted(all_groups)} or 'all'.")
    return [n for g in groups for n in all_groups[g]]


def representation_objective(session: Session, name: str, options: dict):
    return session.kit.build_objective(name, "representation", options, purpose="MoNA's outer loss").to(session.device)


def _with_math_attention(fn):
    """Run ``fn``'s forward passes under the math kernel so its graph can be differentiated twice."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with math_attention():
            return fn(*args, **kwargs)

    return wrapper


@_with_math_attention
def meta_terms(
    model,
    task_loss: Callable,
    source_objective: Callable,
    x_t: torch.Tensor,
    y_t: torch.Tensor,
    src_tokens: torch.Tensor,
    src_mask: torch.Tensor | None,
    y_s: torch.Tensor,
    *,
    names: Sequence[str],
    inner_steps: int,
    inner_lr: float,
    second_order: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(L_task(theta), L_src(theta'))`` with theta' from ``inner_steps`` simulated fine-tuning steps."""
    body = model.body
    params = dict(body.named_parameters())
    adapted = {n: params[n] for n in names}
    tokens = model.embedder(x_t)
    loss_task = None
    for k in range(inner_steps):
        feats = functional_call(body, adapted, (tokens,), strict=False)
        inner_loss = task_loss(model.head(feats), y_t)
        if k == 0:
            loss_task = inner_loss
        grads = torch.autograd.grad(inner_loss, list(adapted.values()), create_graph=second_order, allow_unused=True)
        # theta - alpha * g as one kernel per tensor (p - alpha * g would make a temporary and a second
        # pass over every body weight, forward and in the double backward).
        adapted = {
            n: (p if g is None else torch.add(p, g if second_order else g.detach(), alpha=-inner_lr))
            for (n, p), g in zip(adapted.items(), grads)
        }
    args = (src_tokens, src_mask) if src_mask is not None else (src_tokens,)
    z = masked_mean(functional_call(body, adapted, args, strict=False), src_mask)
    return loss_task, source_objective(z, y_s)


@_with_math_attention
def grad_align_loss(
    model,
    task_loss: Callable,
    source_objective: Callable,
    x_t, y_t, src_tokens, src_mask, y_s,
    *,
    names: Sequence[str],
    inner_lr: float,
    lam: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """First-order view of one inner step: ``L_task - lam * alpha * <grad L_src, grad L_task>``.

    Target gradients are pushed to agree with the direction that keeps source features aligned
    and uniform. grad L_src does not depend on f_t, so it is computed once without a graph.
    """
    body = model.body
    params = dict(body.named_parameters())
    theta = [params[n] for n in names]
    loss_task = task_loss(model(x_t), y_t)
    g_task = torch.autograd.grad(loss_task, theta, create_graph=True, allow_unused=True)
    args = (src_tokens, src_mask) if src_mask is not None else (src_tokens,)
    loss_src = source_objective(masked_mean(body(*args), src_mask), y_s)
    g_src = torch.autograd.grad(loss_src, theta, allow_unused=True)
    dot = sum((a.detach() * b).sum() for a, b in zip(g_src, g_task) if a is not None and b is not None)
    total = loss_task - lam * inner_lr * dot
    return total, {"task_loss": loss_task.item(), "source_loss": loss_src.item(), "grad_dot": float(dot.detach())}


@attrs.define(kw_only=True)
class MetaAlignStage(LoopStage):
    name: str = "meta-align"
    steps: int = 40
    inner_steps: int = 1
    inner_lr: float = 1e-3
    lam: float = 0.5
    objective: str = "align-uniform"
    objective_options: dict = attrs.field(factory=dict)
    inner_params: tuple[str, ...] = ("all",)
    source_batch_size: int = 16
    source_tokens: int | None = None  # None: as many as the target embedder emits
    meta_lr: float = 1e-3
    second_order: bool = True
    first_order_surrogate: bool = False  # mona-grad-align
    # Filled by setup.
    _objective: Any = attrs.field(default=None, init=False)
    _names: list[str] = attrs.field(factory=list, init=False)

    def setup(self, session: Session, model) -> Setup:
        self._objective = representation_objective(session, self.objective, self.objective_options)
        self._names = inner_parameter_names(model, self.inner_params)
        model.set_trainable(("embedder", "head"))
        body_params = dict(model.body.named_parameters())
        for n in self._names:  # the inner loop differentiates w.r.t. them; they are never stepped here
            body_params[n].requires_grad_(True)
        named = [(f"embedder.{n}", p) for n, p in model.embedder.named_parameters()]
        named += [(f"head.{n}", p) for n, p in model.head.named_parameters()]
        optimizer = torch.optim.AdamW([p for _, p in named], lr=self.meta_lr)
        # DDP cannot wrap a double backward (forward=None): gradients are averaged explicitly.
        return Setup(params=named, optimizer=optimizer, total_steps=self.steps, advice=ADVICE, loss_name="meta loss")

    def model_mode(self, model) -> None:
        model.train()

    def batches(self, session: Session, epoch: int):
        """One pass of ``steps`` (target batch, source batch) pairs from two endless seeded streams."""
        targets = cycle(lambda e: session.loader(session.task.train, shuffle=True, seed_offset=1000 + e))
        sources = cycle(lambda e: session.source_batches(
            "train", batch_size=self.source_batch_size, shuffle=True, seed_offset=2000 + e))
        return itertools.islice(zip(targets, sources), self.steps)

    def training_step(self, session: Session, model, batch, step: int):
        tb, sb = (session.to_device(b) for b in batch)
        with torch.no_grad():
            src_tokens, src_mask = session.embed_source_tokens(sb)
            keep = self.source_tokens or getattr(model.embedder, "num_tokens", src_tokens.shape[1])
            src_tokens = src_tokens[:, :keep]
            src_mask = src_mask[:, :keep] if src_mask is not None else None
        if self.first_order_surrogate:
            total, parts = grad_align_loss(
                model, session.task_loss, self._objective, tb["x"], tb["y"], src_tokens, src_mask, sb["y"],
                names=self._names, inner_lr=self.inner_lr, lam=self.lam,
            )
        else:
            loss_task, loss_src = meta_terms(
                model, session.task_loss, self._objective, tb["x"], tb["y"], src_tokens, src_mask, sb["y"],
                names=self._names, inner_steps=self.inner_steps, inner_lr=self.inner_lr,
                second_order=self.second_order,
            )
            total = loss_task + self.lam * loss_src
            parts = {"task_loss": loss_task.item(), "source_loss": loss_src.item()}
        return total, {"loss": total.item(), **parts}

    def teardown(self, session: Session, model) -> None:
        model.set_trainable(())
