"""The one training loop: every training stage of every method runs through :func:`fit`.

A stage (a :class:`LoopStage`) says what trains, at which rates and for how long (``setup``),
which batches an epoch holds (``batches``) and what one step's loss is (``training_step``).
The loop owns everything around that, the same way for every method:

- the numeric precision (``train.precision``: autocast around the step, fp16's loss scaling);
- the optimiser protocol: zero-grad, backward, gradient averaging across ranks (DDP, or an
  explicit all-reduce for steps DDP cannot wrap), the non-finite policy (``train.on_nonfinite``),
  clipping (``train.grad_clip``), the optimiser and scheduler steps;
- per-step logging to metrics.jsonl (:meth:`Session.log` is called from :func:`_log_step` only);
- validation, model selection, early stopping (``train.patience``) and the plateau record;
- mid-stage checkpoints and bitwise resume: the model, the best state so far, the optimiser and
  scheduler, the loop's counters, the RNGs and the stage's own ``state_dict()``.

Stages keep their own state (iterator positions, private RNGs, extra modules) behind
``state_dict()`` / ``load_state_dict()``; ``load_state_dict`` runs after ``setup``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import TYPE_CHECKING, Any, ClassVar, cast

import attrs
import torch
from torch import nn
from tqdm.auto import tqdm

from .checkpoint import set_rng_state
from .errors import DataError
from .model import CrossModalModel
from .nonfinite import check_gradients, nonfinite_error
from .plateau import plateau_record, sampling_error
from .precision import Precision, precision_for

if TYPE_CHECKING:
    from .engine import Session

#: Early stopping's patience resets only on a relative validation gain above this (not on rounding noise).
PATIENCE_MIN_GAIN = 1e-4
#: fp16 halves its loss scale at every overflow; below this (16 halvings from 65,536) the gradients are
#: not overflowing but really non-finite, and the non-finite policy takes over.
MIN_LOSS_SCALE = 1.0

#: What a training step returns: the loss, or the loss and the values to log for the step
#: (without them the step logs ``loss``).
StepOutput = torch.Tensor | tuple[torch.Tensor, dict[str, Any]]


@attrs.define(kw_only=True)
class Setup:
    """What a stage trains and how; returned by :meth:`LoopStage.setup`."""

    #: ``(name, parameter)`` the optimiser steps; gradient checks and clipping cover exactly these.
    params: list[tuple[str, nn.Parameter]]
    optimizer: torch.optim.Optimizer
    #: Steps the stage runs (early stopping may end it sooner).
    total_steps: int
    #: Epochs the stage runs (``on_epoch_start`` is told this).
    epochs: int = 1
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    #: The DDP-wrapped module the step runs through (DDP averages its gradients); None: the step
    #: reaches into the model's parts and gradients are averaged explicitly.
    forward: nn.Module | None = None
    #: The stop message's advice: which setting to lower.
    advice: str = "lower train.lr"
    #: What the non-finite message calls the loss.
    loss_name: str = "loss"
    #: Validate every this many steps (and at the last); 0: never.
    eval_every: int = 0
    #: Keep the best validated state and put it back at the end (early stopping needs it).
    select: bool = False
    #: Measure knowledge reuse (of a CrossModalModel's body) every this many steps and before the first; 0: never.
    reuse_every: int = 0
    #: Validation passes without a real gain before the stage stops early; None: ``train.patience``.
    patience: int | None = None


class Stage:
    """One step of a method. ``run`` trains or measures ``model`` in place."""

    name: str = "stage"
    #: Stage metadata: True when the stage trains the model on the target task (plots draw the last such stage).
    trains_task: ClassVar[bool] = False

    def run(self, session: Session, model: nn.Module) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class LoopStage(Stage):
    """A stage trained by :func:`fit`. Subclasses supply ``setup``, ``batches`` and ``training_step``."""

    def run(self, session: Session, model: nn.Module) -> None:
        fit(session, model, self)

    # What a stage supplies ---------------------------------------------------------------------
    def setup(self, session: Session, model: nn.Module) -> Setup:  # pragma: no cover - interface
        """Freeze and unfreeze, build the optimiser (and scheduler), say how many steps."""
        raise NotImplementedError

    def batches(self, session: Session, epoch: int) -> Iterable[Any]:  # pragma: no cover - interface
        """The batches of one epoch, in an order fixed by the seed (a resume skips what was seen)."""
        raise NotImplementedError

    def training_step(self, session: Session, model: nn.Module, batch: Any, step: int) -> StepOutput:
        """The loss of one batch (``step`` counts from 1); ``model`` is ``Setup.forward`` when set.
        Return the loss, or ``(loss, values to log)``."""
        raise NotImplementedError  # pragma: no cover - interface

    # Optional hooks ------------------------------------------------------------------------------
    def backward(self, loss: torch.Tensor, inputs: list[nn.Parameter] | None) -> None:
        """A manual backward, for a stage that needs one. ``inputs``: the parameters the step trains,
        when the loop may limit the backward to them (None under DDP, whose hooks need it whole)."""
        loss.backward(inputs=inputs)

    def model_mode(self, model: nn.Module) -> None:
        """Put the model in its training mode (again after each validation)."""
        train_mode(model)

    def on_epoch_start(self, session: Session, epoch: int, epochs: int) -> None:
        """Called before each epoch (``epochs``: as many as the stage will really run)."""

    def teardown(self, session: Session, model: nn.Module) -> None:
        """Called once the stage has finished (freeze again what it unfroze)."""

    def state_dict(self) -> dict[str, Any]:
        """The stage's own state (plain data and tensors), saved with every mid-stage checkpoint."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` on resume (called after :meth:`setup`)."""


