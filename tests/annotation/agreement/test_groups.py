"""group_disagreement: within-group alpha, xRR, effects and the permutation test."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon

from annotation.agreement import MISSING_GROUP, group_disagreement, krippendorff_alpha
from annotation.surveys import PREFER_NOT_TO_SAY
from tests.annotation.agreement.references import cross_replication_reliability
from tests.annotation.agreement.strategies import PROPERTY, annotator_name, long_frame


def crowd(seed: int, shift_of_group: dict[str, float], per_group: int = 15) -> tuple:
    """Ordinal labels 0-3 on 80 items; each group's annotators shift the truth by its shift."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(1.5, 1.0, 80)
    rows, groups = [], {}
    for group, shift in shift_of_group.items():
        for index in range(per_group):
            annotator = f"{group}-{index}"
            groups[annotator] = group
            items = np.flatnonzero(rng.random(80) < 0.4)
            noisy = truth[items] + shift + rng.normal(0, 0.6, len(items))
            labels = np.clip(np.round(noisy), 0, 3).astype(int)
            rows += [(int(i), annotator, int(v)) for i, v in zip(items, labels, strict=True)]
    return pd.DataFrame(rows, columns=["item", "annotator", "label"]), groups


def test_group_disagreement_shifted_group_has_small_p_value():
    df, groups = crowd(1, {"north": 0.0, "south": 1.0})

    result = group_disagreement(
        df, groups, level="ordinal", categories=range(4), n_permutations=500
    )

    pair = result.pairs.iloc[0]
    assert (pair["group_a"], pair["group_b"]) == ("north", "south")
    assert pair["mean_difference"] > 0.5
    assert pair["p_value"] == pytest.approx(1 / 501)


def test_group_disagreement_same_behaviour_has_large_p_value():
    df, groups = crowd(2, {"north": 0.0, "south": 0.0})

    result = group_disagreement(
        df, groups, level="ordinal", categories=range(4), n_permutations=500
    )

    assert result.pairs.iloc[0]["p_value"] > 0.2


def test_group_disagreement_nominal_effect_is_js_divergence_in_bits():
    df, groups = crowd(3, {"north": 0.0, "south": 1.0})

    result = group_disagreement(df, groups, level="nominal", n_permutations=200)

    shares = result.label_distribution
    expected = jensenshannon(shares.loc["north"], shares.loc["south"], base=2) ** 2
    assert result.pairs.iloc[0]["js_divergence"] == pytest.approx(expected, abs=1e-12)
    assert result.pairs.iloc[0]["p_value"] == pytest.approx(1 / 201)
    assert "mean_label" not in result.groups.columns


def test_group_disagreement_group_table_matches_direct_computation():
    df, groups = crowd(4, {"a": 0.0, "b": 0.3, "c": -0.3})

    result = group_disagreement(df, groups, level="interval", n_permutations=0)

    group_of = df["annotator"].map(groups)
    for name, rows in df.groupby(group_of):
        row = result.groups.loc[name]
        assert row["n_annotators"] == rows["annotator"].nunique()
        assert row["n_labels"] == len(rows)
        assert row["alpha"] == pytest.approx(krippendorff_alpha(rows, "interval"), abs=1e-12)
        assert row["mean_label"] == pytest.approx(rows["label"].mean(), abs=1e-12)
    pairs = result.pairs.set_index(["group_a", "group_b"])
    means = df.groupby(group_of)["label"].mean()
    assert pairs.loc[("a", "c"), "mean_difference"] == pytest.approx(means["c"] - means["a"])
    assert pairs["p_value"].isna().all()
    assert len(pairs) == 3


DISTANCES = {
    "nominal": lambda a, b: float(a != b),
    "interval": lambda a, b: float(a - b) ** 2,
    "ordinal": None,  # depends on the pooled frequencies; built by the reference
}


