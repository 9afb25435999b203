"""Krippendorff's alpha, kappas, percent agreement, entropy and per-annotator agreement."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from sklearn.metrics import cohen_kappa_score

from annotation.agreement import (
    _coincidence,
    annotator_agreement,
    cohen_kappa,
    fleiss_kappa,
    item_entropy,
    krippendorff_alpha,
    percent_agreement,
    reliability,
)
from tests.annotation.agreement.references import leave_one_out_majority
from tests.annotation.agreement.strategies import PROPERTY, long_frame, rating_matrices


def frame(rows: Sequence[tuple[object, object, object]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["item", "annotator", "label"])


AGREEING = frame([(1, "a", "x"), (1, "b", "x"), (2, "a", "y"), (2, "b", "y")])


@pytest.mark.parametrize(
    ("df", "kwargs", "message"),
    [
        (frame([]), {}, "empty"),
        (AGREEING.drop(columns="label"), {}, "lacks the column"),
        (AGREEING.assign(label=[None, "x", "y", "y"]), {}, "Missing values"),
        (AGREEING, {"level": "cardinal"}, "Unknown level"),
        (AGREEING, {"categories": ["x"]}, "outside `categories`"),
        (AGREEING, {"categories": ["x", "y", "x"]}, "duplicates"),
        (AGREEING.assign(annotator="a", item=[1, 2, 3, 4]), {}, "at least 2 annotators"),
        (pd.concat([AGREEING, AGREEING.head(1)]), {}, "more than once"),
        (frame([(1, "a", "x"), (2, "b", "x")]), {}, "No item has labels from two"),
        (AGREEING, {"level": "interval"}, "numeric labels"),
        (AGREEING.assign(label=[-1, -1, 2, 2]), {"level": "ratio"}, "non-negative"),
        (AGREEING.assign(label=[1, "x", 1, "x"]), {"level": "ordinal"}, "mixed types"),
    ],
)
def test_krippendorff_alpha_bad_input_raises_value_error(df, kwargs, message):
    with pytest.raises(ValueError, match=message):
        krippendorff_alpha(df, **kwargs)


def test_krippendorff_alpha_not_a_frame_raises_type_error():
    with pytest.raises(TypeError, match="DataFrame"):
        krippendorff_alpha([(1, "a", "x")])


def test_krippendorff_alpha_perfect_agreement_is_one():
    assert krippendorff_alpha(AGREEING) == 1.0


def test_krippendorff_alpha_single_value_everywhere_is_nan():
    assert math.isnan(krippendorff_alpha(AGREEING.assign(label="x")))


def test_krippendorff_alpha_items_with_one_label_are_ignored():
    extra = pd.concat([AGREEING, frame([(3, "a", "y"), (4, "b", "x")])])

    assert krippendorff_alpha(extra) == krippendorff_alpha(AGREEING)


@PROPERTY
@given(rating_matrices())
def test_krippendorff_alpha_shuffled_rows_and_renamed_items_same_value(generated):
    matrix, _ = generated
    df = long_frame(matrix)
    shuffled = df.sample(frac=1.0, random_state=1).assign(
        item=lambda d: "item-" + d["item"].astype(str)
    )

    first = krippendorff_alpha(df, level="ordinal")
    second = krippendorff_alpha(shuffled, level="ordinal")

    assert (math.isnan(first) and math.isnan(second)) or first == pytest.approx(second, abs=1e-12)


def test_fleiss_kappa_unequal_labels_per_item_raises_value_error():
    uneven = pd.concat([AGREEING, frame([(1, "c", "x")])])

    with pytest.raises(ValueError, match="same number of labels"):
        fleiss_kappa(uneven)


def test_fleiss_kappa_one_label_per_item_raises_value_error():
    with pytest.raises(ValueError, match="at least two labels"):
        fleiss_kappa(frame([(1, "a", "x"), (2, "b", "y")]))


@pytest.mark.parametrize(
    ("a", "b", "kwargs", "message"),
    [
        ("a", "a", {}, "two different annotators"),
        ("a", "zed", {}, "No labels from annotator"),
        ("a", "b", {"weights": "cubic"}, "Unknown weights"),
    ],
)
def test_cohen_kappa_bad_arguments_raise_value_error(a, b, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cohen_kappa(AGREEING, a, b, **kwargs)


def test_cohen_kappa_no_shared_items_raises_value_error():
    disjoint = frame([(1, "a", "x"), (2, "b", "y"), (3, "c", "x"), (3, "a", "y")])

    with pytest.raises(ValueError, match="no item in common"):
        cohen_kappa(disjoint, "a", "b")


def test_cohen_kappa_weighted_unused_middle_category_counts_in_distance():
    # Labels 1 and 3 only; the scale of the whole frame includes 2 (labelled by "c").
    df = frame(
        [(i, "a", v) for i, v in enumerate([1, 1, 3, 3, 1])]
        + [(i, "b", v) for i, v in enumerate([1, 3, 3, 1, 1])]
        + [(9, "c", 2)]
    )

    kappa = cohen_kappa(df, "a", "b", weights="linear")

    reference = cohen_kappa_score(
        [1, 1, 3, 3, 1], [1, 3, 3, 1, 1], labels=[1, 2, 3], weights="linear"
    )
    assert kappa == pytest.approx(reference, abs=1e-12)


def test_percent_agreement_hand_example_is_mean_of_pair_shares():
    # item 1: x, x, y -> 1 agreeing pair of 3; item 2: x, x -> 1; item 3: one label, ignored.
    df = frame([(1, "a", "x"), (1, "b", "x"), (1, "c", "y"), (2, "a", "x"), (2, "b", "x")])
    df = pd.concat([df, frame([(3, "a", "y")])])

    assert percent_agreement(df) == pytest.approx((1 / 3 + 1) / 2, abs=1e-12)


def test_percent_agreement_no_pairable_item_raises_value_error():
    with pytest.raises(ValueError, match="No item"):
        percent_agreement(frame([(1, "a", "x"), (2, "b", "y")]))


def test_item_entropy_normalised_by_number_of_categories():
    df = frame([(1, "a", "x"), (1, "b", "y"), (2, "a", "x"), (2, "b", "x"), (3, "a", "z")])

    two = item_entropy(df, categories=["x", "y"] + ["z"], normalize=False)
    four = item_entropy(df, categories=["w", "x", "y", "z"])

    assert two.to_dict() == pytest.approx({1: math.log(2), 2: 0.0, 3: 0.0})
    assert four.to_dict() == pytest.approx({1: 0.5, 2: 0.0, 3: 0.0})
    assert four.index.name == "item"


def test_item_entropy_single_annotator_is_allowed():
    entropy = item_entropy(frame([(1, "a", "x"), (2, "a", "y")]))

    assert entropy.tolist() == [0.0, 0.0]


def test_annotator_agreement_hand_example_counts_unique_majorities():
    # Item 1: a=x, b=x, c=y. Item 2: a=x, b=y (c absent). Item 3: a=x alone.
    df = frame([(1, "a", "x"), (1, "b", "x"), (1, "c", "y"), (2, "a", "x"), (2, "b", "y")])
    df = pd.concat([df, frame([(3, "a", "x")])])

    table = annotator_agreement(df)

    # a: item 1 others {x, y} tie -> skipped; item 2 others {y} -> disagrees.
    # b: item 1 others {x, y} tie; item 2 others {x} -> disagrees. c: item 1 others {x, x}.
    assert table["n_labels"].to_dict() == {"a": 3, "b": 2, "c": 1}
    assert table["n_compared"].to_dict() == {"a": 1, "b": 1, "c": 1}
    assert table["majority_agreement"].to_dict() == {"a": 0.0, "b": 0.0, "c": 0.0}


@PROPERTY
@given(rating_matrices(max_annotators=7, max_categories=3))
def test_annotator_agreement_majority_matches_plain_loop(generated):
    matrix, _ = generated
    df = long_frame(matrix)

    table = annotator_agreement(df)

    expected = leave_one_out_majority(df)
    assert table["n_compared"].to_dict() == expected["n_compared"].to_dict()
    agreed = (table["majority_agreement"] * table["n_compared"]).fillna(0).round().astype(int)
    assert agreed.to_dict() == expected["n_agreed"].to_dict()


def test_annotator_agreement_small_chunks_match_one_chunk(monkeypatch):
    rng = np.random.default_rng(3)
    matrix = rng.integers(-1, 4, size=(30, 60))
    df = long_frame(matrix)
    whole = annotator_agreement(df, level="ordinal")

    monkeypatch.setattr(reliability, "_ANNOTATOR_CHUNK_CELLS", 16 * 4)
    chunked = annotator_agreement(df, level="ordinal")

    pd.testing.assert_frame_equal(whole, chunked, atol=1e-12, rtol=0)


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_krippendorff_alpha_sparse_and_dense_coincidences_agree(monkeypatch, level):
    rng = np.random.default_rng(5)
    df = long_frame(rng.integers(-1, 5, size=(8, 40)), values=[0, 1, 2, 4, 8])
    dense = krippendorff_alpha(df, level=level)

    monkeypatch.setattr(_coincidence, "DENSE_MAX_CATEGORIES", 0)
    sparse = krippendorff_alpha(df, level=level)

    assert sparse == pytest.approx(dense, abs=1e-12)
