"""Sentence encoders and the on-disk embedding cache that spares re-encoding a text.

- ``EncoderSpec`` names an encoder: a registry key and a local model directory. Its
  ``cache_id`` is the key plus a short hash of the directory's files (relative names,
  sizes and contents), so the same model gets the same id wherever it is installed, and a
  different model under the same key (a fine-tune, an upgrade) never reads the old
  vectors.
- ``load_encoder`` loads a sentence-transformers model from local files only (never the
  network), memoised per (spec, device) in the process. ``Encoder`` is what the rest of the
  engine asks of an encoder (``SentenceTransformerEncoder`` is the implementation; a test
  double or another kind satisfies it too).
- ``EmbeddingCache`` keeps float32 vectors per (encoder cache id, sha256 of the UTF-8
  text) under a root directory. A ``put`` writes one new immutable shard file through a
  temporary file and ``os.replace``, so a reader never sees half a shard and two processes
  writing at once both land; shards are read with ``allow_pickle=False``.
- ``embed_texts`` encodes only the distinct texts the cache does not hold, in a fixed
  order (longest first, then input order), storing each chunk as soon as it is encoded.

Invariants: vectors are float32 ``(n, dimension)`` in input order; equal texts get equal
vectors within a call; a cached vector is returned bit for bit as it was stored, and once
an ``EmbeddingCache`` has read a key its vector does not change for that instance (when
two shards hold the key, the first in name order read wins; both came from the same model,
which on another device differs only by float rounding). sentence-transformers is
imported inside ``load_encoder`` only: importing this module costs numpy and nothing else.
"""

import functools
import hashlib
import io
import logging
import re
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np
import numpy.typing as npt

from ml.engine._atomic import write_bytes_atomically

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

Vectors = npt.NDArray[np.float32]
EncoderKind = Literal["sentence-transformers"]
ENCODER_KINDS: tuple[EncoderKind, ...] = ("sentence-transformers",)

# Cache ids and keys become directory names: letters, digits, dot, dash, underscore.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_TEXT_KEY = re.compile(r"[0-9a-f]{64}")
_HASH_CHUNK = 1 << 20
# The cache id's hash of the model files: 12 hex digits (48 bits) name a model well enough.
_CACHE_ID_HEX = 12
_SHARD_SUFFIX = ".npz"
# embed_texts hands the encoder this many batches at a time, reporting progress between.
_BATCHES_PER_CHUNK = 16


def text_sha256(text: str) -> str:
    """The cache key of a text: sha256 hex of its UTF-8 bytes (no normalisation)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _is_text_key(value: object) -> bool:
    return isinstance(value, str) and _TEXT_KEY.fullmatch(value) is not None


Listing = tuple[tuple[str, int, int], ...]


@functools.lru_cache(maxsize=32)
def _hash_files(root: Path, listing: Listing) -> str:
    digest = hashlib.sha256()
    for relative, size, _ in listing:
        digest.update(f"{relative}\0{size}\0".encode())
        with (root / relative).open("rb") as handle:
            for chunk in iter(lambda: handle.read(_HASH_CHUNK), b""):
                digest.update(chunk)
    return digest.hexdigest()[:_CACHE_ID_HEX]


def _model_files_hash(path: str) -> str:
    # The contents are hashed again only when a file's name, size or mtime changed.
    root = Path(path).resolve()
    if not root.is_dir():
        raise ValueError(f"Encoder model directory {path!r} does not exist.")
    listing = tuple(
        (file.relative_to(root).as_posix(), stat.st_size, stat.st_mtime_ns)
        for file in sorted(p for p in root.rglob("*") if p.is_file())
        for stat in (file.stat(),)
    )
    return _hash_files(root, listing)


@dataclass(frozen=True)
class EncoderSpec:
    """An encoder in the registry: ``key`` (a short safe name) and ``path``, the local
    directory of a sentence-transformers model."""

    key: str
    path: str
    kind: EncoderKind = "sentence-transformers"

    def __post_init__(self) -> None:
        if not _SAFE_NAME.fullmatch(self.key):
            raise ValueError(
                f"Encoder key {self.key!r} must be 1-128 letters, digits, '.', '-' or '_'."
            )
        if self.kind not in ENCODER_KINDS:
            raise ValueError(f"Unknown encoder kind {self.kind!r}; known: {ENCODER_KINDS}.")

    def cache_id(self) -> str:
        """``<key>-<12 hex>``: the key and a hash of the model directory's relative file
        names, sizes and contents (not its absolute path or times). The contents are hashed
        once per process, again only if a file's size or modification time changes."""
        return f"{self.key}-{_model_files_hash(self.path)}"


