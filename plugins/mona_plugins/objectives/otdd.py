"""Optimal transport dataset distance (OTDD, Alvarez-Melis & Fusi 2020), as ORCA uses it.

OT over (feature, label) pairs with ground cost
``c((x, y), (x', y')) = feature_weight * ||x - x'||^2 + label_weight * W_2^2(alpha_y, alpha_y')``,
``alpha_y`` the class-conditional feature distribution. The outer problem is entropic
(KL-regularised, eps = 0.1) and debiased: ``S(a, b) = OT(a, b) - OT(a, a)/2 - OT(b, b)/2``.

Label-to-label costs ``W_2^2``:
  * ``otdd``: exact OT between the classes' samples (POT's network simplex ``ot.emd2``);
  * ``otdd-gaussian``: each class approximated by a Gaussian, Bures closed form
    ``||mu1 - mu2||^2 + tr S1 + tr S2 - 2 tr (S1^1/2 S2 S1^1/2)^1/2`` (biased covariances). The
    trace term is the nuclear norm of ``X2c X1c^T / sqrt(m1 m2)`` (centred samples), so only a
    ``min(m1, m2)``-sized eigenproblem is needed, never a 384x384 matrix square root.

Modes:
  * ``per-class`` (default, ORCA's code): for each target class c, the distance between the whole
    labelled source set and c's target samples (all given one label, as ORCA passes
    ``ys = zeros``), weighted by c's frequency in the batch and summed. Classes with fewer than
    ``min_class_size`` samples are skipped (ORCA skips single-sample classes). Note this is not
    zero between a labelled set and itself (each class is compared with the whole source);
    with a single class on both sides it equals the joint OTDD.
  * ``joint``: the plain OTDD between the two labelled sets (target-target label costs included);
    zero between a set and itself.

Labels: integer class labels are used as they are; float targets (regression, dense,
multi-hot) get k-means pseudo-labels (``mona_kit.diagnostics.pseudo_labels``, k = 10);
``None`` means one class (as ORCA does for unlabelled features). The source is capped at
``max_source`` samples (seeded subsample).

Caching: ``bind_source`` computes the source-source label costs and the debiasing self-term
``OT(source, source)`` once; each call then only solves the source-target problems (n x m_c).

Backend, decided by measurement (benchmarks/bench_otdd.py: 5,000 x 384-d source in 10 classes vs
64 targets, one thread on the shared 2-core CPU): the plain-torch solver is the default. One bound
step (forward + backward) takes 0.36 s with it and 11.0 s with POT's ``ot.solve(method=
"sinkhorn_log")`` in the same run (29.7x), and POT had still not converged at 1,000 iterations
(value off by 6e-4 relative). The reason: eps = 0.1 against squared distances of several hundred
makes Sinkhorn's linear convergence very slow; POT has no eps-scaling, while the torch solver
anneals eps, then refines the small side's potential by semi-dual Newton (m_c <= 256 points,
converges in a few steps), and solves the n x n source self-term with the symmetric averaged
update. Exact label-to-label OT uses POT's ``ot.emd2`` in both (a network simplex is not worth
re-writing); ``backend="pot"`` stays available for cross-checking. Binding the source (its
self-term and 45 exact class-to-class OTs) takes ~10 s once per alignment run.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from mona_kit.api import SEED_MAX, DistanceObjective, ShapeError, config, option

from .sinkhorn import entropic_ot, exact_ot, squared_distances, uniform


@config
class OTDDConfig:
    """Options of the OTDD objectives (``otdd`` and ``otdd-gaussian``)."""

    eps: float = option(0.1, min=0, min_exclusive=True, help="entropic regularisation of the outer OT problem (cost units)")
    mode: str = option(
        "per-class",
        choices=("per-class", "joint"),
        help="per-class: sum over target classes of freq * OTDD(source, class) (ORCA); joint: plain OTDD",
    )
    debiased: bool = option(True, help="Sinkhorn divergence OT(a,b) - OT(a,a)/2 - OT(b,b)/2")
    backend: str = option("torch", choices=("torch", "pot"), help="Sinkhorn solver: own torch or POT's sinkhorn_log")
    max_source: int = option(5000, min=1, help="cap on source samples (seeded subsample)")
    inner_max_samples: int = option(1000, min=1, help="cap on samples per class in the exact label-to-label OT")
    pseudo_label_k: int = option(10, min=1, help="k-means classes for float (regression/dense) targets")
    min_class_size: int = option(2, min=1, help="per-class mode: skip target classes smaller than this")
    feature_weight: float = option(1.0, min=0, help="weight of ||x - x'||^2 in the ground cost")
    label_weight: float = option(1.0, min=0, help="weight of W2^2(alpha_y, alpha_y') in the ground cost")
    max_iter: int = option(1000, min=1, help="Sinkhorn iterations at the final eps")
    tol: float = option(1e-6, min=0, min_exclusive=True, help="Sinkhorn stop: L1 marginal error")
    eps_scaling: float = option(0.5, min=0, max=1, max_exclusive=True, help="eps annealing factor per warm-start step (torch backend; 0 = none)")
    seed: int = option(0, min=0, max=SEED_MAX, help="seed of the source / per-class subsampling and of k-means")


def as_labels(y: torch.Tensor | None, n: int, *, k: int, seed: int, device) -> torch.Tensor:
    """Labels ``0..K-1`` for n samples: integer labels remapped, float targets k-means pseudo-labels,
    None one class."""
    if y is None:
        return torch.zeros(n, dtype=torch.long, device=device)
    if y.shape[0] != n:
        raise ShapeError(f"got {n} features but {y.shape[0]} labels; pass one label per feature row.")
    if y.is_floating_point() or y.dim() > 1:
        from mona_kit.api import pseudo_labels

        y = torch.as_tensor(pseudo_labels(y.detach().reshape(n, -1).float().cpu(), k=k, seed=seed))
    return torch.unique(y.to(device).long(), return_inverse=True)[1]


def _check_features(name: str, x: torch.Tensor) -> None:
    if x.dim() != 2:
        raise ShapeError(
            f"distance objectives take {name} as [n, d] features, got shape {tuple(x.shape)}; "
            f"mean-pool tokens first (x.mean(1))."
        )


class _Sampled:
    """One side's features sorted by class (random order within a class), so every class is a
    contiguous slice and label-cost blocks of a distance matrix are views, not copies."""

    def __init__(self, x: torch.Tensor, labels: torch.Tensor, cap: int, gen: torch.Generator):
        shuffle = torch.randperm(len(labels), generator=gen).to(labels.device)
        self.order = shuffle[torch.sort(labels[shuffle], stable=True).indices]  # rows of the input
        self.x, self.labels = x[self.order], labels[self.order]
        counts = torch.bincount(self.labels).tolist() if len(labels) else []
        self.classes = len(counts)
        starts = [0]
        for n in counts:
            starts.append(starts[-1] + n)
        # Label costs use at most ``cap`` samples of a class (its first ones: a random subset).
        self.index = [slice(starts[k], starts[k] + min(counts[k], cap)) for k in range(self.classes)]


def _gaussian_w2(x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    """Bures-Wasserstein ``W_2^2`` between Gaussian fits (biased covariance) of two sample sets."""
    mu1, mu2 = x1.mean(0), x2.mean(0)
    c1, c2 = x1 - mu1, x2 - mu2
    m1, m2 = x1.shape[0], x2.shape[0]
    cross = c2 @ c1.t() / (m1 * m2) ** 0.5
    gram = cross @ cross.t() if m2 <= m1 else cross.t() @ cross
    ev = torch.linalg.eigvalsh(gram)
    # Centred samples make the Gram singular: drop numerically-zero eigenvalues (with a zero
    # gradient, instead of differentiating sqrt at 0).
    floor = 1e-12 * ev.detach().abs().max().clamp_min(1e-30)
    nuclear = (ev.clamp_min(floor).sqrt() * (ev > floor)).sum()
    return ((mu1 - mu2) ** 2).sum() + (c1 * c1).sum() / m1 + (c2 * c2).sum() / m2 - 2.0 * nuclear


class OTDD(DistanceObjective):
    """OTDD between a labelled source set and a (pseudo-)labelled target set; see the module doc."""

    needs_labels = True

    def __init__(self, cfg: OTDDConfig | None = None, *, inner: str = "exact"):
        super().__init__()
        self.cfg = cfg or OTDDConfig()
        if inner not in ("exact", "gaussian"):
            raise ValueError(f"inner must be 'exact' or 'gaussian', got {inner!r}")
        self.inner = inner

    @property
    def zero_on_identical(self) -> bool:
        """Whether ``d(X, X) = 0`` for a labelled set X (read by the contract checks)."""
        return self.cfg.debiased and self.cfg.mode == "joint"

    def extra_repr(self) -> str:
        return f"inner={self.inner}, {self.cfg}"

    # -- pieces ------------------------------------------------------------------------------
    def _ot(self, a, b, cost, *, symmetric=False, solve_dtype=torch.float64):
        c = self.cfg
        return entropic_ot(
            a, b, cost, c.eps, backend=c.backend, symmetric=symmetric, max_iter=c.max_iter, tol=c.tol,
            scaling=c.eps_scaling, solve_dtype=solve_dtype,
        )

    def _label_cost(self, d: torch.Tensor, x1: torch.Tensor, i1: torch.Tensor, x2: torch.Tensor, i2) -> torch.Tensor:
        """W2^2 between class samples ``x1[i1]`` and ``x2[i2]``; ``d`` = their squared distances."""
        if self.inner == "gaussian":
            return _gaussian_w2(x1[i1], x2[i2])
        return _emd2_from_cost(d[i1, i2])

    def _pairwise_label_costs(self, s1: _Sampled, s2: _Sampled, d12: torch.Tensor, *, same: bool) -> torch.Tensor:
        """[K1, K2] label-to-label costs (``same``: one set with itself, symmetric, zero diagonal)."""
        rows = []
        for k in range(s1.classes):
            row = []
            for c in range(s2.classes):
                if same and c <= k:
                    row.append(None)
                    continue
                row.append(self._label_cost(d12, s1.x, s1.index[k], s2.x, s2.index[c]))
            rows.append(row)
        zero = d12.new_zeros(())
        if same:
            return torch.stack(
                [torch.stack([rows[min(k, c)][max(k, c)] if k != c else zero for c in range(s2.classes)])
                 for k in range(s1.classes)]
            )
        return torch.stack([torch.stack(r) for r in rows])

    # -- source side (cached by bind_source) ----------------------------------------------
    @torch.no_grad()
    def prepare_source(self, xs: torch.Tensor, ys: torch.Tensor | None) -> dict:
        """Source-only terms: subsample, labels, source label costs and the debiasing self-term."""
        c = self.cfg
        _check_features("xs", xs)
        gen = torch.Generator().manual_seed(c.seed)
        labels = as_labels(ys, xs.shape[0], k=c.pseudo_label_k, seed=c.seed, device=xs.device)
        if xs.shape[0] > c.max_source:
            keep = torch.randperm(xs.shape[0], generator=gen)[: c.max_source].to(xs.device)
            xs, labels = xs[keep], torch.unique(labels[keep], return_inverse=True)[1]
        src = _Sampled(xs.detach().double(), labels, c.inner_max_samples, gen)
        # The n x n source problem is the one large solve: float32 above ~2,000 samples (half the
        # memory and time; its potentials are O(eps log n), far from float32's limits).
        big = src.x.shape[0] > 2000
        x = src.x.float() if big else src.x
        dss = squared_distances(x, x).fill_diagonal_(0.0)
        wss = self._pairwise_label_costs(src, src, dss, same=True).to(x.dtype)
        self_term = None
        if c.debiased:
            cost = c.feature_weight * dss + c.label_weight * wss[src.labels][:, src.labels]
            del dss
            a = uniform(x.shape[0], x)
            self_term = self._ot(a, a, cost, symmetric=True, solve_dtype=x.dtype).double()
            del cost
        return {"src": src, "self": self_term}

    # -- one evaluation -------------------------------------------------------------------------
    def distance(self, source: dict, xt: torch.Tensor, yt: torch.Tensor | None) -> torch.Tensor:
        """OTDD between prepared source terms and target features ``xt [m, d]`` (differentiable)."""
        c = self.cfg
        _check_features("xt", xt)
        src: _Sampled = source["src"]
        if xt.shape[1] != src.x.shape[1]:
            raise ShapeError(
                f"source features are {src.x.shape[1]}-d but target features are {xt.shape[1]}-d; "
                f"embed both into the same space."
            )
        labels = as_labels(yt, xt.shape[0], k=c.pseudo_label_k, seed=c.seed, device=xt.device)
        x = xt.double()
        if c.mode == "joint":
            tgt = _Sampled(x, labels, c.inner_max_samples, torch.Generator().manual_seed(c.seed))
            total = self._divergence(source, squared_distances(src.x, tgt.x), tgt)
        else:
            counts = torch.bincount(labels)
            keep = [k for k in range(len(counts)) if counts[k] >= c.min_class_size]
            groups = [torch.nonzero(labels == k).flatten() for k in keep] or [torch.arange(len(labels), device=x.device)]
            sizes = torch.tensor([len(g) for g in groups], dtype=x.dtype)
            weights = sizes / sizes.sum()
            total = x.new_zeros(())
            dst = squared_distances(src.x, x)  # one product for all classes
            for w, idx in zip(weights.tolist(), groups):
                one = torch.zeros(len(idx), dtype=torch.long, device=x.device)
                tgt = _Sampled(x[idx], one, c.inner_max_samples, torch.Generator().manual_seed(c.seed))
                total = total + w * self._divergence(source, dst[:, idx[tgt.order]], tgt)
        return total.to(xt.dtype)

    def _divergence(self, source: dict, dst: torch.Tensor, tgt: _Sampled) -> torch.Tensor:
        c = self.cfg
        src: _Sampled = source["src"]
        wst = self._pairwise_label_costs(src, tgt, dst, same=False)
        a, b = uniform(src.x.shape[0], dst), uniform(tgt.x.shape[0], dst)
        cost = c.feature_weight * dst + c.label_weight * wst[src.labels][:, tgt.labels]
        cross = self._ot(a, b, cost)
        if not c.debiased:
            return cross
        dtt = squared_distances(tgt.x, tgt.x)
        if tgt.classes > 1:
            wtt = self._pairwise_label_costs(tgt, tgt, dtt, same=True)
            dtt = c.feature_weight * dtt + c.label_weight * wtt[tgt.labels][:, tgt.labels]
        else:
            dtt = c.feature_weight * dtt
        self_t = self._ot(b, b, dtt, symmetric=True)
        return cross - 0.5 * source["self"] - 0.5 * self_t

    # -- DistanceObjective API ---------------------------------------------------------------------
    def forward(self, xs, ys, xt, yt=None) -> torch.Tensor:
        return self.distance(self.prepare_source(xs, ys), xt, yt)

    def bind_source(self, xs, ys) -> Callable[..., torch.Tensor]:
        source = self.prepare_source(xs, ys)
        return lambda xt, yt=None: self.distance(source, xt, yt)


def _emd2_from_cost(cost: torch.Tensor) -> torch.Tensor:
    """Exact OT value between uniform weights for a given (differentiable) cost matrix."""
    import ot

    n, m = cost.shape
    a = torch.full((n,), 1.0 / n, dtype=cost.dtype, device=cost.device)
    b = torch.full((m,), 1.0 / m, dtype=cost.dtype, device=cost.device)
    return ot.emd2(a, b, cost, numItermax=1_000_000)


__all__ = ["OTDD", "OTDDConfig", "as_labels", "exact_ot"]
