"""Classification, calibration and soft metrics: hand examples, scikit-learn on random data,
and ``annotation.agreement.soft`` for the soft ones."""

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from annotation.agreement.soft import jensen_shannon, soft_cross_entropy
from ml.engine.evaluation.metrics import (
    classification_metrics,
    expected_calibration_error,
    soft_metrics,
)

CLASSES = ("a", "b", "c", "d")


def _random_probs(rng: np.random.Generator, n: int, classes: int) -> np.ndarray:
    logits = rng.normal(size=(n, classes))
    exp = np.exp(logits)
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_metrics_random_data_equal_sklearn(seed):
    rng = np.random.default_rng(seed)
    probs = _random_probs(rng, 200, len(CLASSES))
    labels = rng.integers(0, len(CLASSES), size=200)
    labels[rng.choice(200, size=20, replace=False)] = -1
    result = classification_metrics(probs, labels, CLASSES)

    kept = labels >= 0
    true, predicted = labels[kept], probs[kept].argmax(axis=1)
    assert result["n"] == 180
    assert result["accuracy"] == pytest.approx(accuracy_score(true, predicted))
    assert result["macro_f1"] == pytest.approx(f1_score(true, predicted, average="macro"))
    assert result["confusion"] == sk_confusion_matrix(true, predicted, labels=[0, 1, 2, 3]).tolist()
    precision, recall, f1, support = precision_recall_fscore_support(
        true, predicted, labels=[0, 1, 2, 3], zero_division=np.nan
    )
    for index, name in enumerate(CLASSES):
        assert result["per_class"][name]["precision"] == pytest.approx(precision[index])
        assert result["per_class"][name]["recall"] == pytest.approx(recall[index])
        assert result["per_class"][name]["f1"] == pytest.approx(f1[index])
        assert result["per_class"][name]["support"] == support[index]


def test_classification_metrics_absent_class_undefined_ratios_none_and_macro_f1_like_sklearn():
    # Class "c" is neither true nor predicted: its ratios are undefined; "b" is predicted
    # only, so its recall is undefined but its F1 is 0.
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.6, 0.4, 0.0], [0.1, 0.9, 0.0]])
    labels = np.array([0, 0, 0, 0])
    result = classification_metrics(probs, labels, ("a", "b", "c"))
    assert result["per_class"]["c"] == {"precision": None, "recall": None, "f1": None, "support": 0}
    assert result["per_class"]["b"]["recall"] is None
    assert result["per_class"]["b"]["precision"] == 0.0
    assert result["per_class"]["b"]["f1"] == 0.0
    assert result["accuracy"] == 0.5
    assert result["macro_f1"] == pytest.approx(
        f1_score(labels, probs.argmax(axis=1), average="macro")
    )


def test_classification_metrics_no_labelled_row_none_not_nan():
    result = classification_metrics(np.full((2, 2), 0.5), np.array([-1, -1]), ("x", "y"))
    assert result["n"] == 0
    assert result["accuracy"] is None and result["macro_f1"] is None and result["ece"] is None
    assert result["confusion"] == [[0, 0], [0, 0]]


def test_classification_metrics_label_out_of_range_raises():
    with pytest.raises(ValueError):
        classification_metrics(np.full((1, 2), 0.5), np.array([2]), ("x", "y"))


def test_expected_calibration_error_hand_example():
    # Five bins; (0.8, 1]: confidences 0.9, 0.9, 0.85, two correct -> |2 - 2.65| = 0.65;
    # (0.6, 0.8]: 0.7 correct -> 0.3; (0.4, 0.6]: 0.55 wrong and 0.55 correct -> 0.1.
    # ECE = (0.65 + 0.3 + 0.1) / 6 = 0.175.
    probs = np.array([[0.9, 0.1], [0.1, 0.9], [0.85, 0.15], [0.3, 0.7], [0.55, 0.45], [0.45, 0.55]])
    labels = np.array([0, 0, 0, 1, 1, 1])
    assert expected_calibration_error(probs, labels, bins=5) == pytest.approx(0.175)
    # One bin: |accuracy - mean confidence| = |4/6 - 4.45/6|.
    assert expected_calibration_error(probs, labels, bins=1) == pytest.approx(0.45 / 6)


def test_expected_calibration_error_edge_confidence_in_lower_bin():
    # Four bins, edges exact in binary. 0.5 (correct) belongs to (0.25, 0.5] and 0.7 (wrong)
    # to (0.5, 0.75]: (|1 - 0.5| + |0 - 0.7|) / 2 = 0.6; were 0.5 in the upper bin, both
    # would share it: |1 - 1.2| / 2 = 0.1.
    probs = np.array([[0.5, 0.5], [0.3, 0.7]])
    labels = np.array([0, 0])
    assert expected_calibration_error(probs, labels, bins=4) == pytest.approx(0.6)


def test_expected_calibration_error_ignores_unlabelled_and_refuses_empty():
    probs = np.array([[0.9, 0.1], [0.2, 0.8]])
    assert expected_calibration_error(probs, np.array([0, -1])) == pytest.approx(0.1)
    with pytest.raises(ValueError):
        expected_calibration_error(probs, np.array([-1, -1]))


def test_soft_metrics_equal_annotation_agreement_soft_on_complete_rows():
    rng = np.random.default_rng(3)
    probs = _random_probs(rng, 30, 3)
    soft = rng.dirichlet(np.ones(3), size=30).astype(np.float32)
    soft[[4, 17]] = np.nan
    result = soft_metrics(probs, soft, ("x", "y", "z"))

    kept = [row for row in range(30) if row not in (4, 17)]
    pred = pd.DataFrame(probs[kept].astype(np.float64), columns=["x", "y", "z"])
    pred = pred.div(pred.sum(axis=1), axis=0)
    target = pd.DataFrame(soft[kept].astype(np.float64), columns=["x", "y", "z"])
    target = target.div(target.sum(axis=1), axis=0)
    assert result["n_soft"] == 28
    assert result["soft_cross_entropy"] == pytest.approx(soft_cross_entropy(pred, target))
    assert result["jensen_shannon"] == pytest.approx(jensen_shannon(pred, target))
    # And by the definition: -sum target * ln pred, averaged.
    by_hand = -np.mean(np.sum(soft[kept] * np.log(probs[kept]), axis=1))
    assert result["soft_cross_entropy"] == pytest.approx(by_hand, rel=1e-5)


def test_soft_metrics_identical_distributions_zero_divergence():
    soft = np.array([[0.5, 0.5], [1.0, 0.0]])
    result = soft_metrics(soft, soft, ("x", "y"))
    assert result["jensen_shannon"] == pytest.approx(0.0)
    assert result["soft_cross_entropy"] == pytest.approx(math.log(2) / 2)


def test_soft_metrics_no_distribution_gives_none():
    result = soft_metrics(np.full((2, 2), 0.5), np.full((2, 2), np.nan), ("x", "y"))
    assert result == {"soft_cross_entropy": None, "jensen_shannon": None, "n_soft": 0}
