"""Evaluation of a trained baseline: pure numpy, pandas and (inside the plot functions)
matplotlib; no torch, no Django.

- ``metrics``: accuracy, macro-F1, the confusion matrix, per-class precision / recall / F1
  and the expected calibration error of predicted probabilities against hard labels; the
  soft cross-entropy and Jensen-Shannon divergence against the annotators' distributions,
  computed by ``annotation.agreement.soft``.
- ``groups``: the per-group table (PPV, error rate, TPR, FPR per class, for item groups and
  their intersections, small groups flagged) and the agreement of the model with each
  annotator group's majority labels.
- ``plots``: loss curves, confusion matrix and per-group bars as byte-reproducible PNGs.

Shared invariants: undefined ratios are ``None`` (JSON ``null``), never NaN; results depend
on the inputs only (no randomness, no clock); bad shapes raise ``ValueError``.
"""

from ml.engine.evaluation.groups import (
    MISSING,
    OVERALL,
    annotator_group_agreement,
    intersection_groups,
    item_group_table,
)
from ml.engine.evaluation.metrics import (
    classification_metrics,
    confusion_matrix,
    expected_calibration_error,
    soft_metrics,
)
from ml.engine.evaluation.plots import confusion_png, group_bars_png, loss_curves_png

__all__ = [
    "MISSING",
    "OVERALL",
    "annotator_group_agreement",
    "classification_metrics",
    "confusion_matrix",
    "confusion_png",
    "expected_calibration_error",
    "group_bars_png",
    "intersection_groups",
    "item_group_table",
    "loss_curves_png",
    "soft_metrics",
]
