"""``knn``: 1-nearest neighbour on the flattened input (Euclidean), for every task type.

Classification predicts the neighbour's class (one-hot scores); regression, dense and
multilabel tasks copy the neighbour's target. The training set is the model's buffers, so a
checkpoint of the model is the whole fitted reference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from .common import FitStage, ReferenceMethod, ReferenceModel, flat_size, split_tensors

if TYPE_CHECKING:
    from mona_kit.api import Session

#: Query rows per distance block: bounds memory at CHUNK x train samples.
CHUNK = 256


class NearestNeighbour(ReferenceModel):
    def __init__(self, spec, num_train: int, target_shape: tuple[int, ...], target_dtype: torch.dtype):
        super().__init__(spec.input_shape, spec.output_shape)
        self.classification = spec.task_type == "classification"
        self.register_buffer("train_x", torch.zeros(num_train, flat_size(spec.input_shape)))
        self.register_buffer("train_y", torch.zeros(num_train, *target_shape, dtype=target_dtype))

    @torch.no_grad()
    def nearest(self, x: torch.Tensor) -> torch.Tensor:
        """Index of each query's nearest training sample (float64 distances: ties stay ties)."""
        ref = self.train_x.double()
        ref_sq = ref.pow(2).sum(1)
        out = []
        for q in x.flatten(1).double().split(CHUNK):
            d2 = q.pow(2).sum(1, keepdim=True) - 2 * q @ ref.T + ref_sq
            out.append(d2.argmin(1))
        return torch.cat(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        y = self.train_y[self.nearest(x)]
        if self.classification:
            return F.one_hot(y.long(), self.output_shape[0]).float()
        return y.float().reshape(len(x), *self.output_shape)

    @torch.no_grad()
    def fit(self, session: Session) -> dict:
        x, y = split_tensors(session, "train")
        self.train_x.copy_(x.flatten(1))
        self.train_y.copy_(y)
        return {"neighbours": 1, "train_samples": len(x)}


class Knn(ReferenceMethod):
    model_name = "knn"

    def make_model(self, session: Session) -> NearestNeighbour:
        train = session.task.train
        y = torch.as_tensor(train[0]["y"])
        return NearestNeighbour(session.spec, len(train), tuple(y.shape), y.dtype)

    def stages(self, session: Session):
        return [FitStage()]