def train_mode(model: nn.Module) -> None:
    """``model.train()``, except that frozen BatchNorm layers keep their running statistics
    (a linear probe of a CNN body must not change the body through them)."""
    model.train()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not any(p.requires_grad for p in module.parameters()):
            module.eval()


def cycle(make_batches: Callable[[int], Iterable[Any]]) -> Iterator[Any]:
    """Endless batches: ``make_batches(0)``, then ``make_batches(1)``, ... (a new seed per pass)."""
    epoch = 0
    while True:
        yield from make_batches(epoch)
        epoch += 1


@attrs.define
class _Progress:
    """The loop's counters; saved with every mid-stage checkpoint."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_score: float = math.inf
    best_step: int = 0
    history: list[tuple[int, float]] = attrs.field(factory=list)  # (step, signed validation score)
    since_best: int = 0
    stopped_early: bool = False
    best_state: dict[str, torch.Tensor] | None = None  # saved as weights, not with the counters

    def to_state(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch, "best_score": self.best_score,
            "best_step": self.best_step, "val_history": [list(h) for h in self.history],
            "since_best": self.since_best, "stopped_early": self.stopped_early,
        }

    def load(self, state: dict[str, Any]) -> None:
        self.step, self.epoch, self.batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        self.best_score, self.best_step = state["best_score"], state["best_step"]
        self.history = [(int(s), float(v)) for s, v in state["val_history"]]
        self.since_best, self.stopped_early = state["since_best"], state["stopped_early"]


def fit(session: Session, model: nn.Module, stage: LoopStage) -> None:
    """Train ``model`` with ``stage``'s steps under the run's policies; see the module docstring."""
    setup = stage.setup(session, model)
    progress = _Progress()
    amp = precision_for(session)  # one per stage: fp16's loss scale adapts to this stage's losses
    if not _resume(session, model, stage, setup, progress, amp) and setup.reuse_every:
        session.measure_reuse(cast(CrossModalModel, model), stage=stage.name, step=0)
    stage.model_mode(model)
    forward = setup.forward if setup.forward is not None else model
    bar = tqdm(total=setup.total_steps, initial=progress.step, desc=stage.name, disable=not session.progress,
               leave=False, dynamic_ncols=True)
    while progress.step < setup.total_steps and not progress.stopped_early:
        stage.on_epoch_start(session, progress.epoch, setup.epochs)
        seen = 0
        for index, batch in enumerate(stage.batches(session, progress.epoch)):
            seen += 1
            if index < progress.batch_in_epoch:  # resumed mid-epoch: the same seeded order, already-seen batches
                continue
            if progress.step >= setup.total_steps or progress.stopped_early:
                break
            loss = _optimizer_step(session, model, stage, setup, forward, batch, progress, amp)
            progress.batch_in_epoch = index + 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4g}")
            _after_step(session, model, stage, setup, progress, amp)
        if not seen:
            raise DataError(f"stage {stage.name!r}: epoch {progress.epoch} has no batches; check the training split and batch size.")
        progress.epoch += 1
        progress.batch_in_epoch = 0
    bar.close()
    _finish(session, model, stage, setup, progress)
    stage.teardown(session, model)


def _loss_of(stage: LoopStage, session: Session, model: nn.Module, batch: Any, step: int) -> StepOutput:
    """The stage's step (one seam, so the fault contract in ``mona_kit.testing`` can inject a NaN)."""
    return stage.training_step(session, model, batch, step)


