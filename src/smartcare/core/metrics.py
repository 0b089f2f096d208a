"""Shared evaluation metrics, each with a percentile bootstrap confidence interval.

Binary metrics take ``y_true`` in {0, 1}. ``auc`` takes scores; ``accuracy``, ``f1`` and ``mcc`` take
predicted labels (or probabilities, thresholded at 0.5). ``dice`` takes binary masks.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn import metrics as skm

Metric = Callable[[np.ndarray, np.ndarray], float]


def _labels(y_pred: np.ndarray) -> np.ndarray:
    y_pred = np.asarray(y_pred)
    if y_pred.dtype.kind == "f" and not np.all(np.isin(y_pred, (0.0, 1.0))):
        return (y_pred >= 0.5).astype(int)
    return y_pred.astype(int)


def auc(y_true, y_score) -> float:
    """Area under the ROC curve (Hanley & McNeil 1982); NaN when only one class is present."""
    y_true = np.asarray(y_true)
    if np.unique(y_true).size < 2:
        return float("nan")
    return float(skm.roc_auc_score(y_true, np.asarray(y_score)))


def accuracy(y_true, y_pred) -> float:
    return float(skm.accuracy_score(np.asarray(y_true), _labels(y_pred)))


def f1(y_true, y_pred) -> float:
    return float(skm.f1_score(np.asarray(y_true), _labels(y_pred), zero_division=0.0))


def mcc(y_true, y_pred) -> float:
    """Matthews correlation coefficient (Matthews 1975)."""
    return float(skm.matthews_corrcoef(np.asarray(y_true), _labels(y_pred)))


def dice(y_true, y_pred) -> float:
    """Dice coefficient 2|A∩B| / (|A| + |B|) of two binary masks; 1.0 when both are empty."""
    a = np.asarray(y_true).astype(bool).ravel()
    b = _labels(np.asarray(y_pred).ravel()).astype(bool)
    denom = a.sum() + b.sum()
    return 1.0 if denom == 0 else float(2.0 * np.logical_and(a, b).sum() / denom)


def bootstrap_ci(metric: Metric, y_true, y_pred, n_boot: int = 1000, seed: int = 0,
                 alpha: float = 0.05) -> tuple[float, float, float]:
    """Point estimate and percentile bootstrap interval ``(point, lo, hi)`` at level ``1 - alpha``.

    Cases are resampled with replacement (Efron & Tibshirani 1993); resamples where the metric is
    undefined (NaN) are dropped.
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} items but y_pred has {len(y_pred)}")
    point = metric(y_true, y_pred)
    rng = np.random.default_rng(seed)
    n = len(y_true)
    stats = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        value = metric(y_true[idx], y_pred[idx])
        if not np.isnan(value):
            stats.append(value)
    if not stats:
        return point, float("nan"), float("nan")
    lo, hi = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return float(point), float(lo), float(hi)
