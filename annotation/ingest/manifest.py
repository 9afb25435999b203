"""Manifests: the columns an import may have, CSV and JSONL parsing, and import errors.

``MANIFEST_COLUMNS`` is the one list of columns (the parser, the import page and the
README's table read it). A parsed manifest is an ``ImportSource``: its rows with their
line numbers, the errors found while parsing, and the ``FileStore`` its ``file`` values
are read from (implemented by ``stores``). Every problem is a ``RowError`` with its line,
and ``_invalid`` turns a list of them into the one ``ValidationFailed`` an import raises.
"""

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict

from annotation.models import Modality
from core.errors import ValidationFailed

# ---------------------------------------------------------------- errors


class RowError(TypedDict):
    """One problem in an import. ``line`` is None for problems of the whole file or archive."""

    line: int | None
    field: str
    code: str
    message: str


def row_error(line: int | None, field_name: str, code: str, message: str) -> RowError:
    return {"line": line, "field": field_name, "code": code, "message": message}


def describe_error(error: RowError) -> str:
    """One human-readable line, as the command and pages show it."""
    where = f"line {error['line']}" if error["line"] is not None else "file"
    column = f", {error['field']}" if error["field"] else ""
    return f"{where}{column}: {error['message']} [{error['code']}]"


def _invalid(
    errors: list[RowError], *, code: str = "import_invalid", message: str = ""
) -> ValidationFailed:
    ordered = sorted(errors, key=lambda e: (e["line"] is not None, e["line"] or 0, e["field"]))
    summary = message or (
        f"{len(ordered)} problem(s) found; nothing was imported. "
        f"First: {describe_error(ordered[0])}"
    )
    return ValidationFailed(summary, code=code, extra={"errors": ordered})


def _file_error(code: str, message: str, *, field_name: str = "file") -> ValidationFailed:
    return _invalid([row_error(None, field_name, code, message)], code=code, message=message)


# ---------------------------------------------------------------- where files are read from


class FileStore(Protocol):
    """Files an import's manifest may name, addressed by safe relative paths."""

    def has(self, path: str) -> bool: ...

    def read(self, path: str, *, limit: int) -> bytes:
        """At most ``limit + 1`` bytes, so callers can tell an oversized file."""
        ...


# ---------------------------------------------------------------- manifests


@dataclass(frozen=True)
class ManifestColumn:
    """One column a manifest may have. The parser, the import page and the README's table
    (checked by a test) all read ``MANIFEST_COLUMNS``: there is no other list."""

    name: str
    meaning: str
    required: bool = False
    # Only for projects of this modality ("" for both).
    modality: str = ""


MANIFEST_COLUMNS = (
    ManifestColumn("external_id", "Your id for the item, unique in the project.", required=True),
    ManifestColumn("text", "The text to label.", required=True, modality=Modality.TEXT),
    ManifestColumn(
        "file",
        "The image's path inside the zip (or the server folder).",
        required=True,
        modality=Modality.IMAGE,
    ),
    ManifestColumn(
        "license",
        "SPDX license expression, e.g. CC-BY-4.0 or MIT OR Apache-2.0. A cell left empty (or "
        "NOASSERTION) records an unknown license, which the license report lists.",
        required=True,
    ),
    ManifestColumn("source", "Where the item comes from (collection or site name)."),
    ManifestColumn("source_url", "Link to the source (http or https)."),
    ManifestColumn("creator", "Who made the item."),
    ManifestColumn(
        "attribution",
        "The attribution the license asks for; built from creator and license when empty.",
    ),
    ManifestColumn(
        "subject_consent",
        "Whether the people shown consented: not_applicable, not_obtained or unknown (the "
        "default for images; not_applicable for texts). Obtained consent is recorded on the "
        "item with its evidence.",
    ),
    ManifestColumn(
        "control", "gold or attention for a quality-control item; empty for a regular item."
    ),
    ManifestColumn(
        "expected_label",
        "A control item's expected answer (the choice's value; multi-label: values joined by |).",
    ),
    ManifestColumn(
        "metadata", "A JSON object with anything else; other columns are kept as metadata too."
    ),
)
KNOWN_COLUMNS = frozenset(column.name for column in MANIFEST_COLUMNS)


