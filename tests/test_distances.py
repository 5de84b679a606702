"""Distance and representation objectives: registry-wide contract checks, MMD / L2 / align-uniform /
supcon against hand computations."""

import math
import warnings

import numpy as np
import pytest
import torch

from mona_kit.errors import ConfigError, ShapeError
from mona_kit.kit import load_kit
from mona_kit.testing import check_distance_objective, check_representation_objective

KIT = load_kit()


def _names(role):
    return [e.name for e in KIT.objectives if e.meta.get("role") == role]


def test_roles_are_registered():
    assert {"otdd", "otdd-gaussian", "mmd", "l2"} <= set(_names("distance"))
    assert {"align-uniform", "supcon"} <= set(_names("representation"))


@pytest.mark.parametrize("name", _names("distance"))
def test_distance_contract(name):
    check_distance_objective(KIT.objectives.get(name).build())


@pytest.mark.parametrize("name", _names("representation"))
def test_representation_contract(name):
    check_representation_objective(KIT.objectives.get(name).build())


def _mmd_by_hand(xs, xt, multiples, unbiased):
    xs, xt = xs.numpy().astype(np.float64), xt.numpy().astype(np.float64)
    n, m = len(xs), len(xt)
    d_ss = [((xs[i] - xs[j]) ** 2).sum() for i in range(n) for j in range(n) if i != j]
    h = float(np.median(d_ss))

    def k(u, v):
        d = ((u - v) ** 2).sum()
        return sum(math.exp(-d / (w * h)) for w in multiples)

    def within(x):
        pairs = [(i, j) for i in range(len(x)) for j in range(len(x)) if not (unbiased and i == j)]
        return sum(k(x[i], x[j]) for i, j in pairs) / len(pairs)

    cross = sum(k(xs[i], xt[j]) for i in range(n) for j in range(m)) / (n * m)
    return within(xs) + within(xt) - 2 * cross


@pytest.mark.parametrize("unbiased", [False, True])
def test_mmd_matches_hand_computation(unbiased):
    g = torch.Generator().manual_seed(0)
    xs, xt = torch.randn(9, 3, generator=g, dtype=torch.float64), torch.randn(7, 3, generator=g, dtype=torch.float64) + 0.4
    multiples = (0.5, 1.0, 2.0)
    mmd = KIT.objectives.get("mmd").build({"bandwidths": [0.5, 1.0, 2.0], "unbiased": unbiased})
    assert float(mmd(xs, None, xt, None)) == pytest.approx(_mmd_by_hand(xs, xt, multiples, unbiased), rel=1e-9)
    assert float(mmd.bind_source(xs, None)(xt)) == pytest.approx(float(mmd(xs, None, xt, None)), rel=1e-12)


def test_mmd_is_zero_on_identical_sets_and_ignores_labels():
    x = torch.randn(30, 4)
    mmd = KIT.objectives.get("mmd").build()
    assert float(mmd(x, None, x.clone(), None)) == pytest.approx(0.0, abs=1e-6)
    assert not mmd.needs_labels
    assert float(mmd(x, torch.zeros(30), x + 1, torch.ones(30))) == float(mmd(x, None, x + 1, None))


def test_l2_is_squared_distance_of_means():
    xs, xt = torch.randn(20, 5), torch.randn(11, 5) + 2.0
    l2 = KIT.objectives.get("l2").build()
    assert float(l2(xs, None, xt, None)) == pytest.approx(float(((xs.mean(0) - xt.mean(0)) ** 2).sum()), rel=1e-6)
    both = KIT.objectives.get("l2").build({"statistics": "mean+cov"})
    cov = lambda x: np.cov(x.numpy().T)  # noqa: E731
    ref = float(((xs.mean(0) - xt.mean(0)) ** 2).sum()) + ((cov(xs) - cov(xt)) ** 2).sum()
    assert float(both(xs, None, xt, None)) == pytest.approx(ref, rel=1e-5)


def test_align_uniform_matches_hand_computation():
    z = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0], [-1.0, 0.5]], dtype=torch.float64)
    y = torch.tensor([0, 0, 1, 1])
    u = (z / z.norm(dim=1, keepdim=True)).numpy()
    d = lambda i, j: ((u[i] - u[j]) ** 2).sum()  # noqa: E731
    align = (d(0, 1) + d(2, 3)) / 2
    pairs = [(i, j) for i in range(4) for j in range(4) if i != j]
    unif = math.log(sum(math.exp(-2.0 * d(i, j)) for i, j in pairs) / len(pairs))
    obj = KIT.objectives.get("align-uniform").build()
    assert float(obj(z, y)) == pytest.approx(align + unif, rel=1e-9)
    weighted = KIT.objectives.get("align-uniform").build({"align_weight": 0.5, "uniform_weight": 2.0, "t": 1.0})
    unif1 = math.log(sum(math.exp(-1.0 * d(i, j)) for i, j in pairs) / len(pairs))
    assert float(weighted(z, y)) == pytest.approx(0.5 * align + 2.0 * unif1, rel=1e-9)


def test_align_uniform_without_positive_pairs_is_uniformity_only():
    z = torch.randn(5, 3, dtype=torch.float64)
    obj = KIT.objectives.get("align-uniform").build()
    with pytest.warns(UserWarning, match="no label occurs twice"):
        value = obj(z, torch.arange(5))
    assert obj.last_terms["align"] == 0.0 and obj.last_terms["positive_pairs"] == 0
    assert float(value) == pytest.approx(obj.last_terms["uniform"])


def test_supcon_matches_hand_computation():
    g = torch.Generator().manual_seed(3)
    z = torch.randn(6, 4, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 0, 1, 1, 1, 2])  # sample 5 has no positive and is left out
    u = (z / z.norm(dim=1, keepdim=True)).numpy()
    tau = 0.5
    losses = []
    for i in range(6):
        pos = [p for p in range(6) if p != i and y[p] == y[i]]
        if not pos:
            continue
        denom = sum(math.exp(u[i] @ u[a] / tau) for a in range(6) if a != i)
        losses.append(-sum(math.log(math.exp(u[i] @ u[p] / tau) / denom) for p in pos) / len(pos))
    obj = KIT.objectives.get("supcon").build({"temperature": tau})
    assert float(obj(z, y)) == pytest.approx(sum(losses) / len(losses), rel=1e-9)


def test_bad_options_and_shapes_are_one_line_errors():
    with pytest.raises(ConfigError, match="epsilon"):
        KIT.objectives.get("otdd").build({"epsilon": 0.1})
    with pytest.raises(ConfigError):
        KIT.objectives.get("otdd").build({"mode": "pairwise"})
    with pytest.raises(ShapeError, match="mean-pool"):
        KIT.objectives.get("mmd").build()(torch.randn(4, 3, 2), None, torch.randn(4, 3, 2), None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ShapeError, match="label"):
            KIT.objectives.get("align-uniform").build()(torch.randn(4, 3), torch.zeros(3))
