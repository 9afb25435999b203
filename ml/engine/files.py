"""Bundle files written deterministically: the same rows give the same bytes, so a
manifest's sha256 identifies the content and a rebuild can be checked byte for byte.

Rows are written in the order given (sort them first), however their columns are
chunked; nothing here adds a time, a path, a host or a library version to a file.

- Parquet (``write_parquet``): every writer option pinned (pyarrow's defaults may change
  between releases), no pandas index or metadata, no Arrow schema blob, and the footer's
  ``created_by`` (``parquet-cpp-arrow version X.Y.Z``, which pyarrow cannot be told to
  leave out) replaced by ``NEUTRAL_CREATED_BY``.
- JSON Lines (``write_jsonl``): one object per line, keys in column order.
- CSV (``write_csv``): every text cell defused against formula injection (``core.csv``).
"""

import csv
import datetime as dt
import hashlib
import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.csv import safe_cell

StrPath = str | os.PathLike[str]

# Parseable as "<application> version <version>" by parquet-mr's VersionParser: a footer
# it cannot parse makes it ignore binary column statistics (PARQUET-251). An unknown
# application gets no writer-bug workarounds from parquet-cpp or parquet-mr; the "1" is
# this bundle writer's format, not a library version.
NEUTRAL_CREATED_BY = "chorus-bundle version 1"
ZSTD_LEVEL = 9  # written once, downloaded many times: a few % smaller for a slower write
ROW_GROUP_ROWS = 1 << 17
# Every option that changes bytes, pinned: pyarrow's defaults are not a stable contract.
# ``store_schema=False``: the footer holds Parquet's own schema only. The Arrow schema blob
# (base64 IPC flatbuffer under ``ARROW:schema``) is opaque to other readers and one more
# thing whose encoding may change with pyarrow; the types bundles use (integers, floats,
# booleans, strings, lists of them) round-trip through Parquet's logical types without it,
# and ``write_parquet`` checks that they did.
PARQUET_OPTIONS: dict[str, Any] = {
    "version": "2.6",
    "compression": "zstd",
    "compression_level": ZSTD_LEVEL,
    "row_group_size": ROW_GROUP_ROWS,
    "use_dictionary": True,
    "write_statistics": True,
    "data_page_size": 1 << 20,
    "data_page_version": "1.0",
    "dictionary_pagesize_limit": 1 << 20,
    "write_batch_size": 1024,
    "use_compliant_nested_type": True,
    "store_schema": False,
    "write_page_index": False,
    "write_page_checksum": False,
    "use_content_defined_chunking": False,
}
_PARQUET_MAGIC = b"PAR1"
_PANDAS_METADATA = b"pandas"
_THRIFT_BINARY = 0x8  # compact-protocol type nibble of a binary (string) field


class FileEntry(TypedDict):
    path: str  # relative to the bundle root, "/"-separated
    bytes: int
    sha256: str


# --------------------------------------------------------------------------- parquet


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _replace_created_by(data: bytes, created_by: str) -> bytes:
    """The file with the footer's ``created_by`` string replaced by ``NEUTRAL_CREATED_BY``.

    Layout: ``... footer | footer length (4 bytes LE) | PAR1``; the footer is the thrift
    compact ``FileMetaData``, whose field 6 ``created_by`` is ``header, varint length,
    bytes``. Fields are written in id order and fields 7+ (column orders, encryption) hold
    no strings, so the *last* ``varint + bytes`` occurrence is the field even when a column
    statistic happens to hold the same text. Only the footer changes: column chunk offsets
    point into the data before it.
    """
    if data[-4:] != _PARQUET_MAGIC:
        raise ValueError("not a Parquet file")
    footer_length = int.from_bytes(data[-8:-4], "little")
    footer_start = len(data) - 8 - footer_length
    footer = data[footer_start:-8]
    old = created_by.encode("utf-8")
    needle = _varint(len(old)) + old
    at = footer.rfind(needle)
    if at < 1 or footer[at - 1] & 0x0F != _THRIFT_BINARY:
        raise ValueError("the Parquet footer's created_by field was not found")
    new = NEUTRAL_CREATED_BY.encode("utf-8")
    patched = footer[:at] + _varint(len(new)) + new + footer[at + len(needle) :]
    return data[:footer_start] + patched + len(patched).to_bytes(4, "little") + _PARQUET_MAGIC


