"""Every statistic against its reference package on random inputs (hypothesis), to 1e-9.

References: ``krippendorff.alpha`` (alpha, and alpha without each annotator),
``statsmodels.stats.inter_rater.fleiss_kappa`` (with ``aggregate_raters``),
``sklearn.metrics.cohen_kappa_score``, ``crowdkit.aggregation.DawidSkene`` and
``scipy.spatial.distance.jensenshannon``.
"""

from __future__ import annotations

import math
import warnings
from typing import Literal

import krippendorff
import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss_kappa

from annotation.agreement import (
    annotator_agreement,
    cohen_kappa,
    dawid_skene,
    fleiss_kappa,
    jensen_shannon,
    krippendorff_alpha,
)
from tests.annotation.agreement.references import crowdkit_dawid_skene, log_likelihood_of
from tests.annotation.agreement.strategies import (
    CROSS_CHECK,
    annotator_name,
    category_values,
    long_frame,
    rating_matrices,
    reliability_data,
)

TOLERANCE = 1e-9
LevelName = Literal["nominal", "ordinal", "interval", "ratio"]
LEVELS: list[LevelName] = ["nominal", "ordinal", "interval", "ratio"]


def reference_alpha(data: np.ndarray, level: LevelName, domain: list[float]) -> float:
    """krippendorff.alpha, NaN where it refuses (a one-value domain) or divides 0 by 0."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            return float(
                krippendorff.alpha(
                    reliability_data=data, value_domain=domain, level_of_measurement=level
                )
            )
        except ValueError:
            return math.nan


def assert_same(ours: float, reference: float) -> None:
    if math.isnan(reference):
        assert math.isnan(ours)
    else:
        assert ours == pytest.approx(reference, abs=TOLERANCE)


def alpha_inputs(draw: st.DrawFn, level: LevelName) -> tuple[np.ndarray, list[float]]:
    matrix, n_categories = draw(rating_matrices())
    if level in ("interval", "ratio"):
        values = [float(v) for v in draw(category_values(n_categories))]
    else:
        values = [float(code) for code in range(n_categories)]
    return matrix, values


@pytest.mark.parametrize("level", LEVELS)
@CROSS_CHECK
@given(data=st.data())
def test_krippendorff_alpha_random_data_matches_krippendorff_package(level, data):
    matrix, values = alpha_inputs(data.draw, level)
    df = long_frame(matrix, values)

    ours = krippendorff_alpha(df, level=level, categories=values)

    assert_same(ours, reference_alpha(reliability_data(matrix, values), level, values))


@pytest.mark.parametrize("level", LEVELS)
@CROSS_CHECK
@given(data=st.data())
def test_annotator_agreement_alpha_without_matches_package_on_reduced_data(level, data):
    matrix, values = alpha_inputs(data.draw, level)
    df = long_frame(matrix, values)

    table = annotator_agreement(df, level=level, categories=values)

    for row in range(matrix.shape[0]):
        name = annotator_name(row)
        if name not in table.index:
            continue
        reduced = reliability_data(np.delete(matrix, row, axis=0), values)
        assert_same(table.loc[name, "alpha_without"], reference_alpha(reduced, level, values))


@CROSS_CHECK
@given(rating_matrices(max_annotators=7, missing=False))
def test_fleiss_kappa_random_data_matches_statsmodels(generated):
    matrix, n_categories = generated
    df = long_frame(matrix)

    ours = fleiss_kappa(df, categories=range(n_categories))

    table, _ = aggregate_raters(matrix.T, n_cat=n_categories)
    with np.errstate(all="ignore"):
        reference = float(statsmodels_fleiss_kappa(table))
    assert_same(ours, reference)


@CROSS_CHECK
@given(
    generated=rating_matrices(max_items=20),
    weights=st.sampled_from([None, "linear", "quadratic"]),
)
def test_cohen_kappa_random_data_matches_sklearn(generated, weights):
    matrix, n_categories = generated
    df = long_frame(matrix)

    ours = cohen_kappa(
        df, annotator_name(0), annotator_name(1), weights=weights, categories=range(n_categories)
    )

    shared = (matrix[0] >= 0) & (matrix[1] >= 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns where kappa is undefined (NaN)
        reference = cohen_kappa_score(
            matrix[0, shared], matrix[1, shared], labels=list(range(n_categories)), weights=weights
        )
    assert_same(ours, float(reference))


@CROSS_CHECK
@given(
    generated=rating_matrices(max_annotators=5, max_items=10, max_categories=4),
    n_iter=st.integers(1, 4),
)
def test_dawid_skene_random_data_matches_crowdkit(generated, n_iter):
    matrix, _ = generated
    df = long_frame(matrix)

    result = dawid_skene(df, max_iter=n_iter, tol=-np.inf)

    reference = crowdkit_dawid_skene(df, n_iter)
    categories = list(result.posteriors.columns)
    probas = reference.probas.reindex(index=result.posteriors.index, columns=categories)
    np.testing.assert_allclose(result.posteriors.to_numpy(), probas.to_numpy(), atol=TOLERANCE)
    np.testing.assert_allclose(
        result.priors.to_numpy(), reference.priors.reindex(categories).to_numpy(), atol=TOLERANCE
    )
    for (worker, true, observed), value in reference.confusion.items():
        assert result.confusions[worker].loc[true, observed] == pytest.approx(value, abs=TOLERANCE)
    assert result.log_likelihood == pytest.approx(
        log_likelihood_of(df, reference.priors.to_dict(), reference.confusion), abs=1e-6
    )
    # Labels agree wherever the most probable class is not a near-tie (there the seeded
    # draw and crowd-kit's first-column rule may legitimately differ).
    ranked = np.sort(np.column_stack((np.zeros(len(probas)), probas.to_numpy())), axis=1)
    clear = ranked[:, -1] - ranked[:, -2] > 1e-6
    ours = result.labels.to_numpy()[clear]
    theirs = reference.labels.reindex(result.labels.index).to_numpy()[clear]
    assert list(ours) == list(theirs)


@CROSS_CHECK
@given(
    st.integers(1, 6).flatmap(
        lambda n_categories: st.tuples(
            st.lists(
                st.lists(st.floats(0, 1), min_size=n_categories, max_size=n_categories).filter(
                    lambda row: sum(row) > 1e-3
                ),
                min_size=1,
                max_size=8,
            ),
            st.lists(
                st.lists(st.floats(0, 1), min_size=n_categories, max_size=n_categories).filter(
                    lambda row: sum(row) > 1e-3
                ),
                min_size=8,
                max_size=8,
            ),
        )
    )
)
def test_jensen_shannon_random_distributions_matches_scipy(rows):
    first, second = (np.array(side, dtype=float) for side in rows)
    second = second[: len(first)]
    first /= first.sum(axis=1, keepdims=True)
    second /= second.sum(axis=1, keepdims=True)
    pred, target = pd.DataFrame(first), pd.DataFrame(second)

    ours = jensen_shannon(pred, target)

    reference = np.mean(
        [jensenshannon(p, q, base=2) ** 2 for p, q in zip(first, second, strict=True)]
    )
    assert ours == pytest.approx(reference, abs=TOLERANCE)
