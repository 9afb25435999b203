"""Distances between soft labels: item x category probability frames.

Both functions align ``pred`` on ``target`` by item (index) and category (columns), require
the same items and categories on both sides, non-negative finite entries and rows that sum
to 1 (within 1e-6), and return the mean over items.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from annotation.agreement._frame import FloatArray

DEFAULT_EPSILON = 1e-12
_ROW_SUM_TOLERANCE = 1e-6


def js_divergence_bits(p: FloatArray, q: FloatArray) -> FloatArray:
    """Jensen-Shannon divergence in bits along the last axis, with ``0 log 0 = 0``; in [0, 1]."""
    mixture = (p + q) / 2.0

    def kl_to_mixture(a: FloatArray) -> FloatArray:
        ratio = np.divide(a, mixture, out=np.ones_like(a), where=a > 0)
        return np.sum(a * np.log2(ratio), axis=-1)

    return np.maximum(0.5 * kl_to_mixture(p) + 0.5 * kl_to_mixture(q), 0.0)


def _aligned(pred: pd.DataFrame, target: pd.DataFrame) -> tuple[FloatArray, FloatArray]:
    for name, frame in (("pred", pred), ("target", target)):
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}.")
        if frame.shape[0] == 0 or frame.shape[1] == 0:
            raise ValueError(f"{name} is empty.")
        if not (frame.index.is_unique and frame.columns.is_unique):
            raise ValueError(f"{name} has duplicate items or categories.")
    if set(pred.index) != set(target.index):
        raise ValueError("pred and target cover different items.")
    if set(pred.columns) != set(target.columns):
        raise ValueError("pred and target have different categories.")
    arrays = []
    for name, frame in (
        ("pred", pred.reindex(index=target.index, columns=target.columns)),
        ("target", target),
    ):
        try:
            values = frame.to_numpy(dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{name} must hold numbers.") from error
        if not np.all(np.isfinite(values)) or np.any(values < 0):
            raise ValueError(f"{name} must hold finite, non-negative probabilities.")
        if np.any(np.abs(values.sum(axis=1) - 1.0) > _ROW_SUM_TOLERANCE):
            raise ValueError(f"Every row of {name} must sum to 1.")
        arrays.append(values)
    return arrays[0], arrays[1]


def soft_cross_entropy(
    pred: pd.DataFrame, target: pd.DataFrame, epsilon: float = DEFAULT_EPSILON
) -> float:
    """Mean over items of ``-sum_c target_c ln(clip(pred_c, epsilon, 1))``, in nats.

    Clipping keeps a zero predicted probability finite; with ``pred == target`` the value
    is the mean entropy of the targets.
    """
    predicted, wanted = _aligned(pred, target)
    clipped = np.clip(predicted, epsilon, 1.0)
    return float(np.mean(-np.sum(wanted * np.log(clipped), axis=1)))


def jensen_shannon(pred: pd.DataFrame, target: pd.DataFrame) -> float:
    """Mean over items of the Jensen-Shannon divergence in bits (0 = identical, 1 = disjoint)."""
    predicted, wanted = _aligned(pred, target)
    return float(np.mean(js_divergence_bits(predicted, wanted)))
