"""What every reference method shares: a model that owns its state, the data it reads, and the
one-stage fit of the closed-form references.

References read ``session.task`` (original units) and score through ``session.evaluate`` like every
method; the trained specialists carry the run's train-fitted normalisation
(``session.normalization``) inside their model, as the transfer methods' models do.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import attrs
import torch
from torch import nn

from mona_kit.api import ConfigError, Method, ShapeError, Stage, signed_score

if TYPE_CHECKING:
    from mona_kit.api import Session

#: The single parameter group of a reference model (TrainStage trains groups by name).
GROUP = "reference"
#: Train stages of the reference methods train this group only.
TRAINABLE = (GROUP,)


class ReferenceModel(nn.Module):
    """A reference method's own model. All its state (fitted weights, biases, the training set of
    1-NN) lives in parameters or buffers, so stage checkpoints, resume and results cover it."""

    def __init__(self, input_shape: tuple[int, ...], output_shape: tuple[int, ...]):
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.output_shape = tuple(output_shape)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        # A reference row is what transfer is judged against, so it computes in fp32 under any
        # train.precision: these models are small, so autocast would save little, and bf16 would blunt
        # them (diffusion-reaction-1d's FNO reaches nRMSE 6.5e-5; rounding its standardised output to
        # bf16 alone costs 1.6e-5). Only the train step runs under autocast; evaluation is fp32 anyway.
        with torch.autocast(device_type=x.device.type, enabled=False):
            return super().__call__(x.float() if x.is_floating_point() else x)

    def named_parameter_groups(self) -> dict[str, list[tuple[str, nn.Parameter]]]:
        return {GROUP: list(self.named_parameters())}

    def set_trainable(self, names) -> None:
        unknown = set(names) - {GROUP}
        if unknown:
            raise ValueError(f"unknown parameter group(s) {sorted(unknown)}; a reference model has one group, {GROUP!r}")
        for p in self.parameters():
            p.requires_grad_(GROUP in set(names))

    def check_input(self, x: torch.Tensor) -> None:
        """Models fitted on one input size cannot take another (an extra split at another resolution):
        say so as a ShapeError, which the evaluation stage reports as a skipped split."""
        if tuple(x.shape[1:]) != self.input_shape:
            raise ShapeError(
                f"{type(self).__name__} was fitted on inputs {self.input_shape}; it cannot take {tuple(x.shape[1:])}."
            )


def flat_size(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def check_positive_grid(method: str, option: str, values, example: str) -> None:
    """A grid of candidates (regularisation strengths, ridge alphas) must be a non-empty list of positive
    finite numbers: an empty grid leaves nothing to choose, and a strength of 0 or less (or inf, nan) is no
    regularisation a ridge or logistic fit can use. Raised when the config is built, before anything runs."""
    def ok(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0

    if not isinstance(values, (list, tuple)) or not values or not all(ok(v) for v in values):
        got = list(values) if isinstance(values, (list, tuple)) else values
        raise ConfigError(
            f"option {option!r} must be a non-empty list of positive finite numbers, got {got!r}; "
            f"give e.g. method.{option}=[{example}] (or leave it out for {method}'s default grid)."
        )


@torch.no_grad()
def split_tensors(session: Session, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """All of one split as ``(x, y)`` on the session's device, in the split's order."""
    xs, ys = [], []
    for batch in session.loader(session.task.splits()[split], shuffle=False):
        batch = session.to_device(batch)
        xs.append(batch["x"])
        ys.append(batch["y"])
    return torch.cat(xs), torch.cat(ys)


def select_on_val(session: Session, model: nn.Module, candidates, load) -> tuple[Any, dict[str, float]]:
    """Try each candidate (``load(model, candidate)`` puts it into the model) and keep the one with
    the best validation metric, ties broken by validation loss, then by order (strongest
    regularisation first). Only ``val`` is read; ``test`` never decides anything."""
    metric = session.spec.metric
    best, best_key, best_val = None, None, None
    for candidate in candidates:
        load(model, candidate)
        val = session.evaluate(model, "val")
        key = (signed_score(session, val[metric]), val["loss"])
        if not all(math.isfinite(k) for k in key):
            continue
        if best_key is None or key < best_key:
            best, best_key, best_val = candidate, key, val
    if best is None:  # every candidate non-finite: keep the last, the evaluation will say so
        best = candidates[-1]
    load(model, best)
    return best, best_val or {}


@attrs.define(kw_only=True)
class FitStage(Stage):
    """Fit a closed-form reference in one go: ``model.fit(session)`` returns what it chose, which is
    logged and recorded under ``results["reference"]``."""

    name: str = "fit"

    def run(self, session: Session, model) -> None:
        chosen = model.fit(session)
        session.results.setdefault("reference", {}).update(chosen)
        session.log(stage=self.name, event="fitted", **chosen)


class ReferenceMethod(Method):
    """A method that brings its own model: no pretrained body, no source proxy."""

    pretrained_body = False
    uses_source = False
    #: The name recorded in ``results["reference"]["model"]``.
    model_name: str = "reference"
    #: Trained by gradient: standardise inputs and targets with the run's training statistics
    #: (``train.normalize_*``), exactly as the transfer methods' models do. The closed-form
    #: references standardise (linear) or not (mean, 1-NN) by their own definition.
    normalized: bool = False

    def make_model(self, session: Session) -> ReferenceModel:  # pragma: no cover - interface
        raise NotImplementedError

    def build_model(self, session: Session, pretrained: bool) -> nn.Module:
        torch.manual_seed(session.config.seed)  # the same seed, the same initial weights
        model = self.make_model(session)
        if self.normalized:  # statistics as buffers of the model: checkpoints carry them
            session.normalization.attach(model, model)
        session.results["reference"] = {"model": self.model_name}
        return model.to(session.device)