def _ipc_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table.combine_chunks())
    return bytes(sink.getvalue().to_pybytes())


def _as_table(table: pa.Table | pd.DataFrame, schema: pa.Schema | None) -> pa.Table:
    if isinstance(table, pd.DataFrame):
        converted = pa.Table.from_pandas(table, schema=schema, preserve_index=False)
    else:
        converted = table if schema is None else table.select(schema.names).cast(schema)
    metadata = dict(converted.schema.metadata or {})
    metadata.pop(_PANDAS_METADATA, None)
    # One chunk per column: the writer cuts pages where the chunks end, so the same rows
    # in other chunks (an Arrow-backed column read or filtered in pieces) would give other
    # bytes.
    return converted.replace_schema_metadata(metadata or None).combine_chunks()


def _decoded_alike(read: pa.Table, other: pa.Table) -> bool:
    """Two decodings of the same pages equal, NaNs included (``equals`` says NaN != NaN;
    the IPC bytes compare them bitwise)."""
    return read.equals(other, check_metadata=True) or _ipc_bytes(read) == _ipc_bytes(other)


def write_parquet(
    table: pa.Table | pd.DataFrame, path: StrPath, *, schema: pa.Schema | None = None
) -> None:
    """Write ``table`` (a frame is converted without its index; ``schema`` fixes the
    column order and types) as Parquet, byte-identical for identical input.

    The file is built in memory, its ``created_by`` neutralised, and then proven before it
    is written: pyarrow reads the patched bytes back with the neutral ``created_by``, the
    same row-group metadata and the same decoded columns as the unpatched ones, and the
    columns, cast to ``table``'s schema, equal ``table``: the values survive even where
    Parquet's types are coarser than Arrow's (a dictionary column reads back as plain
    strings). Floats that are NaN in a frame are written as nulls (pandas' missing value).
    The decoded columns are compared a row group at a time, so the proof holds one row
    group's copies, not the whole table's (three of them, for a 5M-label table 1.5 GB).
    """
    converted = _as_table(table, schema)
    buffer = pa.BufferOutputStream()
    pq.write_table(converted, buffer, **PARQUET_OPTIONS)
    original = buffer.getvalue()
    original_file = pq.ParquetFile(pa.BufferReader(original))
    data = _replace_created_by(original.to_pybytes(), original_file.metadata.created_by)
    patched_file = pq.ParquetFile(pa.BufferReader(data))
    if patched_file.metadata.created_by != NEUTRAL_CREATED_BY:
        raise RuntimeError("the neutral created_by did not read back")
    before, after = original_file.metadata.to_dict(), patched_file.metadata.to_dict()
    if before["row_groups"] != after["row_groups"] or before["num_rows"] != after["num_rows"]:
        raise RuntimeError("replacing created_by changed the Parquet metadata")
    # Without row groups (no rows) the whole file is the one piece.
    groups = patched_file.num_row_groups
    pieces = (
        ((patched_file.read_row_group(g), original_file.read_row_group(g)) for g in range(groups))
        if groups
        else iter([(patched_file.read(), original_file.read())])
    )
    offset = 0
    unequal = False
    for read, unpatched in pieces:
        if not _decoded_alike(read, unpatched):
            raise RuntimeError("replacing created_by changed how the Parquet file decodes")
        try:
            same = read.cast(converted.schema).equals(converted.slice(offset, read.num_rows))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
            raise ValueError(f"the columns do not survive Parquet: {error}") from error
        unequal = unequal or not same
        offset += read.num_rows
    # ``equals`` treats NaN as unequal to itself; the IPC bytes of the whole table compare
    # NaNs bitwise (a slice's IPC bytes are laid out differently from a fresh table's).
    if unequal and _ipc_bytes(patched_file.read().cast(converted.schema)) != _ipc_bytes(converted):
        raise ValueError("the columns do not survive Parquet unchanged")
    Path(path).write_bytes(data)


# ----------------------------------------------------------------------------- JSONL


