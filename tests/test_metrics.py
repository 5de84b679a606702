"""Metrics against scikit-learn on random inputs; task losses against their definitions."""

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from mona_kit.testing import check_metric

from mona_kit.kit import load_kit

#: Every first-party metric (from the registry, not a list kept by hand) is an error form.
ERROR_METRICS = sorted(e.name for e in load_kit(entry_points=False).metrics)


def build(kit, name, **opts):
    return kit.metrics.get(name).build(opts)


@pytest.mark.parametrize("name", ERROR_METRICS)
def test_registered_as_error_forms(kit, name):
    entry = kit.metrics.get(name)
    assert "higher_is_better" not in entry.meta  # the class attribute says it, once
    assert build(kit, name).higher_is_better is False


def test_zero_one_error_matches_sklearn(kit):
    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(300, 7, generator=g), torch.randint(0, 7, (300,), generator=g)
    expected = 1 - skm.accuracy_score(y.numpy(), logits.argmax(1).numpy())
    assert check_metric(build(kit, "zero-one-error"), logits, y) == pytest.approx(expected)


@pytest.mark.parametrize("name", ["relative-l2", "nrmse"])
def test_relative_l2_definition(kit, name):
    g = torch.Generator().manual_seed(1)
    pred, y = torch.randn(50, 1, 8, 8, generator=g), torch.randn(50, 1, 8, 8, generator=g)
    p, t = pred.reshape(50, -1).numpy(), y.reshape(50, -1).numpy()
    expected = np.mean(np.linalg.norm(p - t, axis=1) / np.linalg.norm(t, axis=1))
    assert build(kit, name)(pred, y) == pytest.approx(expected, rel=1e-6)
    assert build(kit, name)(y, y) == 0.0


def test_mae8_only_counts_close_pairs(kit):
    g = torch.Generator().manual_seed(2)
    y = torch.rand(10, 1, 16, 16, generator=g) * 20
    pred = y + torch.randn(10, 1, 16, 16, generator=g)
    mask = (y < 8).numpy()
    expected = skm.mean_absolute_error(y.numpy()[mask], pred.numpy()[mask])
    assert build(kit, "mae8")(pred, y) == pytest.approx(expected, rel=1e-6)
    far_only = pred.clone()
    far_only[y < 8] = y[y < 8]  # errors only where the true distance >= 8
    assert build(kit, "mae8")(far_only, y) == pytest.approx(0.0)


def test_auroc_binary_multilabel_and_masks(kit):
    g = torch.Generator().manual_seed(3)
    metric = build(kit, "one-minus-auroc")
    logits, y = torch.randn(200, 2, generator=g), torch.randint(0, 2, (200,), generator=g)
    expected = 1 - skm.roc_auc_score(y.numpy(), logits.softmax(1)[:, 1].numpy())
    assert metric(logits, y) == pytest.approx(expected)
    scores, labels = torch.randn(200, 5, generator=g), torch.randint(0, 2, (200, 5), generator=g).float()
    assert metric(scores, labels) == pytest.approx(1 - skm.roc_auc_score(labels.numpy(), scores.numpy(), average="macro"))
    masks, truth = torch.randn(4, 1, 8, 8, generator=g), torch.randint(0, 2, (4, 1, 8, 8), generator=g).float()
    assert metric(masks, truth) == pytest.approx(1 - skm.roc_auc_score(truth.flatten().numpy(), masks.flatten().numpy()))


def test_map_matches_sklearn_macro(kit):
    g = torch.Generator().manual_seed(4)
    scores, labels = torch.randn(150, 6, generator=g), torch.randint(0, 2, (150, 6), generator=g).float()
    expected = 1 - skm.average_precision_score(labels.numpy(), scores.numpy(), average="macro")
    assert build(kit, "one-minus-map")(scores, labels) == pytest.approx(expected)


def test_macro_f1_matches_sklearn(kit):
    g = torch.Generator().manual_seed(5)
    logits, y = torch.randn(300, 4, generator=g), torch.randint(0, 4, (300,), generator=g)
    expected = 1 - skm.f1_score(y.numpy(), logits.argmax(1).numpy(), average="macro")
    assert build(kit, "one-minus-macro-f1")(logits, y) == pytest.approx(expected)


def test_chunked_is_orca_batch_average(kit):
    g = torch.Generator().manual_seed(6)
    pred, y = torch.randn(100, 16, generator=g), torch.randn(100, 16, generator=g)
    whole = build(kit, "relative-l2")
    chunked = build(kit, "relative-l2", chunked=30)
    per_chunk = [whole(pred[i : i + 30], y[i : i + 30]) for i in range(0, 100, 30)]
    assert chunked(pred, y) == pytest.approx(np.mean(per_chunk))
    assert chunked(pred, y) != pytest.approx(whole(pred, y))  # the last chunk is smaller: the two differ


def test_task_losses(kit):
    g = torch.Generator().manual_seed(7)
    names = {e.name for e in kit.objectives if e.meta.get("role") == "task-loss"}
    assert {"cross-entropy", "bce", "mse", "relative-l2"} <= names
    logits, y = torch.randn(20, 3, generator=g), torch.randint(0, 3, (20,), generator=g)
    assert kit.objectives.get("cross-entropy").build()(logits, y) == pytest.approx(torch.nn.functional.cross_entropy(logits, y))
    p, t = torch.randn(6, 1, 4, 4, generator=g, requires_grad=True), torch.randn(6, 1, 4, 4, generator=g)
    rel = kit.objectives.get("relative-l2").build()(p, t)
    expected = ((p - t).reshape(6, -1).norm(dim=1) / t.reshape(6, -1).norm(dim=1)).mean()
    assert rel.item() == pytest.approx(expected.item())
    rel.backward()
    assert p.grad is not None and torch.isfinite(p.grad).all()
    assert rel.item() == pytest.approx(build(kit, "relative-l2")(p.detach(), t), rel=1e-5)
    assert kit.objectives.get("mse").build()(t, t) == 0
    bce = kit.objectives.get("bce").build()(logits, (logits > 0).float())
    assert bce < torch.nn.functional.binary_cross_entropy_with_logits(logits, (logits <= 0).float())
