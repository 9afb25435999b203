"""Candidate pairs from bucket keys, vectorised with numpy: the banding step shared by the
MinHash LSH (text) and the pigeonhole index (perceptual hashes).

A pair is a candidate when the two share a key in some band. Keys are sorted once per
band; equal keys form runs, and the pairs of a run are produced by comparing each
position with the one ``offset`` places later, for every offset at once across runs. The
work is the number of pairs produced, in numpy, never a Python loop over items.
Pairs come in chunks so that a huge bucket never has to be held whole.
"""

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

Positions = npt.NDArray[np.int64]
Keys = npt.NDArray[np.uint64]

# Pairs handed out at once by ``cross_pairs``: bounds the memory of one chunk (~64 MiB).
PAIR_CHUNK = 1 << 22


def _ramp(counts: Positions) -> Positions:
    """``0..c-1`` for each count ``c``, concatenated: the offsets inside each run."""
    total = int(counts.sum())
    return np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)


def _empty() -> tuple[Positions, Positions]:
    return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)


def equal_pairs(keys: Keys, *, cap: int | None = None) -> Iterator[tuple[Positions, Positions]]:
    """Pairs ``(i, j)``, ``i < j``, of positions whose keys are equal.

    Runs of equal keys longer than ``cap`` give only a star (their smallest position with
    every other) and a chain (each position with the next), so that a bucket of ``k``
    costs ``O(k)`` rather than ``O(k²)``; ``cap=None`` gives every pair of every run.
    """
    if len(keys) < 2:
        return
    order = np.argsort(keys, kind="stable").astype(np.int64)
    ordered = keys[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    lengths = np.diff(np.append(starts, len(keys)))
    small = lengths >= 2 if cap is None else (lengths >= 2) & (lengths <= cap)
    run_starts, run_lengths = starts[small], lengths[small]
    for offset in range(1, int(run_lengths.max(initial=1))):
        live = run_lengths > offset
        run_starts, run_lengths = run_starts[live], run_lengths[live]
        counts = run_lengths - offset
        positions = np.repeat(run_starts, counts) + _ramp(counts)
        left, right = order[positions], order[positions + offset]
        yield np.minimum(left, right), np.maximum(left, right)
    if cap is None:
        return
    for start, length in zip(
        starts[lengths > cap].tolist(), lengths[lengths > cap].tolist(), strict=True
    ):
        # Stable sort: a run's positions ascend, so members[0] is its smallest.
        members = order[start : start + length]
        yield np.full(length - 1, members[0], dtype=np.int64), members[1:]
        yield members[1:-1], members[2:]


def cross_pairs(keys_a: Keys, keys_b: Keys) -> Iterator[tuple[Positions, Positions]]:
    """Pairs ``(i, j)`` of a position in ``keys_a`` and one in ``keys_b`` with equal keys."""
    if len(keys_a) == 0 or len(keys_b) == 0:
        return
    order_b = np.argsort(keys_b, kind="stable").astype(np.int64)
    sorted_b = keys_b[order_b]
    low = np.searchsorted(sorted_b, keys_a, side="left").astype(np.int64)
    counts = np.searchsorted(sorted_b, keys_a, side="right").astype(np.int64) - low
    hits = np.flatnonzero(counts)
    if len(hits) == 0:
        return
    cumulative = np.cumsum(counts[hits])
    bounds = np.searchsorted(cumulative, np.arange(PAIR_CHUNK, int(cumulative[-1]), PAIR_CHUNK))
    for chunk in np.split(hits, np.unique(bounds)):
        if len(chunk) == 0:
            continue
        chunk_counts = counts[chunk]
        yield (
            np.repeat(chunk, chunk_counts),
            order_b[np.repeat(low[chunk], chunk_counts) + _ramp(chunk_counts)],
        )


def unique_pairs(
    chunks: Iterator[tuple[Positions, Positions]], width: int
) -> tuple[Positions, Positions]:
    """The distinct pairs of ``chunks``, sorted; ``width`` bounds the right positions."""
    encoded = [left * width + right for left, right in chunks]
    if not encoded:
        return _empty()
    codes = np.unique(np.concatenate(encoded))
    return codes // width, codes % width
