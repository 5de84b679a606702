"""OTDD (otdd, otdd-gaussian): agreement with exact OT and POT, distance properties, ORCA's mode."""

import functools

import numpy as np
import ot
import pytest
import torch

from mona_kit.diagnostics import pseudo_labels
from mona_kit.kit import load_kit
from mona_plugins.objectives.otdd import OTDD, OTDDConfig, _gaussian_w2
from mona_plugins.objectives.sinkhorn import entropic_ot, exact_ot, squared_distances, uniform


def _sets(seed=0, n=40, m=24, d=5, classes=3, shift=0.7):
    g = torch.Generator().manual_seed(seed)
    xs = torch.randn(n, d, generator=g, dtype=torch.float64)
    xt = torch.randn(m, d, generator=g, dtype=torch.float64) * 0.8 + shift
    return xs, torch.arange(n) % classes, xt, torch.arange(m) % classes


@functools.cache
def _pot_divergence(seed, eps):
    """Independent reference: debiased Sinkhorn divergence of the features of ``_sets(seed)``
    computed with POT's solver."""
    x, _, y, _ = _sets(seed)

    def ot_eps(p, q):
        c = squared_distances(p, q)
        res = ot.solve(c, uniform(len(p), c), uniform(len(q), c), reg=eps, method="sinkhorn_log", max_iter=50000, tol=1e-11)
        return float(res.value)

    return ot_eps(x, y) - 0.5 * ot_eps(x, x) - 0.5 * ot_eps(y, y)


def test_label_cost_is_exact_ot():
    xs, _, xt, _ = _sets()
    a, b = np.full(len(xs), 1 / len(xs)), np.full(12, 1 / 12)
    ref = ot.emd2(a, b, ot.dist(xs.numpy(), xt[:12].numpy(), metric="sqeuclidean"))
    assert float(exact_ot(xs, xt[:12])) == pytest.approx(ref, rel=1e-9)


def test_gaussian_label_cost_matches_bures_formula():
    import scipy.linalg as sl

    xs, _, xt, _ = _sets(d=4)
    a, b = xs.numpy(), xt[:9].numpy()
    s1, s2 = np.cov(a.T, bias=True), np.cov(b.T, bias=True)
    r = sl.sqrtm(s1)
    ref = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * sl.sqrtm(r @ s2 @ r)).real
    assert float(_gaussian_w2(xs, xt[:9])) == pytest.approx(ref, rel=1e-8)
    assert abs(float(_gaussian_w2(xs, xs))) < 1e-10


@pytest.mark.filterwarnings("ignore:Sinkhorn did not converge")
@pytest.mark.parametrize("mode", ["per-class", "joint"])
def test_one_class_reduces_to_feature_divergence_plus_exact_label_cost(mode):
    # One label on both sides: the label cost is the constant W2^2(source, target), so
    # OTDD = S_eps(features) + emd2(source, target); as eps -> 0 that tends to 2 * emd2.
    xs, _, xt, _ = _sets()
    zs, zt = torch.zeros(len(xs), dtype=torch.long), torch.zeros(len(xt), dtype=torch.long)
    w2 = float(exact_ot(xs, xt))
    value = float(OTDD(OTDDConfig(eps=0.1, mode=mode))(xs, zs, xt, zt))
    assert value == pytest.approx(_pot_divergence(0, 0.1) + w2, rel=1e-6)
    small = float(OTDD(OTDDConfig(eps=0.01, mode=mode))(xs, zs, xt, zt))
    assert small == pytest.approx(2 * w2, rel=1e-2)


@pytest.mark.filterwarnings("ignore:Sinkhorn did not converge")
def test_torch_and_pot_backends_agree():
    xs, ys, xt, yt = _sets(n=21, m=12)
    values = [float(OTDD(OTDDConfig(backend=b, eps=0.5, max_iter=20000, tol=1e-10))(xs, ys, xt, yt)) for b in ("torch", "pot")]
    assert values[0] == pytest.approx(values[1], rel=1e-6)


