"""Soft-label metrics: cross-entropy (nats) and Jensen-Shannon divergence (bits)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from annotation.agreement import jensen_shannon, soft_cross_entropy

TARGET = pd.DataFrame({"x": [1.0, 0.5], "y": [0.0, 0.5]}, index=["i1", "i2"])


def test_soft_cross_entropy_hand_example_in_nats():
    pred = pd.DataFrame({"x": [0.5, 0.5], "y": [0.5, 0.5]}, index=["i1", "i2"])

    # i1: -ln 0.5; i2: -(0.5 ln 0.5 + 0.5 ln 0.5) = ln 2.
    assert soft_cross_entropy(pred, TARGET) == pytest.approx(math.log(2), abs=1e-12)


def test_soft_cross_entropy_zero_prediction_is_clipped_finite():
    pred = pd.DataFrame({"x": [0.0, 0.5], "y": [1.0, 0.5]}, index=["i1", "i2"])

    value = soft_cross_entropy(pred, TARGET, epsilon=1e-12)

    assert value == pytest.approx((-math.log(1e-12) + math.log(2)) / 2, abs=1e-9)


def test_jensen_shannon_identical_is_zero_and_disjoint_is_one_bit():
    disjoint = pd.DataFrame({"x": [0.0], "y": [1.0]}, index=["i1"])

    assert jensen_shannon(TARGET, TARGET) == 0.0
    assert jensen_shannon(disjoint, TARGET.loc[["i1"]]) == pytest.approx(1.0, abs=1e-12)


def test_soft_metrics_shuffled_rows_and_columns_align_on_labels():
    pred = pd.DataFrame({"x": [0.9, 0.2], "y": [0.1, 0.8]}, index=["i1", "i2"])
    shuffled = pred.loc[["i2", "i1"], ["y", "x"]]

    assert soft_cross_entropy(shuffled, TARGET) == soft_cross_entropy(pred, TARGET)
    assert jensen_shannon(shuffled, TARGET) == jensen_shannon(pred, TARGET)


@pytest.mark.parametrize(
    ("pred", "message"),
    [
        (TARGET.rename(index={"i2": "i3"}), "different items"),
        (TARGET.rename(columns={"y": "z"}), "different categories"),
        (TARGET * 2, "sum to 1"),
        (TARGET.assign(x=[1.5, 0.5], y=[-0.5, 0.5]), "non-negative"),
        (TARGET.iloc[:0], "empty"),
    ],
)
def test_soft_metrics_bad_frames_raise_value_error(pred, message):
    with pytest.raises(ValueError, match=message):
        jensen_shannon(pred, TARGET)
    with pytest.raises(ValueError, match=message):
        soft_cross_entropy(pred, TARGET)
