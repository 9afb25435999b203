"""Published worked examples, reproduced exactly (to the published precision, and to the
reference packages' values where those exist)."""

from __future__ import annotations

from collections.abc import Sequence

import krippendorff
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss_kappa

from annotation.agreement import cohen_kappa, dawid_skene, fleiss_kappa, krippendorff_alpha
from tests.annotation.agreement.references import (
    crowdkit_dawid_skene,
    log_likelihood_of,
    naive_dawid_skene,
)

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section E: four
# observers, twelve units, values 1-5, None = not coded.
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]
KRIPPENDORFF_2011_ALPHA = {"nominal": 0.743, "ordinal": 0.815, "interval": 0.849, "ratio": 0.797}
# Same paper, section A: two observers, ten units, binary data; alpha = 0.095.
KRIPPENDORFF_2011_BINARY = [[0, 1, 0, 0, 0, 0, 0, 0, 1, 0], [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]]

# Wikipedia, "Fleiss' kappa", worked example: 10 subjects, 14 raters each, 5 categories;
# counts of raters per (subject, category). kappa = 0.210 (also statsmodels' test value).
FLEISS_WIKIPEDIA = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]
# Fleiss (1971), 30 patients x 6 psychiatrists, diagnoses 1-5 (as in R irr's `diagnoses`
# and statsmodels' test_inter_rater.py). Fleiss reports kappa = 0.430; irr gives 0.4302445.
# fmt: off
FLEISS_1971_DIAGNOSES = [
    [4, 4, 4, 4, 4, 4], [2, 2, 2, 5, 5, 5], [2, 3, 3, 3, 3, 5], [5, 5, 5, 5, 5, 5],
    [2, 2, 2, 4, 4, 4], [1, 1, 3, 3, 3, 3], [3, 3, 3, 3, 5, 5], [1, 1, 3, 3, 3, 4],
    [1, 1, 4, 4, 4, 4], [5, 5, 5, 5, 5, 5], [1, 4, 4, 4, 4, 4], [1, 2, 4, 4, 4, 4],
    [2, 2, 2, 3, 3, 3], [1, 4, 4, 4, 4, 4], [2, 2, 4, 4, 4, 5], [3, 3, 3, 3, 3, 5],
    [1, 1, 1, 4, 5, 5], [1, 1, 1, 1, 1, 2], [2, 2, 4, 4, 4, 4], [1, 3, 3, 5, 5, 5],
    [5, 5, 5, 5, 5, 5], [2, 4, 4, 4, 4, 4], [2, 2, 4, 5, 5, 5], [1, 1, 4, 4, 4, 4],
    [1, 4, 4, 4, 4, 5], [2, 2, 2, 2, 2, 4], [1, 1, 1, 1, 5, 5], [2, 2, 4, 4, 4, 4],
    [1, 3, 3, 3, 3, 3], [5, 5, 5, 5, 5, 5],
]
# fmt: on

# Dawid & Skene (1979), Table 1: 45 patients, 5 anaesthetists, classes 1-4; observer 1
# rated every patient three times. Per patient: observer 1's three ratings, then observers
# 2-5. Transcribed from the copy in github.com/dallascard/dawid_skene (dawid_skene.py,
# generate_sample_data), which several other repositories reproduce identically; we could
# not check it against the paper itself, and the paper's fitted values are not asserted
# here (no copy we could verify). The model is instead checked against crowd-kit and the
# plain-loop EM of references.py on this data.
DAWID_SKENE_1979 = """
111 1 1 1 1
333 4 3 3 4
112 2 1 2 2
222 3 1 2 1
222 3 2 2 2
222 3 3 2 2
122 2 1 1 1
333 3 4 3 3
222 2 2 2 3
232 2 2 2 3
444 4 4 4 4
222 3 3 4 3
111 1 1 1 1
222 3 2 1 2
121 1 1 1 1
111 2 1 1 1
111 1 1 1 1
111 1 1 1 1
222 2 2 2 1
222 1 3 2 2
222 2 2 2 2
222 2 2 2 1
222 3 2 2 2
221 2 2 2 2
111 1 1 1 1
111 1 1 1 1
232 2 2 2 2
111 1 1 1 1
111 1 1 1 1
112 1 1 2 1
111 1 1 1 1
333 3 2 3 3
111 1 1 1 1
222 2 2 2 2
222 3 2 3 2
433 4 3 4 3
221 2 2 3 2
232 3 2 3 3
333 3 4 3 2
111 1 1 1 1
111 1 1 1 1
121 2 1 1 1
232 2 2 2 2
121 1 1 1 1
222 2 2 2 2
"""


def frame_from_matrix(matrix: Sequence[Sequence[int | None]]) -> pd.DataFrame:
    rows = [
        (unit, f"observer-{observer}", value)
        for observer, values in enumerate(matrix)
        for unit, value in enumerate(values)
        if value is not None
    ]
    return pd.DataFrame(rows, columns=["item", "annotator", "label"])


