"""Majority vote, soft labels and Dawid-Skene beyond the crowd-kit cross-check."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from annotation.agreement import dawid_skene, majority_vote, soft_labels
from tests.annotation.agreement.references import naive_dawid_skene
from tests.annotation.agreement.strategies import PROPERTY, long_frame, rating_matrices


def frame(rows: Sequence[tuple[object, object, object]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["item", "annotator", "label"])


def tied_items(n_items: int) -> pd.DataFrame:
    """Every item labelled x by one annotator and y by another: all ties."""
    rows = [(item, "a", "x") for item in range(n_items)]
    rows += [(item, "b", "y") for item in range(n_items)]
    return frame(rows)


def biased_crowd(seed: int, n_items: int = 300, n_annotators: int = 12) -> pd.DataFrame:
    """Three classes; each annotator right with their own accuracy, else uniform."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, n_items)
    accuracy = rng.uniform(0.4, 0.95, n_annotators)
    rows = []
    for annotator in range(n_annotators):
        labelled = rng.random(n_items) < 0.5
        correct = rng.random(n_items) < accuracy[annotator]
        noise = rng.integers(0, 3, n_items)
        labels = np.where(correct, truth, noise)
        rows += [(int(i), annotator, int(labels[i])) for i in np.flatnonzero(labelled)]
    return frame(rows)


def test_majority_vote_clear_majority_wins():
    df = frame([(1, "a", "x"), (1, "b", "x"), (1, "c", "y"), (2, "a", "y")])

    assert majority_vote(df).to_dict() == {1: "x", 2: "y"}


def test_majority_vote_ties_with_none_are_missing():
    votes = majority_vote(tied_items(3), tie_break="none")

    assert votes.isna().all()


def test_majority_vote_random_ties_seeded_and_row_order_free():
    df = tied_items(200)

    first = majority_vote(df, seed=7)
    again = majority_vote(df.sample(frac=1.0, random_state=3), seed=7)
    other = majority_vote(df, seed=8)

    pd.testing.assert_series_equal(first, again)
    assert set(first) == {"x", "y"}
    assert not first.equals(other)


def test_majority_vote_unknown_tie_break_raises_value_error():
    with pytest.raises(ValueError, match="tie_break"):
        majority_vote(tied_items(1), tie_break="first")  # type: ignore[arg-type]


@PROPERTY
@given(rating_matrices(max_categories=4))
def test_soft_labels_random_data_rows_sum_to_one(generated):
    matrix, n_categories = generated
    categories = list(range(n_categories + 1))  # one category nobody used

    shares = soft_labels(long_frame(matrix), categories)

    assert list(shares.columns) == categories
    np.testing.assert_allclose(shares.sum(axis=1), 1.0, atol=1e-12)
    assert (shares[n_categories] == 0).all()


def test_soft_labels_label_outside_categories_raises_value_error():
    with pytest.raises(ValueError, match="outside"):
        soft_labels(tied_items(1), ["x"])


@PROPERTY
@given(
    generated=rating_matrices(max_annotators=4, max_items=6, max_categories=3),
    n_iter=st.integers(0, 3),
    smoothing=st.sampled_from([0.0, 0.5, 2.0]),
)
def test_dawid_skene_smoothing_matches_plain_loop_em(generated, n_iter, smoothing):
    matrix, _ = generated
    df = long_frame(matrix)

    result = dawid_skene(df, max_iter=n_iter, tol=-np.inf, smoothing=smoothing)

    categories = list(result.posteriors.columns)
    naive = naive_dawid_skene(df, categories, n_iter, smoothing)
    assert result.log_likelihood == pytest.approx(naive.log_likelihood, abs=1e-9)
    np.testing.assert_allclose(result.priors.to_numpy(), naive.priors, atol=1e-12)
    for annotator, rows in naive.confusions.items():
        np.testing.assert_allclose(result.confusions[annotator].to_numpy(), rows, atol=1e-12)
    for item, posterior in naive.posteriors.items():
        np.testing.assert_allclose(result.posteriors.loc[item].to_numpy(), posterior, atol=1e-12)


@pytest.mark.parametrize("smoothing", [0.0, 1.0])
def test_dawid_skene_single_label_annotator_stays_finite(smoothing):
    df = pd.concat([biased_crowd(1), frame([(0, "once", 2)])])

    result = dawid_skene(df, smoothing=smoothing, categories=[0, 1, 2, 3])

    assert np.isfinite(result.log_likelihood)
    for confusion in result.confusions.values():
        assert np.isfinite(confusion.to_numpy()).all()
        np.testing.assert_allclose(confusion.sum(axis=1), 1.0, atol=1e-12)
    assert np.isfinite(result.posteriors.to_numpy()).all()
    np.testing.assert_allclose(result.posteriors.sum(axis=1), 1.0, atol=1e-12)


def test_dawid_skene_positive_smoothing_pulls_sparse_annotator_toward_uniform():
    df = pd.concat([biased_crowd(2), frame([(0, "once", 1)])])

    crowdkit_like = dawid_skene(df, smoothing=0.0).confusions["once"]
    smoothed = dawid_skene(df, smoothing=1.0).confusions["once"]

    assert (crowdkit_like[1] == 1.0).all()  # only ever said 1: certain, whatever the truth
    assert (smoothed.to_numpy() > 0.2).all() and (smoothed.to_numpy() < 0.6).all()


def test_dawid_skene_log_likelihood_never_decreases_over_iterations():
    df = biased_crowd(4)

    values = [dawid_skene(df, max_iter=k, tol=-np.inf).log_likelihood for k in range(12)]

    assert all(b >= a - 1e-9 for a, b in zip(values, values[1:], strict=False))


def test_dawid_skene_tolerance_stops_before_max_iter():
    result = dawid_skene(biased_crowd(5), max_iter=500, tol=1e-6)

    assert 0 < result.n_iter < 500


def test_dawid_skene_same_seed_gives_same_result():
    df = biased_crowd(6)

    first = dawid_skene(df, seed=3)
    second = dawid_skene(df, seed=3)

    pd.testing.assert_frame_equal(first.posteriors, second.posteriors)
    pd.testing.assert_series_equal(first.labels, second.labels)
    assert first.priors.sum() == pytest.approx(1.0, abs=1e-6)
    assert math.isfinite(first.log_likelihood)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"max_iter": -1}, "max_iter"), ({"smoothing": -0.1}, "smoothing")],
)
def test_dawid_skene_bad_arguments_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        dawid_skene(biased_crowd(7, n_items=5), **kwargs)


def test_dawid_skene_one_annotator_raises_value_error():
    with pytest.raises(ValueError, match="at least 2 annotators"):
        dawid_skene(frame([(1, "a", "x"), (2, "a", "y")]))