class Encoder(Protocol):
    """What the engine asks of an encoder: its spec, device, output width and ``encode``,
    which returns float32 ``(len(texts), dimension)`` in input order."""

    @property
    def spec(self) -> EncoderSpec: ...

    @property
    def device(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> Vectors: ...


@dataclass(frozen=True)
class SentenceTransformerEncoder:
    """A loaded sentence-transformers model; embeddings as the model's own modules make
    them (MiniLM normalises them to unit length)."""

    spec: EncoderSpec
    device: str
    dimension: int
    model: "SentenceTransformer" = field(repr=False)

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts), batch_size=batch_size, show_progress_bar=False, convert_to_numpy=True
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


@functools.lru_cache(maxsize=4)
def _load_sentence_transformer(spec: EncoderSpec, device: str) -> SentenceTransformerEncoder:
    # Imported here: sentence-transformers (with transformers) takes seconds to import.
    from sentence_transformers import SentenceTransformer

    if not Path(spec.path).is_dir():
        raise ValueError(f"Encoder {spec.key!r}: model directory {spec.path!r} does not exist.")
    model = SentenceTransformer(spec.path, device=device, local_files_only=True)
    dimension = model.get_embedding_dimension()
    if not dimension:
        raise ValueError(f"Encoder {spec.key!r} does not declare its embedding dimension.")
    return SentenceTransformerEncoder(spec=spec, device=device, dimension=dimension, model=model)


def load_encoder(spec: EncoderSpec, *, device: str) -> Encoder:
    """The encoder for ``spec`` on ``device`` ("cpu" or "cuda"), loaded from local files
    only and memoised per (spec, device) in this process."""
    if device not in ("cpu", "cuda"):
        raise ValueError(f"Unknown device {device!r}; expected 'cpu' or 'cuda'.")
    return _load_sentence_transformer(spec, device)


@dataclass
class _Shard:
    keys: npt.NDArray[np.str_]
    vectors: Vectors