def frame_from_counts(table: list[list[int]]) -> pd.DataFrame:
    """One label per rater; raters are numbered within each subject (they may differ)."""
    rows = []
    for subject, counts in enumerate(table):
        labels = [category for category, n in enumerate(counts) for _ in range(n)]
        rows += [(subject, f"rater-{rater}", label) for rater, label in enumerate(labels)]
    return pd.DataFrame(rows, columns=["item", "annotator", "label"])


def dawid_skene_1979_frame() -> pd.DataFrame:
    rows = []
    for patient, line in enumerate(DAWID_SKENE_1979.strip().splitlines(), start=1):
        for observer, ratings in enumerate(line.split(), start=1):
            rows += [(patient, observer, int(rating)) for rating in ratings]
    return pd.DataFrame(rows, columns=["item", "annotator", "label"])


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_krippendorff_alpha_krippendorff_2011_example_matches_published_value(level):
    df = frame_from_matrix(KRIPPENDORFF_2011)
    reference_data = np.array(KRIPPENDORFF_2011, dtype=float)

    alpha = krippendorff_alpha(df, level=level)

    assert round(alpha, 3) == KRIPPENDORFF_2011_ALPHA[level]
    reference = krippendorff.alpha(reliability_data=reference_data, level_of_measurement=level)
    assert round(reference, 3) == KRIPPENDORFF_2011_ALPHA[level]
    assert alpha == pytest.approx(reference, abs=1e-12)


def test_krippendorff_alpha_krippendorff_2011_binary_example_is_0_095():
    alpha = krippendorff_alpha(frame_from_matrix(KRIPPENDORFF_2011_BINARY))

    assert round(alpha, 3) == 0.095


def test_fleiss_kappa_wikipedia_example_is_0_210():
    df = frame_from_counts(FLEISS_WIKIPEDIA)

    kappa = fleiss_kappa(df, categories=range(5))

    assert round(kappa, 3) == 0.210
    assert kappa == pytest.approx(statsmodels_fleiss_kappa(np.array(FLEISS_WIKIPEDIA)), abs=1e-12)


def test_fleiss_kappa_fleiss_1971_diagnoses_is_0_430():
    diagnoses = np.array(FLEISS_1971_DIAGNOSES)
    df = frame_from_matrix(diagnoses.T.tolist())

    kappa = fleiss_kappa(df)

    assert round(kappa, 3) == 0.430
    assert kappa == pytest.approx(0.4302445, abs=1e-7)
    table, _ = aggregate_raters(diagnoses)
    assert kappa == pytest.approx(statsmodels_fleiss_kappa(table), abs=1e-12)


def test_cohen_kappa_wikipedia_fifty_proposals_is_0_4():
    # Wikipedia "Cohen's kappa", simple example: both yes 20, A yes / B no 5,
    # A no / B yes 10, both no 15; p_o = 0.7, p_e = 0.5, kappa = 0.4.
    pairs = [("yes", "yes")] * 20 + [("yes", "no")] * 5 + [("no", "yes")] * 10
    pairs += [("no", "no")] * 15
    rows = [(item, "A", a) for item, (a, _) in enumerate(pairs)]
    rows += [(item, "B", b) for item, (_, b) in enumerate(pairs)]
    df = pd.DataFrame(rows, columns=["item", "annotator", "label"])

    kappa = cohen_kappa(df, "A", "B")

    assert kappa == pytest.approx(0.4, abs=1e-12)
    first, second = zip(*pairs, strict=True)
    assert kappa == pytest.approx(cohen_kappa_score(first, second), abs=1e-12)


def test_dawid_skene_1979_data_has_the_published_shape():
    df = dawid_skene_1979_frame()

    assert len(df) == 315
    assert df["item"].nunique() == 45
    assert df.groupby("annotator").size().to_dict() == {1: 135, 2: 45, 3: 45, 4: 45, 5: 45}
    assert sorted(df["label"].unique()) == [1, 2, 3, 4]


def test_dawid_skene_1979_data_matches_crowdkit_and_plain_loop_em():
    df = dawid_skene_1979_frame()
    n_iter = 50

    result = dawid_skene(df, max_iter=n_iter, tol=-np.inf)

    assert result.n_iter == n_iter
    reference = crowdkit_dawid_skene(df, n_iter)
    probas = reference.probas.reindex(index=result.posteriors.index, columns=[1, 2, 3, 4])
    np.testing.assert_allclose(result.posteriors.to_numpy(), probas.to_numpy(), atol=1e-9)
    pd.testing.assert_series_equal(
        result.labels, reference.labels.reindex(result.labels.index), check_names=False
    )
    assert result.log_likelihood == pytest.approx(
        log_likelihood_of(df, reference.priors.to_dict(), reference.confusion), abs=1e-6
    )
    naive = naive_dawid_skene(df, [1, 2, 3, 4], n_iter)
    assert result.log_likelihood == pytest.approx(naive.log_likelihood, abs=1e-9)
    assert result.priors.to_numpy() == pytest.approx(naive.priors, abs=1e-9)
