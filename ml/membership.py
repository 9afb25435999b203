"""Which items a version holds, and in which split: a compact, comparable record.

Stored on the version row as zlib-compressed bytes: the sorted item ids (delta-encoded
int64, little-endian) followed by one split code byte per item. A million items take a
few megabytes before compression and well under one after, and every question asked of
it (is this version a superset of that one, which items moved, does it hold item X) is
a numpy operation.
"""

import zlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ml.recipes import SPLITS

_CODE = {split: code for code, split in enumerate(SPLITS)}


@dataclass(frozen=True)
class Membership:
    item_ids: npt.NDArray[np.int64]  # sorted, unique
    splits: npt.NDArray[np.uint8]  # codes into SPLITS, aligned with item_ids

    @classmethod
    def from_mapping(cls, split_of: dict[int, str]) -> "Membership":
        ids = np.array(sorted(split_of), dtype=np.int64)
        codes = np.array([_CODE[split_of[int(pk)]] for pk in ids], dtype=np.uint8)
        return cls(ids, codes)

    @classmethod
    def from_bytes(cls, data: bytes) -> "Membership":
        if not data:
            return cls(np.array([], dtype=np.int64), np.array([], dtype=np.uint8))
        raw = zlib.decompress(data)
        n = len(raw) // 9
        deltas = np.frombuffer(raw[: 8 * n], dtype="<i8")
        return cls(np.cumsum(deltas).astype(np.int64), np.frombuffer(raw[8 * n :], dtype=np.uint8))

    def to_bytes(self) -> bytes:
        deltas = np.diff(self.item_ids, prepend=np.int64(0)).astype("<i8")
        return zlib.compress(deltas.tobytes() + self.splits.astype(np.uint8).tobytes(), 6)

    def __len__(self) -> int:
        return int(self.item_ids.size)

    def holds(self, item_id: int) -> bool:
        at = int(np.searchsorted(self.item_ids, item_id))
        return at < self.item_ids.size and int(self.item_ids[at]) == item_id

    def split_of(self, item_id: int) -> str | None:
        at = int(np.searchsorted(self.item_ids, item_id))
        if at < self.item_ids.size and int(self.item_ids[at]) == item_id:
            return SPLITS[int(self.splits[at])]
        return None


@dataclass(frozen=True)
class Comparison:
    added: list[int]
    removed: list[int]
    moved: list[tuple[int, str, str]]  # (item, from split, to split)

    @property
    def only_adds(self) -> bool:
        return not self.removed and not self.moved


def compare(old: Membership, new: Membership) -> Comparison:
    """What changed from ``old`` to ``new``: items added, removed, and moved between
    splits."""
    common, old_at, new_at = np.intersect1d(
        old.item_ids, new.item_ids, assume_unique=True, return_indices=True
    )
    moved_mask = old.splits[old_at] != new.splits[new_at]
    moved = [
        (int(pk), SPLITS[int(a)], SPLITS[int(b)])
        for pk, a, b in zip(
            common[moved_mask],
            old.splits[old_at][moved_mask],
            new.splits[new_at][moved_mask],
            strict=True,
        )
    ]
    return Comparison(
        added=[int(pk) for pk in np.setdiff1d(new.item_ids, old.item_ids, assume_unique=True)],
        removed=[int(pk) for pk in np.setdiff1d(old.item_ids, new.item_ids, assume_unique=True)],
        moved=moved,
    )
