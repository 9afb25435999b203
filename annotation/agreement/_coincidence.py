"""Krippendorff's coincidence matrices, distance metrics and alpha, batched over a leading axis.

Krippendorff, K. (2011). Computing Krippendorff's Alpha-Reliability. Annenberg School for
Communication, University of Pennsylvania. A unit ``u`` with ``m_u >= 2`` pairable values
and counts ``n_uc`` contributes ``(n_uc * n_uk - [c == k] * n_uc) / (m_u - 1)`` to the
coincidence ``o_ck``; units with fewer than two values contribute nothing. With marginals
``n_c = sum_k o_ck`` and ``n = sum_c n_c``::

    alpha = 1 - (n - 1) * sum_ck o_ck * delta2_ck / sum_ck n_c * n_k * delta2_ck
"""

from __future__ import annotations

import numpy as np

from annotation.agreement._frame import (
    DENSE_TABLE_LIMIT,
    FloatArray,
    IntArray,
    Level,
    UnitCounts,
    expand_ragged,
    weighted_bincount,
)

# Up to this many categories a single coincidence matrix is one dense matrix product;
# beyond, the sparse pair expansion does less work.
DENSE_MAX_CATEGORIES = 32
# Expected disagreement below this share of its largest possible value counts as zero:
# coincidence matrices built by subtraction carry rounding noise of about 1e-16.
_DEGENERATE_EXPECTED = 1e-12


def coincidence_matrices(
    counts: UnitCounts,
    n_categories: int,
    batch_of_unit: IntArray | None = None,
    n_batches: int = 1,
) -> FloatArray:
    """Coincidence matrices, shape ``(n_batches, K, K)``; unit ``u`` adds to its batch.

    Invariants: each matrix is symmetric, its total is the number of pairable values (labels
    on units with at least two labels) of its batch.
    """
    n_units = len(counts.total)
    if (
        batch_of_unit is None
        and n_categories <= DENSE_MAX_CATEGORIES
        and n_units * n_categories <= DENSE_TABLE_LIMIT
    ):
        return _dense_coincidence_matrix(counts, n_categories)[None, :, :]
    pairable = np.flatnonzero(counts.total[counts.unit] >= 2)
    left, right = expand_ragged(counts.unit[pairable], counts.start, counts.size)
    left = pairable[left]
    unit = counts.unit[left]
    weight = counts.count[left] * counts.count[right]
    weight -= np.where(left == right, counts.count[left], 0.0)
    weight /= counts.total[unit] - 1.0
    batch = np.zeros_like(unit) if batch_of_unit is None else batch_of_unit[unit]
    key = (batch * n_categories + counts.category[left]) * n_categories + counts.category[right]
    flat = weighted_bincount(key, weights=weight, minlength=n_batches * n_categories * n_categories)
    return flat.reshape(n_batches, n_categories, n_categories)


def _dense_coincidence_matrix(counts: UnitCounts, n_categories: int) -> FloatArray:
    """``N^T W N - diag(sum_u w_u n_u)`` with ``w_u = 1 / (m_u - 1)`` on pairable units."""
    n_units = len(counts.total)
    table: FloatArray = np.zeros((n_units, n_categories), dtype=np.float64)
    table[counts.unit, counts.category] = counts.count
    weight = np.divide(1.0, counts.total - 1.0, out=np.zeros(n_units), where=counts.total >= 2)
    weighted = table * weight[:, None]
    coincidence: FloatArray = weighted.T @ table
    coincidence -= np.diag(weighted.sum(axis=0))
    return coincidence


def squared_distances(level: Level, marginals: FloatArray, values: FloatArray | None) -> FloatArray:
    """Krippendorff's delta^2 between categories, shape ``(batch, K, K)``, zero on the diagonal.

    ``marginals`` (``(batch, K)``) are the coincidence marginals ``n_g``, which the ordinal
    metric needs: ``(sum_{g=c..k} n_g - (n_c + n_k) / 2)^2`` equals the squared difference of
    the categories' mid-ranks ``sum_{g<c} n_g + n_c / 2``. Interval is ``(v_c - v_k)^2`` and
    ratio ``((v_c - v_k) / (v_c + v_k))^2`` over the category values.
    """
    batch, n_categories = marginals.shape
    if level == "nominal":
        nominal = 1.0 - np.eye(n_categories)
        return np.broadcast_to(nominal, (batch, n_categories, n_categories))
    if level == "ordinal":
        mid_rank = np.cumsum(marginals, axis=-1) - marginals / 2.0
        return (mid_rank[:, None, :] - mid_rank[:, :, None]) ** 2
    if values is None:
        raise ValueError(f"The {level} level needs numeric category values.")
    difference = values[None, :] - values[:, None]
    if level == "interval":
        distance = difference**2
    else:
        total = values[None, :] + values[:, None]
        ratio = np.divide(difference, total, out=np.zeros_like(difference), where=total > 0)
        distance = ratio**2
    return np.broadcast_to(distance, (batch, n_categories, n_categories))


def alpha_from_coincidences(
    coincidences: FloatArray, level: Level, values: FloatArray | None
) -> FloatArray:
    """Alpha of every matrix in a ``(batch, K, K)`` stack; NaN where it is undefined.

    Alpha is undefined when there are fewer than two pairable values or when the expected
    disagreement is zero (all pairable values in one category).
    """
    coincidences = np.maximum(coincidences, 0.0)
    marginals = coincidences.sum(axis=-1)
    n_pairable = marginals.sum(axis=-1)
    delta = squared_distances(level, marginals, values)
    observed = (coincidences * delta).sum(axis=(-2, -1))
    expected = np.einsum("bc,bk,bck->b", marginals, marginals, delta)
    largest = n_pairable**2 * delta.max(axis=(-2, -1), initial=0.0)
    defined = (n_pairable >= 2) & (expected > _DEGENERATE_EXPECTED * largest)
    safe_expected = np.where(defined, expected, 1.0)
    alpha = 1.0 - (n_pairable - 1.0) * observed / safe_expected
    return np.where(defined, alpha, np.nan)
