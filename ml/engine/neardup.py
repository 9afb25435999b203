"""Duplicates and near-duplicates: the contamination guard of a dataset version.

Three kinds of evidence, each a clustering ``item id -> cluster id``:

- ``exact``: the same key, normally the sha256 of the item's content (``exact_clusters``).
- ``text``: the same normalised text (``normalise_text``), or character-shingle sets whose
  Jaccard similarity is at least a threshold (``text_clusters``).
- ``image``: 64-bit perceptual hashes within a Hamming distance (``image_clusters``).

Invariants, for every function here:

- A clustering lists only items in clusters of two or more; an absent id is alone. A
  cluster's id is its smallest member id, so the result does not depend on input order.
- Clusters are transitive (single linkage): a ~ b and b ~ c put a, b and c together, which
  is what a split needs (no member of a chain may leak into another split).
- Deterministic: no process-seeded hashing, ties and candidate orders sorted. MinHash
  uses a fixed seed and a shingle hash of the code points alone (below).
- Missing values (``None``, NaN, ``""``, a text that normalises to nothing) match nothing:
  an empty text has no content to leak, and an item without a perceptual hash (a text item)
  is not an image.

MinHash signatures are computed in bulk with numpy (``_minhash_signatures``), not with a
datasketch ``MinHash`` per text: that loop (a Python hash call per shingle, a sketch
update per text) took 4.8 s per 100k texts, the bulk form takes 0.7, and a million-text
version's whole near-duplicate search went from 61 s to about 15. They are still
datasketch's signatures: its ``affine32`` scheme with its own permutation parameters for
the seed (``MinHash(...).permutations``), so ``MinHash(..., hashfunc=<the shingle hash>)``
gives the same values, which a test checks. The shingle hash is one numpy computes over
every window of a chunk of texts at once: a 64-bit polynomial of the shingle's UTF-32 code
points, mixed by MurmurHash3's ``fmix64``, its low 32 bits. (It replaced SHA-1, then
CRC-32, of the UTF-8 bytes, each a Python call per shingle.) MinHash needs the hash only
to be collision-poor; candidate pairs are verified by their exact Jaccard, so neither
the hash nor the sketch's noise decides a cluster.

``merge_clusters`` joins clusterings into one ``ClusterReport`` with the reasons of each
cluster; ``find_clusters`` does it all for a version's items. ``cross_version_matches`` and
``cross_matches`` answer "is anything in version A's test split a (near) duplicate of
version B's train split?".
"""

import hashlib
import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Literal, NamedTuple, TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd

from ml.engine._disjoint import DisjointSets, union_equal_codes
from ml.engine._pairs import Keys, Positions, cross_pairs, equal_pairs, unique_pairs

Reason = Literal["exact", "text", "image"]
# A key, text or hash as it comes out of a frame: None, NaN (pandas' missing value) and ""
# are all missing.
MaybeText = str | float | None
# Keys and texts may also come as the pandas column itself (``exact_clusters``,
# ``text_clusters``): read without a Python object per row, or a slice at a time.
Column: TypeAlias = Sequence[MaybeText] | pd.Series
# Rows of a pandas column turned into Python values at once.
VALUES_SLICE = 1 << 16
REASONS: tuple[Reason, ...] = ("exact", "text", "image")

# The LSH finds a pair exactly at the threshold with at least this probability (pairs above
# it more surely): candidates are verified exactly, so a chance candidate costs one set
# intersection while a missed pair is a leak.
LSH_RECALL = 0.99
# A text bucket larger than this (a family of templated near-copies) is linked as a star
# and a chain instead of pair by pair; see ``_pairs.equal_pairs``.
TEXT_BUCKET_CAP = 32
# Signatures are turned into band keys this many at a time, so a million texts never hold
# their 128 x 4-byte signatures all at once (only the band keys, 8 bytes per band).
SIGNATURE_CHUNK = 8192
# Shingle sets kept for the exact verification: a family of near-copies (one text against
# many) hits them; chance candidates, most of a large version's, pair texts at random and
# never do. A set of a 100-character text takes about 9 KB (2**16 of them took 600 MB).
SHINGLE_SETS_CACHED = 1 << 12
# Perceptual hashes: 64 bits. A distance of 32 means half the bits differ, no likeness at
# all; up to 31 the pigeonhole bands still have 2 bits.
PHASH_BITS = 64
MAX_IMAGE_DISTANCE = 31
_PHASH_FORMAT = re.compile(r"[0-9a-fA-F]{16}")

# Generic combining diacritics (Latin, Greek, Cyrillic accents). Script-specific marks
# (Devanagari vowel signs, Arabic harakat, Hebrew points, Thai tone marks) live in their
# scripts' own blocks and are kept: removing them would merge different words.
_GENERIC_DIACRITICS = (
    (0x0300, 0x036F),
    (0x1AB0, 0x1AFF),
    (0x1DC0, 0x1DFF),
    (0x20D0, 0x20FF),
    (0xFE20, 0xFE2F),
)