@PROPERTY
@given(
    matrix=st.integers(3, 7).flatmap(
        lambda n_annotators: st.lists(
            st.lists(st.integers(-1, 3), min_size=8, max_size=8),
            min_size=n_annotators,
            max_size=n_annotators,
        )
    ),
    level=st.sampled_from(sorted(DISTANCES)),
)
def test_group_disagreement_xrr_matches_pair_enumeration(matrix, level):
    matrix = np.array(matrix)
    matrix[:2, 0] = np.maximum(matrix[:2, 0], 0)
    df = long_frame(matrix)
    present = sorted(df["annotator"].unique())
    groups = {name: ("even" if index % 2 == 0 else "odd") for index, name in enumerate(present)}
    if len(set(groups.values())) < 2:
        return

    result = group_disagreement(df, groups, level=level, categories=range(4), n_permutations=0)

    first = df[df["annotator"].map(groups) == "even"]
    second = df[df["annotator"].map(groups) == "odd"]
    pair = result.pairs.iloc[0]
    assert pair["n_shared_items"] == len(set(first["item"]) & set(second["item"]))
    if pair["n_shared_items"] == 0:
        assert math.isnan(pair["xrr"])
        return
    expected = cross_replication_reliability(
        first,
        second,
        DISTANCES[level],
        ordinal_categories=list(range(4)) if level == "ordinal" else None,
    )
    if math.isnan(expected):
        assert math.isnan(pair["xrr"])
    else:
        assert pair["xrr"] == pytest.approx(expected, abs=1e-9)


def test_group_disagreement_p_value_converges_to_exact_permutation_p_value():
    # Two annotators per group: 6 ways to split the 4, so the exact p-value is k / 6.
    df = pd.DataFrame(
        [
            (i, a, v)
            for a, values in {
                "p": [0, 1, 1],
                "q": [1, 1, 2],
                "r": [2, 2, 3],
                "s": [1, 3, 3],
            }.items()
            for i, v in enumerate(values)
        ],
        columns=["item", "annotator", "label"],
    )
    groups = {"p": "one", "q": "one", "r": "two", "s": "two"}
    means = df.groupby("annotator")["label"].mean()
    observed = abs(means[["r", "s"]].mean() - means[["p", "q"]].mean())
    splits = list(itertools.combinations("pqrs", 2))
    exact = np.mean(
        [
            abs(means.drop(list(split)).mean() - means[list(split)].mean()) >= observed - 1e-12
            for split in splits
        ]
    )

    result = group_disagreement(df, groups, level="interval", n_permutations=20_000, seed=5)

    assert result.pairs.iloc[0]["p_value"] == pytest.approx(exact, abs=0.02)


def test_group_disagreement_same_seed_same_p_values():
    df, groups = crowd(6, {"a": 0.0, "b": 0.2, "c": 0.1})

    first = group_disagreement(df, groups, level="ordinal", n_permutations=300, seed=11)
    second = group_disagreement(df, groups, level="ordinal", n_permutations=300, seed=11)

    pd.testing.assert_frame_equal(first.pairs, second.pairs)


def test_group_disagreement_missing_answers_form_their_own_groups():
    df, groups = crowd(7, {"a": 0.0, "b": 0.5})
    groups["a-0"] = PREFER_NOT_TO_SAY
    groups["a-1"] = None
    del groups["a-2"]

    kept = group_disagreement(df, groups, level="ordinal", n_permutations=0)
    dropped = group_disagreement(df, groups, level="ordinal", n_permutations=0, missing="drop")

    assert kept.groups["n_annotators"].to_dict() == {
        "a": 12,
        "b": 15,
        MISSING_GROUP: 2,
        PREFER_NOT_TO_SAY: 1,
    }
    assert dropped.groups["n_annotators"].to_dict() == {"a": 12, "b": 15}
    assert len(kept.pairs) == 6 and len(dropped.pairs) == 1


@pytest.mark.parametrize(
    ("groups", "kwargs", "message"),
    [
        ({annotator_name(0): "x", annotator_name(1): "x"}, {}, "at least two groups"),
        ({annotator_name(0): "x"}, {"missing": "drop"}, "at least two groups"),
        ({annotator_name(0): "x"}, {"missing": "ignore"}, "Unknown missing"),
        ({annotator_name(0): "x"}, {"n_permutations": -1}, "n_permutations"),
        ({annotator_name(0): "x"}, {"level": "likert"}, "Unknown level"),
    ],
)
def test_group_disagreement_bad_arguments_raise_value_error(groups, kwargs, message):
    df = long_frame(np.array([[0, 1], [1, 1]]))

    with pytest.raises(ValueError, match=message):
        group_disagreement(df, groups, **kwargs)
