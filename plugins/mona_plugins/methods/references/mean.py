"""``mean``: predict one constant learned from the training targets, whatever the input.

Regression and dense tasks: the per-element training mean. Classification: the log class
frequencies (argmax = the majority class; the loss is the label entropy). Multilabel: each
label's training frequency as its score (as a logit, so the BCE loss is meaningful).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .common import FitStage, ReferenceMethod, ReferenceModel, split_tensors

if TYPE_CHECKING:
    from mona_kit.api import Session


class ConstantModel(ReferenceModel):
    def __init__(self, spec):
        super().__init__(spec.input_shape, spec.output_shape)
        self.task_type = spec.task_type
        self.register_buffer("value", torch.zeros(spec.output_shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.value.expand(len(x), *self.value.shape)

    @torch.no_grad()
    def fit(self, session: Session) -> dict:
        _, y = split_tensors(session, "train")
        if self.task_type == "classification":
            counts = torch.bincount(y.long().flatten(), minlength=self.value.shape[0]).double()
            # Laplace smoothing keeps an unseen class's log-probability finite.
            self.value.copy_(((counts + 1) / (counts.sum() + len(counts))).log())
            return {"majority_class": int(counts.argmax())}
        if self.task_type == "multilabel":
            freq = y.double().mean(0).clamp(1e-4, 1 - 1e-4)
            self.value.copy_((freq / (1 - freq)).log())
            return {}
        self.value.copy_(y.double().mean(0))
        return {}


class Mean(ReferenceMethod):
    model_name = "mean"

    def make_model(self, session: Session) -> ConstantModel:
        return ConstantModel(session.spec)

    def stages(self, session: Session):
        return [FitStage()]