class EmbeddingCache:
    """Vectors on disk under ``root/<cache id>/<shard>.npz``, one immutable shard per put.

    A shard is named by the sha256 of its contents and appears atomically (temporary file in
    the same directory, then ``os.replace``); readers skip temporary files. A shard that
    cannot be read is skipped with a warning: its texts are encoded again. Shards already
    read are kept in memory, so a later ``get`` reads only new ones.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._shards: dict[str, dict[str, _Shard]] = {}
        self._index: dict[str, dict[str, tuple[str, int]]] = {}

    def _directory(self, cache_id: str) -> Path:
        if not _SAFE_NAME.fullmatch(cache_id):
            raise ValueError(f"Cache id {cache_id!r} is not a safe directory name.")
        return self.root / cache_id

    @staticmethod
    def _check_keys(keys: Sequence[str]) -> None:
        for key in keys:
            if not _is_text_key(key):
                raise ValueError(f"Cache key {key!r} is not a lowercase sha256 hex digest.")

    def _refresh(self, cache_id: str) -> tuple[dict[str, _Shard], dict[str, tuple[str, int]]]:
        shards = self._shards.setdefault(cache_id, {})
        index = self._index.setdefault(cache_id, {})
        directory = self._directory(cache_id)
        if not directory.is_dir():
            return shards, index
        for path in sorted(directory.glob(f"*{_SHARD_SUFFIX}")):
            if path.name in shards:
                continue
            try:
                with np.load(path, allow_pickle=False) as data:
                    shard = _Shard(
                        keys=np.asarray(data["keys"]),
                        vectors=np.asarray(data["vectors"], dtype=np.float32),
                    )
            except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
                logger.warning("Skipping unreadable embedding shard %s: %s", path, error)
                continue
            shards[path.name] = shard
            for row, key in enumerate(shard.keys.tolist()):
                index.setdefault(key, (path.name, row))
        return shards, index

    @staticmethod
    def _width(cache_id: str, shards: dict[str, _Shard]) -> int | None:
        widths = {shard.vectors.shape[1] for shard in shards.values()}
        if len(widths) > 1:
            raise ValueError(f"Embedding cache {cache_id!r} mixes widths {sorted(widths)}.")
        return widths.pop() if widths else None

    def get(self, cache_id: str, keys: Sequence[str]) -> tuple[npt.NDArray[np.bool_], Vectors]:
        """``(found, vectors)``: a bool per key and float32 ``(n, d)`` vectors, zero rows
        for keys not found (``d`` is 0 when the cache holds nothing for ``cache_id``)."""
        self._check_keys(keys)
        shards, index = self._refresh(cache_id)
        width = self._width(cache_id, shards) or 0
        found = np.zeros(len(keys), dtype=bool)
        vectors = np.zeros((len(keys), width), dtype=np.float32)
        for position, key in enumerate(keys):
            hit = index.get(key)
            if hit is not None:
                found[position] = True
                vectors[position] = shards[hit[0]].vectors[hit[1]]
        return found, vectors

    def put(self, cache_id: str, keys: Sequence[str], vectors: npt.ArrayLike) -> None:
        """Store ``vectors`` (``(len(keys), d)``, finite) under ``keys`` as one new shard."""
        self._check_keys(keys)
        array = np.ascontiguousarray(vectors, dtype=np.float32)
        if array.ndim != 2 or array.shape[0] != len(keys):
            raise ValueError(
                f"Expected vectors of shape ({len(keys)}, d), got {tuple(array.shape)}."
            )
        if not np.all(np.isfinite(array)):
            raise ValueError("Embedding vectors must be finite.")
        if not keys:
            return
        width = self._width(cache_id, self._refresh(cache_id)[0])
        if width is not None and width != array.shape[1]:
            raise ValueError(
                f"Embedding cache {cache_id!r} holds {width}-d vectors, not {array.shape[1]}-d."
            )
        key_array = np.asarray(list(keys), dtype="<U64")
        buffer = io.BytesIO()
        np.savez(buffer, keys=key_array, vectors=array)
        payload = buffer.getvalue()
        target = self._directory(cache_id) / f"{hashlib.sha256(payload).hexdigest()}{_SHARD_SUFFIX}"
        write_bytes_atomically(target, payload)


@dataclass(frozen=True)
class EncodeStats:
    """One ``embed_texts`` call: ``texts`` rows asked for, ``cached`` of them served from
    the cache, ``encoded`` distinct texts run through the encoder, the call's wall time and
    its throughput (``texts / seconds``)."""

    texts: int
    encoded: int
    cached: int
    seconds: float
    sentences_per_s: float


def embed_texts(
    texts: Sequence[str],
    *,
    encoder: Encoder,
    cache: EmbeddingCache | None,
    batch_size: int = 64,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Vectors, EncodeStats]:
    """Float32 ``(len(texts), encoder.dimension)`` embeddings in input order.

    Equal texts are encoded once; texts the cache holds are not encoded at all. The others
    are encoded in chunks of ``16 * batch_size``, each stored in the cache as soon as it is
    encoded (an interrupted call keeps what it finished), then ``progress(done, total)``
    is called (never when nothing is encoded); an exception from it stops the call.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    started = time.perf_counter()
    keys = [text_sha256(text) for text in texts]
    first_position: dict[str, int] = {}
    for position, key in enumerate(keys):
        first_position.setdefault(key, position)
    unique_keys = list(first_position)
    vectors_by_key = np.zeros((len(unique_keys), encoder.dimension), dtype=np.float32)
    found = np.zeros(len(unique_keys), dtype=bool)
    cache_id = encoder.spec.cache_id()
    if cache is not None and unique_keys:
        found, cached_vectors = cache.get(cache_id, unique_keys)
        if found.any():
            if cached_vectors.shape[1] != encoder.dimension:
                raise ValueError(
                    f"Embedding cache {cache_id!r} holds {cached_vectors.shape[1]}-d vectors; "
                    f"encoder {encoder.spec.key!r} makes {encoder.dimension}-d ones."
                )
            vectors_by_key[found] = cached_vectors[found]
    # Longest first (as sentence-transformers sorts within a call), so chunks stay
    # homogeneous in length and padding costs what one big call would.
    missing = sorted(
        np.flatnonzero(~found).tolist(),
        key=lambda row: -len(texts[first_position[unique_keys[row]]]),
    )
    chunk = batch_size * _BATCHES_PER_CHUNK
    for start in range(0, len(missing), chunk):
        rows = missing[start : start + chunk]
        batch_texts = [texts[first_position[unique_keys[row]]] for row in rows]
        encoded = encoder.encode(batch_texts, batch_size=batch_size)
        if encoded.shape != (len(rows), encoder.dimension):
            raise ValueError(
                f"Encoder {encoder.spec.key!r} returned shape {tuple(encoded.shape)} "
                f"for {len(rows)} texts of dimension {encoder.dimension}."
            )
        vectors_by_key[rows] = encoded
        if cache is not None:
            cache.put(cache_id, [unique_keys[row] for row in rows], encoded)
        if progress is not None:
            progress(start + len(rows), len(missing))
    row_of_key = {key: row for row, key in enumerate(unique_keys)}
    vectors = vectors_by_key[[row_of_key[key] for key in keys]]
    cached_keys = {unique_keys[row] for row in np.flatnonzero(found).tolist()}
    seconds = time.perf_counter() - started
    stats = EncodeStats(
        texts=len(texts),
        encoded=len(missing),
        cached=sum(1 for key in keys if key in cached_keys),
        seconds=seconds,
        sentences_per_s=len(texts) / seconds if seconds > 0 else 0.0,
    )
    return np.ascontiguousarray(vectors, dtype=np.float32), stats
