"""Train / validation / test assignment of a version's items.

Items are assigned in *units*: the connected components of "shares a group" (the grouped
strategy's ``group_key``) and "is in the same duplicate cluster" (any strategy). A unit is
never split, so neither a group nor a near-duplicate cluster straddles two splits.

The assignment is a function of the set of rows and the spec only:

- Rows are sorted by ``item_id`` first and a unit is named by its smallest item id, so the
  input's row order cannot matter.
- Units are sorted by that id, then shuffled with ``Generator(PCG64(seed))``, which numpy
  keeps stable across versions for a given seed (the legacy ``RandomState`` streams are
  frozen too, but ``PCG64`` is the supported one).
- Units are then filled in that order by ``_allocate``: each goes to the split furthest
  behind its share of what has been placed so far, including the unit. With units of at
  most ``s`` items, every split ends within ``s`` items of ``ratio * n`` (within one item
  when every unit is a single item), and so does every prefix of the order.
- Stratified: the order is by stratum (a unit's most common label), shuffled within each
  stratum. Because the quota runs over the whole order, every stratum (a contiguous run of
  it) gets its ratios to within ``2 s`` and the totals stay within ``s``. Filling each
  stratum on its own would instead round every small stratum the same way: with 0.7 /
  0.2 / 0.1 and strata of three items, the test split would stay empty forever.

Small datasets never fail: with few items the validation and test splits may be empty.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from ml.engine._disjoint import DisjointSets, union_equal_codes
from ml.engine.neardup import clusters_crossing

SPLITS = ("train", "validation", "test")
Strategy = Literal["random", "stratified", "grouped"]
STRATEGIES: tuple[Strategy, ...] = ("random", "stratified", "grouped")
RATIO_TOLERANCE = 1e-9
# Deficits closer than this are a tie, which goes to the earlier split (train first).
_TIE = 1e-9


@dataclass(frozen=True)
class SplitSpec:
    """How to split: ratios of train, validation and test (each >= 0, summing to 1, train
    above 0), the shuffle seed, the strategy, and for ``grouped`` the column to group by."""

    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    strategy: Strategy = "random"
    group_key: str | None = None

    def __post_init__(self) -> None:
        ratios = tuple(self.ratios)
        if len(ratios) != len(SPLITS):
            raise ValueError(f"ratios {ratios} must give train, validation and test")
        if any(not math.isfinite(r) or r < 0 for r in ratios):
            raise ValueError(f"ratios {ratios} must be finite and not negative")
        if abs(sum(ratios) - 1.0) > RATIO_TOLERANCE:
            raise ValueError(f"ratios {ratios} sum to {sum(ratios)}, not 1")
        if ratios[0] <= 0:
            raise ValueError("the train ratio must be above 0")
        if isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"seed {self.seed!r} must be an integer >= 0")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy {self.strategy!r} is not one of {STRATEGIES}")
        if self.strategy == "grouped" and not self.group_key:
            raise ValueError("a grouped split needs a group key")
        if self.strategy != "grouped" and self.group_key is not None:
            raise ValueError("only a grouped split takes a group key")
        object.__setattr__(self, "ratios", tuple(float(r) for r in ratios))


def _is_missing(value: object) -> bool:
    if isinstance(value, str):
        return value == ""
    if isinstance(value, (list, tuple, dict, np.ndarray)):
        return False
    return bool(pd.isna(value))


def _label_key(value: object) -> str:
    """Strata are compared by ``str``: a total, deterministic order for any label type
    (``ties by sorted label``), lists included."""
    return str(value)


def _item_ids(items: pd.DataFrame) -> npt.NDArray[np.int64]:
    if "item_id" not in items.columns:
        raise ValueError("items need an item_id column")
    column = items["item_id"]
    values = column.to_numpy()
    if values.dtype.kind not in "iu":
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
            raise ValueError("item_id must hold integers")
    ids = values.astype(np.int64)
    if len(np.unique(ids)) != len(ids):
        raise ValueError("item_id must be unique")
    return ids


def _sorted_items(items: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    missing = [column for column in columns if column not in items.columns]
    if missing:
        raise ValueError(f"items lack the columns {missing}")
    ids = _item_ids(items)
    order = np.argsort(ids, kind="stable")
    frame = pd.DataFrame({column: items[column].to_numpy()[order] for column in columns})
    frame.insert(0, "item_id", ids[order])
    return frame


def _value_codes(values: Sequence[object] | pd.Series) -> npt.NDArray[np.int64]:
    first: dict[object, int] = {}
    codes = np.full(len(values), -1, dtype=np.int64)
    for position, value in enumerate(values):
        if not _is_missing(value):
            codes[position] = first.setdefault(value, len(first))
    return codes


def _units(
    frame: pd.DataFrame, group_key: str | None, clusters: Mapping[int, int] | None
) -> npt.NDArray[np.int64]:
    """Per row of ``frame`` (sorted by id), the smallest item id of its unit."""
    ids = frame["item_id"].to_numpy()
    sets = DisjointSets(len(ids))
    if group_key is not None:
        union_equal_codes(sets, _value_codes(frame[group_key]))
    if clusters:
        union_equal_codes(sets, _value_codes([clusters.get(int(i)) for i in ids]))
    return ids[sets.roots()]


def split_units(
    items: pd.DataFrame, *, group_key: str | None = None, clusters: Mapping[int, int] | None = None
) -> pd.Series:
    """``item_id -> unit id`` (the unit's smallest item id), indexed by ascending item id.

    A unit joins items that share a ``group_key`` value (a missing value: ``None``, NaN or
    ``""``, is a group of its own) or a cluster id in ``clusters`` (item id -> cluster id;
    an absent item is alone), transitively."""
    frame = _sorted_items(items, [group_key] if group_key else [])
    units = _units(frame, group_key, clusters)
    return pd.Series(units, index=pd.Index(frame["item_id"], name="item_id"), name="unit")


def _allocate(sizes: Sequence[int], ratios: Sequence[float]) -> list[int]:
    """The split index of each unit, in order: the one whose count is furthest below its
    ratio of the items placed so far plus this unit (ties to the earlier split).

    Why this bounds every split by the largest unit ``s``: the deficits of a step sum to
    the unit's size, so the chosen one is positive and at most ``s`` is overshot; and a
    split can only fall ``s`` behind if every other one was ahead, which the sum forbids.
    """
    counts = [0.0] * len(ratios)
    placed = 0
    chosen: list[int] = []
    for size in sizes:
        placed += size
        best, best_deficit = 0, -math.inf
        for split, ratio in enumerate(ratios):
            deficit = ratio * placed - counts[split]
            if deficit > best_deficit + _TIE:
                best, best_deficit = split, deficit
        counts[best] += size
        chosen.append(best)
    return chosen


def _unit_strata(
    units: npt.NDArray[np.int64], labels: pd.Series, unit_ids: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """The stratum rank of each unit (in ``unit_ids`` order): the rank of its most common
    label among the sorted label keys (ties to the smallest key); units with no label at
    all rank last."""
    present = np.array([not _is_missing(v) for v in labels], dtype=bool)
    keyed = pd.DataFrame({"unit": units[present], "key": [_label_key(v) for v in labels[present]]})
    counts = keyed.groupby(["unit", "key"], sort=False).size().reset_index(name="n")
    # Most common first, then the smallest key; one row per unit.
    majority = counts.sort_values(
        ["unit", "n", "key"], ascending=[True, False, True], kind="stable"
    )
    majority = majority.drop_duplicates("unit")
    ranks = {key: rank for rank, key in enumerate(sorted(majority["key"].unique()))}
    rank_of_unit = dict(
        zip(majority["unit"].tolist(), majority["key"].map(ranks).tolist(), strict=True)
    )
    return np.array([rank_of_unit.get(int(u), len(ranks)) for u in unit_ids], dtype=np.int64)


def assign_splits(
    items: pd.DataFrame, spec: SplitSpec, *, clusters: Mapping[int, int] | None = None
) -> pd.Series:
    """``item_id -> "train" | "validation" | "test"``, indexed by ascending item id.

    ``items`` has ``item_id`` (unique integers), ``label`` for ``stratified`` (the
    aggregated label; missing allowed) and ``spec.group_key`` for ``grouped``. ``clusters``
    (item id -> cluster id, e.g. ``ClusterReport.mapping()``) keeps each cluster in one
    split whatever the strategy. See the module docstring for the guarantees.
    """
    columns = [spec.group_key] if spec.strategy == "grouped" and spec.group_key else []
    if spec.strategy == "stratified":
        columns.append("label")
    frame = _sorted_items(items, columns)
    ids = frame["item_id"].to_numpy()
    units = _units(frame, spec.group_key if spec.strategy == "grouped" else None, clusters)
    unit_ids, unit_of_row, sizes = np.unique(units, return_inverse=True, return_counts=True)
    shuffled = np.random.Generator(np.random.PCG64(spec.seed)).permutation(len(unit_ids))
    # position_of[u]: unit u's place in the shuffled order.
    position_of = np.empty(len(unit_ids), dtype=np.int64)
    position_of[shuffled] = np.arange(len(unit_ids))
    if spec.strategy == "stratified":
        strata = _unit_strata(units, frame["label"], unit_ids)
        order = np.lexsort((position_of, strata))
    else:
        order = shuffled
    split_of_unit = np.empty(len(unit_ids), dtype=np.int64)
    split_of_unit[order] = _allocate(sizes[order].tolist(), spec.ratios)
    names = np.array(SPLITS, dtype=object)[split_of_unit[unit_of_row]]
    return pd.Series(names, index=pd.Index(ids, name="item_id"), name="split", dtype=object)


def _distribution(labels: pd.Series) -> list[dict[str, Any]]:
    counts: dict[str, tuple[object, int]] = {}
    for value in labels:
        label = None if _is_missing(value) else value
        key = _label_key(label)
        counts[key] = (label, counts.get(key, (label, 0))[1] + 1)
    ordered = sorted(counts.items(), key=lambda entry: (entry[1][0] is None, entry[0]))
    return [{"label": _plain(label), "items": n} for _, (label, n) in ordered]


def _plain(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value


def split_report(
    items: pd.DataFrame, splits: pd.Series, clusters: Mapping[int, int] | None = None
) -> dict[str, Any]:
    """Counts per split, the label distribution (when ``items`` has ``label``) and the
    duplicate clusters: how many, and the ids of those crossing splits (empty when the
    split kept them). JSON-ready, for the manifest::

        {"items": 10, "splits": {"train": {"items": 8, "share": 0.8,
         "labels": [{"label": "a", "items": 5}, ...]}, ...},
         "clusters": {"clusters": 1, "items": 2, "crossing": []}}
    """
    frame = _sorted_items(items, ["label"] if "label" in items.columns else [])
    split_of = splits.reindex(frame["item_id"].to_numpy())
    if split_of.isna().any():
        lacking = frame["item_id"][split_of.isna().to_numpy()].tolist()
        raise ValueError(f"items without a split: {lacking[:10]}")
    n = len(frame)
    report: dict[str, Any] = {"items": n, "splits": {}}
    for split in SPLITS:
        chosen = (split_of == split).to_numpy()
        count = int(chosen.sum())
        entry: dict[str, Any] = {"items": count, "share": count / n if n else 0.0}
        if "label" in frame.columns:
            entry["labels"] = _distribution(frame["label"][chosen])
        report["splits"][split] = entry
    if clusters is not None:
        present = set(frame["item_id"].tolist())
        in_version = {item: c for item, c in clusters.items() if int(item) in present}
        sizes = pd.Series(list(in_version.values()), dtype="int64").value_counts()
        clustered = sizes[sizes >= 2]
        report["clusters"] = {
            "clusters": int(len(clustered)),
            "items": int(clustered.sum()),
            "crossing": [c.cluster_id for c in clusters_crossing(in_version, split_of)],
        }
    return report