def manifest_columns(modality: str) -> list[ManifestColumn]:
    """The columns a manifest for a project of this modality may have, in the page's order."""
    return [column for column in MANIFEST_COLUMNS if column.modality in ("", modality)]


@dataclass(frozen=True)
class ManifestRow:
    line: int
    values: dict[str, Any]


def _missing_columns(rows: Sequence[ManifestRow], modality: str) -> list[RowError]:
    """One error per required column that no row has (not one per row), on line 1: the
    header of a CSV, the first object of a JSONL file."""
    if not rows:
        return []
    present = {name for row in rows for name in row.values}
    return [
        row_error(
            1,
            column.name,
            "missing_column",
            f"The manifest has no {column.name} column; it is required.",
        )
        for column in manifest_columns(modality)
        if column.required and column.name not in present
    ]


@dataclass
class ImportSource:
    """A parsed manifest, its parse errors, and where its ``file`` values are read from."""

    kind: str
    rows: list[ManifestRow]
    errors: list[RowError] = field(default_factory=list)
    files: FileStore | None = None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


def _json_loads(raw: str) -> Any:
    # NaN/Infinity are not JSON, and PostgreSQL's jsonb refuses them.
    return json.loads(raw, parse_constant=_reject_constant)


def _decode_utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        message = f"The manifest is not UTF-8 text (byte {error.start} on line {line})."
        raise _invalid(
            [row_error(line, "", "invalid_encoding", message)], code="import_invalid"
        ) from error


def _csv_header(cells: list[str]) -> tuple[list[str], list[RowError]]:
    columns: list[str] = []
    errors: list[RowError] = []
    for position, cell in enumerate(cells, start=1):
        name = cell.strip()
        name = name.lower() if name.lower() in KNOWN_COLUMNS else name
        if not name:
            errors.append(row_error(1, "", "invalid_header", f"Column {position} has no name."))
        elif name in columns:
            errors.append(row_error(1, name, "invalid_header", f"Column {name!r} appears twice."))
        columns.append(name)
    return columns, errors


def parse_csv(data: bytes) -> tuple[list[ManifestRow], list[RowError]]:
    """Rows of a CSV manifest. The header is line 1; a row's line is where it starts."""
    reader = csv.reader(io.StringIO(_decode_utf8(data), newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return [], [row_error(1, "", "manifest_empty", "The manifest is empty.")]
    except csv.Error as error:
        return [], [row_error(1, "", "invalid_csv", f"Unreadable header: {error}.")]
    columns, errors = _csv_header(header)
    if errors:
        return [], errors
    rows: list[ManifestRow] = []
    previous_end = reader.line_num
    while True:
        line = previous_end + 1
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            errors.append(row_error(line, "", "invalid_csv", f"Unreadable row: {error}."))
            if reader.line_num == previous_end:
                break
            previous_end = reader.line_num
            continue
        previous_end = reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        if len(record) > len(columns):
            message = f"The row has {len(record)} fields; the header has {len(columns)}."
            errors.append(row_error(line, "", "too_many_fields", message))
            continue
        values = {name: record[i] if i < len(record) else "" for i, name in enumerate(columns)}
        rows.append(ManifestRow(line, values))
    return rows, errors


def parse_jsonl(data: bytes) -> tuple[list[ManifestRow], list[RowError]]:
    """Rows of a JSONL manifest, one object per line; blank lines skipped but counted."""
    rows: list[ManifestRow] = []
    errors: list[RowError] = []
    for line, raw in enumerate(_decode_utf8(data).split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            value = _json_loads(raw)
        except json.JSONDecodeError as error:
            message = f"Not valid JSON: {error.msg} (column {error.colno})."
            errors.append(row_error(line, "", "invalid_json", message))
            continue
        except (ValueError, RecursionError) as error:
            errors.append(row_error(line, "", "invalid_json", f"Not valid JSON: {error}."))
            continue
        if not isinstance(value, dict):
            errors.append(row_error(line, "", "invalid_json", "Each line must be a JSON object."))
            continue
        rows.append(ManifestRow(line, value))
    return rows, errors


def _parse_manifest(data: bytes, kind: str) -> tuple[list[ManifestRow], list[RowError]]:
    return parse_csv(data) if kind == "csv" else parse_jsonl(data)
