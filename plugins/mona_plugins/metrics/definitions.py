"""Metric definitions (error forms: lower is better). Each takes the model's raw outputs over a
whole split and the targets, and returns a float.

``chunked=k`` reproduces ORCA's reporting, which averages a per-batch metric over batches of
k samples (in order) instead of computing it once over the split.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from mona_kit.api import Metric, ShapeError, config, option


@config
class MetricOptions:
    chunked: int | None = option(None, min=1, help="average the metric over consecutive chunks of this many samples (ORCA's per-batch average); None = whole split")


def class_scores(predictions: torch.Tensor) -> torch.Tensor:
    """Logits ``[N, C]`` -> hard labels ``[N]``; labels ``[N]`` pass through."""
    return predictions.argmax(dim=1) if predictions.ndim == 2 else predictions.long()


def positive_scores(predictions: torch.Tensor, targets: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Scores and 0/1 labels, 2-D ``[n, labels]``, for ranking metrics.

    Binary classification (logits ``[N, 2]``, targets ``[N]``): P(class 1). Multiclass: one
    column per class (one-vs-rest). Multilabel ``[N, L]`` and dense masks ``[N, 1, H, W]``:
    each label (or pixel channel) a column of sigmoid-free logits (ranking is invariant).
    """
    p = predictions.detach().float()
    if targets.ndim == 1 and p.ndim == 2:  # class indices
        probs = p.softmax(dim=1)
        if p.shape[1] == 2:
            return probs[:, 1:].numpy(), targets.reshape(-1, 1).numpy()
        onehot = torch.nn.functional.one_hot(targets.long(), p.shape[1])
        return probs.numpy(), onehot.numpy()
    if p.shape != targets.shape:
        raise ShapeError(f"predictions {tuple(p.shape)} and targets {tuple(targets.shape)} differ; the head's output does not match the task.")
    if p.ndim > 2:  # dense masks: channels are labels, pixels are samples
        c = p.shape[1]
        return p.movedim(1, -1).reshape(-1, c).numpy(), targets.movedim(1, -1).reshape(-1, c).numpy()
    return p.numpy(), targets.numpy()


def zero_one_error(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    return float((class_scores(predictions) != targets.long()).float().mean())


def binomial_standard_error(value: float, n: int) -> float:
    """The standard error of an error rate ``value`` estimated from ``n`` independent samples."""
    p = min(max(value, 0.0), 1.0)
    return math.sqrt(p * (1.0 - p) / max(n, 1))


def relative_l2(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    n = targets.shape[0]
    p = predictions.detach().double().reshape(n, -1)
    t = targets.double().reshape(n, -1)
    if p.shape != t.shape:
        raise ShapeError(f"predictions {tuple(predictions.shape)} and targets {tuple(targets.shape)} differ in size.")
    return float(((p - t).norm(dim=1) / t.norm(dim=1).clamp_min(1e-12)).mean())


def mae8(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    """PSICOV: mean absolute error of predicted distances over pairs whose true distance < 8 A."""
    p, t = predictions.detach().double(), targets.double()
    mask = t < 8.0
    if not mask.any():
        return float("nan")
    return float((p[mask] - t[mask]).abs().mean())


def _macro(fn, scores: np.ndarray, labels: np.ndarray) -> float:
    """Mean of ``fn`` over label columns that hold both classes (others are undefined)."""
    values = [fn(labels[:, j], scores[:, j]) for j in range(labels.shape[1]) if 0 < labels[:, j].sum() < len(labels)]
    return float(np.mean(values)) if values else float("nan")


def one_minus_auroc(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    from sklearn.metrics import roc_auc_score

    scores, labels = positive_scores(predictions, targets)
    return 1.0 - _macro(roc_auc_score, scores, labels)


def one_minus_map(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    from sklearn.metrics import average_precision_score

    scores, labels = positive_scores(predictions, targets)
    return 1.0 - _macro(average_precision_score, scores, labels)


def one_minus_macro_f1(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    from sklearn.metrics import f1_score

    pred = class_scores(predictions).numpy()
    true = targets.long().numpy()
    labels = np.union1d(pred, true)
    if predictions.ndim == 2:  # every declared class counts in the macro average
        labels = np.arange(predictions.shape[1])
    return 1.0 - float(f1_score(true, pred, labels=labels, average="macro", zero_division=0))


class SplitMetric(Metric):
    """A metric function over the whole split, or ORCA's chunk average."""

    higher_is_better = False

    def __init__(self, fn, name: str, chunked: int | None = None, standard_error=None):
        self.fn = fn
        self.name = name
        self.chunked = chunked
        self._standard_error = standard_error

    def standard_error(self, value: float, n: int) -> float | None:
        return None if self._standard_error is None else self._standard_error(value, n)

    def __call__(self, predictions: torch.Tensor, targets: torch.Tensor) -> float:
        if len(predictions) != len(targets):
            raise ShapeError(f"metric {self.name}: {len(predictions)} predictions for {len(targets)} targets.")
        if not self.chunked:
            return self.fn(predictions, targets)
        values = [
            self.fn(predictions[i : i + self.chunked], targets[i : i + self.chunked])
            for i in range(0, len(targets), self.chunked)
        ]
        values = [v for v in values if not np.isnan(v)]
        return float(np.mean(values)) if values else float("nan")

    def __repr__(self) -> str:
        return f"SplitMetric({self.name}, chunked={self.chunked})"


METRICS = {
    "zero-one-error": (zero_one_error, "classification error rate (1 - accuracy)"),
    "relative-l2": (relative_l2, "mean over samples of ||yhat-y||_2 / ||y||_2 (NAS-Bench-360 Darcy)"),
    "nrmse": (relative_l2, "PDEBench nRMSE: mean over samples of ||yhat-y||_2 / ||y||_2"),
    "mae8": (mae8, "PSICOV: MAE of distances over pairs with true distance < 8 A"),
    "one-minus-auroc": (one_minus_auroc, "1 - AUROC, macro over labels (binary: P(class 1); masks: per pixel)"),
    "one-minus-map": (one_minus_map, "1 - mean average precision, macro over labels (multilabel)"),
    "one-minus-macro-f1": (one_minus_macro_f1, "1 - macro-averaged F1 over classes"),
}

#: Metrics with a known sampling standard error (the others' noise depends on more than value and n).
STANDARD_ERRORS = {"zero-one-error": binomial_standard_error}


def register_all(register) -> None:
    for name, (fn, summary) in METRICS.items():
        def factory(config: MetricOptions, _fn=fn, _name=name) -> SplitMetric:
            return SplitMetric(_fn, _name, config.chunked, STANDARD_ERRORS.get(_name))

        register(name, factory, config=MetricOptions, summary=summary)
