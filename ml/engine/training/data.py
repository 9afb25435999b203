"""Training examples read from a dataset version's bundle (``data/<split>.parquet``).

A target is one of ``TARGETS``:

- ``majority``: the majority label, one-hot; an item whose majority is tied (the bundle
  breaks ties at random and flags them) has no hard label.
- ``dawid_skene``: the Dawid-Skene label, one-hot.
- ``soft``: the annotators' label distribution (``soft_label``), learning from
  disagreement; its hard label for evaluation is the distribution's mode, none when the
  mode is shared by two classes.

Invariants of ``Examples``: rows ordered by item id; ``targets`` and ``soft`` are float32
``(n, C)`` over ``classes`` in the given order (the schema's); ``labels`` int64 with -1
for "no hard label"; ``soft`` is the annotators' distribution whatever the target (NaN rows
where the bundle has none), for evaluating any model against the annotators.

Rows kept: in train and validation, only rows with a usable target (a hard label, or a
soft distribution for ``soft``). In test, every row with something to evaluate against (a
hard label or an annotators' distribution); a test row without a target has a zero target
row, which is never trained on. Image paths must stay inside the bundle.
"""

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

SPLITS = ("train", "validation", "test")
TARGETS = ("majority", "dawid_skene", "soft")
Modality = Literal["text", "image"]
# The bundle's soft labels sum to 1; this allows for their float rounding.
_SOFT_SUM_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Examples:
    """One split's rows; see the module's invariants."""

    item_ids: npt.NDArray[np.int64]
    inputs: list[str]
    targets: npt.NDArray[np.float32]
    labels: npt.NDArray[np.int64]
    soft: npt.NDArray[np.float32]
    metadata: list[dict[str, object]]

    def __post_init__(self) -> None:
        n = len(self.item_ids)
        sizes = {
            "inputs": len(self.inputs),
            "targets": len(self.targets),
            "labels": len(self.labels),
            "soft": len(self.soft),
            "metadata": len(self.metadata),
        }
        wrong = {name: size for name, size in sizes.items() if size != n}
        if wrong:
            raise ValueError(f"Examples of {n} items have mismatched lengths: {wrong}.")

    def __len__(self) -> int:
        return len(self.item_ids)


def check_classes(classes: Sequence[str]) -> tuple[str, ...]:
    """``classes`` as a tuple of two or more distinct, non-empty strings."""
    names = tuple(classes)
    if len(names) < 2:
        raise ValueError(f"A classifier needs at least two classes, got {list(names)}.")
    if not all(_non_empty_text(name) for name in names):
        raise ValueError(f"Classes must be non-empty strings, got {list(names)}.")
    if len(set(names)) != len(names):
        raise ValueError(f"Classes must be distinct, got {list(names)}.")
    return names


def _non_empty_text(value: object) -> bool:
    return isinstance(value, str) and value != ""


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _hard_labels(
    frame: pd.DataFrame, column: str, index: dict[str, int], *, tied: pd.Series | None
) -> npt.NDArray[np.int64]:
    if column not in frame.columns:
        raise ValueError(
            f"The bundle has no {column!r} column: its version was built without that target."
        )
    labels = np.full(len(frame), -1, dtype=np.int64)
    for row, (item_id, value) in enumerate(zip(frame["item_id"], frame[column], strict=True)):
        if _missing(value):
            continue
        if value not in index:
            raise ValueError(
                f"Item {item_id} has {column} label {value!r}, which is not one of the "
                f"classes {list(index)}."
            )
        labels[row] = index[value]
    if tied is not None:
        labels[tied.fillna(False).to_numpy(dtype=bool)] = -1
    return labels


def _soft_rows(frame: pd.DataFrame, classes: int) -> npt.NDArray[np.float32]:
    soft = np.full((len(frame), classes), np.nan, dtype=np.float32)
    if "soft_label" not in frame.columns:
        return soft
    for row, (item_id, value) in enumerate(zip(frame["item_id"], frame["soft_label"], strict=True)):
        if value is None:
            continue
        vector = np.asarray(value, dtype=np.float64)
        if vector.size == 0 or np.all(np.isnan(vector)):
            continue
        if vector.shape != (classes,):
            raise ValueError(
                f"Item {item_id} has a soft_label of {vector.size} values; "
                f"the schema has {classes} classes."
            )
        if np.any(~np.isfinite(vector)) or np.any(vector < 0):
            raise ValueError(f"Item {item_id} has a soft_label with invalid probabilities.")
        if abs(vector.sum() - 1.0) > _SOFT_SUM_TOLERANCE:
            raise ValueError(f"Item {item_id} has a soft_label summing to {vector.sum():.6f}.")
        soft[row] = vector / vector.sum()
    return soft


