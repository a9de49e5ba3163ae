"""Classification metrics against hand-computed values."""

import numpy as np
import pytest

import minideep as md
from minideep import metrics

# 3 classes, 8 samples.  Per class (TP, predicted, actual):
#   class 0: TP 2, predicted 3, actual 3  -> P 2/3, R 2/3, F1 2/3
#   class 1: TP 1, predicted 2, actual 3  -> P 1/2, R 1/3, F1 2/5
#   class 2: TP 1, predicted 3, actual 2  -> P 1/3, R 1/2, F1 2/5
Y_TRUE = np.array([0, 0, 0, 1, 1, 1, 2, 2])
Y_PRED = np.array([0, 0, 2, 1, 2, 0, 2, 1])


def test_accuracy():
    assert metrics.accuracy(Y_TRUE, Y_PRED) == 4 / 8


def test_confusion_matrix_rows_are_true_columns_predicted():
    expected = np.array([[2, 0, 1], [1, 1, 1], [0, 1, 1]])
    np.testing.assert_array_equal(metrics.confusion_matrix(Y_TRUE, Y_PRED), expected)


def test_confusion_matrix_with_num_classes_pads_unseen_classes():
    cm = metrics.confusion_matrix([0, 1], [1, 1], num_classes=4)
    assert cm.shape == (4, 4) and cm.sum() == 2 and cm[0, 1] == 1 and cm[1, 1] == 1


@pytest.mark.parametrize(
    "fn,expected",
    [
        (metrics.precision, (2 / 3 + 1 / 2 + 1 / 3) / 3),
        (metrics.recall, (2 / 3 + 1 / 3 + 1 / 2) / 3),
        (metrics.f1_score, (2 / 3 + 2 / 5 + 2 / 5) / 3),
    ],
)
def test_macro_averages(fn, expected):
    assert fn(Y_TRUE, Y_PRED) == pytest.approx(expected, abs=1e-12)


def test_class_never_predicted_counts_zero_precision():
    # class 1 is present but never predicted: its precision is 0, not a division by zero
    assert metrics.precision([0, 1], [0, 0]) == pytest.approx((1 / 2 + 0) / 2)
    assert metrics.recall([0, 1], [0, 0]) == pytest.approx((1 + 0) / 2)


def test_num_classes_averages_over_all_classes():
    assert metrics.recall([0, 0], [0, 0]) == 1.0
    assert metrics.recall([0, 0], [0, 0], num_classes=2) == 0.5


def test_perfect_predictions_score_one():
    for fn in (metrics.accuracy, metrics.precision, metrics.recall, metrics.f1_score):
        assert fn(Y_TRUE, Y_TRUE) == 1.0


def test_accepts_tensors_and_lists():
    assert metrics.accuracy(md.tensor(Y_TRUE), list(Y_PRED)) == 0.5


def test_length_mismatch_raises():
    with pytest.raises(ValueError, match="same number"):
        metrics.accuracy([0, 1, 2], [0, 1])


def test_label_out_of_range_raises():
    with pytest.raises(ValueError, match="num_classes=2"):
        metrics.confusion_matrix([0, 2], [0, 1], num_classes=2)


def test_matches_sklearn_when_installed():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 5, 200), rng.integers(0, 5, 200)
    assert metrics.precision(y_true, y_pred) == pytest.approx(
        sk.precision_score(y_true, y_pred, average="macro")
    )
    assert metrics.f1_score(y_true, y_pred) == pytest.approx(
        sk.f1_score(y_true, y_pred, average="macro")
    )
    np.testing.assert_array_equal(
        metrics.confusion_matrix(y_true, y_pred), sk.confusion_matrix(y_true, y_pred)
    )
