"""mona_kit.diagnostics against scikit-learn on fixed features."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs, make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import davies_bouldin_score

from mona_kit.diagnostics import davies_bouldin, linear_cka, linear_probe_accuracy, modality_gap, pseudo_labels
from mona_kit.errors import DataError, MonaError
from mona_kit.kit import load_kit


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_davies_bouldin_matches_sklearn(seed):
    x, y = make_blobs(n_samples=120, centers=4, n_features=6, cluster_std=2.0, random_state=seed)
    assert davies_bouldin(x, y) == pytest.approx(davies_bouldin_score(x, y), rel=1e-10)
    assert davies_bouldin(torch.as_tensor(x).float(), torch.as_tensor(y)) == pytest.approx(davies_bouldin_score(x, y), rel=1e-5)


def test_davies_bouldin_degenerate_cases_follow_sklearn():
    x = np.array([[0.0, 0], [0, 0], [1, 1], [1, 1]])
    y = np.array([0, 0, 1, 1])
    assert davies_bouldin(x, y) == davies_bouldin_score(x, y) == 0.0
    with pytest.raises(DataError):
        davies_bouldin(x, np.zeros(4))


@pytest.mark.parametrize("C", [0.1, 1.0])
def test_linear_probe_matches_sklearn(C):
    x, y = make_classification(
        n_samples=400, n_features=20, n_informative=8, n_classes=4, class_sep=0.8, random_state=0
    )
    xtr, ytr, xte, yte = x[:250], y[:250], x[250:], y[250:]
    ref = LogisticRegression(C=C, max_iter=2000).fit(xtr, ytr)
    ref_acc = float((ref.predict(xte) == yte).mean())
    ours = linear_probe_accuracy(torch.as_tensor(xtr), torch.as_tensor(ytr), xte, yte, C=C)
    assert ours == pytest.approx(ref_acc, abs=1.0 / len(yte))
    assert linear_probe_accuracy(xtr, ytr, xte, yte, C=C, backend="sklearn", steps=2000) == pytest.approx(ref_acc)
    assert 0.4 < ours <= 1.0  # well above chance (0.25)


def test_pseudo_labels_kmeans_is_deterministic_and_typed():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 2, 4, generator=g) * 10
    targets = torch.cat([c + 0.01 * torch.randn(20, 2, 4, generator=g) for c in centres])
    labels = pseudo_labels(targets, k=3, seed=0)
    assert isinstance(labels, torch.Tensor) and labels.dtype == torch.int64 and labels.shape == (60,)
    # each true cluster gets exactly one label
    assert all(len(set(labels[i * 20:(i + 1) * 20].tolist())) == 1 for i in range(3))
    assert len(set(labels.tolist())) == 3
    assert torch.equal(labels, pseudo_labels(targets, k=3, seed=0))
    few = pseudo_labels(np.array([[1.0], [1.0], [2.0]]), k=10)
    assert isinstance(few, np.ndarray) and len(set(few.tolist())) == 2


def test_modality_gap_uses_registered_objectives():
    kit = load_kit()
    g = torch.Generator().manual_seed(0)
    xs, ys = torch.randn(30, 4, generator=g), torch.arange(30) % 3
    same = modality_gap(xs, ys, xs.clone(), ys.clone(), objectives=("mmd", "l2"), kit=kit)
    assert set(same) == {"mmd", "l2"} and abs(same["mmd"]) < 1e-6 and abs(same["l2"]) < 1e-10
    far = modality_gap(xs, ys, xs + 3, ys, kit=kit, options={"otdd": {"mode": "joint"}})
    assert set(far) == {"otdd", "mmd"} and far["otdd"] > 1.0 and far["mmd"] > 0.1
    with pytest.raises(MonaError, match="role"):
        modality_gap(xs, ys, xs, ys, objectives=("align-uniform",), kit=kit)


def test_linear_cka_is_one_for_rotations_and_scalings_and_low_for_unrelated_features():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 16, generator=g, dtype=torch.float64)
    rotation, _ = torch.linalg.qr(torch.randn(16, 16, generator=g, dtype=torch.float64))
    assert linear_cka(x, 3.0 * x @ rotation + 5.0) == pytest.approx(1.0)  # rotation, scale and shift
    wider = torch.cat([x, torch.zeros(200, 8, dtype=torch.float64)], dim=1)
    assert linear_cka(x, wider) == pytest.approx(1.0)  # widths may differ
    unrelated = torch.randn(200, 16, generator=g, dtype=torch.float64)
    assert linear_cka(x, unrelated) < 0.2
    # Independent of the arguments' order; a partial copy lies in between.
    mixed = x + unrelated
    assert 0.3 < linear_cka(x, mixed) < 0.9 and linear_cka(x, mixed) == pytest.approx(linear_cka(mixed, x))


@pytest.mark.parametrize("a, b, match", [
    (np.zeros((5, 3)) + np.arange(3), np.random.default_rng(0).normal(size=(5, 3)), "constant"),
    (np.ones((5, 3)), np.ones((4, 3)), "same n"),
    (np.ones((1, 3)), np.ones((1, 3)), "at least 2"),
])
def test_linear_cka_refuses_what_it_cannot_compare(a, b, match):
    with pytest.raises(DataError, match=match):
        linear_cka(a, b)
