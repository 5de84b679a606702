"""Diagnostics of representations and of the gap between modalities.

* :func:`davies_bouldin` and :func:`linear_probe_accuracy`: MoNA's knowledge-reuse diagnostics
  (how well source classes stay separated in the body's features while fine-tuning on a target).
* :func:`linear_cka`: how much of one representation another keeps (1 = the same up to rotation and
  scale); the knowledge-reuse probes compare the training body with the pretrained one.
* :func:`pseudo_labels`: k-means classes for regression / dense targets (ORCA's OTDD needs labels).
* :func:`modality_gap`: distances between source and target features under registered distance
  objectives, looked up by name in a kit.

Heavy imports (sklearn) happen inside the functions. Inputs may be torch tensors or numpy arrays.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .errors import DataError, MonaError


def _numpy(x: Any, dtype=np.float64) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def _labels(y: Any) -> np.ndarray:
    y = _numpy(y, dtype=None)
    if y.ndim != 1:
        raise DataError(f"labels must be one integer per sample (1-D), got shape {y.shape}.")
    return y


def davies_bouldin(features: Any, labels: Any) -> float:
    """Davies–Bouldin index of ``features [n, d]`` grouped by ``labels [n]`` (lower = better separated).

    ``DB = mean_i max_{j != i} (s_i + s_j) / ||c_i - c_j||`` with ``c_i`` the class centroid and
    ``s_i`` the mean distance of class i's samples to it; same conventions as
    ``sklearn.metrics.davies_bouldin_score`` (0 when all spreads or all centroid distances are 0).
    """
    x = _numpy(features)
    y = _labels(labels)
    if x.ndim != 2 or x.shape[0] != y.shape[0]:
        raise DataError(f"davies_bouldin needs features [n, d] and n labels, got {x.shape} and {y.shape}.")
    classes = np.unique(y)
    if not 1 < len(classes) < len(y):
        raise DataError(f"davies_bouldin needs 2..n-1 classes, got {len(classes)} for {len(y)} samples.")
    centroids = np.stack([x[y == c].mean(0) for c in classes])
    spread = np.array([np.linalg.norm(x[y == c] - centroids[i], axis=1).mean() for i, c in enumerate(classes)])
    gaps = np.linalg.norm(centroids[:, None, :] - centroids[None, :, :], axis=-1)
    if np.allclose(spread, 0) or np.allclose(gaps, 0):
        return 0.0
    gaps[gaps == 0] = np.inf
    ratios = (spread[:, None] + spread[None, :]) / gaps
    np.fill_diagonal(ratios, -np.inf)  # the max is over j != i
    return float(ratios.max(axis=1).mean())


def linear_probe_accuracy(
    train_feats: Any,
    train_labels: Any,
    test_feats: Any,
    test_labels: Any,
    *,
    C: float = 1.0,
    steps: int = 500,
    seed: int = 0,
    backend: str = "torch",
) -> float:
    """Accuracy of a multinomial logistic regression fitted on train features, on test features.

    The objective is scikit-learn's: ``sum_i CE_i + ||W||^2 / (2C)`` (intercept not penalised).
    ``backend="torch"`` minimises it with full-batch L-BFGS from zero (deterministic, float64,
    ``steps`` iterations at most); ``backend="sklearn"`` uses ``LogisticRegression(C=C,
    max_iter=steps, random_state=seed)``. Both give the same predictions on fixed features.
    """
    xtr, xte = _numpy(train_feats), _numpy(test_feats)
    ytr, yte = _labels(train_labels), _labels(test_labels)
    if xtr.ndim != 2 or xte.ndim != 2 or xtr.shape[1] != xte.shape[1]:
        raise DataError(f"linear probe needs [n, d] train and test features of one width, got {xtr.shape}, {xte.shape}.")
    if backend == "sklearn":
        from sklearn.linear_model import LogisticRegression

        clf = LogisticRegression(C=C, max_iter=steps, random_state=seed % 2**32).fit(xtr, ytr)  # sklearn seeds are 32-bit
        return float((clf.predict(xte) == yte).mean())
    if backend != "torch":
        raise MonaError(f"linear probe backend must be 'torch' or 'sklearn', got {backend!r}.")
    import torch

    classes, ytr_idx = np.unique(ytr, return_inverse=True)
    x = torch.as_tensor(xtr, dtype=torch.float64)
    y = torch.as_tensor(ytr_idx, dtype=torch.long)
    w = torch.zeros(x.shape[1], len(classes), dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(len(classes), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [w, bias], lr=1.0, max_iter=steps, tolerance_grad=1e-10, tolerance_change=1e-14,
        history_size=20, line_search_fn="strong_wolfe",
    )
    n = x.shape[0]

    def closure():
        opt.zero_grad()
        # sklearn's objective divided by n (same minimiser, better-scaled for L-BFGS).
        loss = torch.nn.functional.cross_entropy(x @ w + bias, y) + (w * w).sum() / (2.0 * C * n)
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        pred = classes[(torch.as_tensor(xte, dtype=torch.float64) @ w + bias).argmax(1).numpy()]
    return float((pred == yte).mean())


def linear_cka(features_a: Any, features_b: Any) -> float:
    """Linear centred kernel alignment (Kornblith et al. 2019) of two ``[n, d]`` feature matrices of
    the same ``n`` samples: ``||A'B||_F^2 / (||A'A||_F ||B'B||_F)`` on column-centred features.

    1 when one is a rotation and isotropic scaling of the other, near 0 for unrelated features; the
    widths may differ. Unlike a probe fitted on labels, it needs none and moves continuously, so it
    also tells a body that kept the pretrained function from a random body that merely passes the
    (pretrained) token embeddings through.
    """
    a, b = _numpy(features_a), _numpy(features_b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0]:
        raise DataError(f"linear CKA needs [n, d] features of the same n samples, got {a.shape} and {b.shape}.")
    if a.shape[0] < 2:
        raise DataError(f"linear CKA needs at least 2 samples, got {a.shape[0]}.")
    a = a - a.mean(0)
    b = b - b.mean(0)
    # Scale each to unit Frobenius norm first: the ratio is scale-free, the products then stay in range.
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        raise DataError("linear CKA is undefined for constant features (every sample has the same vector).")
    a, b = a / na, b / nb
    cross = np.linalg.norm(a.T @ b) ** 2
    return float(cross / (np.linalg.norm(a.T @ a) * np.linalg.norm(b.T @ b)))


def pseudo_labels(targets: Any, k: int = 10, seed: int = 0):
    """k-means classes (k = 10 by default) of flattened targets ``[n, ...]``, as ORCA labels
    regression and dense tasks for OTDD. Fewer distinct targets than k gives that many classes.

    Returns int64 labels ``[n]``: a torch tensor (on the input's device) for tensor input, else numpy.
    """
    from sklearn.cluster import KMeans

    is_torch = hasattr(targets, "detach")
    x = _numpy(targets)
    n = x.shape[0]
    x = x.reshape(n, -1)
    if n == 0:
        labels = np.zeros(0, dtype=np.int64)
    else:
        distinct = len(np.unique(x, axis=0))
        kk = max(1, min(int(k), distinct))
        if kk == 1:
            labels = np.zeros(n, dtype=np.int64)
        else:
            labels = KMeans(n_clusters=kk, n_init=10, random_state=seed % 2**32).fit_predict(x).astype(np.int64)  # 64-bit run seeds
    if is_torch:
        import torch

        return torch.as_tensor(labels, device=targets.device)
    return labels


def modality_gap(
    source_feats,
    source_labels,
    target_feats,
    target_labels,
    objectives: Iterable[str] = ("otdd", "mmd"),
    kit=None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, float]:
    """``{name: distance}`` between source and target features under registered distance objectives.

    Objectives are looked up by name in ``kit`` (a fresh :func:`mona_kit.kit.load_kit` if None);
    ``options`` maps a name to its config options.
    """
    import torch

    if kit is None:
        from .kit import load_kit

        kit = load_kit()
    options = options or {}
    xs, xt = torch.as_tensor(source_feats).float(), torch.as_tensor(target_feats).float()
    ys = None if source_labels is None else torch.as_tensor(source_labels)
    yt = None if target_labels is None else torch.as_tensor(target_labels)
    out = {}
    for name in objectives:
        objective = kit.build_objective(name, "distance", options.get(name), purpose="the modality gap")
        with torch.no_grad():
            out[name] = float(objective(xs, ys, xt, yt))
    return out
