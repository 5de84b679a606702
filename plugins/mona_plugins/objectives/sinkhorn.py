"""Entropic optimal transport for the OT-based distances: a log-domain Sinkhorn solver in plain
torch, the same problem solved by POT (for comparison and as a backend option), and exact OT.

The entropic OT value used everywhere is the KL-regularised one,
``OT_eps(a, b; C) = min_P <P, C> + eps * KL(P | a b^T)``, which equals the dual value
``<a, f> + <b, g>`` at the optimum. Debiasing (the Sinkhorn divergence of Feydy et al. 2019)
``OT_eps(a, b) - OT_eps(a, a)/2 - OT_eps(b, b)/2`` is built on top of it in ``otdd.py``.

Gradients use the envelope theorem: at the optimum, d OT_eps / d C = P. The potentials are
solved without autograd (no graph through hundreds of iterations) and the differentiable value is
``value + <P, C - C.detach()>``, which has the right value and the right gradient w.r.t. C (and so
w.r.t. any features C was computed from).
"""

from __future__ import annotations

import math

import torch


def _softmin(eps: float, cost: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """``-eps * log sum_j exp((h_j - C_ij) / eps)`` for each row i (h already holds log weights)."""
    return -eps * torch.logsumexp(h.unsqueeze(0) - cost / eps, dim=1)


def _eps_schedule(cost: torch.Tensor, eps: float, scaling: float) -> list[float]:
    """Annealing from the cost's diameter down to ``eps`` (one Sinkhorn step each), then ``eps``."""
    top = float(cost.max()) if cost.numel() else eps
    if scaling <= 0 or scaling >= 1 or top <= eps:
        return [eps]
    steps = int(math.ceil(math.log(top / eps) / math.log(1.0 / scaling)))
    return [top * scaling**k for k in range(steps)] + [eps]


@torch.no_grad()
def sinkhorn_potentials(
    a: torch.Tensor,
    b: torch.Tensor,
    cost: torch.Tensor,
    eps: float,
    *,
    max_iter: int = 1000,
    tol: float = 1e-6,
    scaling: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dual potentials (f, g) of entropic OT between weights ``a [n]``, ``b [m]`` under ``cost [n, m]``.

    Log-domain (stable for any eps / cost ratio) with eps-scaling warm start. Stops when the
    a-marginal error (L1) is below ``tol``; the b-marginal is exact after each g update.
    """
    log_a, log_b = a.log(), b.log()
    cost_t = cost.t()
    f = torch.zeros_like(a)
    g = torch.zeros_like(b)
    for e in _eps_schedule(cost, eps, scaling)[:-1]:  # annealing: one step per eps (warm start)
        f = _softmin(e, cost, log_b + g / e)
        g = _softmin(e, cost_t, log_a + f / e)
    g = _softmin(eps, cost_t, log_a + f / eps)
    for _ in range(max_iter):
        f_new = _softmin(eps, cost, log_b + g / eps)
        # Row sums of the current plan are a * exp((f - f_new)/eps): the a-marginal error for free.
        err = (a * (1.0 - torch.exp((f - f_new) / eps))).abs().sum()
        f = f_new
        g = _softmin(eps, cost_t, log_a + f / eps)
        if err < tol:
            break
    return f, g


@torch.no_grad()
def sinkhorn_self_potential(
    a: torch.Tensor, cost: torch.Tensor, eps: float, *, max_iter: int = 1000, tol: float = 1e-6, scaling: float = 0.5
) -> torch.Tensor:
    """The symmetric potential f of ``OT_eps(a, a)`` for a symmetric cost (then ``OT = 2 <a, f>``).

    Uses the averaged fixed point ``f <- (f + softmin(C, log a + f/eps)) / 2``, which converges in
    a few dozen steps, far faster than the alternating updates.
    """
    log_a = a.log()
    f = torch.zeros_like(a)
    for e in _eps_schedule(cost, eps, scaling)[:-1]:
        f = 0.5 * (f + _softmin(e, cost, log_a + f / e))
    for _ in range(max_iter):
        f_new = 0.5 * (f + _softmin(eps, cost, log_a + f / eps))
        done = (f_new - f).abs().max() < tol * eps
        f = f_new
        if done:
            break
    return f


@torch.no_grad()
def semidual_newton(
    a: torch.Tensor, b: torch.Tensor, cost: torch.Tensor, eps: float, g: torch.Tensor, *, max_iter: int = 50, tol: float = 1e-9
) -> tuple[torch.Tensor, torch.Tensor]:
    """Refine the potential ``g`` of the small side ``b [m]`` by damped Newton ascent on the semi-dual

    ``J(g) = <b, g> + <a, f(g)>``, ``f_i(g) = -eps log sum_j b_j exp((g_j - C_ij)/eps)`` (log domain).
    Sinkhorn's linear convergence is very slow when eps is small against the spread of the costs
    (eps = 0.1 vs. squared distances of hundreds); with m small the m x m Hessian
    ``-(1/eps) sum_i a_i (diag(pi_i) - pi_i pi_i^T)`` is cheap and Newton converges in a few steps
    (Sinkhorn-Newton, Brauer et al. 2017). Returns (f, g); stops when the b-marginal L1 error < tol.
    """
    log_b = b.log()

    def evaluate(g):
        logits = (g.unsqueeze(0) - cost) / eps + log_b.unsqueeze(0)
        f = -eps * torch.logsumexp(logits, dim=1)
        return f, logits, (b * g).sum() + (a * f).sum()

    f, logits, value = evaluate(g)
    eye = torch.eye(len(b), dtype=cost.dtype, device=cost.device)
    damping = 1e-6  # Levenberg-Marquardt: relative ridge, raised when a full step fails
    for _ in range(max_iter):
        pi = torch.softmax(logits, dim=1)  # rows sum to 1
        col = pi.t() @ a
        grad = b - col
        if grad.abs().sum() < tol:
            break
        hess = (torch.diag(col) - pi.t() @ (a.unsqueeze(1) * pi)) / eps  # PSD; null direction = constants
        scale = hess.diagonal().max().clamp_min(1e-30)
        while damping < 1e6:
            step = torch.linalg.solve(hess + damping * scale * eye, grad)
            f_new, logits_new, value_new = evaluate(g + step)
            if value_new >= value + 0.25 * float(grad @ step):  # Armijo on the concave semi-dual
                damping = max(damping / 10, 1e-12)
                break
            damping *= 10
        else:
            break
        g, f, logits, value = g + step, f_new, logits_new, value_new
    return f, g


def _plan(a, b, cost, f, g, eps):
    return torch.exp((f.unsqueeze(1) + g.unsqueeze(0) - cost) / eps) * a.unsqueeze(1) * b.unsqueeze(0)


def entropic_ot(
    a: torch.Tensor,
    b: torch.Tensor,
    cost: torch.Tensor,
    eps: float,
    *,
    backend: str = "torch",
    symmetric: bool = False,
    max_iter: int = 1000,
    tol: float = 1e-6,
    scaling: float = 0.5,
    solve_dtype: torch.dtype | None = torch.float64,
    newton_max: int = 256,
) -> torch.Tensor:
    """Differentiable ``OT_eps(a, b; C)`` (KL-regularised value), gradient w.r.t. ``cost`` = the plan.

    ``backend="torch"`` uses the solvers above: ``symmetric=True`` for ``OT(a, a)`` with a symmetric
    cost; when one side has at most ``newton_max`` points, a few annealed Sinkhorn steps warm-start
    :func:`semidual_newton`; else plain log-domain Sinkhorn. ``backend="pot"`` uses POT's log-domain Sinkhorn (``ot.solve(method="sinkhorn_log")``).
    ``solve_dtype`` is the precision of the potential solve (float64 by default: costs of a few
    hundred with eps = 0.1 leave float32 potentials too coarse to reach a tight marginal error).
    """
    if backend == "pot":
        return _pot_entropic_ot(a, b, cost, eps, max_iter=max_iter, tol=tol, solve_dtype=solve_dtype)
    dtype = solve_dtype or cost.dtype
    c = cost.detach().to(dtype)
    a_, b_ = a.detach().to(dtype), b.detach().to(dtype)
    if symmetric:
        f = sinkhorn_self_potential(a_, c, eps, max_iter=max_iter, tol=tol, scaling=scaling)
        g = f
    elif min(c.shape) <= newton_max:
        # Warm start by a coarse annealed Sinkhorn pass, then Newton on the small side's potential.
        flip = c.shape[1] > c.shape[0]
        aa, bb, cc = (b_, a_, c.t()) if flip else (a_, b_, c)
        f, g = sinkhorn_potentials(aa, bb, cc, eps, max_iter=2, tol=tol, scaling=min(scaling, 0.1))
        f, g = semidual_newton(aa, bb, cc, eps, g, tol=tol)
        if flip:
            f, g = g, f
    else:
        f, g = sinkhorn_potentials(a_, b_, c, eps, max_iter=max_iter, tol=tol, scaling=scaling)
    value = (a_ * f).sum() + (b_ * g).sum()
    if not cost.requires_grad:
        return value.to(cost.dtype)
    plan = _plan(a_, b_, c, f, g, eps).to(cost.dtype)
    return value.to(cost.dtype) + (plan * (cost - cost.detach())).sum()


def _pot_entropic_ot(a, b, cost, eps, *, max_iter, tol, solve_dtype):
    import ot

    dtype = solve_dtype or cost.dtype
    res = ot.solve(
        cost.to(dtype),
        a.detach().to(dtype),
        b.detach().to(dtype),
        reg=eps,
        method="sinkhorn_log",
        max_iter=max_iter,
        tol=tol,
        grad="envelope",
    )
    return res.value.to(cost.dtype)


def exact_ot(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Exact ``W_2^2`` between the uniform empirical measures on ``x [n, d]`` and ``y [m, d]``.

    POT's network-simplex ``ot.emd2`` on torch tensors: the value is differentiable w.r.t. both
    point sets (gradient through the cost with the optimal plan fixed).
    """
    import ot

    if x.shape[0] == 0 or y.shape[0] == 0:
        raise ValueError("exact_ot needs two non-empty point sets")
    cost = squared_distances(x, y)
    n, m = cost.shape
    a = torch.full((n,), 1.0 / n, dtype=torch.float64, device=cost.device)
    b = torch.full((m,), 1.0 / m, dtype=torch.float64, device=cost.device)
    return ot.emd2(a, b, cost.double(), numItermax=1_000_000).to(x.dtype)


def squared_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``||x_i - y_j||^2`` as ``[n, m]``, clamped at 0 (the expanded form can dip below by rounding)."""
    d = (x * x).sum(1, keepdim=True) + (y * y).sum(1).unsqueeze(0) - 2.0 * x @ y.t()
    return d.clamp_min(0.0)


def uniform(n: int, like: torch.Tensor) -> torch.Tensor:
    return torch.full((n,), 1.0 / n, dtype=like.dtype, device=like.device)
