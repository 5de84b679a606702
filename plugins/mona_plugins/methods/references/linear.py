"""``linear``: one linear map of the flattened input, regularisation strength chosen on validation.

Regression and dense tasks: ridge regression in closed form (every strength from one
eigendecomposition). Classification: multinomial logistic regression (scikit-learn, L-BFGS) on
standardised inputs. Multilabel: ridge on the 0/1 targets, whose outputs rank like scores. The
strength is picked by the validation metric (ties: validation loss, then the stronger penalty).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from mona_kit.api import DataError, config, option

from .common import FitStage, ReferenceMethod, ReferenceModel, check_positive_grid, flat_size, select_on_val, split_tensors
from .ridge import RidgeFit, RidgePath

if TYPE_CHECKING:
    from mona_kit.api import Session

STRENGTHS = (1e4, 1e3, 1e2, 1e1, 1.0, 1e-1, 1e-2, 1e-3)


@config
class LinearConfig:
    # finite=False: check_positive_grid below checks finiteness too, in a message with an example.
    strengths: tuple[float, ...] = option(
        STRENGTHS, finite=False,
        help="regularisation strengths tried, a non-empty list of positive numbers (ridge alpha; logistic C = 1/strength), best on val",
    )
    max_iter: int = option(1000, min=1, help="L-BFGS iterations of the logistic regression")

    def __attrs_post_init__(self) -> None:
        check_positive_grid("linear", "strengths", self.strengths, "100,1,0.01")


class LinearModel(ReferenceModel):
    """``y = W flatten(x) + b``, the weights held as buffers (fitted, never trained by gradient)."""

    def __init__(self, spec):
        super().__init__(spec.input_shape, spec.output_shape)
        self.register_buffer("weight", torch.zeros(flat_size(spec.output_shape), flat_size(spec.input_shape)))
        self.register_buffer("bias", torch.zeros(flat_size(spec.output_shape)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return (x.flatten(1) @ self.weight.T + self.bias).reshape(len(x), *self.output_shape)

    def load(self, fit: RidgeFit) -> None:
        self.weight.copy_(fit.weight)
        self.bias.copy_(fit.bias)


class LinearRidge(LinearModel):
    def __init__(self, spec, cfg: LinearConfig):
        super().__init__(spec)
        self.cfg = cfg

    @torch.no_grad()
    def fit(self, session: Session) -> dict:
        x, y = split_tensors(session, "train")
        path = RidgePath(x, y.float())
        best, val = select_on_val(session, self, list(self.cfg.strengths), lambda m, a: m.load(path.fit(a)))
        return {"alpha": best, "solver": "ridge"}


class LinearLogistic(LinearModel):
    def __init__(self, spec, cfg: LinearConfig):
        super().__init__(spec)
        self.cfg = cfg

    @torch.no_grad()
    def fit(self, session: Session) -> dict:
        import numpy as np
        from sklearn.linear_model import LogisticRegression

        x, y = split_tensors(session, "train")
        x = x.flatten(1).double().cpu()
        mean, std = x.mean(0), x.std(0, unbiased=False)
        std = torch.where(std > 1e-12, std, torch.ones_like(std))
        z, labels = ((x - mean) / std).numpy(), y.long().cpu().numpy()
        if len(np.unique(labels)) < 2:
            raise DataError(f"task {session.spec.name!r}: the training split holds one class only; logistic regression needs two.")
        classes = self.output_shape[0]
        fits: dict[float, RidgeFit] = {}

        def load(model, strength):
            if strength not in fits:
                clf = LogisticRegression(C=1.0 / strength, max_iter=self.cfg.max_iter, tol=1e-5)
                clf.fit(z, labels)
                coef = np.zeros((classes, z.shape[1]))
                intercept = np.full(classes, -30.0)  # a class absent from train: never predicted
                if len(clf.classes_) == 2:  # scikit-learn's binary form: one row for class 1
                    coef[clf.classes_[1]], intercept[clf.classes_[1]] = clf.coef_[0] / 2, clf.intercept_[0] / 2
                    coef[clf.classes_[0]], intercept[clf.classes_[0]] = -clf.coef_[0] / 2, -clf.intercept_[0] / 2
                else:
                    coef[clf.classes_], intercept[clf.classes_] = clf.coef_, clf.intercept_
                w = torch.from_numpy(coef) / std  # fold the standardisation into the weights
                fits[strength] = RidgeFit(weight=w.float(), bias=torch.from_numpy(intercept - (w @ mean).numpy()).float(), alpha=strength)
            model.load(fits[strength])

        best, val = select_on_val(session, self, list(self.cfg.strengths), load)
        return {"alpha": best, "C": 1.0 / best, "solver": "logistic"}


class Linear(ReferenceMethod):
    model_name = "linear"

    def __init__(self, cfg: LinearConfig):
        self.cfg = cfg

    def make_model(self, session: Session) -> LinearModel:
        if session.spec.task_type == "classification":
            return LinearLogistic(session.spec, self.cfg)
        return LinearRidge(session.spec, self.cfg)

    def stages(self, session: Session):
        return [FitStage()]