def _optimizer_step(session: Session, model: nn.Module, stage: LoopStage, setup: Setup, forward: nn.Module,
                    batch: Any, progress: _Progress, amp: Precision) -> float:
    """One step of the optimiser protocol; returns the loss."""
    cfg = session.config.train
    step = progress.step + 1
    with amp.autocast():  # a double backward inside the step (MoNA) records the same casts
        out = _loss_of(stage, session, forward, batch, step)
    loss, values = out if isinstance(out, tuple) else (out, None)
    setup.optimizer.zero_grad(set_to_none=True)
    if not session.all_finite(loss):  # agreed across ranks, so no rank waits alone in all-reduce
        if cfg.on_nonfinite != "skip":
            raise nonfinite_error(session, stage.name, step, f"{setup.loss_name} is {loss.item()}", setup.advice)
        session.log(stage=stage.name, step=step, event="skipped-nonfinite-loss")
    else:
        params = [p for _, p in setup.params]
        # A step DDP does not wrap backprops only to what it trains: a frozen body it differentiates
        # through (MoNA's inner loop, RECRAFT's penalty) would cost a weight-gradient pass, never applied.
        stage.backward(amp.scale(loss), params if setup.forward is None else None)
        _drop_byproducts(model, params)
        if setup.forward is None:  # DDP cannot wrap this step (parts of the model, double backward)
            session.sync_gradients(params)
        # After the (DDP or explicit) gradient average, so every rank takes the same branch; an fp16
        # overflow skips the step (the scaler lowers its scale) before the non-finite policy sees it.
        if not amp.unscale(setup.optimizer, params):
            _fp16_overflow(session, stage.name, step, setup.advice, amp)
        elif check_gradients(session, stage.name, step, setup.params, setup.advice):
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            amp.step(setup.optimizer)
            if setup.scheduler is not None:
                setup.scheduler.step()
    progress.step = step
    value = float(loss.item())
    _log_step(session, stage.name, step, progress.epoch, values if values is not None else {"loss": value})
    return value


def _fp16_overflow(session: Session, stage: str, step: int, advice: str, amp: Precision) -> None:
    """An fp16 step the scaler skipped: logged; once the scale has fallen below ``MIN_LOSS_SCALE`` the
    gradients are non-finite at any scale, and ``train.on_nonfinite`` decides (stop, or keep skipping)."""
    scale = amp.loss_scale
    session.log(stage=stage, step=step, event="skipped-fp16-overflow", loss_scale=scale)
    if scale is not None and scale < MIN_LOSS_SCALE and session.config.train.on_nonfinite != "skip":
        raise nonfinite_error(session, stage, step, f"fp16 gradients stayed non-finite down to loss scale {scale:g}", advice)


def _drop_byproducts(model: nn.Module, params: list[nn.Parameter]) -> None:
    """Gradients on parameters the step does not train (a frozen body a meta or penalty term
    differentiated through) are by-products: never applied, never carried to the next step."""
    stepped = {id(p) for p in params}
    for p in model.parameters():
        if p.grad is not None and id(p) not in stepped:
            p.grad = None


def _log_step(session: Session, stage: str, step: int, epoch: int, values: dict[str, Any]) -> None:
    """The one place per-step training metrics are emitted (experiment loggers hook here)."""
    session.log(stage=stage, step=step, epoch=epoch, **values)


def _after_step(session: Session, model: nn.Module, stage: LoopStage, setup: Setup, progress: _Progress,
                amp: Precision) -> None:
    """Validation and selection, knowledge reuse, and the mid-stage checkpoint when due."""
    step = progress.step
    if setup.eval_every and (step % setup.eval_every == 0 or step == setup.total_steps):
        _validate(session, model, stage, setup, progress)
    if setup.reuse_every and step % setup.reuse_every == 0:
        session.measure_reuse(cast(CrossModalModel, model), stage=stage.name, step=step)
    ckpt = session.stage_checkpoint
    if ckpt is not None and ckpt.due(step):
        weights = {f"model.{k}": v for k, v in model.state_dict().items()}
        if progress.best_state is not None:
            weights.update({f"best.{k}": v for k, v in progress.best_state.items()})
        ckpt.save(step, weights, {
            **progress.to_state(), "optimizer": setup.optimizer.state_dict(),
            "scheduler": setup.scheduler.state_dict() if setup.scheduler is not None else None,
            "stage": stage.state_dict(), "precision": amp.state_dict(),
        })