class _DropTable(dict[int, int | None]):
    """``str.translate`` table, filled on first sight of each code point: punctuation
    (``P*``), invisible format characters (``Cf``: zero-width spaces, soft hyphens, bidi
    marks), control characters that are not whitespace, and generic diacritics."""

    def __missing__(self, codepoint: int) -> int | None:
        char = chr(codepoint)
        category = unicodedata.category(char)
        dropped = (
            category.startswith("P")
            or category == "Cf"
            or (category == "Cc" and not char.isspace())
            or any(low <= codepoint <= high for low, high in _GENERIC_DIACRITICS)
        )
        value = None if dropped else codepoint
        self[codepoint] = value
        return value


_DROP = _DropTable()


def normalise_text(text: str) -> str:
    """The text as compared for duplicates.

    1. NFKC: compatibility forms fold (full-width ``Ａ`` -> ``A``, ``ﬁ`` -> ``fi``, ``²`` -> ``2``).
    2. ``casefold``: case-insensitive, ``ß`` -> ``ss``.
    3. Accents stripped (NFKD, generic diacritics dropped, NFC): ``café`` == ``cafe``; a
       copy that lost or gained accents is the same text to a reader and to a model.
    4. Punctuation, invisible format and control characters dropped (not replaced by a
       space, so ``e-mail`` == ``email`` and ``don't`` == ``dont``); symbols (``$``, ``+``,
       emoji) are kept, they carry meaning.
    5. Whitespace runs collapsed to one space, none at either end.
    """
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    kept = unicodedata.normalize("NFC", folded.translate(_DROP))
    return " ".join(kept.split())


def normalised_sha256(text: str) -> str:
    """Hex sha256 of the UTF-8 normalised text: equal for "normalised-exact" duplicates."""
    return hashlib.sha256(normalise_text(text).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class DuplicateCluster:
    cluster_id: int  # the smallest member id
    members: tuple[int, ...]  # ascending, two or more
    reasons: tuple[Reason, ...]  # the kinds of evidence that joined members, in REASONS order


@dataclass(frozen=True)
class ClusterReport:
    """Clusters of two or more items, by ``cluster_id``."""

    clusters: tuple[DuplicateCluster, ...]

    def mapping(self) -> dict[int, int]:
        """``item id -> cluster id`` for every item in a cluster (what ``assign_splits`` takes)."""
        return {
            member: cluster.cluster_id for cluster in self.clusters for member in cluster.members
        }


@dataclass(frozen=True)
class ClusterCrossing:
    """A cluster whose members are in more than one split: a leak."""

    cluster_id: int
    members: tuple[int, ...]  # the members that are in a split, ascending
    splits: tuple[str, ...]  # the members' splits, in the order of the member ids


class Match(NamedTuple):
    """An item of version A that duplicates an item of version B.

    ``score`` is a similarity in [0, 1]: 1.0 for ``exact`` and identical normalised texts,
    the shingle Jaccard for ``text``, ``1 - distance / 64`` for ``image``.
    """

    a_id: int
    b_id: int
    score: float
    reason: Reason


# ---------------------------------------------------------------------------- helpers


def _is_missing(value: object) -> bool:
    if isinstance(value, str):
        return value == ""
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _id_order(ids: Sequence[int], count: int, what: str) -> tuple[list[int], Positions | None]:
    """Ids ascending and the positions that put them so (None when they already ascend, as
    a version's items do), so that position order is id order (see ``DisjointSets``);
    ids must be unique, one per value."""
    if len(ids) != count:
        raise ValueError(f"{len(ids)} ids but {count} {what}")
    id_array = np.asarray(ids, dtype=np.int64)
    if bool(np.all(id_array[1:] > id_array[:-1])):
        return id_array.tolist(), None
    order = np.argsort(id_array, kind="stable")
    sorted_ids = id_array[order]
    repeated = np.flatnonzero(sorted_ids[1:] == sorted_ids[:-1])
    if len(repeated):
        raise ValueError(f"item id {sorted_ids[repeated[0]]} appears twice")
    return sorted_ids.tolist(), order


def _sorted_by_id(
    ids: Sequence[int], values: Sequence[object], what: str
) -> tuple[list[int], Sequence[object]]:
    """Ids ascending with their values (see ``_id_order``)."""
    sorted_ids, order = _id_order(ids, len(values), what)
    if order is None:
        return sorted_ids, values
    return sorted_ids, [values[position] for position in order.tolist()]


def _values_in_order(values: Column, order: Positions | None) -> Iterator[object]:
    """The values, in ``order`` if given. A pandas column is turned into Python values a
    slice at a time: a million texts never exist twice, as a list and as normalised."""
    if not isinstance(values, pd.Series):
        yield from values if order is None else (values[position] for position in order.tolist())
        return
    in_order = values if order is None else values.iloc[order]
    for start in range(0, len(in_order), VALUES_SLICE):
        yield from in_order.iloc[start : start + VALUES_SLICE].tolist()


def _clustering(ids: Sequence[int], sets: DisjointSets) -> dict[int, int]:
    roots = sets.roots()
    members = np.flatnonzero(np.bincount(roots, minlength=len(ids))[roots] >= 2)
    pairs = zip(members.tolist(), roots[members].tolist(), strict=True)
    return {ids[p]: ids[root] for p, root in pairs}


def _codes(values: Column) -> npt.NDArray[np.int64]:
    """A code per distinct present value, -1 for a missing one. A pandas text column is
    coded by pandas (Arrow), without a Python string per value."""
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.StringDtype):
        codes, distinct = pd.factorize(values)
        codes = codes.astype(np.int64)
        empty = np.flatnonzero(np.asarray(distinct == ""))
        if len(empty):
            codes[codes == empty[0]] = -1
        return codes
    first: dict[object, int] = {}
    return np.array(
        [-1 if _is_missing(v) else first.setdefault(v, len(first)) for v in values], dtype=np.int64
    )


