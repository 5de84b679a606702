"""Reusable stages that methods compose: supervised training with validation-based model
selection (fine-tune, warm-up, linear probe, FPT), and the final evaluation.

A method is a list of stages; a new method is often a few lines::

    class MyMethod(Method):
        def stages(self, session):
            return [TrainStage(name="warmup", trainable=("embedder", "head"), epochs=1),
                    TrainStage(name="finetune")]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence, Sized
from typing import TYPE_CHECKING, Any, ClassVar, cast

import attrs
import torch
from torch import nn

from .errors import ConfigError, ShapeError
from .loop import (  # noqa: F401 - the loop's names, public here for stages
    PATIENCE_MIN_GAIN,
    LoopStage,
    Setup,
    Stage,
    StepOutput,
    cycle,
    signed_score,
    train_mode,
)
from .model import MODEL_GROUPS, CrossModalModel
from .nonfinite import check_gradients, first_nonfinite_gradient, nonfinite_error  # noqa: F401 - public here too
from .plateau import plateau_record  # noqa: F401 - public here for stages that record their own

if TYPE_CHECKING:
    from .engine import Session

ALL_GROUPS: tuple[str, ...] = MODEL_GROUPS


class Method:
    """A transfer method: which body to start from, and its stages."""

    #: False for train-from-scratch: the body is randomly initialised.
    pretrained_body: bool = True
    #: True when a stage reads the source proxy (alignment, MoNA, PaRe).
    uses_source: bool = False

    def stages(self, session: Session) -> Sequence[Stage]:  # pragma: no cover - interface
        raise NotImplementedError

    def build_model(self, session: Session, pretrained: bool) -> nn.Module:
        """The model the stages train: embedder -> body -> head by default. Reference methods
        (mean, ridge, a from-scratch FNO) return their own module; it keeps all its state in its
        ``state_dict`` so stage checkpoints and resume cover it."""
        return session.build_model(pretrained=pretrained)

    def check(self, session: Session) -> None:
        """Refuse inputs this method cannot use, before anything trains (raise a MonaError).

        The default checks that a method using the source proxy gets a labelled one of the
        body's modality; methods with objectives also check those by name and role.
        """
        if self.uses_source:
            source = session.source_task  # raises on a modality mismatch
            if source.spec.task_type != "classification":
                raise ConfigError(
                    f"method {session.method_entry.name!r} needs a labelled source proxy (classification), but "
                    f"{source.spec.name!r} is {source.spec.task_type}; choose a labelled proxy (source: NAME)."
                )


def make_optimizer(session: Session, named_params: Sequence[tuple[str, nn.Parameter]], lr: float, new_lr: float):
    """Body parameters at ``lr``; embedder, head and method-owned modules at ``new_lr``."""
    cfg = session.config.train
    body = [p for n, p in named_params if n.startswith("body.")]
    new = [p for n, p in named_params if not n.startswith("body.")]
    groups = [g for g in ({"params": body, "lr": lr}, {"params": new, "lr": new_lr}) if g["params"]]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, weight_decay=cfg.weight_decay)
    # fused: one kernel per tensor instead of a dozen passes over every weight (about a quarter of a
    # minilm-l6 fine-tuning step on the CPU, benchmarks/bench_step.py); equal up to rounding.
    return torch.optim.AdamW(groups, lr=lr, weight_decay=cfg.weight_decay, fused=True)


def make_scheduler(session: Session, optimizer, total_steps: int):
    """Linear warm-up over ``train.warmup`` of the steps, then cosine decay (or constant)."""
    cfg = session.config.train
    warm = int(round(cfg.warmup * total_steps)) if total_steps > 0 else 0
    cosine = cfg.scheduler == "cosine" and total_steps > 0

    def factor(s: int) -> float:
        if s < warm:
            return (s + 1) / warm
        if not cosine:
            return 1.0
        span = max(1, total_steps - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(s - warm, span) / span))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@attrs.define(kw_only=True)
class TrainStage(LoopStage):
    """Train the named parameter groups on the task loss; select the best state on validation.

    Methods that mix extra terms (PaRe) subclass it: ``training_step`` gives the loss,
    ``extra_parameters`` what else the optimiser steps (gates, source heads), and
    ``state_dict``/``load_state_dict`` whatever else a resume needs.
    """

    #: Stage metadata: it trains the model on the target task (plots draw the last such stage).
    trains_task: ClassVar[bool] = True

    name: str = "finetune"
    trainable: tuple[str, ...] = ALL_GROUPS
    epochs: int | None = None
    max_steps: int | None = None
    lr: float | None = None
    embedder_lr: float | None = None
    #: Validation passes without a gain before this stage stops early (None: ``train.patience``).
    patience: int | None = None
    select_best: bool = True
    track_reuse: bool = True

    #: The step runs the whole model, so DDP can wrap it; steps that reach into the model's parts
    #: (a subclass's ``training_step``) set this False and their gradients are averaged explicitly.
    whole_model_step = True

    def extra_parameters(self, session: Session) -> list[tuple[str, nn.Parameter]]:
        """Parameters outside the model this stage also trains (at the embedder's rate)."""
        return []

    def setup(self, session: Session, model: nn.Module) -> Setup:
        cfg = session.config.train
        cast(CrossModalModel, model).set_trainable(self.trainable)  # or a reference model's, of the same form
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad] + self.extra_parameters(session)
        lr = self.lr if self.lr is not None else cfg.lr
        optimizer = make_optimizer(session, named, lr, self.embedder_lr or cfg.embedder_lr or lr)
        steps_per_epoch = max(1, math.ceil(len(cast(Sized, session.task.train)) / cfg.batch_size))
        total = (self.epochs if self.epochs is not None else cfg.epochs) * steps_per_epoch
        cap = self.max_steps if self.max_steps is not None else cfg.max_steps
        if cap is not None:
            total = min(total, cap)
        # Selection needs a validation split big enough to select on; a tiny one (the UCR sets) would
        # pick a lucky step, so those runs keep the end of a fixed budget and only log validation.
        return Setup(
            params=named, optimizer=optimizer, scheduler=make_scheduler(session, optimizer, total),
            total_steps=total, epochs=math.ceil(total / steps_per_epoch),  # max_steps may cut the epochs
            forward=session.ddp(model) if self.whole_model_step else None,
            eval_every=max(1, steps_per_epoch // max(1, cfg.evals_per_epoch)) if self.select_best else 0,
            select=self.select_best and session.task.selection == "validation",
            reuse_every=session.config.diagnostics.reuse_every if self.track_reuse and isinstance(model, CrossModalModel) else 0,
            patience=self.patience,
        )

    def batches(self, session: Session, epoch: int) -> Iterable[Any]:
        return session.loader(session.task.train, shuffle=True, seed_offset=epoch)

    def training_step(self, session: Session, model: nn.Module, batch: Any, step: int) -> StepOutput:
        batch = session.to_device(batch)
        return session.task_loss(model(batch["x"]), batch["y"])


@attrs.define(kw_only=True)
class EvaluateStage(Stage):
    """Final report: validation (what selection saw) and test (never used for selection)."""

    name: str = "evaluate"

    def run(self, session: Session, model: nn.Module) -> None:
        results: dict[str, Any] = {}
        for split in session.task.splits():
            if split == "train":
                continue
            try:
                results[split] = session.evaluate(model, split)
            except ShapeError as exc:
                if split in ("val", "test"):
                    raise
                # An extra split (e.g. super-resolution) this embedder/head pair cannot take.
                results[split] = {"skipped": str(exc)}
            session.log(stage=self.name, split=split, **results[split])
        session.results.update(results)
