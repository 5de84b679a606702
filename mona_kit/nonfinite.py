"""The non-finite policy (``train.on_nonfinite``): find the first NaN/Inf gradient, skip the step or
stop with one line that says what the run directory keeps and the resume command that retries at a
lower learning rate."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import torch

from .errors import MonaError, NumericalError
from .run_records import read_progress

if TYPE_CHECKING:
    from .engine import Session


def first_nonfinite_gradient(named_params) -> tuple[str, float] | None:
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


def nonfinite_error(session: Session, stage: str, step: int, what: str, advice: str) -> NumericalError:
    """The one-line stop message: which stage, step and component, what the run directory really
    keeps, and the resume command that retries with the lower rate ``advice`` names."""
    head = (
        f"stage {stage!r}: {what} at step {step} (task {session.spec.name}, method {session.method_entry.name}); "
        f"{advice} or set train.on_nonfinite=skip."
    )
    if session.run is None:  # a stage run outside a run directory: nothing was saved
        return NumericalError(head)
    kept, restart = stop_summary(session)
    key = (re.findall(r"\b(?:train|method)\.[a-z_]+", advice) or ["train.lr"])[0]
    return NumericalError(
        f"{head} Kept: {kept}. To retry at a lower rate: mona-kit run --resume {session.run.path} {key}=VALUE "
        f"(restarts stage {stage!r} from {restart})."
    )


def stop_summary(session: Session) -> tuple[str, str]:
    """After a non-finite stop: (what the run directory keeps, where a resume with a new rate restarts)."""
    ckpt = session.stage_checkpoint
    try:
        done = read_progress(session.run).done
    except MonaError:
        done = []
    step = ckpt.step() if ckpt is not None else None
    if done and step is not None:
        kept = f"the checkpoint of finished stage {done[-1]!r} and this stage's checkpoint at step {step}"
    elif step is not None:
        kept = f"this stage's checkpoint at step {step} (no stage had finished)"
    elif done:
        kept = f"the checkpoint of finished stage {done[-1]!r}; nothing of this stage was saved (no checkpoint was due yet)"
    else:
        kept = "nothing - no stage had finished and no checkpoint of this stage was due yet"
    restart = f"the end of stage {done[-1]!r}" if done else "the start of the run"
    return kept, restart


def check_gradients(session: Session, stage: str, step: int, named_params, advice: str = "lower train.lr") -> bool:
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