def _json_value(value: object) -> object:
    """A value as JSON can hold it: NaN, None, pandas' NA and NaT -> null; numpy scalars
    and arrays -> Python; mappings with their keys sorted; an infinity is an error (JSON
    has none, and writing null would hide it)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        return _json_value(value.item())
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            raise ValueError(f"{value} has no JSON form")
        return value
    if isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, (np.ndarray, list, tuple)):
        return [
            _json_value(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)
        ]
    if isinstance(value, Mapping):
        return {str(k): _json_value(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    raise ValueError(f"{type(value).__name__} has no JSON form")


def _frame_rows(frame: pd.DataFrame) -> Iterator[tuple[Any, ...]]:
    # itertuples yields Python scalars for numeric columns (numpy ones for some dtypes,
    # which _json_value and _csv_value unwrap).
    return frame.itertuples(index=False, name=None)


def write_jsonl(
    rows: pd.DataFrame | Iterable[Mapping[str, object]],
    path: StrPath,
    *,
    columns: Sequence[str] | None = None,
) -> None:
    """One JSON object per line (``\\n``-terminated, UTF-8, non-ASCII written as is,
    compact separators). Keys in ``columns`` order: by default the frame's columns, or,
    for mappings, each row's keys sorted. A mapping must have exactly ``columns``.
    Floats are written as Python's ``repr`` (the shortest form that reads back equal)."""
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        for row in _keyed_rows(rows, columns):
            out.write(
                json.dumps(row, ensure_ascii=False, separators=(",", ":"), allow_nan=False) + "\n"
            )


def _keyed_rows(
    rows: pd.DataFrame | Iterable[Mapping[str, object]], columns: Sequence[str] | None
) -> Iterator[dict[str, object]]:
    if isinstance(rows, pd.DataFrame):
        names = [str(c) for c in rows.columns] if columns is None else list(columns)
        frame = rows if columns is None else rows[list(columns)]
        for values in _frame_rows(frame):
            yield {name: _json_value(v) for name, v in zip(names, values, strict=True)}
        return
    for row in rows:
        names = sorted(row) if columns is None else list(columns)
        if set(row) != set(names):
            raise ValueError(f"row keys {sorted(row)} are not the columns {sorted(names)}")
        yield {name: _json_value(row[name]) for name in names}


# ------------------------------------------------------------------------------- CSV


def _csv_value(value: object) -> object:
    """Python scalars for ``safe_cell``: a numpy integer is not an ``int`` to it, and its
    text ``-1`` would be defused like a formula; pandas' NA and NaT are empty cells."""
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (np.ndarray, list, tuple, Mapping)):
        return _json_value(value)  # numpy scalars and NaN inside, as JSON has them
    return value


def _csv_cells(column: pd.Series) -> Sequence[object]:
    """A column's cells as ``write_csv`` writes them, the value ``_frame_rows`` gives put
    through ``_csv_value`` and ``safe_cell``. A text column is defused once per distinct
    value (a million rows of a few licenses make a few calls); integers are themselves."""
    if isinstance(column.dtype, pd.StringDtype):
        codes, distinct = pd.factorize(column)
        cells = np.array([safe_cell(value) for value in distinct] + [""], dtype=object)
        return cells[codes]  # code -1 (missing) takes the trailing ""
    if isinstance(column.dtype, np.dtype) and column.dtype.kind in "iu":
        return column.tolist()  # not nullable Int64: its missing pd.NA must become ""
    return [safe_cell(_csv_value(value)) for value in column]


def write_csv(frame: pd.DataFrame, path: StrPath) -> None:
    """The frame with a header row, ``\\n`` line endings, UTF-8, every text cell (header
    included) defused by ``core.csv.safe_cell``: numbers stay numbers, ``None``/NaN are
    empty, lists and dicts are compact JSON."""
    columns = [_csv_cells(frame.iloc[:, k]) for k in range(frame.shape[1])]
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([safe_cell(str(c)) for c in frame.columns])
        writer.writerows(zip(*columns, strict=True))


# ---------------------------------------------------------------------------- hashes


def sha256_file(path: StrPath) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_entry(path: StrPath, root: StrPath) -> FileEntry:
    """The manifest entry of a file under ``root``: its ``/``-separated path relative to
    ``root``, its size and its sha256."""
    resolved, base = Path(path).resolve(), Path(root).resolve()
    if not resolved.is_relative_to(base):
        raise ValueError(f"{path} is not under {root}")
    return {
        "path": resolved.relative_to(base).as_posix(),
        "bytes": resolved.stat().st_size,
        "sha256": sha256_file(resolved),
    }
