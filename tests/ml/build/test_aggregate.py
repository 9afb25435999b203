"""Aggregated targets: the same whether labels arrive as text or as a categorical."""

import pandas as pd

from annotation.schemas import LabelSchema
from ml.build.aggregate import targets_compute

SCHEMA = LabelSchema.from_json(
    {
        "kind": "nominal",
        "choices": [
            {"label": "Yes", "value": "yes"},
            {"label": "No", "value": "no"},
            {"label": "Unsure", "value": "unsure"},
        ],
    }
)
LABELS = ["yes", "no", "no", "unsure", "yes", "yes", "no", "unsure", "unsure"]


def _annotations(values: object) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": [1, 1, 1, 2, 2, 2, 3, 3, 4],
            "annotator_id": [5, 6, 7, 5, 6, 7, 5, 6, 7],
            "value": values,
        }
    )


def test_targets_compute_categorical_labels_give_the_targets_of_text_labels():
    targets = ("majority", "dawid_skene", "soft")
    as_text = targets_compute(_annotations(LABELS), SCHEMA, targets, seed=3)
    as_categorical = targets_compute(_annotations(pd.Categorical(LABELS)), SCHEMA, targets, seed=3)

    for name in ("majority", "majority_tied", "dawid_skene", "dawid_skene_confidence"):
        pd.testing.assert_series_equal(getattr(as_categorical, name), getattr(as_text, name))
    assert as_text.soft is not None and as_categorical.soft is not None
    pd.testing.assert_frame_equal(as_categorical.soft, as_text.soft)
