"""The plateau criterion: had a stage's validation metric stopped improving by its end (issue 12's
definition, recorded per stage in results.json so that a report can flag the runs that had not)?"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any


def sampling_error(metric: Any, n: int | None) -> Callable[[float], float | None] | None:
    """The metric's standard error as a function of a lower-is-better score (``signed_score``), for
    :func:`plateau_record`; None where the metric declares none (or is not a ``Metric`` at all) or
    the split's size is unknown."""
    standard_error = getattr(metric, "standard_error", None)
    if standard_error is None or n is None:
        return None
    sign = -1.0 if getattr(metric, "higher_is_better", False) else 1.0
    return lambda score: standard_error(sign * score, n)


def plateau_record(history, total_steps: int, window: float, tolerance: float, *, stopped_early: bool,
                   standard_error: Callable[[float], float | None] | None = None) -> dict[str, Any]:
    """Whether a stage's validation metric had stopped improving by its end.

    ``history`` holds (step, score) pairs, score lower-is-better. The stage has plateaued when the
    best score at the end improves on the best score seen before the last ``window`` of the steps
    by less than ``tolerance`` (relative), or by no more than the metric's sampling standard error
    at that earlier best (``standard_error(best_before)``, recorded as ``noise``; None for metrics
    without one), or when early stopping ended it. ``best_step`` records where the final best came.
    """
    record: dict[str, Any] = {"window": window, "tolerance": tolerance, "stopped_early": stopped_early, "noise": None}
    if not history:
        return record | {"plateaued": None, "improvement": None}
    cut = (1.0 - window) * total_steps
    before = [score for step, score in history if step <= cut]
    # The step of the final best (the first, on a tie): a run flagged for a gain early in the window that
    # then stayed flat reads differently from one still falling at its last step.
    best_step, best_end = min(history, key=lambda pair: pair[1])
    record["best_step"] = best_step
    if not before:  # every evaluation fell inside the window: nothing to compare against
        return record | {"plateaued": stopped_early, "improvement": None}
    best_before = min(before)
    if not math.isfinite(best_before):
        return record | {"plateaued": stopped_early, "improvement": math.inf}
    improvement = (best_before - best_end) / max(abs(best_before), 1e-12)
    noise = standard_error(best_before) if standard_error is not None else None
    within_noise = noise is not None and best_before - best_end <= noise
    return record | {"plateaued": bool(stopped_early or improvement < tolerance or within_noise),
                     "improvement": improvement, "noise": noise}
