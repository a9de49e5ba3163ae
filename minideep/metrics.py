"""Classification metrics on label arrays: accuracy, precision, recall, F1, confusion matrix.

Every function takes ``y_true`` and ``y_pred``: 1-D arrays of integer class labels of the
same length (numpy arrays, lists or Tensors). Precision, recall and F1 are *macro*
averages: computed for each class, then averaged with equal weight, so a rare class
counts as much as a common one. A class that is never predicted (precision) or never
present (recall) contributes 0 instead of dividing by zero.

With ``num_classes=None`` the classes are the labels that appear in ``y_true`` or
``y_pred``; pass ``num_classes`` to average over ``0 .. num_classes - 1`` instead.
"""

from __future__ import annotations

import numpy as np

from . import backend
from .detection_metrics import mean_average_precision  # detection: COCO mAP
from .tensor import Tensor

__all__ = [
    "accuracy",
    "confusion_matrix",
    "precision",
    "recall",
    "f1_score",
    "mean_average_precision",
    "METRICS",
]


def _labels(y) -> np.ndarray:
    if isinstance(y, Tensor):
        y = y.numpy()
    return np.asarray(backend.as_numpy(y)).reshape(-1)


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = _labels(y_true), _labels(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true and y_pred need the same number of labels, got {y_true.size} and {y_pred.size}"
        )
    return y_true, y_pred


def accuracy(y_true, y_pred) -> float:
    """Fraction of labels predicted correctly: ``mean(y_pred == y_true)``."""
    y_true, y_pred = _pair(y_true, y_pred)
    if y_true.size == 0:
        raise ValueError("accuracy of zero samples is undefined")
    return float(np.mean(y_true == y_pred))


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """``cm[i, j]`` = number of samples of true class ``i`` predicted as class ``j``.

    Shape ``(C, C)``, ``C = num_classes`` or ``max label + 1``; rows are true classes,
    columns predictions (scikit-learn's convention). The diagonal holds the hits.
    """
    y_true, y_pred = _pair(y_true, y_pred)
    y_true, y_pred = y_true.astype(np.int64), y_pred.astype(np.int64)
    if num_classes is None:
        num_classes = int(max(y_true.max(initial=-1), y_pred.max(initial=-1))) + 1
    if y_true.size and (
        min(y_true.min(), y_pred.min()) < 0 or max(y_true.max(), y_pred.max()) >= num_classes
    ):
        raise ValueError(f"labels must lie in [0, {num_classes}) for num_classes={num_classes}")
    flat = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def _per_class_counts(y_true, y_pred, num_classes):
    """True positives, predicted counts and actual counts of each averaged class."""
    y_true, y_pred = _pair(y_true, y_pred)
    if num_classes is None:
        classes = np.union1d(y_true, y_pred)
    else:
        classes = np.arange(num_classes)
    hits = y_true == y_pred
    tp = np.array([np.sum(hits & (y_true == c)) for c in classes], dtype=np.float64)
    predicted = np.array([np.sum(y_pred == c) for c in classes], dtype=np.float64)
    actual = np.array([np.sum(y_true == c) for c in classes], dtype=np.float64)
    return tp, predicted, actual


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def precision(y_true, y_pred, num_classes: int | None = None) -> float:
    """Macro precision: mean over classes of TP / (TP + FP), i.e. hits / times predicted."""
    tp, predicted, _ = _per_class_counts(y_true, y_pred, num_classes)
    return float(np.mean(_safe_divide(tp, predicted))) if tp.size else 0.0


def recall(y_true, y_pred, num_classes: int | None = None) -> float:
    """Macro recall: mean over classes of TP / (TP + FN), i.e. hits / times present."""
    tp, _, actual = _per_class_counts(y_true, y_pred, num_classes)
    return float(np.mean(_safe_divide(tp, actual))) if tp.size else 0.0


def f1_score(y_true, y_pred, num_classes: int | None = None) -> float:
    """Macro F1: mean over classes of 2 P R / (P + R) = 2 TP / (2 TP + FP + FN)."""
    tp, predicted, actual = _per_class_counts(y_true, y_pred, num_classes)
    return float(np.mean(_safe_divide(2 * tp, predicted + actual))) if tp.size else 0.0


# The names ``fit`` and ``evaluate`` accept in ``metrics=``.
METRICS = {"accuracy": accuracy, "precision": precision, "recall": recall, "f1": f1_score}
