"""Validation and integer encoding of long label frames, shared by every statistic.

A label frame has one row per label and the columns ``item``, ``annotator`` and ``label``;
a missing label is an absent row. Everything downstream works on integer codes:

- items and annotators are coded 0..n-1 in sorted order (appearance order when the values
  cannot be ordered), so results do not depend on the order of the rows;
- categories are coded by their position in ``categories`` (or in the sorted labels), which
  is the order the ordinal metric and weighted kappa use.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Literal, cast

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

Level = Literal["nominal", "ordinal", "interval", "ratio"]
LEVELS: tuple[Level, ...] = ("nominal", "ordinal", "interval", "ratio")
LABEL_COLUMNS = ("item", "annotator", "label")
# Above this many cells a dense unit x category table is replaced by a sort.
DENSE_TABLE_LIMIT = 20_000_000
_MAX_EXAMPLES_IN_ERRORS = 5


@dataclass(frozen=True)
class EncodedLabels:
    """A validated label frame as parallel integer arrays, one entry per label.

    Invariants: ``item``, ``annotator`` and ``label`` have one entry per row of the frame;
    ``items[item[r]]``, ``annotators[annotator[r]]`` and ``categories[label[r]]`` give the
    original values of row ``r``; ``values`` holds the numeric value of every category for
    the interval and ratio levels and is ``None`` otherwise.
    """

    items: pd.Index
    annotators: pd.Index
    categories: pd.Index
    item: IntArray
    annotator: IntArray
    label: IntArray
    values: FloatArray | None

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_annotators(self) -> int:
        return len(self.annotators)

    @property
    def n_categories(self) -> int:
        return len(self.categories)

    @property
    def n_labels(self) -> int:
        return len(self.label)


@dataclass(frozen=True)
class UnitCounts:
    """Sparse unit x category label counts: one entry per (unit, category) that occurs.

    A unit is usually an item; callers may combine codes (``group * n_items + item``) to
    count per group and item. Entries are sorted by unit, then category, so the entries of
    unit ``u`` are ``start[u] : start[u] + size[u]``. ``total[u]`` is the number of labels of
    unit ``u`` (``m_u``) and ``entry_of_label[r]`` the entry that label ``r`` falls in.
    """

    unit: IntArray
    category: IntArray
    count: FloatArray
    start: IntArray
    size: IntArray
    total: FloatArray
    entry_of_label: IntArray


def check_level(level: str) -> Level:
    if level not in LEVELS:
        raise ValueError(f"Unknown level {level!r}; expected one of {', '.join(LEVELS)}.")
    return cast(Level, level)


def _examples(values: Sequence[object] | pd.Index | npt.NDArray[np.generic]) -> str:
    shown = [repr(value) for value in list(values)[:_MAX_EXAMPLES_IN_ERRORS]]
    more = len(values) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def _factorize(values: pd.Series, what: str, *, must_sort: bool) -> tuple[IntArray, pd.Index]:
    """Codes in sorted order of the values; appearance order if they cannot be ordered.

    pandas orders some mixed types (numbers before strings) rather than failing; that order
    means nothing on a scale, so ``must_sort`` refuses mixed types outright.
    """
    if must_sort and pd.api.types.infer_dtype(values, skipna=True).startswith("mixed"):
        raise ValueError(
            f"The {what} values are of mixed types; pass `categories` in the order of the scale."
        )
    try:
        codes, uniques = pd.factorize(values, sort=True)
    except TypeError as error:
        if must_sort:
            raise ValueError(
                f"The {what} values are of types that cannot be ordered; pass `categories` "
                "in the order of the scale."
            ) from error
        codes, uniques = pd.factorize(values, sort=False)
    return codes.astype(np.int64, copy=False), pd.Index(uniques)


def _category_values(categories: pd.Index, level: Level) -> FloatArray | None:
    if level not in ("interval", "ratio"):
        return None
    try:
        values = np.asarray(categories, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"The {level} level needs numeric labels; got {_examples(categories)}."
        ) from error
    if not np.all(np.isfinite(values)):
        raise ValueError(f"The {level} level needs finite numeric labels.")
    if level == "ratio" and np.any(values < 0):
        raise ValueError("The ratio level needs non-negative labels (a ratio scale starts at 0).")
    return values


def encode_labels(
    df: pd.DataFrame,
    categories: Sequence[Hashable] | None = None,
    *,
    level: str = "nominal",
    min_annotators: int = 2,
    allow_repeats: bool = False,
) -> EncodedLabels:
    """Validate a long label frame and encode it; every rule broken is a ``ValueError``.

    Rules: a DataFrame with columns ``item``, ``annotator`` and ``label``, at least one row,
    no missing value in those columns (a missing label is an absent row), a known ``level``,
    every label among ``categories`` when given (which must be unique), labels from at least
    ``min_annotators`` annotators and, unless ``allow_repeats``, at most one label per
    annotator and item.
    """
    checked_level = check_level(level)
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"Expected a pandas DataFrame, got {type(df).__name__}.")
    missing_columns = [column for column in LABEL_COLUMNS if column not in df.columns]
    if missing_columns:
        raise ValueError(
            f"The label frame lacks the column(s) {', '.join(missing_columns)}; it needs "
            f"{', '.join(LABEL_COLUMNS)}."
        )
    if len(df) == 0:
        raise ValueError("The label frame is empty.")
    frame = df[list(LABEL_COLUMNS)]
    null_columns = [column for column in LABEL_COLUMNS if frame[column].isna().any()]
    if null_columns:
        raise ValueError(
            f"Missing values in column(s) {', '.join(null_columns)}; a missing label is an "
            "absent row, not a null."
        )

    item, items = _factorize(frame["item"], "item", must_sort=False)
    annotator, annotators = _factorize(frame["annotator"], "annotator", must_sort=False)
    if len(annotators) < min_annotators:
        raise ValueError(
            f"Needs labels from at least {min_annotators} annotators; got {len(annotators)}."
        )

    if categories is None:
        label, category_index = _factorize(
            frame["label"], "label", must_sort=checked_level != "nominal"
        )
    else:
        category_index = pd.Index(list(categories))
        if len(category_index) == 0:
            raise ValueError("`categories` is empty.")
        if category_index.hasnans:
            raise ValueError("`categories` contains a missing value.")
        if not category_index.is_unique:
            duplicated = category_index[category_index.duplicated()].unique()
            raise ValueError(f"`categories` has duplicates: {_examples(duplicated)}.")
        label = category_index.get_indexer(frame["label"]).astype(np.int64, copy=False)
        unknown = label < 0
        if unknown.any():
            outside = pd.unique(frame["label"].to_numpy()[unknown])
            raise ValueError(f"Labels outside `categories`: {_examples(outside)}.")
    values = _category_values(category_index, checked_level)

    if not allow_repeats:
        pair = item * len(annotators) + annotator
        if pd.Series(pair).duplicated().any():
            raise ValueError(
                "An annotator labelled the same item more than once; reliability measures "
                "need at most one label per annotator and item."
            )
    return EncodedLabels(
        items=items.rename("item"),
        annotators=annotators.rename("annotator"),
        categories=category_index.rename("category"),
        item=item,
        annotator=annotator,
        label=label,
        values=values,
    )


def weighted_bincount(index: IntArray, *, weights: FloatArray, minlength: int) -> FloatArray:
    """``numpy.bincount`` with weights, typed as the float array it returns."""
    return np.bincount(index, weights=weights, minlength=minlength).astype(np.float64, copy=False)


def count_units(unit: IntArray, category: IntArray, n_units: int, n_categories: int) -> UnitCounts:
    """Count labels per (unit, category) without a loop; see ``UnitCounts``."""
    key = unit * n_categories + category
    if n_units * n_categories <= DENSE_TABLE_LIMIT:
        dense = np.bincount(key, minlength=n_units * n_categories)
        keys = np.flatnonzero(dense)
        counts = dense[keys].astype(np.float64)
        entry_of_dense = np.cumsum(dense > 0) - 1
        entry_of_label = entry_of_dense[key]
    else:
        keys, inverse, raw_counts = np.unique(key, return_inverse=True, return_counts=True)
        counts = raw_counts.astype(np.float64)
        entry_of_label = inverse.reshape(-1)
    entry_unit = keys // n_categories
    size = np.bincount(entry_unit, minlength=n_units)
    start = np.concatenate(([0], np.cumsum(size)[:-1]))
    total = weighted_bincount(entry_unit, weights=counts, minlength=n_units)
    return UnitCounts(
        unit=entry_unit.astype(np.int64),
        category=(keys % n_categories).astype(np.int64),
        count=counts,
        start=start.astype(np.int64),
        size=size.astype(np.int64),
        total=total,
        entry_of_label=entry_of_label.astype(np.int64),
    )


def expand_ragged(group: IntArray, start: IntArray, size: IntArray) -> tuple[IntArray, IntArray]:
    """Pair every left element with every right element of its group, without a loop.

    Left element ``i`` belongs to group ``group[i]``, whose right elements are
    ``start[g] : start[g] + size[g]``. Returns ``(left, right)`` index arrays listing all
    such pairs, left-major.
    """
    repeats = size[group]
    left = np.repeat(np.arange(len(group), dtype=np.int64), repeats)
    first_of_left = np.cumsum(repeats) - repeats
    offset = np.arange(int(repeats.sum()), dtype=np.int64) - np.repeat(first_of_left, repeats)
    right = np.repeat(start[group], repeats) + offset
    return left, right