def _mode(soft: npt.NDArray[np.float32]) -> npt.NDArray[np.int64]:
    labels = np.full(len(soft), -1, dtype=np.int64)
    present = ~np.isnan(soft).any(axis=1)
    if present.any():
        rows = soft[present]
        top = rows.max(axis=1, keepdims=True)
        unique = (rows == top).sum(axis=1) == 1
        modes = np.where(unique, rows.argmax(axis=1), -1)
        labels[present] = modes
    return labels


def _inputs(frame: pd.DataFrame, root: Path, modality: Modality) -> list[str]:
    if modality not in frame.columns:
        other = "image" if modality == "text" else "text"
        hint = f" (it has an {other!r} column)" if other in frame.columns else ""
        raise ValueError(f"The bundle has no {modality!r} column{hint}: not a {modality} bundle.")
    if modality == "text":
        return ["" if _missing(text) else str(text) for text in frame["text"]]
    resolved_root = root.resolve()
    paths = []
    for item_id, relative in zip(frame["item_id"], frame["image"], strict=True):
        if _missing(relative):
            raise ValueError(f"Item {item_id} has no image path.")
        path = (resolved_root / str(relative)).resolve()
        if not path.is_relative_to(resolved_root):
            raise ValueError(f"Item {item_id}: image path {relative!r} leaves the bundle.")
        paths.append(str(path))
    return paths


def _metadata(frame: pd.DataFrame) -> list[dict[str, object]]:
    if "metadata" not in frame.columns:
        return [{} for _ in range(len(frame))]
    rows: list[dict[str, object]] = []
    for item_id, raw in zip(frame["item_id"], frame["metadata"], strict=True):
        data = {} if _missing(raw) or raw == "" else json.loads(str(raw))
        if not isinstance(data, dict):
            raise ValueError(f"Item {item_id} has metadata that is not a JSON object.")
        rows.append(data)
    return rows


def examples_from_bundle(
    root: Path,
    split: str,
    *,
    classes: Sequence[str],
    target: str,
    modality: Modality,
) -> Examples:
    """The examples of ``split`` for ``target`` over ``classes``; see the module's rules."""
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; expected one of {SPLITS}.")
    if target not in TARGETS:
        raise ValueError(f"Unknown target {target!r}; expected one of {TARGETS}.")
    if modality not in ("text", "image"):
        raise ValueError(f"Unknown modality {modality!r}; expected 'text' or 'image'.")
    names = check_classes(classes)
    path = Path(root) / "data" / f"{split}.parquet"
    if not path.is_file():
        raise ValueError(f"The bundle at {root} has no data/{split}.parquet.")
    frame = pd.read_parquet(path)
    if "item_id" not in frame.columns:
        raise ValueError(f"data/{split}.parquet has no item_id column.")
    frame = frame.sort_values("item_id", kind="stable").reset_index(drop=True)
    index = {name: position for position, name in enumerate(names)}
    soft = _soft_rows(frame, len(names))
    has_soft = np.asarray(~np.isnan(soft).any(axis=1), dtype=bool)
    if target == "soft":
        if "soft_label" not in frame.columns:
            raise ValueError(
                "The bundle has no 'soft_label' column: its version was built without soft labels."
            )
        labels = _mode(soft)
        usable = has_soft
        targets = np.where(has_soft[:, None], soft, 0.0).astype(np.float32)
    else:
        column = "majority" if target == "majority" else "dawid_skene"
        tied = frame["majority_tied"] if target == "majority" and "majority_tied" in frame else None
        labels = _hard_labels(frame, column, index, tied=tied)
        usable = labels >= 0
        targets = np.zeros((len(frame), len(names)), dtype=np.float32)
        targets[np.flatnonzero(usable), labels[usable]] = 1.0
    keep = (labels >= 0) | has_soft if split == "test" else usable
    rows = np.flatnonzero(keep)
    inputs = _inputs(frame, Path(root), modality)
    metadata = _metadata(frame)
    return Examples(
        item_ids=frame["item_id"].to_numpy(dtype=np.int64)[rows],
        inputs=[inputs[row] for row in rows],
        targets=targets[rows],
        labels=labels[rows],
        soft=soft[rows],
        metadata=[metadata[row] for row in rows],
    )
