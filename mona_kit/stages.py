"""Reusable stages that methods compose: supervised training with validation-based model
selection (fine-tune, warm-up, linear probe, FPT), and the final evaluation.

A method is a list of stages; a new method is often a few lines::

    class MyMethod(Method):
        def stages(self, session):
            return [TrainStage(name="warmup", trainable=("embedder", "head"), epochs=1),
                    TrainStage(name="finetune")]
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import attrs
import torch
from torch import nn
from tqdm.auto import tqdm

from .checkpoint import set_rng_state
from .errors import ConfigError, NumericalError, ShapeError
from .model import MODEL_GROUPS, CrossModalModel

ALL_GROUPS: tuple[str, ...] = MODEL_GROUPS
#: Early stopping's patience resets only on a relative validation gain above this (not on rounding noise).
PATIENCE_MIN_GAIN = 1e-4


class Stage:
    """One step of a method. ``run`` trains or measures ``model`` in place."""

    name: str = "stage"
    #: Stage metadata: True when the stage trains the model on the target task (plots draw the last such stage).
    trains_task: ClassVar[bool] = False

    def run(self, session, model: CrossModalModel) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class Method:
    """A transfer method: which body to start from, and its stages."""

    #: False for train-from-scratch: the body is randomly initialised.
    pretrained_body: bool = True
    #: True when a stage reads the source proxy (alignment, MoNA, PaRe).
    uses_source: bool = False

    def stages(self, session) -> Sequence[Stage]:  # pragma: no cover - interface
        raise NotImplementedError

    def build_model(self, session, pretrained: bool) -> nn.Module:
        """The model the stages train: embedder -> body -> head by default. Reference methods
        (mean, ridge, a from-scratch FNO) return their own module; it keeps all its state in its
        ``state_dict`` so stage checkpoints and resume cover it."""
        return session.build_model(pretrained=pretrained)

    def check(self, session) -> None:
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


def task_step_loss(session, model: CrossModalModel, batch: dict[str, torch.Tensor], step: int) -> torch.Tensor:
    """The plain supervised loss of a batch."""
    return session.task_loss(model(batch["x"]), batch["y"])


def make_optimizer(session, named_params: Sequence[tuple[str, nn.Parameter]], lr: float, new_lr: float):
    """Body parameters at ``lr``; embedder, head and method-owned modules at ``new_lr``."""
    cfg = session.config.train
    body = [p for n, p in named_params if n.startswith("body.")]
    new = [p for n, p in named_params if not n.startswith("body.")]
    groups = [g for g in ({"params": body, "lr": lr}, {"params": new, "lr": new_lr}) if g["params"]]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(groups, lr=lr, weight_decay=cfg.weight_decay)


def make_scheduler(session, optimizer, total_steps: int):
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


def plateau_record(history: Sequence[tuple[int, float]], total_steps: int, window: float, tolerance: float,
                   *, stopped_early: bool) -> dict[str, Any]:
    """Whether a stage's validation metric had stopped improving by its end.

    ``history`` holds (step, score) pairs, score lower-is-better. The stage has plateaued when the
    best score at the end improves on the best score seen before the last ``window`` of the steps
    by less than ``tolerance`` (relative), or when early stopping ended it.
    """
    record: dict[str, Any] = {"window": window, "tolerance": tolerance, "stopped_early": stopped_early}
    if not history:
        return record | {"plateaued": None, "improvement": None}
    cut = (1.0 - window) * total_steps
    before = [score for step, score in history if step <= cut]
    best_end = min(score for _, score in history)
    if not before:  # every evaluation fell inside the window: nothing to compare against
        return record | {"plateaued": stopped_early, "improvement": None}
    best_before = min(before)
    if not math.isfinite(best_before):
        improvement = math.inf
    else:
        improvement = (best_before - best_end) / max(abs(best_before), 1e-12)
    return record | {"plateaued": bool(stopped_early or improvement < tolerance), "improvement": improvement}


def train_mode(model: nn.Module) -> None:
    """``model.train()``, except that frozen BatchNorm layers keep their running statistics
    (a linear probe of a CNN body must not change the body through them)."""
    model.train()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not any(p.requires_grad for p in module.parameters()):
            module.eval()


def first_nonfinite_gradient(named_params: Sequence[tuple[str, nn.Parameter]]) -> tuple[str, float] | None:
    """``(name, a bad value)`` of the first parameter whose gradient holds NaN or Inf, else None.

    One fused norm decides the common case; only a non-finite norm pays for the per-tensor scan
    (which also tells a real NaN/Inf apart from a norm that merely overflowed).
    """
    grads = [(n, p.grad) for n, p in named_params if p.grad is not None]
    if not grads:
        return None
    if torch.isfinite(torch.nn.utils.get_total_norm([g for _, g in grads])):
        return None
    for name, g in grads:
        bad = ~torch.isfinite(g)
        if bad.any():
            return name, float(g[bad].flatten()[0])
    return None


def nonfinite_error(session, stage: str, step: int, what: str, advice: str) -> NumericalError:
    """The one-line stop message: which stage, step and component, what the run directory really
    keeps, and the resume command that retries with the lower rate ``advice`` names."""
    import re

    head = (
        f"stage {stage!r}: {what} at step {step} (task {session.spec.name}, method {session.method_entry.name}); "
        f"{advice} or set train.on_nonfinite=skip."
    )
    run = getattr(session, "run", None)
    if run is None:  # a stage run outside a run directory: nothing was saved
        return NumericalError(head)
    from .runner import stop_summary

    kept, restart = stop_summary(session)
    key = (re.findall(r"\b(?:train|method)\.[a-z_]+", advice) or ["train.lr"])[0]
    return NumericalError(
        f"{head} Kept: {kept}. To retry at a lower rate: mona-kit run --resume {run.path} {key}=VALUE "
        f"(restarts stage {stage!r} from {restart})."
    )


def check_gradients(session, stage: str, step: int, named_params, advice: str = "lower train.lr") -> bool:
    """True when every gradient is finite. Otherwise stop with the parameter's name, or (with
    ``train.on_nonfinite=skip``) log the skip, drop the gradients and return False."""
    bad = first_nonfinite_gradient(named_params)
    if bad is None:
        return True
    name, value = bad
    if session.config.train.on_nonfinite != "skip":
        raise nonfinite_error(session, stage, step, f"gradient of {name!r} is {value}", advice)
    for _, p in named_params:
        p.grad = None
    session.log(stage=stage, step=step, event="skipped-nonfinite-gradient", parameter=name)
    return False


@attrs.define(kw_only=True)
class TrainStage(Stage):
    """Train the named parameter groups on a step loss; select the best state on validation.

    ``step_loss(session, model, batch, step)`` defaults to the task loss; methods that mix
    extra terms (PaRe) pass their own, and ``extra_modules`` (gates, source heads) are
    optimised beside the model.
    """

    trains_task: ClassVar[bool] = True
    name: str = "finetune"
    trainable: tuple[str, ...] = ALL_GROUPS
    epochs: int | None = None
    max_steps: int | None = None
    lr: float | None = None
    embedder_lr: float | None = None
    select_best: bool = True
    track_reuse: bool = True
    step_loss: Callable[..., torch.Tensor] = task_step_loss
    extra_modules: Sequence[nn.Module] = ()
    on_epoch_start: Callable[[int, int], None] | None = None
    #: (get, set) of plain state a custom step loss keeps outside the model (iterator positions,
    #: RNGs); saved with mid-stage checkpoints so a resumed stage continues exactly.
    extra_state: tuple[Callable[[], dict], Callable[[dict], None]] | None = None

    def run(self, session, model: CrossModalModel) -> None:
        cfg = session.config.train
        model.set_trainable(self.trainable)
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        for i, module in enumerate(self.extra_modules):
            named += [(f"extra{i}.{n}", p) for n, p in module.named_parameters()]
        lr = self.lr if self.lr is not None else cfg.lr
        new_lr = self.embedder_lr or cfg.embedder_lr or lr
        optimizer = make_optimizer(session, named, lr, new_lr)
        train_set = session.task.train
        epochs = self.epochs if self.epochs is not None else cfg.epochs
        steps_per_epoch = max(1, math.ceil(len(train_set) / cfg.batch_size))
        total = epochs * steps_per_epoch
        cap = self.max_steps if self.max_steps is not None else cfg.max_steps
        if cap is not None:
            total = min(total, cap)
        scheduler = make_scheduler(session, optimizer, total)
        eval_every = max(1, steps_per_epoch // max(1, cfg.evals_per_epoch))
        reuse_every = session.config.diagnostics.reuse_every if self.track_reuse else 0
        metric_name = session.spec.metric
        sign = -1.0 if session.spec.higher_is_better else 1.0
        best_score, best_state, best_step = math.inf, None, 0
        # Selection needs a validation split big enough to select on; a tiny one (the UCR sets) would
        # pick a lucky step, so those runs keep the end of a fixed budget and only log validation.
        select = self.select_best and session.task.selection == "validation"
        history: list[tuple[int, float]] = []  # (step, signed validation score) for the plateau check
        since_best, stopped_early = 0, False

        train_mode(model)
        step, epoch, skip = 0, 0, 0
        ckpt = getattr(session, "stage_checkpoint", None)
        loaded = ckpt.load() if ckpt is not None else None
        if loaded is not None:
            weights, state = loaded
            model.load_state_dict({k[6:]: v for k, v in weights.items() if k.startswith("model.")})
            for i, module in enumerate(self.extra_modules):
                module.load_state_dict({k[len(f"extra{i}.") :]: v for k, v in weights.items() if k.startswith(f"extra{i}.")})
            best = {k[5:]: v for k, v in weights.items() if k.startswith("best.")}
            best_state = best or None
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            step, epoch, skip = state["step"], state["epoch"], state["batch_in_epoch"]
            if self.extra_state is not None:
                self.extra_state[1](state["extra"])
            best_score, best_step = state["best_score"], state["best_step"]
            history = [tuple(h) for h in state.get("val_history", [])]
            since_best, stopped_early = state.get("since_best", 0), state.get("stopped_early", False)
            set_rng_state(state["rng"])
            session.log(stage=self.name, step=step, event="resumed")
        elif reuse_every:
            session.measure_reuse(model, stage=self.name, step=0)
        # The plain task loss trains through DDP under torchrun; custom step losses reach into the
        # model's parts, so their gradients are averaged explicitly instead.
        uses_ddp = self.step_loss is task_step_loss
        forward_model = session.ddp(model) if uses_ddp else model
        bar = tqdm(total=total, initial=step, desc=self.name, disable=not session.progress, leave=False, dynamic_ncols=True)
        while step < total and not stopped_early:
            if self.on_epoch_start is not None:  # epochs this stage will really run (max_steps may cut it)
                self.on_epoch_start(epoch, math.ceil(total / steps_per_epoch))
            for batch_in_epoch, batch in enumerate(session.loader(train_set, shuffle=True, seed_offset=epoch)):
                if batch_in_epoch < skip:  # resumed mid-epoch: the same seeded order, already-seen batches
                    continue
                if step >= total or stopped_early:
                    break
                batch = session.to_device(batch)
                loss = self.step_loss(session, forward_model, batch, step)
                optimizer.zero_grad(set_to_none=True)
                if not session.all_finite(loss):  # agreed across ranks, so no rank waits alone in all-reduce
                    if cfg.on_nonfinite != "skip":
                        raise nonfinite_error(session, self.name, step, f"loss is {loss.item()}", "lower train.lr")
                    session.log(stage=self.name, step=step, event="skipped-nonfinite-loss")
                else:
                    loss.backward()
                    if not uses_ddp:
                        session.sync_gradients([p for _, p in named])
                    # After the (DDP or explicit) gradient average, so every rank takes the same branch.
                    if check_gradients(session, self.name, step, named):
                        if cfg.grad_clip:
                            torch.nn.utils.clip_grad_norm_([p for _, p in named], cfg.grad_clip)
                        optimizer.step()
                        scheduler.step()
                step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.4g}")
                session.log(stage=self.name, step=step, epoch=epoch, loss=loss.item())
                if self.select_best and (step % eval_every == 0 or step == total):
                    val = session.evaluate(model, "val")
                    session.log(stage=self.name, step=step, epoch=epoch, split="val", **val)
                    score = sign * val[metric_name]
                    history.append((step, score))
                    # Patience counts passes without a real gain: rounding-level changes do not reset it.
                    real_gain = score < best_score and (
                        not math.isfinite(best_score) or best_score - score > PATIENCE_MIN_GAIN * abs(best_score)
                    )
                    since_best = 0 if real_gain else since_best + 1
                    if score < best_score:
                        best_score, best_step = score, step
                        if select:
                            best_state = copy.deepcopy(model.state_dict())
                    stopped_early = select and bool(cfg.patience) and since_best >= cfg.patience
                    train_mode(model)
                if reuse_every and step % reuse_every == 0:
                    session.measure_reuse(model, stage=self.name, step=step)
                if ckpt is not None and ckpt.due(step):
                    weights = {f"model.{k}": v for k, v in model.state_dict().items()}
                    for i, module in enumerate(self.extra_modules):
                        weights.update({f"extra{i}.{k}": v for k, v in module.state_dict().items()})
                    if best_state is not None:
                        weights.update({f"best.{k}": v for k, v in best_state.items()})
                    ckpt.save(step, weights, {
                        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "epoch": epoch,
                        "batch_in_epoch": batch_in_epoch + 1, "best_score": best_score, "best_step": best_step,
                        "val_history": [list(h) for h in history], "since_best": since_best, "stopped_early": stopped_early,
                        "extra": self.extra_state[0]() if self.extra_state is not None else {},
                    })
            epoch += 1
            skip = 0
        bar.close()
        if stopped_early:
            session.log(stage=self.name, step=step, event="early-stop", patience=cfg.patience, best_step=best_step)
        if history:
            plateau = plateau_record(history, total, cfg.plateau_window, cfg.plateau_tolerance, stopped_early=stopped_early)
            plateau |= {"steps": step, "budget": total, "selection": "validation" if select else "fixed-budget"}
            session.results.setdefault("plateau", {})[self.name] = plateau
            session.log(stage=self.name, step=step, event="plateau", **plateau)
        if select and best_state is not None:
            model.load_state_dict(best_state)
            session.log(stage=self.name, step=step, event="selected", best_step=best_step, **{f"val_{metric_name}": sign * best_score})


@attrs.define(kw_only=True)
class EvaluateStage(Stage):
    """Final report: validation (what selection saw) and test (never used for selection)."""

    name: str = "evaluate"

    def run(self, session, model: CrossModalModel) -> None:
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
