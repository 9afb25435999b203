"""``normalized_entropy``: the one per-item entropy formula, pandas-free, equal to the
vectorised ``item_entropy`` of the core on any label frame."""

import subprocess
import sys
from collections import Counter

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from annotation.agreement import item_entropy, normalized_entropy
from tests.annotation.agreement.strategies import PROPERTY

CATEGORIES = ["a", "b", "c", "d"]


def test_normalized_entropy_worked_examples() -> None:
    assert normalized_entropy([2, 2], 2) == pytest.approx(1.0)  # an even split of two
    assert normalized_entropy([4, 0, 0], 3) == 0.0  # unanimous
    assert normalized_entropy([1], 4) == 0.0  # one label: no disagreement yet
    assert normalized_entropy([1, 1], 1) == 0.0  # one category: nothing to disagree on
    assert normalized_entropy([1, 1, 1, 1], 4) == pytest.approx(1.0)


@PROPERTY
@given(
    st.lists(st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=8), min_size=1, max_size=12)
)
def test_normalized_entropy_equals_item_entropy_of_the_core(items: list[list[str]]) -> None:
    frame = pd.DataFrame(
        [
            {"item": item, "annotator": f"a{position}", "label": label}
            for item, labels in enumerate(items)
            for position, label in enumerate(labels)
        ]
    )

    vectorised = item_entropy(frame, categories=CATEGORIES)

    for item, labels in enumerate(items):
        counts = Counter(labels).values()
        assert normalized_entropy(counts, len(CATEGORIES)) == pytest.approx(
            vectorised[item], abs=1e-12
        )


def test_normalized_entropy_import_loads_no_pandas() -> None:
    code = (
        "import sys; from annotation.agreement.entropy import normalized_entropy; "
        "print('pandas' in sys.modules or 'numpy' in sys.modules)"
    )
    result = subprocess.run(  # noqa: S603 - fixed interpreter and code
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )

    assert result.stdout.strip() == "False"