# ----------------------------------------------------------------------------- exact


def exact_clusters(ids: Sequence[int], keys: Column) -> dict[int, int]:
    """Items with the same key (e.g. the content sha256) in one cluster."""
    sorted_ids, order = _id_order(ids, len(keys), "keys")
    codes = _codes(keys)
    sets = DisjointSets(len(sorted_ids))
    union_equal_codes(sets, codes if order is None else codes[order])
    return _clustering(sorted_ids, sets)


# ------------------------------------------------------------------------------ text


def lsh_bands(threshold: float, num_perm: int, *, recall: float = LSH_RECALL) -> tuple[int, int]:
    """``(bands, rows)`` of the MinHash LSH: the most rows per band (the fewest chance
    candidates) for which a pair at exactly ``threshold`` becomes a candidate with
    probability ``1 - (1 - threshold**rows) ** bands >= recall``, ``bands = num_perm // rows``.

    datasketch's own optimum for 0.8 and 128 permutations (9 bands of 13) finds a pair at
    Jaccard 0.8 only 40 % of the time; this gives 21 bands of 6 and 99.8 %.
    """
    for rows in range(num_perm // 2, 0, -1):
        bands = num_perm // rows
        if 1.0 - (1.0 - threshold**rows) ** bands >= recall:
            return bands, rows
    return num_perm, 1


def _shingles(text: str, size: int) -> frozenset[str]:
    """Character shingles of a normalised text; a text shorter than ``size`` is one shingle."""
    if len(text) <= size:
        return frozenset((text,))
    return frozenset(text[start : start + size] for start in range(len(text) - size + 1))


_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
# The shingle hash: a polynomial over the shingle's code points in this odd 64-bit base
# (the golden ratio's), wrapping modulo 2**64, then ``_fmix64``, then its low 32 bits.
SHINGLE_BASE = np.uint64(0x9E3779B97F4A7C15)
# Bytes of permuted shingle hashes held at once: the (num_perm x block) uint32 buffer of
# ``_minhash_signatures``, whatever the texts' lengths. Measured on 100k texts: 2 to 32 MiB
# alike, 1 MiB and less a third slower (more calls, each on fewer shingles).
PERMUTED_BYTES = 1 << 23


def _fmix64(h: Keys) -> Keys:
    """MurmurHash3's finaliser: every input bit reaches every output bit."""
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


def _fmix32(h: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]:
    """MurmurHash3's 32-bit finaliser: datasketch's ``affine32`` pre-mix of an input hash."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


@lru_cache(maxsize=8)
def _permutations(
    num_perm: int, seed: int
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32]]:
    """datasketch's own ``affine32`` permutation parameters ``(a, b)`` for ``seed``, as
    column vectors (``num_perm x 1``) to broadcast over shingles."""
    # Imported here: datasketch loads scipy (~0.4 s), which image projects and the splits
    # never need. It ships no type information (no py.typed marker, no stubs package).
    from datasketch import MinHash  # type: ignore[import-untyped]

    a, b = MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations
    return a.astype(np.uint32)[:, None], b.astype(np.uint32)[:, None]


def _shingle_hashes(texts: Sequence[str], size: int) -> tuple[npt.NDArray[np.uint32], Positions]:
    """The 32-bit hash of every character ``size``-shingle of ``texts`` (non-empty), text
    after text, and the position of each text's first one. Shingles are windows of code
    points over the texts' concatenation (UTF-32); windows that cross into the next text
    are dropped, and a text shorter than ``size`` is one shingle, its whole self, as in
    ``_shingles``. A shingle's hash depends on its code points only, so a shingle repeated
    within a text is one value to the minimum as it is one member of the set."""
    lengths = np.fromiter((len(text) for text in texts), dtype=np.int64, count=len(texts))
    if len(texts) and lengths.min() == 0:
        raise ValueError("an empty text has no shingles")
    ends = np.cumsum(lengths)
    starts = ends - lengths
    total = int(ends[-1]) if len(texts) else 0
    # Zeros after the last text: every position starts a full window (the ones that run
    # past a text's end are dropped or replaced below).
    points = np.zeros(total + size - 1, dtype=np.uint64)
    # surrogatepass: a lone surrogate (which Python strings may hold) is its code point.
    joined = "".join(texts).encode("utf-32-le", "surrogatepass")
    points[:total] = np.frombuffer(joined, dtype=np.uint32)
    hashes = points[:total].copy()
    short = lengths < size
    short_hashes = np.empty(int(short.sum()), dtype=np.uint64)
    short_order = np.cumsum(short) - 1  # a short text's place in short_hashes
    for offset in range(1, size + 1):
        # hashes[p] is now the polynomial of the `offset` code points from p on.
        done = short & (lengths == offset)
        short_hashes[short_order[done]] = hashes[starts[done]]
        if offset < size:
            hashes *= SHINGLE_BASE
            hashes += points[offset : offset + total]
    hashes[starts[short]] = short_hashes
    # A window is kept when it starts at most `length - size` into its text (the first
    # position always: a short text's one shingle).
    kept = np.ones(total, dtype=bool)
    for back in range(1, size):
        inside = lengths > back
        kept[(ends - back)[inside]] = False
    counts = np.maximum(lengths - size + 1, 1)
    first = np.cumsum(counts) - counts
    return _fmix64(hashes[kept]).astype(np.uint32), first


def _minhash_signatures(
    texts: Sequence[str], *, shingle_size: int, num_perm: int, seed: int
) -> npt.NDArray[np.uint32]:
    """The MinHash signatures (``num_perm x len(texts)``) datasketch would give each text's
    shingle set with ``_shingle_hashes``' hash: its ``affine32`` scheme, pre-mix
    ``h = fmix32(hash)``, then per permutation ``a * h + b`` in uint32 (the wrap-around is
    the modulo) and the minimum over the shingles. In bulk: the permuted hashes of a block
    of shingles, then ``np.minimum.reduceat`` over each text's run of them."""
    a, b = _permutations(num_perm, seed)
    hashes, first = _shingle_hashes(texts, shingle_size)
    premixed = _fmix32(hashes)
    signatures = np.full((num_perm, len(texts)), np.iinfo(np.uint32).max, dtype=np.uint32)
    block = max(1, PERMUTED_BYTES // (4 * num_perm))
    permuted = np.empty((num_perm, min(block, len(premixed))), dtype=np.uint32)
    for low in range(0, len(premixed), block):
        high = min(low + block, len(premixed))
        # The texts with shingles in [low, high), and where each one's run starts there
        # (a text that began before `low` continues at 0).
        head = int(np.searchsorted(first, low, side="right")) - 1
        tail = int(np.searchsorted(first, high, side="left"))
        runs = np.maximum(first[head:tail], low) - low
        out = permuted[:, : high - low]
        # In place, row by row along the shingles: reducing along axis 1 of this layout is
        # ~30x faster than along axis 0 of its transpose.
        np.multiply(a, premixed[None, low:high], out=out)
        np.add(out, b, out=out)
        part = signatures[:, head:tail]
        np.minimum(part, np.minimum.reduceat(out, runs, axis=1), out=part)
    return signatures


def _band_keys_of(signatures: npt.NDArray[np.uint32], bands: int, rows: int) -> Keys:
    """One 64-bit key per band and signature column (``bands x n`` of ``num_perm x n``).
    Two different bands that collide only add a candidate, which the exact verification
    then rejects."""
    keys = np.empty((bands, signatures.shape[1]), dtype=np.uint64)
    for band in range(bands):
        h = np.full(signatures.shape[1], _FNV_OFFSET, dtype=np.uint64)
        for row in signatures[band * rows : (band + 1) * rows]:
            h = (h ^ row.astype(np.uint64)) * _FNV_PRIME
        keys[band] = _fmix64(h)
    return keys


def _text_band_keys(
    texts: Sequence[str], *, shingle_size: int, num_perm: int, seed: int, bands: int, rows: int
) -> Keys:
    """MinHash band keys (``bands x len(texts)``) of normalised, non-empty texts,
    ``SIGNATURE_CHUNK`` texts at a time (``_minhash_signatures``)."""
    keys = np.empty((bands, len(texts)), dtype=np.uint64)
    for low in range(0, len(texts), SIGNATURE_CHUNK):
        chunk = texts[low : low + SIGNATURE_CHUNK]
        signatures = _minhash_signatures(
            chunk, shingle_size=shingle_size, num_perm=num_perm, seed=seed
        )
        keys[:, low : low + len(chunk)] = _band_keys_of(signatures, bands, rows)
    return keys


def _validate_text_parameters(threshold: float, shingle_size: int, num_perm: int) -> None:
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"text threshold {threshold} is not in (0, 1]")
    if shingle_size < 1:
        raise ValueError(f"shingle size {shingle_size} is below 1")
    if num_perm < 2:
        raise ValueError(f"num_perm {num_perm} is below 2")


def _jaccard_of(texts: Sequence[str], shingle_size: int) -> Callable[[int, int], float]:
    """Exact Jaccard similarity of the shingle sets of two of ``texts``, by position."""

    # Families of near-copies verify the same texts again and again: cache their shingles.
    @lru_cache(maxsize=SHINGLE_SETS_CACHED)
    def shingles(position: int) -> frozenset[str]:
        return _shingles(texts[position], shingle_size)

    def jaccard(a: int, b: int) -> float:
        left, right = shingles(a), shingles(b)
        common = len(left & right)
        return common / (len(left) + len(right) - common)

    return jaccard


def _distinct_texts(texts: Iterable[object]) -> tuple[list[str], Positions]:
    """The distinct non-empty normalised texts and, per input, the index of its text
    (-1 for a missing or empty one)."""
    index: dict[str, int] = {}

    def code(text: object) -> int:
        normalised = normalise_text(text) if isinstance(text, str) else ""
        return index.setdefault(normalised, len(index)) if normalised else -1

    codes = np.fromiter(map(code, texts), dtype=np.int64)
    return list(index), codes


def _text_candidates(
    distinct: Sequence[str], *, threshold: float, shingle_size: int, num_perm: int, seed: int
) -> tuple[Positions, Positions]:
    """Pairs of ``distinct`` texts sharing a MinHash LSH band key. A function of its own
    so that the band keys (8 bytes per band and text) are gone before verification."""
    bands, rows = lsh_bands(threshold, num_perm)
    keys = _text_band_keys(
        distinct, shingle_size=shingle_size, num_perm=num_perm, seed=seed, bands=bands, rows=rows
    )
    return unique_pairs(
        (pair for band in keys for pair in equal_pairs(band, cap=TEXT_BUCKET_CAP)), len(distinct)
    )


def text_clusters(
    ids: Sequence[int],
    texts: Column,
    *,
    threshold: float = 0.8,
    shingle_size: int = 5,
    num_perm: int = 128,
    seed: int = 1,
) -> dict[int, int]:
    """Texts equal after ``normalise_text``, or whose character ``shingle_size``-shingle
    sets have Jaccard similarity ``>= threshold``, in one cluster.

    1. Equal normalised texts are joined directly; only one of each goes on.
    2. MinHash signatures (datasketch's ``affine32`` permutations for ``num_perm`` and
       ``seed``, computed in bulk: ``_minhash_signatures``) are cut into the
       bands of ``lsh_bands``; texts sharing a band key are candidates. The banding is the
       one ``MinHashLSH`` does, done with numpy sorts: ``MinHashLSH`` keeps a Python set
       per bucket and per band, measured at 7 KB a text (7 GB for a million), and took
       10 s for 100k texts where this takes well under one.
    3. Each candidate pair is verified by the *exact* Jaccard of its shingle sets, not the
       MinHash estimate: at 0.8 the estimate's standard deviation is 0.035 with 128
       permutations, so pairs near the threshold would be decided by the sketch's noise;
       exact verification makes the decision a function of the two texts (and skips pairs
       already joined through others).
    """
    _validate_text_parameters(threshold, shingle_size, num_perm)
    sorted_ids, order = _id_order(ids, len(texts), "texts")
    distinct, codes = _distinct_texts(_values_in_order(texts, order))
    sets = DisjointSets(len(sorted_ids))
    union_equal_codes(sets, codes)
    # The first (smallest-id) item of each distinct text stands for it: codes are
    # numbered in order of first appearance, so np.unique's first index is that item.
    present = np.flatnonzero(codes >= 0)
    first = present[np.unique(codes[present], return_index=True)[1]].tolist()
    left, right = _text_candidates(
        distinct, threshold=threshold, shingle_size=shingle_size, num_perm=num_perm, seed=seed
    )
    jaccard = _jaccard_of(distinct, shingle_size)
    for a, b in zip(left.tolist(), right.tolist(), strict=True):
        item_a, item_b = first[a], first[b]
        if sets.find(item_a) != sets.find(item_b) and jaccard(a, b) >= threshold:
            sets.union(item_a, item_b)
    return _clustering(sorted_ids, sets)


# ----------------------------------------------------------------------------- image


def _parse_phashes(phashes: Sequence[object]) -> tuple[Positions, npt.NDArray[np.uint64]]:
    """Positions of the present hashes and their 64-bit values. A hash is 16 hex digits,
    as ``str(imagehash.phash(image))`` gives (``annotation.ingest.images``); the bit order
    of the digits does not matter, Hamming distance is the same under any fixed order."""
    positions = []
    digits = []
    for position, value in enumerate(phashes):
        if _is_missing(value):
            continue
        if not isinstance(value, str) or not _PHASH_FORMAT.fullmatch(value):
            raise ValueError(f"perceptual hash {value!r} is not 16 hex digits")
        positions.append(position)
        digits.append(value)
    values = np.frombuffer(bytes.fromhex("".join(digits)), dtype=">u8").astype(np.uint64)
    return np.array(positions, dtype=np.int64), values


def _pigeonhole_bands(max_distance: int) -> list[tuple[int, int]]:
    """``(shift, width)`` of ``max_distance + 1`` bands covering the 64 bits. Two hashes
    within ``max_distance`` differ in at most that many bands, so at least one band is
    equal: comparing only hashes with an equal band finds every such pair."""
    count = max_distance + 1
    base, extra = divmod(PHASH_BITS, count)
    widths = [base + 1] * extra + [base] * (count - extra)
    shifts = np.cumsum([0, *widths[:-1]]).tolist()
    return list(zip(shifts, widths, strict=True))


def _band(values: npt.NDArray[np.uint64], shift: int, width: int) -> Keys:
    return (values >> np.uint64(shift)) & np.uint64((1 << width) - 1)


def _distances(a: npt.NDArray[np.uint64], b: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    return np.bitwise_count(a ^ b).astype(np.int64)


def _validate_distance(max_distance: int) -> None:
    if not 0 <= max_distance <= MAX_IMAGE_DISTANCE:
        raise ValueError(f"image distance {max_distance} is not in 0..{MAX_IMAGE_DISTANCE}")


def image_clusters(
    ids: Sequence[int], phashes: Sequence[MaybeText], *, max_distance: int = 6
) -> dict[int, int]:
    """Items whose perceptual hashes are within Hamming distance ``max_distance``.

    Identical hashes are joined first; the distinct ones are compared only within equal
    pigeonhole bands (``_pigeonhole_bands``), vectorised. Expected work for uniformly
    spread hashes is about ``n² / 2**(64 / (max_distance + 1))`` comparisons in numpy
    (n²/1000 at the default 6), so 100k images take about a second.
    """
    _validate_distance(max_distance)
    sorted_ids, sorted_hashes = _sorted_by_id(ids, phashes, "perceptual hashes")
    positions, values = _parse_phashes(sorted_hashes)
    sets = DisjointSets(len(sorted_ids))
    distinct, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    codes = np.full(len(sorted_ids), -1, dtype=np.int64)
    codes[positions] = inverse
    union_equal_codes(sets, codes)
    # np.unique's first index is the smallest position (id) of each distinct hash.
    representative = positions[first]
    for shift, width in _pigeonhole_bands(max_distance) if max_distance else []:
        for left, right in equal_pairs(_band(distinct, shift, width)):
            near = _distances(distinct[left], distinct[right]) <= max_distance
            for a, b in zip(
                representative[left[near]].tolist(),
                representative[right[near]].tolist(),
                strict=True,
            ):
                sets.union(a, b)
    return _clustering(sorted_ids, sets)


# ----------------------------------------------------------------------------- merge


def merge_clusters(clusterings: Mapping[Reason, Mapping[int, int]]) -> ClusterReport:
    """One report from several clusterings (``reason -> item id -> cluster id``): items
    joined by any of them are joined (union-find), and each cluster lists the reasons whose
    own clusters of two or more lie inside it."""
    unknown = set(clusterings) - set(REASONS)
    if unknown:
        raise ValueError(f"unknown reasons {sorted(unknown)}; expected some of {REASONS}")
    ids = sorted({int(item) for mapping in clusterings.values() for item in mapping})
    position = {item: p for p, item in enumerate(ids)}
    sets = DisjointSets(len(ids))
    joined_by: dict[Reason, list[int]] = {}
    for reason, mapping in clusterings.items():
        members: defaultdict[int, list[int]] = defaultdict(list)
        for item, cluster in mapping.items():
            members[int(cluster)].append(position[int(item)])
        joined_by[reason] = []
        for group in members.values():
            if len(group) >= 2:
                sets.union_pairs((group[0], other) for other in group[1:])
                joined_by[reason].append(group[0])
    roots = sets.roots()
    by_root: defaultdict[int, list[int]] = defaultdict(list)
    for p, root in enumerate(roots.tolist()):
        by_root[root].append(ids[p])
    reasons_of: defaultdict[int, set[Reason]] = defaultdict(set)
    for reason, anchors in joined_by.items():
        for anchor in anchors:
            reasons_of[int(roots[anchor])].add(reason)
    clusters = tuple(
        DuplicateCluster(
            cluster_id=ids[root],
            members=tuple(members),
            reasons=tuple(r for r in REASONS if r in reasons_of[root]),
        )
        for root, members in sorted(by_root.items())
        if len(members) >= 2
    )
    return ClusterReport(clusters=clusters)


def find_clusters(
    ids: Sequence[int],
    *,
    sha256: Column | None = None,
    texts: Column | None = None,
    phashes: Sequence[MaybeText] | None = None,
    text_threshold: float = 0.8,
    image_max_distance: int = 6,
    shingle_size: int = 5,
    num_perm: int = 128,
    seed: int = 1,
) -> ClusterReport:
    """Every kind of evidence given, merged: ``sha256`` -> ``exact``, ``texts`` -> ``text``,
    ``phashes`` -> ``image``."""
    clusterings: dict[Reason, Mapping[int, int]] = {}
    if sha256 is not None:
        clusterings["exact"] = exact_clusters(ids, sha256)
    if texts is not None:
        clusterings["text"] = text_clusters(
            ids,
            texts,
            threshold=text_threshold,
            shingle_size=shingle_size,
            num_perm=num_perm,
            seed=seed,
        )
    if phashes is not None:
        clusterings["image"] = image_clusters(ids, phashes, max_distance=image_max_distance)
    if not clusterings:
        raise ValueError("find_clusters needs sha256, texts or phashes")
    return merge_clusters(clusterings)


def clusters_crossing(
    clusters: ClusterReport | Mapping[int, int], splits: "Mapping[int, str] | pd.Series"
) -> list[ClusterCrossing]:
    """The clusters whose members are in more than one split (empty after
    ``assign_splits`` was given the same clusters). Members without a split (not in the
    version) are ignored."""
    mapping = clusters.mapping() if isinstance(clusters, ClusterReport) else clusters
    split_of: Mapping[int, str] = splits.to_dict() if isinstance(splits, pd.Series) else splits
    members: defaultdict[int, list[int]] = defaultdict(list)
    for item, cluster in mapping.items():
        if int(item) in split_of:
            members[int(cluster)].append(int(item))
    crossing = []
    for cluster, items in sorted(members.items()):
        in_order = sorted(items)
        names = tuple(dict.fromkeys(split_of[item] for item in in_order))
        if len(names) > 1:
            crossing.append(
                ClusterCrossing(cluster_id=cluster, members=tuple(in_order), splits=names)
            )
    return crossing


# ----------------------------------------------------------------------- cross-version


def _exact_matches(
    a_ids: Sequence[int],
    a_keys: Sequence[object],
    b_ids: Sequence[int],
    b_keys: Sequence[object],
    reason: Reason,
) -> Iterator[Match]:
    by_key: defaultdict[object, list[int]] = defaultdict(list)
    for item, key in zip(b_ids, b_keys, strict=True):
        if not _is_missing(key):
            by_key[key].append(int(item))
    for item, key in zip(a_ids, a_keys, strict=True):
        if not _is_missing(key):
            for other in by_key.get(key, ()):
                yield Match(int(item), other, 1.0, reason)


def _text_matches(
    a_ids: Sequence[int],
    a_texts: Sequence[object],
    b_ids: Sequence[int],
    b_texts: Sequence[object],
    *,
    threshold: float,
    shingle_size: int,
    num_perm: int,
    seed: int,
) -> Iterator[Match]:
    _validate_text_parameters(threshold, shingle_size, num_perm)
    a_distinct, a_code_array = _distinct_texts(a_texts)
    b_distinct, b_code_array = _distinct_texts(b_texts)
    a_codes, b_codes = a_code_array.tolist(), b_code_array.tolist()
    yield from _exact_matches(
        a_ids,
        _texts_of_codes(a_distinct, a_codes),
        b_ids,
        _texts_of_codes(b_distinct, b_codes),
        "text",
    )
    bands, rows = lsh_bands(threshold, num_perm)
    band_keys = partial(
        _text_band_keys,
        shingle_size=shingle_size,
        num_perm=num_perm,
        seed=seed,
        bands=bands,
        rows=rows,
    )
    a_keys, b_keys = band_keys(a_distinct), band_keys(b_distinct)
    left, right = unique_pairs(
        (pair for band in range(bands) for pair in cross_pairs(a_keys[band], b_keys[band])),
        len(b_distinct),
    )
    both = a_distinct + b_distinct
    jaccard = _jaccard_of(both, shingle_size)
    a_items = _items_by_code(a_ids, a_codes)
    b_items = _items_by_code(b_ids, b_codes)
    for a, b in zip(left.tolist(), right.tolist(), strict=True):
        if a_distinct[a] == b_distinct[b]:
            continue  # an identical normalised text, matched above
        score = jaccard(a, len(a_distinct) + b)
        if score >= threshold:
            for a_item in a_items[a]:
                for b_item in b_items[b]:
                    yield Match(a_item, b_item, score, "text")


def _texts_of_codes(distinct: Sequence[str], codes: Sequence[int]) -> list[str | None]:
    return [distinct[code] if code >= 0 else None for code in codes]


def _items_by_code(ids: Sequence[int], codes: Sequence[int]) -> defaultdict[int, list[int]]:
    items: defaultdict[int, list[int]] = defaultdict(list)
    for item, code in zip(ids, codes, strict=True):
        if code >= 0:
            items[code].append(int(item))
    return items


def _image_matches(
    a_ids: Sequence[int],
    a_hashes: Sequence[object],
    b_ids: Sequence[int],
    b_hashes: Sequence[object],
    *,
    max_distance: int,
) -> Iterator[Match]:
    _validate_distance(max_distance)
    a_positions, a_values = _parse_phashes(a_hashes)
    b_positions, b_values = _parse_phashes(b_hashes)
    chunks = []
    for shift, width in _pigeonhole_bands(max_distance):
        for left, right in cross_pairs(
            _band(a_values, shift, width), _band(b_values, shift, width)
        ):
            near = _distances(a_values[left], b_values[right]) <= max_distance
            chunks.append((left[near], right[near]))
    left, right = unique_pairs(iter(chunks), len(b_values))
    distances = _distances(a_values[left], b_values[right])
    for a, b, distance in zip(
        a_positions[left].tolist(), b_positions[right].tolist(), distances.tolist(), strict=True
    ):
        yield Match(int(a_ids[a]), int(b_ids[b]), 1.0 - distance / PHASH_BITS, "image")


def cross_version_matches(
    a_ids: Sequence[int],
    a_values: Sequence[MaybeText],
    b_ids: Sequence[int],
    b_values: Sequence[MaybeText],
    *,
    kind: Reason,
    text_threshold: float = 0.8,
    image_max_distance: int = 6,
    shingle_size: int = 5,
    num_perm: int = 128,
    seed: int = 1,
) -> list[Match]:
    """Pairs of an item of A and an item of B that are duplicates of the given ``kind``:
    ``exact`` (equal keys, e.g. sha256), ``text`` (equal normalised texts, or shingle
    Jaccard ``>= text_threshold``; MinHash LSH candidates verified exactly, as in
    ``text_clusters``) or ``image`` (perceptual hashes within ``image_max_distance``).
    Sorted by ``(a_id, b_id)``; one match per pair."""
    for ids, values, side in ((a_ids, a_values, "A"), (b_ids, b_values, "B")):
        if len(ids) != len(values):
            raise ValueError(f"version {side}: {len(ids)} ids but {len(values)} values")
    matches: Iterable[Match]
    if kind == "exact":
        matches = _exact_matches(a_ids, a_values, b_ids, b_values, "exact")
    elif kind == "text":
        matches = _text_matches(
            a_ids,
            a_values,
            b_ids,
            b_values,
            threshold=text_threshold,
            shingle_size=shingle_size,
            num_perm=num_perm,
            seed=seed,
        )
    elif kind == "image":
        matches = _image_matches(a_ids, a_values, b_ids, b_values, max_distance=image_max_distance)
    else:
        raise ValueError(f"unknown kind {kind!r}; expected one of {REASONS}")
    return sorted(matches, key=lambda match: (match.a_id, match.b_id))


def cross_matches(
    a_ids: Sequence[int],
    b_ids: Sequence[int],
    *,
    a_sha256: Sequence[MaybeText] | None = None,
    b_sha256: Sequence[MaybeText] | None = None,
    a_texts: Sequence[MaybeText] | None = None,
    b_texts: Sequence[MaybeText] | None = None,
    a_phashes: Sequence[MaybeText] | None = None,
    b_phashes: Sequence[MaybeText] | None = None,
    text_threshold: float = 0.8,
    image_max_distance: int = 6,
    shingle_size: int = 5,
    num_perm: int = 128,
    seed: int = 1,
) -> list[Match]:
    """Every kind of evidence given (each on both sides), one match per pair: the first
    kind in ``REASONS`` order that found it (``exact`` before ``text`` and ``image``).
    Sorted by ``(a_id, b_id)``."""
    given: list[tuple[Reason, Sequence[MaybeText], Sequence[MaybeText]]] = []
    evidence: tuple[tuple[Reason, Sequence[MaybeText] | None, Sequence[MaybeText] | None], ...] = (
        ("exact", a_sha256, b_sha256),
        ("text", a_texts, b_texts),
        ("image", a_phashes, b_phashes),
    )
    for reason, a_values, b_values in evidence:
        if (a_values is None) != (b_values is None):
            raise ValueError(f"{reason} values are given for one version only")
        if a_values is not None and b_values is not None:
            given.append((reason, a_values, b_values))
    if not given:
        raise ValueError("cross_matches needs sha256, texts or phashes for both versions")
    found: dict[tuple[int, int], Match] = {}
    for reason, a_values, b_values in given:
        for match in cross_version_matches(
            a_ids,
            a_values,
            b_ids,
            b_values,
            kind=reason,
            text_threshold=text_threshold,
            image_max_distance=image_max_distance,
            shingle_size=shingle_size,
            num_perm=num_perm,
            seed=seed,
        ):
            found.setdefault((match.a_id, match.b_id), match)
    return [found[pair] for pair in sorted(found)]
