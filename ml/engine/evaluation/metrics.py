"""Classification and calibration metrics of predicted probabilities, and soft metrics against
the annotators' label distributions.

Invariants:

- ``probs`` is ``(n, C)`` with columns in the order of ``classes``; the predicted class is
  the argmax (the first class on ties, numpy's rule). ``labels`` holds class indices, and
  rows labelled ``-1`` (no hard label) are left out of every classification metric.
- A ratio with a zero denominator is ``None``, never NaN, so results serialise to JSON as
  they are (``null``). Every number is a Python ``int`` or ``float``.
- Macro-F1 averages the F1 of the classes whose F1 is defined, i.e. the classes present in
  the labels or the predictions: scikit-learn's ``f1_score(average="macro")`` does the same.
- Soft metrics come from ``annotation.agreement.soft`` (the same code the agreement reports
  use), over the rows whose annotator distribution is complete (no NaN).
"""

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from annotation.agreement.soft import jensen_shannon, soft_cross_entropy

DEFAULT_BINS = 15
FloatArray = npt.NDArray[np.floating]
IntArray = npt.NDArray[np.integer]


def _ratio(numerator: float, denominator: float) -> float | None:
    return None if denominator == 0 else float(numerator) / float(denominator)


def _checked(probs: FloatArray, labels: IntArray, classes: int | None = None) -> None:
    if probs.ndim != 2 or labels.ndim != 1 or probs.shape[0] != labels.shape[0]:
        raise ValueError("probs must be (n, C) and labels (n,) for the same rows.")
    if classes is not None and probs.shape[1] != classes:
        raise ValueError("probs must have one column per class.")
    if np.any(labels >= probs.shape[1]) or np.any(labels < -1):
        raise ValueError("labels must be class indices, or -1 for no label.")


def confusion_matrix(labels: IntArray, predicted: IntArray, classes: int) -> IntArray:
    """``(C, C)`` counts: rows are true classes, columns predicted ones."""
    flat = labels.astype(np.int64) * classes + predicted.astype(np.int64)
    return np.bincount(flat, minlength=classes * classes).reshape(classes, classes)


def expected_calibration_error(
    probs: FloatArray, labels: IntArray, *, bins: int = DEFAULT_BINS
) -> float:
    """ECE (Guo et al. 2017): confidences (the top probability) in ``bins`` equal-width bins
    ``((m-1)/M, m/M]`` (a confidence of 0 in the first), and the mean over bins of
    ``|accuracy - mean confidence|`` weighted by the bin's share of rows. Rows labelled -1 are
    left out; no row left raises ``ValueError``."""
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    _checked(probs, labels)
    if bins < 1:
        raise ValueError("bins must be positive.")
    kept = labels >= 0
    if not np.any(kept):
        raise ValueError("No labelled row to calibrate on.")
    probs, labels = probs[kept], labels[kept]
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.digitize(confidence, edges[1:-1], right=True)
    rows = np.bincount(which, minlength=bins).astype(np.float64)
    accuracy_sum = np.bincount(which, weights=correct, minlength=bins)
    confidence_sum = np.bincount(which, weights=confidence, minlength=bins)
    # |sum correct - sum confidence| / n is the bin's weighted gap; empty bins add 0.
    return float(np.sum(np.abs(accuracy_sum - confidence_sum)) / rows.sum())


def classification_metrics(
    probs: FloatArray, labels: IntArray, classes: Sequence[str], *, bins: int = DEFAULT_BINS
) -> dict[str, Any]:
    """``{"n", "accuracy", "macro_f1", "confusion", "per_class", "ece"}`` over labelled rows.

    ``confusion`` is a list of lists (rows true, columns predicted, in ``classes`` order);
    ``per_class`` maps each class to ``{"precision", "recall", "f1", "support"}``. With no
    labelled row every ratio and ``ece`` are ``None`` and the counts 0.
    """
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    _checked(probs, labels, len(classes))
    kept = labels >= 0
    true, predicted = labels[kept], probs[kept].argmax(axis=1)
    confusion = confusion_matrix(true, predicted, len(classes))
    tp = np.diag(confusion)
    support = confusion.sum(axis=1)
    predicted_count = confusion.sum(axis=0)
    per_class: dict[str, dict[str, Any]] = {}
    f1_defined: list[float] = []
    for index, name in enumerate(classes):
        hits = int(tp[index])
        f1 = _ratio(2 * hits, int(support[index]) + int(predicted_count[index]))
        if f1 is not None:
            f1_defined.append(f1)
        per_class[name] = {
            "precision": _ratio(hits, int(predicted_count[index])),
            "recall": _ratio(hits, int(support[index])),
            "f1": f1,
            "support": int(support[index]),
        }
    n = int(kept.sum())
    return {
        "n": n,
        "accuracy": _ratio(int(tp.sum()), n),
        "macro_f1": float(np.mean(f1_defined)) if f1_defined else None,
        "confusion": confusion.tolist(),
        "per_class": per_class,
        "ece": expected_calibration_error(probs, labels, bins=bins) if n else None,
    }


def _distributions(values: FloatArray, classes: Sequence[str]) -> pd.DataFrame:
    # Rows are renormalised in float64: float32 probabilities drift from a sum of 1 by
    # rounding, and annotation.agreement.soft checks the sum to 1e-6.
    rows = np.asarray(values, dtype=np.float64)
    return pd.DataFrame(rows / rows.sum(axis=1, keepdims=True), columns=list(classes))


def soft_metrics(
    probs: FloatArray, soft: FloatArray, classes: Sequence[str]
) -> dict[str, float | None]:
    """``{"soft_cross_entropy" (nats), "jensen_shannon" (bits), "n_soft"}``: the mean over
    rows with a complete annotator distribution in ``soft`` (rows with NaN skipped) of the
    soft cross-entropy of ``probs`` against it and of their Jensen-Shannon divergence; both
    ``None`` (and ``n_soft`` 0) when no row has one."""
    probs, soft = np.asarray(probs, dtype=np.float64), np.asarray(soft, dtype=np.float64)
    if probs.shape != soft.shape or probs.ndim != 2 or probs.shape[1] != len(classes):
        raise ValueError("probs and soft must both be (n, C), one column per class.")
    kept = ~np.isnan(soft).any(axis=1)
    if not np.any(kept):
        return {"soft_cross_entropy": None, "jensen_shannon": None, "n_soft": 0}
    pred = _distributions(probs[kept], classes)
    target = _distributions(soft[kept], classes)
    return {
        "soft_cross_entropy": soft_cross_entropy(pred, target),
        "jensen_shannon": jensen_shannon(pred, target),
        "n_soft": int(kept.sum()),
    }
