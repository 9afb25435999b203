"""Disjoint sets (union-find) over positions ``0..n-1``, shared by splits and near-duplicates.

The root of every set is its smallest position (``union`` always hangs the larger root
under the smaller one). Callers number their items in ascending id order, so a set's root
*is* its smallest item id: the canonical cluster id, whatever order the unions came in.
That is what makes clusters and split units independent of input row order.
"""

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt


class DisjointSets:
    """Union by smallest root with path halving: near-constant amortised time per call,
    plain Python lists (a million items cost a few seconds at most)."""

    def __init__(self, size: int) -> None:
        self._parent = list(range(size))

    def find(self, position: int) -> int:
        parent = self._parent
        while parent[position] != position:
            parent[position] = parent[parent[position]]
            position = parent[position]
        return position

    def union(self, a: int, b: int) -> bool:
        """Join the sets of ``a`` and ``b``; ``False`` when they were one already."""
        root_a, root_b = self.find(a), self.find(b)
        if root_a == root_b:
            return False
        if root_a < root_b:
            self._parent[root_b] = root_a
        else:
            self._parent[root_a] = root_b
        return True

    def union_pairs(self, pairs: Iterable[tuple[int, int]]) -> None:
        for a, b in pairs:
            self.union(a, b)

    def roots(self) -> npt.NDArray[np.int64]:
        """The root (smallest member) of every position's set: the parents followed to
        their fixed point, all positions at once (pointer jumping; no Python per position)."""
        roots = np.array(self._parent, dtype=np.int64)
        while True:
            grandparents = roots[roots]
            if np.array_equal(grandparents, roots):
                return roots
            roots = grandparents


def union_equal_codes(sets: DisjointSets, codes: npt.NDArray[np.int64]) -> None:
    """Join every position with the first position of the same code; a negative code
    (a missing value) joins nothing. Only positions that repeat a code reach Python."""
    present = np.flatnonzero(codes >= 0)
    _, first, inverse = np.unique(codes[present], return_index=True, return_inverse=True)
    anchors = present[first][inverse]
    repeats = anchors != present
    sets.union_pairs(zip(anchors[repeats].tolist(), present[repeats].tolist(), strict=True))
