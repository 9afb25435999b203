"""Inter-annotator reliability: Krippendorff's alpha, Fleiss' and Cohen's kappa, and friends.

Every function takes a long label frame (columns ``item``, ``annotator``, ``label``; one
row per label, a missing label is an absent row) and raises ``ValueError`` on bad input.
A statistic whose chance term is degenerate (every label in one category) is NaN.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from annotation.agreement._coincidence import alpha_from_coincidences, coincidence_matrices
from annotation.agreement._frame import (
    EncodedLabels,
    FloatArray,
    IntArray,
    UnitCounts,
    check_level,
    count_units,
    encode_labels,
    expand_ragged,
    weighted_bincount,
)

# Per-annotator K x K corrections are accumulated for at most this many cells at a time.
_ANNOTATOR_CHUNK_CELLS = 8_000_000


def _item_counts(encoded: EncodedLabels) -> UnitCounts:
    return count_units(encoded.item, encoded.label, encoded.n_items, encoded.n_categories)


def krippendorff_alpha(
    df: pd.DataFrame,
    level: str = "nominal",
    categories: Sequence[Hashable] | None = None,
) -> float:
    """Krippendorff's alpha by the coincidence-matrix method (Krippendorff 2011).

    ``level`` picks the distance metric: nominal (0/1), ordinal (rank-based over
    ``categories``, or the sorted labels, using the coincidence marginals), interval
    (squared difference) or ratio (squared difference over sum). Items with fewer than two
    labels are ignored. Returns 1 for perfect agreement, 0 for chance-level agreement, and
    NaN when every pairable label has the same value.
    """
    encoded = encode_labels(df, categories, level=level)
    counts = _item_counts(encoded)
    coincidences = coincidence_matrices(counts, encoded.n_categories)
    if coincidences.sum() == 0:
        raise ValueError("No item has labels from two annotators; alpha needs pairable labels.")
    return float(alpha_from_coincidences(coincidences, check_level(level), encoded.values)[0])


def fleiss_kappa(df: pd.DataFrame, categories: Sequence[Hashable] | None = None) -> float:
    """Fleiss' kappa (Fleiss 1971) for items that all carry the same number ``m >= 2`` of labels.

    ``P_i = (sum_j n_ij^2 - m) / (m (m - 1))``, ``p_j`` the share of all labels in category
    ``j``, ``kappa = (mean(P_i) - sum_j p_j^2) / (1 - sum_j p_j^2)``. Annotators need not be the
    same across items. NaN when every label is in one category.
    """
    encoded = encode_labels(df, categories)
    counts = _item_counts(encoded)
    per_item = np.unique(counts.total)
    if len(per_item) != 1:
        raise ValueError(
            "Fleiss' kappa needs the same number of labels on every item; found "
            f"{', '.join(str(int(n)) for n in per_item[:5])}"
            f"{' ...' if len(per_item) > 5 else ''} labels per item."
        )
    m = float(per_item[0])
    if m < 2:
        raise ValueError("Fleiss' kappa needs at least two labels per item.")
    squares = weighted_bincount(counts.unit, weights=counts.count**2, minlength=encoded.n_items)
    agreement = float(np.mean((squares - m) / (m * (m - 1.0))))
    shares = weighted_bincount(
        counts.category, weights=counts.count, minlength=encoded.n_categories
    )
    shares /= encoded.n_items * m
    chance = float(np.sum(shares**2))
    if chance >= 1.0:
        return float("nan")
    return (agreement - chance) / (1.0 - chance)


def cohen_kappa(
    df: pd.DataFrame,
    annotator_a: Hashable,
    annotator_b: Hashable,
    weights: Literal["linear", "quadratic"] | None = None,
    categories: Sequence[Hashable] | None = None,
) -> float:
    """Cohen's kappa (Cohen 1960; weighted: Cohen 1968) of two annotators on their shared items.

    ``kappa = 1 - sum(w * observed) / sum(w * expected)`` with ``w = 1 - I`` (unweighted),
    ``|i - j|`` (linear) or ``(i - j)^2`` (quadratic) over category positions, which follow
    ``categories`` or the sorted labels of the whole frame (so that an unused middle
    category still counts in the distance). NaN when the expected disagreement is zero.
    """
    if weights not in (None, "linear", "quadratic"):
        raise ValueError(f"Unknown weights {weights!r}; expected None, 'linear' or 'quadratic'.")
    encoded = encode_labels(df, categories, level="nominal" if weights is None else "ordinal")
    if annotator_a == annotator_b:
        raise ValueError("Cohen's kappa compares two different annotators.")
    codes = encoded.annotators.get_indexer([annotator_a, annotator_b])
    if (codes < 0).any():
        unknown = [
            name for name, code in zip((annotator_a, annotator_b), codes, strict=True) if code < 0
        ]
        raise ValueError(f"No labels from annotator(s) {', '.join(map(repr, unknown))}.")
    label_of = np.full((2, encoded.n_items), -1, dtype=np.int64)
    for side, code in enumerate(codes):
        rows = encoded.annotator == code
        label_of[side, encoded.item[rows]] = encoded.label[rows]
    shared = (label_of >= 0).all(axis=0)
    if not shared.any():
        raise ValueError("The two annotators labelled no item in common.")
    n_categories = encoded.n_categories
    observed = np.bincount(
        label_of[0, shared] * n_categories + label_of[1, shared],
        minlength=n_categories * n_categories,
    ).reshape(n_categories, n_categories) / float(shared.sum())
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0))
    position = np.arange(n_categories, dtype=np.float64)
    distance = np.abs(position[:, None] - position[None, :])
    weight = {None: (distance > 0).astype(np.float64), "linear": distance}.get(weights, distance**2)
    expected_disagreement = float(np.sum(weight * expected))
    if expected_disagreement <= 0:
        return float("nan")
    return 1.0 - float(np.sum(weight * observed)) / expected_disagreement


def percent_agreement(df: pd.DataFrame) -> float:
    """Mean over items with at least two labels of the share of agreeing label pairs.

    For an item with ``m`` labels, ``n_c`` of them in category ``c``, the share is
    ``sum_c n_c (n_c - 1) / (m (m - 1))``: the probability that two different labels drawn
    without replacement agree. Each item weighs the same regardless of ``m``. Not corrected
    for chance.
    """
    encoded = encode_labels(df)
    counts = _item_counts(encoded)
    agreeing = weighted_bincount(
        counts.unit, weights=counts.count * (counts.count - 1.0), minlength=encoded.n_items
    )
    pairable = counts.total >= 2
    if not pairable.any():
        raise ValueError("No item has labels from two annotators.")
    total = counts.total[pairable]
    return float(np.mean(agreeing[pairable] / (total * (total - 1.0))))


def item_entropy(
    df: pd.DataFrame,
    categories: Sequence[Hashable] | None = None,
    normalize: bool = True,
) -> pd.Series:
    """Shannon entropy of each item's label distribution, indexed by item.

    ``H = -sum_c p_c ln p_c`` with ``p_c`` the item's share of labels in category ``c``.
    With ``normalize`` it is divided by ``ln K`` (``K`` = number of categories, given or
    observed), so it lies in [0, 1]; with a single category it is 0. An item with one label
    has entropy 0. A single annotator is allowed.
    """
    encoded = encode_labels(df, categories, min_annotators=1)
    counts = _item_counts(encoded)
    share = counts.count / counts.total[counts.unit]
    entropy = -weighted_bincount(
        counts.unit, weights=share * np.log(share), minlength=encoded.n_items
    )
    entropy = np.maximum(entropy, 0.0)
    if normalize:
        n_categories = encoded.n_categories
        entropy = entropy / np.log(n_categories) if n_categories > 1 else np.zeros_like(entropy)
    return pd.Series(entropy, index=encoded.items, name="entropy")


def _leave_one_out_majority(
    encoded: EncodedLabels, counts: UnitCounts
) -> tuple[FloatArray, FloatArray]:
    """Per label: (compared, agrees) against the unique majority of the item's other labels.

    With ``t1`` the item's top count, ``k1`` how many categories reach it and ``t2`` the
    largest count below ``t1``, removing one label of category ``c`` (count ``n_c``) leaves:
    a unique majority ``c`` iff ``n_c = t1``, ``k1 = 1`` and ``t1 - 1 > t2``; a unique
    majority other than ``c`` iff ``n_c = t1`` and ``k1 = 2``, or ``n_c < t1`` and
    ``k1 = 1``; a tie (or no other label) otherwise.
    """
    top = np.maximum.reduceat(counts.count, counts.start)
    top_of_entry = top[counts.unit]
    n_top = weighted_bincount(
        counts.unit,
        weights=(counts.count == top_of_entry).astype(np.float64),
        minlength=encoded.n_items,
    )
    below_top = np.where(counts.count < top_of_entry, counts.count, 0.0)
    second = np.maximum.reduceat(below_top, counts.start)
    entry = counts.entry_of_label
    item = encoded.item
    own = counts.count[entry]
    top_r, n_top_r, second_r = top[item], n_top[item], second[item]
    is_top = own == top_r
    agrees = is_top & (n_top_r == 1) & (top_r - 1.0 > second_r)
    disagrees = (is_top & (n_top_r == 2)) | (~is_top & (n_top_r == 1))
    return (agrees | disagrees).astype(np.float64), agrees.astype(np.float64)


def _coincidence_without_each_annotator(
    encoded: EncodedLabels,
    counts: UnitCounts,
    rows: IntArray,
    first_annotator: int,
    n_annotators: int,
) -> FloatArray:
    """What each annotator's labels add to the coincidence matrix, shape ``(n, K, K)``.

    For a label of category ``c`` on an item with counts ``n`` and ``m`` labels, with
    ``P = n n^T - diag(n)``, the item's contribution ``P / (m - 1)`` becomes
    ``(P - e_c n^T - n e_c^T + 2 e_c e_c^T) / (m - 2)`` without the label (nothing when
    ``m = 2``), so the label accounts for ``-P / ((m - 1)(m - 2)) + (e_c n^T + n e_c^T -
    2 e_c e_c^T) / (m - 2)`` when ``m >= 3`` and for ``P`` when ``m = 2``.
    """
    n_categories = encoded.n_categories
    cells = n_categories * n_categories
    local = encoded.annotator[rows] - first_annotator
    own_category = encoded.label[rows]
    item = encoded.item[rows]
    m = counts.total[item]
    pairable = m >= 2
    local, own_category, item, m = (
        local[pairable],
        own_category[pairable],
        item[pairable],
        m[pairable],
    )
    # Every pairable label meets every entry of its item (`left`), and each such meeting
    # every entry of the item again (`right`): the K x K cells of P, sparsely.
    label_idx, left = expand_ragged(item, counts.start, counts.size)
    pair_idx, right = expand_ragged(item[label_idx], counts.start, counts.size)
    # Pairs term: -P / ((m-1)(m-2)) for m >= 3, +P for m == 2.
    factor = np.where(m == 2, 1.0, -1.0 / ((m - 1.0) * np.maximum(m - 2.0, 1.0)))
    left_entry = left[pair_idx]
    pair_value = counts.count[left_entry] * counts.count[right]
    pair_value -= np.where(left_entry == right, counts.count[left_entry], 0.0)
    label_of_pair = label_idx[pair_idx]
    key = (local[label_of_pair] * n_categories + counts.category[left_entry]) * n_categories
    key += counts.category[right]
    correction = weighted_bincount(
        key, weights=pair_value * factor[label_of_pair], minlength=n_annotators * cells
    )
    # Own-label term, m >= 3 only: (e_c n^T + n e_c^T - 2 e_c e_c^T) / (m - 2).
    three_or_more = m >= 3
    scale = np.where(three_or_more, 1.0 / np.maximum(m - 2.0, 1.0), 0.0)
    weight = counts.count[left] * scale[label_idx]
    own = own_category[label_idx]
    base = local[label_idx] * cells
    other = counts.category[left]
    correction += weighted_bincount(
        base + own * n_categories + other, weights=weight, minlength=n_annotators * cells
    )
    correction += weighted_bincount(
        base + other * n_categories + own, weights=weight, minlength=n_annotators * cells
    )
    correction -= weighted_bincount(
        local * cells + own_category * (n_categories + 1),
        weights=2.0 * scale,
        minlength=n_annotators * cells,
    )
    return correction.reshape(n_annotators, n_categories, n_categories)


def annotator_agreement(
    df: pd.DataFrame,
    level: str = "nominal",
    categories: Sequence[Hashable] | None = None,
) -> pd.DataFrame:
    """Per annotator (index): labels, agreement with the others' majority, alpha without them.

    Columns:

    - ``n_labels``: labels the annotator gave.
    - ``n_compared``: those on items where the *other* annotators' labels have a unique
      majority category (items where nobody else labelled, or the others tie, are skipped).
    - ``majority_agreement``: share of the compared labels equal to that majority; NaN when
      nothing could be compared.
    - ``alpha_without``: Krippendorff's alpha (at ``level``) of the data without the
      annotator, obtained by subtracting the annotator's contribution from the full
      coincidence matrix; NaN where undefined. Above the overall alpha means the annotator
      lowers agreement.
    """
    checked_level = check_level(level)
    encoded = encode_labels(df, categories, level=checked_level)
    counts = _item_counts(encoded)
    n_annotators, n_categories = encoded.n_annotators, encoded.n_categories
    compared, agrees = _leave_one_out_majority(encoded, counts)
    n_labels = np.bincount(encoded.annotator, minlength=n_annotators)
    n_compared = weighted_bincount(encoded.annotator, weights=compared, minlength=n_annotators)
    n_agree = weighted_bincount(encoded.annotator, weights=agrees, minlength=n_annotators)
    with np.errstate(invalid="ignore", divide="ignore"):
        majority_agreement = np.where(n_compared > 0, n_agree / n_compared, np.nan)

    full = coincidence_matrices(counts, n_categories)
    alpha_without = np.empty(n_annotators, dtype=np.float64)
    order = np.argsort(encoded.annotator, kind="stable")
    bounds = np.searchsorted(encoded.annotator[order], np.arange(n_annotators + 1))
    chunk = max(1, _ANNOTATOR_CHUNK_CELLS // (n_categories * n_categories))
    for first in range(0, n_annotators, chunk):
        last = min(first + chunk, n_annotators)
        rows = order[bounds[first] : bounds[last]]
        correction = _coincidence_without_each_annotator(encoded, counts, rows, first, last - first)
        alpha_without[first:last] = alpha_from_coincidences(
            full - correction, checked_level, encoded.values
        )
    return pd.DataFrame(
        {
            "n_labels": n_labels.astype(np.int64),
            "n_compared": n_compared.astype(np.int64),
            "majority_agreement": majority_agreement,
            "alpha_without": alpha_without,
        },
        index=encoded.annotators,
    )
