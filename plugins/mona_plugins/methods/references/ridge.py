"""Closed-form ridge regression for many regularisation strengths at once (one eigendecomposition),
with the exact leave-one-out error each strength gives (Allen's PRESS / the GCV shortcut of
scikit-learn's RidgeCV). Used by ``linear`` (strength chosen on val) and ``minirocket`` (on LOO).

Inputs are standardised with the training mean and std; the intercept is not penalised.
Everything is float64: the Gram matrices of flattened grids are ill-conditioned.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import torch


@attrs.frozen
class RidgeFit:
    weight: torch.Tensor  #: [targets, features], acting on raw (unstandardised) inputs
    bias: torch.Tensor  #: [targets]
    alpha: float


class RidgePath:
    """Precomputes what every alpha shares; ``fit(alpha)`` is then two small matrix products."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        x, y = x.double().flatten(1), y.double().flatten(1)
        self.n = len(x)
        self.x_mean, self.y_mean = x.mean(0), y.mean(0)
        self.x_std = x.std(0, unbiased=False)
        self.x_std = torch.where(self.x_std > 1e-12, self.x_std, torch.ones_like(self.x_std))  # constant columns
        z = (x - self.x_mean) / self.x_std
        yc = y - self.y_mean
        # Eigendecomposition of the smaller Gram matrix: features x features, or samples x samples.
        self.primal = z.shape[1] <= self.n
        if self.primal:
            evals, self.v = torch.linalg.eigh(z.T @ z)
            self.zty = self.v.T @ (z.T @ yc)  # [k, targets]
            self.u = None
        else:
            evals, u = torch.linalg.eigh(z @ z.T)
            self.u, self.z = u, z
            self.uty = u.T @ yc
        self.s2 = evals.clamp_min(0.0)
        self.z, self.yc = z, yc

    def fit(self, alpha: float) -> RidgeFit:
        if self.primal:
            w = self.v @ (self.zty / (self.s2 + alpha)[:, None])  # [features, targets]
        else:
            w = self.z.T @ (self.u @ (self.uty / (self.s2 + alpha)[:, None]))
        weight = (w / self.x_std[:, None]).T  # fold the standardisation into the weights
        bias = self.y_mean - weight @ self.x_mean
        return RidgeFit(weight=weight.float(), bias=bias.float(), alpha=float(alpha))

    def loo_error(self, alpha: float) -> float:
        """Mean squared leave-one-out residual: ``(y - yhat) / (1 - H_ii)``, H the hat matrix of the
        centred ridge fit plus the intercept's ``1/n``."""
        if self.u is None:  # primal: the left singular vectors are z v / s
            self.u = self.z @ self.v
            self.uty = self.u.T @ self.yc
            scale = 1.0 / self.s2.clamp_min(1e-300)
        else:
            scale = torch.ones_like(self.s2)
        shrink = self.s2 / (self.s2 + alpha)  # per eigen-direction
        fitted = self.u @ (self.uty * (shrink * scale)[:, None])
        h = (self.u.pow(2) * (shrink * scale)).sum(1) + 1.0 / self.n
        resid = (self.yc - fitted) / (1.0 - h).clamp_min(1e-12)[:, None]
        return float(resid.pow(2).mean())


def best_loo_alpha(path: RidgePath, alphas: Sequence[float]) -> float:
    """The alpha with the smallest leave-one-out error (training data only)."""
    errors = [path.loo_error(a) for a in alphas]
    return float(alphas[min(range(len(alphas)), key=errors.__getitem__)])