def _validate(session: Session, model: nn.Module, stage: LoopStage, setup: Setup, progress: _Progress) -> None:
    cfg = session.config.train
    metric = session.spec.metric
    val = session.evaluate(model, "val")
    session.log(stage=stage.name, step=progress.step, epoch=progress.epoch, split="val", **val)
    score = signed_score(session, val[metric])
    progress.history.append((progress.step, score))
    best = progress.best_score
    # Patience counts passes without a real gain: rounding-level changes do not reset it.
    real_gain = score < best and (not math.isfinite(best) or best - score > PATIENCE_MIN_GAIN * abs(best))
    progress.since_best = 0 if real_gain else progress.since_best + 1
    if score < best:
        progress.best_score, progress.best_step = score, progress.step
        if setup.select:
            progress.best_state = copy.deepcopy(model.state_dict())
    patience = effective_patience(cfg, setup)
    # Not before train.patience_start of the stage: an early noisy stretch must not end a run in warm-up.
    may_stop = progress.step >= cfg.patience_start * setup.total_steps
    progress.stopped_early = setup.select and patience > 0 and progress.since_best >= patience and may_stop
    stage.model_mode(model)


def effective_patience(train_cfg, setup: Setup) -> int:
    """The stage's own patience, else ``train.patience``; 0 (or None): no early stopping."""
    return (setup.patience if setup.patience is not None else train_cfg.patience) or 0


def signed_score(session: Session, value: float) -> float:
    """A metric value made lower-is-better (the metric's ``higher_is_better`` decides the sign)."""
    return -value if session.metric.higher_is_better else value


def _resume(session: Session, model: nn.Module, stage: LoopStage, setup: Setup, progress: _Progress,
            amp: Precision) -> bool:
    """Restore the stage's mid-stage checkpoint, if any (True when one was restored)."""
    ckpt = session.stage_checkpoint
    loaded = ckpt.load() if ckpt is not None else None
    if loaded is None:
        return False
    weights, state = loaded
    model.load_state_dict({k[6:]: v for k, v in weights.items() if k.startswith("model.")})
    progress.best_state = {k[5:]: v for k, v in weights.items() if k.startswith("best.")} or None
    setup.optimizer.load_state_dict(state["optimizer"])
    if setup.scheduler is not None:
        setup.scheduler.load_state_dict(state["scheduler"])
    progress.load(state)
    stage.load_state_dict(state["stage"])
    amp.load_state_dict(state.get("precision", {}))
    set_rng_state(state["rng"])  # last: nothing above may draw from the generators it restores
    session.log(stage=stage.name, step=progress.step, event="resumed")
    return True


def _finish(session: Session, model: nn.Module, stage: LoopStage, setup: Setup, progress: _Progress) -> None:
    """Early-stop and plateau records, then the selected state back into the model."""
    cfg = session.config.train
    step = progress.step
    if progress.stopped_early:
        session.log(stage=stage.name, step=step, event="early-stop", patience=effective_patience(cfg, setup),
                    best_step=progress.best_step)
    if progress.history:
        val = session.task.splits()["val"]
        n_val = len(val) if isinstance(val, Sized) else None  # a plugin's streamed split may have no length
        plateau = plateau_record(progress.history, setup.total_steps, cfg.plateau_window, cfg.plateau_tolerance,
                                 stopped_early=progress.stopped_early,
                                 standard_error=sampling_error(session.metric, n_val))
        plateau |= {"val_samples": n_val, "steps": step, "budget": setup.total_steps, "selection": "validation" if setup.select else "fixed-budget"}
        session.results.setdefault("plateau", {})[stage.name] = plateau
        session.log(stage=stage.name, step=step, event="plateau", **plateau)
    if setup.select and progress.best_state is not None:
        model.load_state_dict(progress.best_state)
        metric = session.spec.metric
        session.log(stage=stage.name, step=step, event="selected", best_step=progress.best_step,
                    **{f"val_{metric}": signed_score(session, progress.best_score)})