@pytest.mark.parametrize("inner", ["exact", "gaussian"])
def test_joint_otdd_is_zero_on_itself_symmetric_and_grows_with_shift(inner):
    xs, ys, xt, yt = _sets()
    d = OTDD(OTDDConfig(mode="joint"), inner=inner)
    assert abs(float(d(xs, ys, xs.clone(), ys.clone()))) < 1e-6
    assert float(d(xs, ys, xt, yt)) == pytest.approx(float(d(xt, yt, xs, ys)), rel=1e-6)
    values = [float(d(xs, ys, xt + s, yt)) for s in (0.0, 1.0, 3.0)]
    assert values[0] < values[1] < values[2]


def test_per_class_mode_is_frequency_weighted_sum_over_target_classes():
    xs, ys, xt, yt = _sets(m=30)
    yt = torch.tensor([0] * 15 + [1] * 10 + [2] * 5)
    joint = OTDD(OTDDConfig(mode="joint"))
    expected = sum(
        (yt == c).double().mean() * float(joint(xs, ys, xt[yt == c], torch.zeros(int((yt == c).sum()), dtype=torch.long)))
        for c in range(3)
    )
    assert float(OTDD()(xs, ys, xt, yt)) == pytest.approx(float(expected), rel=1e-6)


def test_float_targets_use_kmeans_pseudo_labels():
    xs, ys, xt, _ = _sets()
    targets = torch.randn(len(xt), 3, 2, generator=torch.Generator().manual_seed(1))
    d = OTDD(OTDDConfig(pseudo_label_k=4))
    explicit = pseudo_labels(targets.reshape(len(xt), -1), k=4, seed=0)
    assert float(d(xs, ys, xt, targets)) == pytest.approx(float(d(xs, ys, xt, explicit)), rel=1e-9)


def test_gradient_matches_finite_differences():
    xs, ys, xt, yt = _sets(n=20, m=9, d=3)
    d = OTDD(OTDDConfig(mode="joint", eps=0.5, tol=1e-12))
    x = xt.clone().requires_grad_(True)
    d(xs, ys, x, yt).backward()
    h = 1e-6
    for i, j in [(0, 0), (3, 1), (8, 2)]:
        plus, minus = xt.clone(), xt.clone()
        plus[i, j] += h
        minus[i, j] -= h
        fd = (float(d(xs, ys, plus, yt)) - float(d(xs, ys, minus, yt))) / (2 * h)
        assert float(x.grad[i, j]) == pytest.approx(fd, rel=1e-4, abs=1e-6)


def test_bind_source_caches_and_matches_forward_with_source_cap():
    xs, ys, xt, yt = _sets(n=120)
    d = OTDD(OTDDConfig(max_source=50))
    bound = d.bind_source(xs, ys)
    assert float(bound(xt, yt)) == pytest.approx(float(d(xs, ys, xt, yt)), rel=1e-12)
    assert bound(xt, yt).dtype == xt.dtype


def test_entropic_ot_newton_and_sinkhorn_paths_agree():
    xs, _, xt, _ = _sets(n=60, m=7, d=8)
    c = squared_distances(xs, xt)
    a, b = uniform(60, c), uniform(7, c)
    for eps in (0.01, 0.1, 1.0):
        newton = float(entropic_ot(a, b, c, eps))
        sinkhorn = float(entropic_ot(a, b, c, eps, newton_max=0, max_iter=200000, tol=1e-12))
        assert newton == pytest.approx(sinkhorn, rel=1e-9)


def test_registered_with_labels_flag_and_config():
    kit = load_kit()
    for name in ("otdd", "otdd-gaussian"):
        entry = kit.objectives.get(name)
        assert entry.meta["role"] == "distance" and "needs_labels" not in entry.meta  # the class says it, once
        obj = entry.build({"eps": 0.05, "mode": "joint"})
        assert obj.needs_labels and obj.cfg.eps == 0.05
