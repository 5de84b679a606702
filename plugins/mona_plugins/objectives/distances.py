"""Distribution distances between two feature sets (role "distance"): ORCA's alignment
objectives and the modality-gap diagnostics.

* ``otdd`` / ``otdd-gaussian``: optimal transport dataset distance (see ``otdd.py``);
* ``mmd``: multi-kernel Gaussian maximum mean discrepancy (labels ignored);
* ``l2``: squared L2 distance between mean embeddings (optionally plus covariances).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from mona_kit.api import SEED_MAX, DistanceObjective, ShapeError, config, option

from .otdd import OTDD, OTDDConfig
from .sinkhorn import squared_distances


def _check_pair(xs: torch.Tensor, xt: torch.Tensor) -> None:
    if xs.dim() != 2 or xt.dim() != 2 or xs.shape[1] != xt.shape[1]:
        raise ShapeError(
            f"distance objectives take [n, d] and [m, d] features of one width, got {tuple(xs.shape)} and "
            f"{tuple(xt.shape)}; mean-pool tokens first and embed both sides into the same space."
        )


@config
class MMDConfig:
    """Options of the ``mmd`` objective."""

    bandwidths: tuple[float, ...] = option(
        (0.25, 0.5, 1.0, 2.0, 4.0), min=0, min_exclusive=True, help="kernel widths, as multiples of the base scale (see median_heuristic)"
    )
    median_heuristic: bool = option(
        True, help="base scale = median squared distance within the source set (first 1,000 samples; else 1.0)"
    )
    unbiased: bool = option(False, help="U-statistic (can be < 0) instead of the biased V-statistic (>= 0)")
    max_source: int = option(5000, min=1, help="cap on source samples (seeded subsample)")
    seed: int = option(0, min=0, max=SEED_MAX, help="seed of the source subsample")


class MMD(DistanceObjective):
    """Squared MMD with ``k(x, y) = sum_w exp(-||x - y||^2 / (w h))`` over the bandwidth multiples w.

    ``h`` is the median squared distance within the source set (detached), so the kernels are fixed
    by the source: alignment cannot lower the loss by moving the target far away and inflating the
    bandwidth, and ``bind_source`` can cache the source-source kernel mean. The biased estimator
    (default) is >= 0 and exactly 0 between a set and itself; the unbiased one drops i = j terms.
    """

    needs_labels = False
    zero_on_identical = True

    def __init__(self, cfg: MMDConfig | None = None):
        super().__init__()
        self.cfg = cfg or MMDConfig()

    def extra_repr(self) -> str:
        return str(self.cfg)

    def _kernel_mean(self, d: torch.Tensor, scale: float, *, skip_diagonal: bool) -> torch.Tensor:
        k = sum(torch.exp(-d / (w * scale)) for w in self.cfg.bandwidths)
        if not skip_diagonal:
            return k.mean()
        n = d.shape[0]
        if n < 2:
            return k.new_zeros(())
        return (k.sum() - k.diagonal().sum()) / (n * (n - 1))

    @torch.no_grad()
    def prepare_source(self, xs: torch.Tensor) -> dict:
        """Source subsample, kernel scale and the source-source kernel mean."""
        c = self.cfg
        if xs.shape[0] > c.max_source:
            keep = torch.randperm(xs.shape[0], generator=torch.Generator().manual_seed(c.seed))[: c.max_source]
            xs = xs[keep.to(xs.device)]
        xs = xs.detach()
        dss = squared_distances(xs, xs).fill_diagonal_(0.0)
        scale = 1.0
        if c.median_heuristic and xs.shape[0] > 1:
            k = min(xs.shape[0], 1000)  # the median of ~1M pairs is plenty (and within quantile's limit)
            block = dss[:k, :k]
            off = block[~torch.eye(k, dtype=torch.bool, device=xs.device)]
            scale = max(float(torch.quantile(off.double(), 0.5)), 1e-12)
        return {"xs": xs, "scale": scale, "kss": self._kernel_mean(dss, scale, skip_diagonal=c.unbiased)}

    def distance(self, source: dict, xt: torch.Tensor) -> torch.Tensor:
        """Squared MMD between the prepared source and ``xt`` (differentiable w.r.t. ``xt``)."""
        xs, scale = source["xs"], source["scale"]
        _check_pair(xs, xt)
        dtt = squared_distances(xt, xt)
        if self.cfg.unbiased:
            dtt = dtt * (1 - torch.eye(xt.shape[0], dtype=dtt.dtype, device=dtt.device))
        else:  # exact zeros on the diagonal (the expanded form leaves rounding there)
            dtt = dtt - torch.diag_embed(dtt.diagonal())
        ktt = self._kernel_mean(dtt, scale, skip_diagonal=self.cfg.unbiased)
        kst = self._kernel_mean(squared_distances(xs.to(xt.dtype), xt), scale, skip_diagonal=False)
        return source["kss"].to(xt.dtype) + ktt - 2.0 * kst

    def forward(self, xs, ys, xt, yt=None) -> torch.Tensor:
        _check_pair(xs, xt)
        return self.distance(self.prepare_source(xs), xt)

    def bind_source(self, xs, ys=None) -> Callable[..., torch.Tensor]:
        source = self.prepare_source(xs)
        return lambda xt, yt=None: self.distance(source, xt)


@config
class L2Config:
    """Options of the ``l2`` objective."""

    statistics: str = option(
        "mean", choices=("mean", "mean+cov"), help="match means, or means and covariances (Frobenius)"
    )
    cov_weight: float = option(1.0, min=0, help="weight of ||cov_s - cov_t||_F^2 when statistics = mean+cov")


class L2(DistanceObjective):
    """Squared L2 distance between mean embeddings, ``||mean(xs) - mean(xt)||^2``.

    Chosen over matching more statistics by default because it is what a mean-pooled alignment
    needs and has no extra scale to tune; ``statistics="mean+cov"`` adds
    ``cov_weight * ||cov(xs) - cov(xt)||_F^2`` (CORAL-style) for second-order matching.
    """

    needs_labels = False
    zero_on_identical = True

    def __init__(self, cfg: L2Config | None = None):
        super().__init__()
        self.cfg = cfg or L2Config()

    def extra_repr(self) -> str:
        return str(self.cfg)

    @staticmethod
    def _stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu = x.mean(0)
        centred = x - mu
        return mu, centred.t() @ centred / max(x.shape[0] - 1, 1)

    def distance(self, stats: tuple[torch.Tensor, torch.Tensor], xt: torch.Tensor) -> torch.Tensor:
        mu_s, cov_s = stats
        mu_t, cov_t = self._stats(xt)
        out = ((mu_s.to(xt.dtype) - mu_t) ** 2).sum()
        if self.cfg.statistics == "mean+cov":
            out = out + self.cfg.cov_weight * ((cov_s.to(xt.dtype) - cov_t) ** 2).sum()
        return out

    def forward(self, xs, ys, xt, yt=None) -> torch.Tensor:
        _check_pair(xs, xt)
        return self.distance(self._stats(xs.detach()), xt)

    def bind_source(self, xs, ys=None) -> Callable[..., torch.Tensor]:
        stats = self._stats(xs.detach())

        def bound(xt, yt=None):
            _check_pair(xs, xt)
            return self.distance(stats, xt)

        return bound


def _otdd_exact(cfg: OTDDConfig, **_context) -> OTDD:
    return OTDD(cfg, inner="exact")


def _otdd_gaussian(cfg: OTDDConfig, **_context) -> OTDD:
    return OTDD(cfg, inner="gaussian")


def register_all(register) -> None:
    """Register the distance objectives."""
    register(
        "otdd",
        _otdd_exact,
        config=OTDDConfig,
        role="distance",
        summary="Optimal transport dataset distance (entropic eps=0.1, debiased; exact OT label costs; "
        "ORCA's per-target-class sum by default). ORCA's default alignment objective.",
    )
    register(
        "otdd-gaussian",
        _otdd_gaussian,
        config=OTDDConfig,
        role="distance",
        summary="OTDD with Gaussian-approximated classes: closed-form Bures W2 label costs (faster, approximate).",
    )
    register(
        "mmd",
        lambda cfg, **_context: MMD(cfg),
        config=MMDConfig,
        role="distance",
        summary="Multi-kernel Gaussian MMD^2 between feature sets (source-median bandwidths; labels ignored).",
    )
    register(
        "l2",
        lambda cfg, **_context: L2(cfg),
        config=L2Config,
        role="distance",
        summary="Squared L2 distance between mean embeddings (optionally plus covariances); labels ignored.",
    )
