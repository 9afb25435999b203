"""Hypothesis strategies and frame builders shared by the agreement tests.

Random data is an ``annotators x items`` matrix of category codes with -1 for "no label",
the layout the reference packages take (``krippendorff.alpha``'s reliability data);
``long_frame`` turns it into the long ``item, annotator, label`` frame our API takes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

# Cross-checks against reference packages: many examples, reproducible (derandomize, no
# example database written into the working tree). The autouse fixtures of
# tests/annotation/conftest.py are function-scoped but irrelevant to these pure tests.
CROSS_CHECK = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
PROPERTY = settings(CROSS_CHECK, max_examples=60)

MISSING = -1


def annotator_name(code: int) -> str:
    return f"annotator-{code}"


def long_frame(matrix: np.ndarray, values: Sequence[object] | None = None) -> pd.DataFrame:
    """Long label frame from an annotators x items code matrix (-1 = no label).

    Annotators are named ``annotator-<row>``, items are the column numbers, labels are the
    codes or ``values[code]``.
    """
    annotator, item = np.nonzero(matrix != MISSING)
    codes = matrix[annotator, item]
    labels = codes if values is None else np.asarray(values, dtype=object)[codes]
    return pd.DataFrame(
        {
            "item": item.astype(np.int64),
            "annotator": [annotator_name(int(code)) for code in annotator],
            "label": list(labels),
        }
    )


def reliability_data(matrix: np.ndarray, values: Sequence[float] | None = None) -> np.ndarray:
    """The same labels as ``krippendorff.alpha`` reliability data (annotators x items, NaN)."""
    lookup = np.arange(matrix.max() + 1, dtype=float) if values is None else np.asarray(values)
    data = np.full(matrix.shape, np.nan)
    present = matrix != MISSING
    data[present] = lookup[matrix[present]]
    return data


@st.composite
def rating_matrices(
    draw: st.DrawFn,
    *,
    max_annotators: int = 6,
    max_items: int = 12,
    max_categories: int = 5,
    missing: bool = True,
) -> tuple[np.ndarray, int]:
    """(annotators x items code matrix, number of categories).

    The first two annotators always label item 0, so there is at least one pair to compare.
    """
    n_categories = draw(st.integers(2, max_categories))
    n_annotators = draw(st.integers(2, max_annotators))
    n_items = draw(st.integers(1, max_items))
    lowest = MISSING if missing else 0
    matrix = draw(
        arrays(
            np.int64,
            (n_annotators, n_items),
            elements=st.integers(lowest, n_categories - 1),
        )
    )
    matrix[:2, 0] = np.maximum(matrix[:2, 0], 0)
    return matrix, n_categories


def category_values(n_categories: int) -> st.SearchStrategy[list[int]]:
    """Distinct non-negative numeric values for the interval and ratio levels."""
    return st.lists(st.integers(0, 40), min_size=n_categories, max_size=n_categories, unique=True)
