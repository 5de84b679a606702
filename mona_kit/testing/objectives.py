"""Contract checks for objectives: run them on any registered distance or representation objective.

Each check raises ``AssertionError`` with a message naming the broken promise, and returns the
measured values so a test can print them.
"""

from __future__ import annotations

import math

import torch


def _data(n: int, m: int, d: int, classes: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    xs = torch.randn(n, d, generator=g)
    ys = torch.arange(n) % classes
    xt = torch.randn(m, d, generator=g) * 0.8 + 0.5
    yt = torch.arange(m) % classes
    return xs, ys, xt, yt


def _scalar(name: str, value) -> float:
    assert isinstance(value, torch.Tensor) and value.dim() == 0, f"{name} must return a 0-d tensor, got {value!r}"
    v = float(value.detach())
    assert math.isfinite(v), f"{name} returned a non-finite value {v}"
    return v


def check_distance_objective(obj, *, tol: float = 1e-3, seed: int = 0) -> dict[str, float]:
    """The promises of a ``role="distance"`` objective, on small generated labelled sets:

    a finite scalar that is >= -tol; ~0 between a set and itself (objectives whose value on a
    labelled set and itself is not zero by design, like ORCA's per-class OTDD, set
    ``zero_on_identical = False`` and are checked with every sample in one class instead); larger
    for a shifted target; a gradient that reaches ``xt``; and ``bind_source(xs, ys)(xt, yt)``
    equal to ``forward(xs, ys, xt, yt)``.
    """
    name = type(obj).__name__
    xs, ys, xt, yt = _data(40, 24, 6, 3, seed)
    xt = xt.clone().requires_grad_(True)
    value = obj(xs, ys, xt, yt)
    v = _scalar(name, value)
    assert v >= -tol, f"{name}: distance {v} is negative beyond tolerance {tol}"
    value.backward()
    assert xt.grad is not None and torch.isfinite(xt.grad).all(), f"{name}: no finite gradient reached xt"
    assert xt.grad.abs().sum() > 0, f"{name}: the gradient w.r.t. xt is identically zero"

    if getattr(obj, "zero_on_identical", True):
        same = _scalar(name, obj(xs, ys, xs.clone(), ys.clone()))
    else:
        one = torch.zeros_like(ys)
        same = _scalar(name, obj(xs, one, xs.clone(), one.clone()))
    scale = max(abs(v), 1.0)
    assert abs(same) <= tol * scale, f"{name}: distance between a set and itself is {same}, not ~0"

    far = _scalar(name, obj(xs, ys, xt.detach() + 5.0, yt))
    assert far > v, f"{name}: shifting the target away did not increase the distance ({v} -> {far})"

    bound = obj.bind_source(xs, ys)
    b = _scalar(name, bound(xt.detach(), yt))
    assert abs(b - v) <= 1e-5 * scale, f"{name}: bind_source gives {b} but forward gives {v}"
    return {"value": v, "self": same, "shifted": far, "bound": b}


def check_representation_objective(obj, *, seed: int = 0) -> dict[str, float]:
    """The promises of a ``role="representation"`` objective: a finite scalar on a labelled batch,
    a finite non-zero gradient w.r.t. the features, and a finite value on a batch with no
    repeated label."""
    name = type(obj).__name__
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(16, 8, generator=g).requires_grad_(True)
    y = torch.arange(16) % 4
    value = obj(z, y)
    v = _scalar(name, value)
    value.backward()
    assert z.grad is not None and torch.isfinite(z.grad).all(), f"{name}: no finite gradient reached z"
    assert z.grad.abs().sum() > 0, f"{name}: the gradient w.r.t. z is identically zero"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lone = _scalar(name, obj(torch.randn(5, 8, generator=g), torch.arange(5)))
    return {"value": v, "no_positives": lone}
