"""Do annotator groups (e.g. by a self-reported demographic answer) label differently?

``group_disagreement`` describes each group (size, within-group alpha, label distribution)
and compares every pair of groups three ways:

- cross-replication reliability (xRR; Wong, Paritosh & Aroyo 2021, "Cross-replication
  Reliability - An Empirical Approach to Interpreting Inter-rater Reliability"):
  ``kappa_x = 1 - d_o / d_e``, where ``d_o`` is the mean distance over all pairs (label
  from A, label from B) on the same item and ``d_e`` the mean distance over all pairs of
  a label from A and a label from B regardless of item, both over the items the two
  groups share, with Krippendorff's distance for the level (ordinal ranks use the pooled
  frequencies of both groups' labels on those items);
- an effect: the difference of mean label (B minus A; category rank for ordinal, value for
  interval and ratio), or for nominal data the Jensen-Shannon divergence (bits) between
  the groups' label distributions, over all their labels;
- a permutation test of that effect: group membership is shuffled among the annotators of
  the two groups (group sizes kept), ``p = (1 + #{permuted >= observed}) / (1 + n)``, with
  statistic ``|mean difference|`` or the JS divergence.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from annotation.agreement._coincidence import (
    alpha_from_coincidences,
    coincidence_matrices,
    squared_distances,
)
from annotation.agreement._frame import (
    BoolArray,
    FloatArray,
    IntArray,
    Level,
    UnitCounts,
    check_level,
    count_units,
    encode_labels,
    expand_ragged,
    weighted_bincount,
)
from annotation.agreement.soft import js_divergence_bits
from annotation.surveys import PREFER_NOT_TO_SAY

# Annotators absent from `groups`, or mapped to None/NaN, form this group.
MISSING_GROUP = "missing"
# Expected disagreement below this share of the largest distance counts as zero.
_DEGENERATE_EXPECTED = 1e-12
# Permuted statistics within this relative distance of the observed one count as ties.
_TIE_TOLERANCE = 1e-12
# Bound on the (permutations x annotators x categories) block summed at once.
_PERMUTATION_CHUNK_CELLS = 20_000_000


@dataclass(frozen=True)
class GroupDisagreement:
    """How groups of annotators differ; see the module docstring for the statistics.

    - ``groups``: index ``group``; ``n_annotators``, ``n_labels``, ``alpha`` (Krippendorff's
      alpha within the group; NaN where undefined) and, except for nominal data,
      ``mean_label``.
    - ``label_distribution``: group x category share of the group's labels.
    - ``pairs``: one row per pair of groups (``group_a`` before ``group_b`` in the order of
      ``groups``): ``n_shared_items``, ``xrr`` (NaN without shared items or without
      expected disagreement), ``mean_difference`` or, for nominal data, ``js_divergence``,
      and ``p_value`` (NaN when ``n_permutations`` is 0).
    """

    level: Level
    groups: pd.DataFrame
    label_distribution: pd.DataFrame
    pairs: pd.DataFrame
    n_permutations: int


def _sorted_groups(values: list[Hashable]) -> list[Hashable]:
    unique = list(dict.fromkeys(values))
    try:
        return sorted(unique)  # type: ignore[type-var]  # mixed types fall back to repr order
    except TypeError:
        return sorted(unique, key=repr)


def _group_of_annotator(
    annotators: pd.Index,
    groups: Mapping[Hashable, Hashable] | pd.Series,
    missing: str,
) -> tuple[IntArray, list[Hashable]]:
    """Group code per annotator (-1 = dropped) and the ordered group names."""
    if isinstance(groups, pd.Series):
        mapping = groups
    elif isinstance(groups, Mapping):
        mapping = pd.Series(
            list(groups.values()), index=pd.Index(list(groups.keys()), tupleize_cols=False)
        )
    else:
        raise TypeError("groups must map annotator -> group (a Mapping or a pandas Series).")
    if not mapping.index.is_unique:
        raise ValueError("groups lists an annotator more than once.")
    assigned = mapping.reindex(annotators).astype(object)
    unanswered = assigned.isna().to_numpy()
    declined = (assigned == PREFER_NOT_TO_SAY).to_numpy() & ~unanswered
    if missing == "drop":
        keep = ~(unanswered | declined)
    else:
        assigned[unanswered] = MISSING_GROUP
        keep = np.ones(len(annotators), dtype=bool)
    names = _sorted_groups(list(assigned[keep]))
    codes = np.full(len(annotators), -1, dtype=np.int64)
    position = {name: code for code, name in enumerate(names)}
    codes[keep] = [position[name] for name in assigned[keep]]
    return codes, names


def _permuted_statistics(
    per_annotator: FloatArray,
    n_first: int,
    permutations: IntArray,
    nominal: bool,
) -> FloatArray:
    """Statistic for each row of ``permutations`` (its first ``n_first`` annotators = group A).

    ``per_annotator`` is (annotators, K) label counts; for non-nominal levels its first
    column is the sum of label scores and the second the number of labels.
    """
    total = per_annotator.sum(axis=0)
    first = per_annotator[permutations[:, :n_first]].sum(axis=1)
    second = total - first
    if nominal:
        return js_divergence_bits(
            first / first.sum(axis=1, keepdims=True), second / second.sum(axis=1, keepdims=True)
        )
    return np.abs(second[:, 0] / second[:, 1] - first[:, 0] / first[:, 1])


def _permutation_p_value(
    per_annotator: FloatArray,
    in_first: BoolArray,
    nominal: bool,
    n_permutations: int,
    rng: np.random.Generator,
) -> float:
    if n_permutations == 0:
        return float("nan")
    n_members = len(in_first)
    n_first = int(in_first.sum())
    actual = np.concatenate((np.flatnonzero(in_first), np.flatnonzero(~in_first)))
    observed = float(_permuted_statistics(per_annotator, n_first, actual[None, :], nominal)[0])
    threshold = observed - _TIE_TOLERANCE * max(1.0, abs(observed))
    chunk = max(1, _PERMUTATION_CHUNK_CELLS // max(1, n_first * per_annotator.shape[1]))
    at_least_as_extreme = 0
    for done in range(0, n_permutations, chunk):
        size = min(chunk, n_permutations - done)
        shuffled = rng.permuted(np.tile(np.arange(n_members), (size, 1)), axis=1)
        statistics = _permuted_statistics(per_annotator, n_first, shuffled, nominal)
        at_least_as_extreme += int(np.count_nonzero(statistics >= threshold))
    return (1.0 + at_least_as_extreme) / (1.0 + n_permutations)


def group_disagreement(
    df: pd.DataFrame,
    groups: Mapping[Hashable, Hashable] | pd.Series,
    level: str = "nominal",
    categories: Sequence[Hashable] | None = None,
    n_permutations: int = 1000,
    seed: int = 0,
    missing: Literal["own_group", "drop"] = "own_group",
) -> GroupDisagreement:
    """Compare groups of annotators: within-group alpha, xRR, effect and permutation p-value.

    ``groups`` maps annotator -> group. Annotators absent from it or mapped to None/NaN,
    and those who answered "prefer not to say" (``annotation.surveys.PREFER_NOT_TO_SAY``),
    either keep their own groups (``missing="own_group"``: ``"missing"`` and
    ``"prefer_not_to_say"``) or are left out (``"drop"``). At least two groups must remain.
    Permutations are drawn from ``numpy.random.default_rng(seed)``, pair after pair, so the
    result is fixed for a seed. See the module docstring for the definitions.
    """
    checked_level = check_level(level)
    if missing not in ("own_group", "drop"):
        raise ValueError(f"Unknown missing {missing!r}; expected 'own_group' or 'drop'.")
    if n_permutations < 0:
        raise ValueError("n_permutations must be at least 0.")
    encoded = encode_labels(df, categories, level=checked_level)
    group_code, names = _group_of_annotator(encoded.annotators, groups, missing)
    n_groups = len(names)
    if n_groups < 2:
        raise ValueError(f"Needs annotators from at least two groups; got {n_groups}.")
    n_items, n_categories = encoded.n_items, encoded.n_categories
    kept = group_code[encoded.annotator] >= 0
    item, annotator, label = encoded.item[kept], encoded.annotator[kept], encoded.label[kept]
    group = group_code[annotator]
    nominal = checked_level == "nominal"
    if checked_level == "ordinal":
        score = np.arange(n_categories, dtype=np.float64)
    else:
        score = encoded.values if encoded.values is not None else np.zeros(n_categories)

    counts = count_units(group * n_items + item, label, n_groups * n_items, n_categories)
    group_of_unit = np.repeat(np.arange(n_groups, dtype=np.int64), n_items)
    within = coincidence_matrices(counts, n_categories, group_of_unit, n_groups)
    distribution = np.bincount(
        group * n_categories + label, minlength=n_groups * n_categories
    ).reshape(n_groups, n_categories)
    n_labels = distribution.sum(axis=1)
    group_index = pd.Index(names, name="group", tupleize_cols=False)
    group_table = pd.DataFrame(
        {
            "n_annotators": np.bincount(group_code[group_code >= 0], minlength=n_groups),
            "n_labels": n_labels,
            "alpha": alpha_from_coincidences(within, checked_level, encoded.values),
        },
        index=group_index,
    )
    if not nominal:
        group_table["mean_label"] = distribution @ score / n_labels

    per_annotator_counts = (
        np.bincount(annotator * n_categories + label, minlength=encoded.n_annotators * n_categories)
        .reshape(encoded.n_annotators, n_categories)
        .astype(np.float64)
    )
    if nominal:
        per_annotator = per_annotator_counts
    else:
        per_annotator = np.column_stack(
            (per_annotator_counts @ score, per_annotator_counts.sum(axis=1))
        )
    present = (counts.total > 0).reshape(n_groups, n_items)
    rng = np.random.default_rng(seed)
    rows = []
    for first in range(n_groups):
        first_entries = np.flatnonzero(group_of_unit[counts.unit] == first)
        for second in range(first + 1, n_groups):
            shared = present[first] & present[second]
            xrr = _cross_replication_reliability(
                counts,
                first_entries,
                second,
                n_items,
                n_categories,
                checked_level,
                encoded.values,
            )
            members = np.flatnonzero((group_code == first) | (group_code == second))
            in_first = group_code[members] == first
            if nominal:
                share = distribution[[first, second]] / n_labels[[first, second], None]
                effect = float(js_divergence_bits(share[0], share[1]))
            else:
                means = distribution[[first, second]] @ score / n_labels[[first, second]]
                effect = float(means[1] - means[0])
            p_value = _permutation_p_value(
                per_annotator[members], in_first, nominal, n_permutations, rng
            )
            rows.append(
                {
                    "group_a": names[first],
                    "group_b": names[second],
                    "n_shared_items": int(shared.sum()),
                    "xrr": xrr,
                    "js_divergence" if nominal else "mean_difference": effect,
                    "p_value": p_value,
                }
            )
    return GroupDisagreement(
        level=checked_level,
        groups=group_table,
        label_distribution=pd.DataFrame(
            distribution / n_labels[:, None], index=group_index, columns=encoded.categories
        ),
        pairs=pd.DataFrame(rows),
        n_permutations=n_permutations,
    )


def _cross_replication_reliability(
    counts: UnitCounts,
    first_entries: IntArray,
    second: int,
    n_items: int,
    n_categories: int,
    level: Level,
    values: FloatArray | None,
) -> float:
    """xRR of group A (its ``first_entries`` in ``counts``) against group ``second``.

    Every label pair (A, B) on a shared item weighs the same in ``d_o``; ``d_e`` pairs the
    two groups' label distributions on the shared items.
    """
    second_unit = second * n_items + counts.unit[first_entries] % n_items
    on_shared = counts.size[second_unit] > 0
    first_entries, second_unit = first_entries[on_shared], second_unit[on_shared]
    if len(first_entries) == 0:
        return float("nan")
    pair_first, pair_second = expand_ragged(second_unit, counts.start, counts.size)
    pair_first = first_entries[pair_first]
    _, second_entries = expand_ragged(np.unique(second_unit), counts.start, counts.size)
    first_marginal = weighted_bincount(
        counts.category[first_entries], weights=counts.count[first_entries], minlength=n_categories
    )
    second_marginal = weighted_bincount(
        counts.category[second_entries],
        weights=counts.count[second_entries],
        minlength=n_categories,
    )
    delta = squared_distances(level, (first_marginal + second_marginal)[None, :], values)[0]
    weight = counts.count[pair_first] * counts.count[pair_second]
    distance = delta[counts.category[pair_first], counts.category[pair_second]]
    observed = float(np.sum(weight * distance) / np.sum(weight))
    expected = float(
        first_marginal @ delta @ second_marginal / (first_marginal.sum() * second_marginal.sum())
    )
    if expected <= _DEGENERATE_EXPECTED * float(delta.max(initial=0.0)):
        return float("nan")
    return 1.0 - observed / expected
