"""Row preparation: every manifest row checked against its project, every problem kept.

``_RowCheck`` validates one row's values (strings, license, consent, control label,
metadata, text or image) and ``_prepare_rows`` turns a whole ``ImportSource`` into
``PreparedItem``s or ``RowError``s. Then the rows are checked against each other
(duplicate ids and content in the batch), against the project (ids and content it already
has) and against taken-down content, which may never come back.
"""

import json
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator

from annotation.ingest.images import (
    SanitizedImage,
    _bad_characters,
    _bad_characters_within,
    normalize_text,
    sanitize_image,
    sha256_hex,
    text_sha256,
)
from annotation.ingest.manifest import (
    KNOWN_COLUMNS,
    FileStore,
    ImportSource,
    ManifestRow,
    RowError,
    _json_loads,
    _missing_columns,
    row_error,
)
from annotation.ingest.stores import MAX_PATH_CHARS, safe_relative_path
from annotation.models import ControlKind, Item, Modality, Project, SubjectConsent
from annotation.schemas import LabelSchema, SchemaError
from core.errors import ValidationFailed
from provenance.licenses import UNKNOWN as LICENSE_UNKNOWN
from provenance.licenses import LicenseTable, attribution_text
from provenance.licenses import parse as license_parse
from provenance.selectors import license_table, tombstone_matches

MAX_METADATA_CHARS = 64_000
MAX_ATTRIBUTION_CHARS = 5000


# ---------------------------------------------------------------- row validation


@dataclass(frozen=True)
class PreparedItem:
    line: int
    external_id: str
    text: str
    image: SanitizedImage | None
    sha256: str
    license: str
    source_name: str
    source_url: str
    creator: str
    attribution: str
    metadata: dict[str, Any]
    subject_consent: str
    control: str
    expected_value: Any


@dataclass(frozen=True)
class RowContext:
    """What every row of one import is checked against."""

    modality: str
    schema: LabelSchema
    licenses: LicenseTable


class _RowCheck:
    """Validates one manifest row, collecting every problem in it."""

    def __init__(self, row: ManifestRow, context: RowContext) -> None:
        self.line = row.line
        self.values = row.values
        self.context = context
        self.errors: list[RowError] = []

    def fail(self, field_name: str, code: str, message: str) -> None:
        self.errors.append(row_error(self.line, field_name, code, message))

    def string(self, name: str, *, max_length: int, required: bool = False) -> str:
        raw = self.values.get(name)
        if raw is None:
            raw = ""
        if isinstance(raw, bool) or not isinstance(raw, str | int):
            self.fail(name, "invalid_type", f"{name} must be a string.")
            return ""
        value = unicodedata.normalize("NFC", str(raw)).strip()
        if _bad_characters(value):
            self.fail(name, "invalid_character", f"{name} contains a NUL or invalid character.")
            return ""
        if required and not value:
            self.fail(name, "required", f"{name} is required.")
        elif len(value) > max_length:
            self.fail(name, "too_long", f"{name} is longer than {max_length} characters.")
        return value

    def license(self) -> str:
        raw = self.string("license", max_length=500)
        if not raw:
            # The column is required; an empty cell records "no license", which the license
            # report lists as a finding (NOASSERTION says the same explicitly).
            return ""
        try:
            return license_parse(raw, table=self.context.licenses)
        except ValueError as error:
            self.fail("license", "invalid_license", str(error))
            return ""

    def subject_consent(self) -> str:
        """Whether the people shown consented; texts default to "no one shown"."""
        value = self.string("subject_consent", max_length=16).lower()
        if not value:
            if self.context.modality == Modality.TEXT:
                return SubjectConsent.NOT_APPLICABLE
            return SubjectConsent.UNKNOWN
        if value == SubjectConsent.OBTAINED:
            # A claim of consent needs its record (text, purposes, evidence): given per item
            # on the item's page or through the API, never by a bare import column.
            self.fail(
                "subject_consent",
                "consent_needs_record",
                "Record obtained consent on the item with its evidence, not in the manifest.",
            )
        elif value not in SubjectConsent.values:
            choices = ", ".join(v for v in SubjectConsent.values if v != SubjectConsent.OBTAINED)
            self.fail("subject_consent", "invalid_choice", f"subject_consent must be {choices}.")
        return value

    def control(self) -> tuple[str, Any]:
        """A gold or attention-check item and its expected label, valid for the schema."""
        kind = self.string("control", max_length=10).lower()
        raw = self.values.get("expected_label")
        if kind not in ControlKind.values:
            self.fail("control", "invalid_choice", "control must be empty, gold or attention.")
            return "", None
        if not kind:
            if raw not in (None, ""):
                self.fail(
                    "expected_label",
                    "not_a_control",
                    "expected_label needs control gold/attention.",
                )
            return "", None
        if raw in (None, ""):
            self.fail("expected_label", "required", "A control item needs its expected_label.")
            return kind, None
        if isinstance(raw, str) and self.context.schema.kind == "multi_label":
            raw = [part.strip() for part in raw.split("|") if part.strip()]
        try:
            return kind, self.context.schema.validate(raw)
        except SchemaError as error:
            self.fail("expected_label", "invalid_label", str(error))
            return kind, None

    def source_url(self) -> str:
        url = self.string("source_url", max_length=200)
        if url:
            try:
                URLValidator(schemes=["http", "https"])(url)
            except DjangoValidationError:
                self.fail("source_url", "invalid_url", "source_url must be an http(s) URL.")
        return url

    def metadata(self) -> dict[str, Any]:
        raw = self.values.get("metadata")
        given: Any = {}
        if isinstance(raw, str) and raw.strip():
            try:
                given = _json_loads(raw)
            except (ValueError, RecursionError):
                self.fail("metadata", "invalid_metadata", "metadata must be a JSON object.")
                return {}
        elif raw not in (None, ""):
            given = raw
        if not isinstance(given, dict):
            self.fail("metadata", "invalid_metadata", "metadata must be a JSON object.")
            return {}
        extra = {key: value for key, value in self.values.items() if key not in KNOWN_COLUMNS}
        clash = sorted(set(extra) & set(given))
        if clash:
            self.fail(
                "metadata",
                "metadata_conflict",
                f"{clash[0]!r} is both a column and a metadata key.",
            )
        merged = {**extra, **given}
        try:
            encoded = json.dumps(merged, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError, RecursionError):
            self.fail("metadata", "invalid_metadata", "metadata cannot be stored as JSON.")
            return {}
        if _bad_characters_within(merged):
            self.fail(
                "metadata", "invalid_character", "metadata contains a NUL or invalid character."
            )
        elif len(encoded) > MAX_METADATA_CHARS:
            self.fail("metadata", "too_long", f"metadata is over {MAX_METADATA_CHARS} characters.")
        return merged

    def text(self, modality: str) -> str:
        raw = self.values.get("text")
        if modality == Modality.IMAGE:
            if raw not in (None, ""):
                self.fail("text", "modality_mismatch", "An image project takes no text column.")
            return ""
        if raw is None:
            self.fail("text", "required", "text is required.")
            return ""
        if not isinstance(raw, str):
            self.fail("text", "invalid_type", "text must be a string.")
            return ""
        try:
            return normalize_text(raw)
        except ValidationFailed as error:
            self.fail("text", error.code, error.message)
            return ""

    def image(self, modality: str, files: FileStore | None) -> tuple[SanitizedImage | None, str]:
        """The sanitised image and the sha256 of the bytes as uploaded."""
        path = self.string("file", max_length=MAX_PATH_CHARS, required=modality == Modality.IMAGE)
        if modality == Modality.TEXT:
            if path:
                self.fail("file", "modality_mismatch", "A text project takes no files.")
            return None, ""
        if not path or files is None:
            return None, ""
        try:
            data = files.read(safe_relative_path(path), limit=settings.CHORUS_MAX_IMAGE_BYTES)
            return sanitize_image(data), sha256_hex(data)
        except ValidationFailed as error:
            self.fail("file", error.code, error.message)
            return None, ""


def _prepare_row(
    row: ManifestRow, *, context: RowContext, files: FileStore | None
) -> PreparedItem | list[RowError]:
    modality = context.modality
    check = _RowCheck(row, context)
    external_id = check.string("external_id", max_length=200, required=True)
    text = check.text(modality)
    image, image_sha = check.image(modality, files)
    license_expression = check.license()
    source_name = check.string("source", max_length=200)
    source_url = check.source_url()
    creator = check.string("creator", max_length=200)
    attribution = check.string("attribution", max_length=MAX_ATTRIBUTION_CHARS)
    subject_consent = check.subject_consent()
    control, expected_value = check.control()
    metadata = check.metadata()
    if check.errors:
        return check.errors
    if source_url:
        metadata.setdefault("source_url", source_url)
    if not attribution and creator and license_expression not in ("", LICENSE_UNKNOWN):
        attribution = attribution_text(
            title=str(metadata.get("title") or external_id),
            creator=creator,
            license=license_expression,
            source_url=source_url,
        )[:MAX_ATTRIBUTION_CHARS]
    return PreparedItem(
        line=row.line,
        external_id=external_id,
        text=text,
        image=image,
        sha256=image_sha if image is not None else text_sha256(text),
        license=license_expression,
        source_name=source_name or source_url,
        source_url=source_url,
        creator=creator,
        attribution=attribution,
        metadata=metadata,
        subject_consent=subject_consent,
        control=control,
        expected_value=expected_value,
    )


def _row_context(project: Project) -> RowContext:
    return RowContext(
        modality=project.modality,
        schema=LabelSchema.from_json(project.label_schema),
        licenses=license_table(),
    )


def _prepare_rows(
    source: ImportSource, *, context: RowContext
) -> tuple[list[PreparedItem], list[RowError]]:
    prepared: list[PreparedItem] = []
    errors = list(source.errors)
    missing = _missing_columns(source.rows, context.modality)
    if missing:
        return [], errors + missing
    for row in source.rows:
        result = _prepare_row(row, context=context, files=source.files)
        if isinstance(result, PreparedItem):
            prepared.append(result)
        else:
            errors.extend(result)
    return prepared, errors


def _content_field(item: PreparedItem) -> str:
    return "file" if item.image is not None else "text"


def _batch_duplicates(prepared: Sequence[PreparedItem]) -> list[RowError]:
    errors: list[RowError] = []
    first_id: dict[str, int] = {}
    first_content: dict[str, int] = {}
    for item in prepared:
        if item.external_id in first_id:
            first = first_id[item.external_id]
            message = f"external_id {item.external_id!r} is already used on line {first}."
            errors.append(row_error(item.line, "external_id", "duplicate_external_id", message))
        else:
            first_id[item.external_id] = item.line
        if item.sha256 in first_content:
            message = f"Same content as line {first_content[item.sha256]}."
            errors.append(row_error(item.line, _content_field(item), "duplicate_content", message))
        else:
            first_content[item.sha256] = item.line
    return errors


def _chunks(values: Sequence[str], size: int = 500) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _existing_conflicts(project: Project, prepared: Sequence[PreparedItem]) -> list[RowError]:
    """Rows whose external_id or content the project already has."""
    ids = [item.external_id for item in prepared]
    hashes = [item.sha256 for item in prepared]
    items = Item.objects.filter(project=project)
    taken_ids: set[str] = set()
    taken_hashes: set[str] = set()
    for chunk in _chunks(ids):
        taken_ids.update(items.filter(external_id__in=chunk).values_list("external_id", flat=True))
    for chunk in _chunks(hashes):
        # Taken-down content is reported as such by ``_taken_down``, not as a duplicate.
        live = items.filter(sha256__in=chunk, tombstoned_at__isnull=True)
        taken_hashes.update(live.values_list("sha256", flat=True))
    errors: list[RowError] = []
    for item in prepared:
        if item.external_id in taken_ids:
            message = f"The project already has an item with external_id {item.external_id!r}."
            errors.append(row_error(item.line, "external_id", "duplicate_external_id", message))
        if item.sha256 in taken_hashes:
            message = "The project already has an item with the same content."
            errors.append(row_error(item.line, _content_field(item), "duplicate_content", message))
    return errors


def _taken_down(prepared: Sequence[PreparedItem]) -> list[RowError]:
    """Rows whose content matches taken-down content: it must never come back."""
    matches = tombstone_matches(
        sha256s=[item.sha256 for item in prepared],
        phashes=[item.image.phash for item in prepared if item.image is not None],
    )
    errors: list[RowError] = []
    for item in prepared:
        tombstone = matches.get(item.sha256)
        if tombstone is None and item.image is not None:
            tombstone = matches.get(item.image.phash)
        if tombstone is not None:
            message = (
                "This content was taken down on "
                f"{tombstone.created_at:%Y-%m-%d} and may not be imported again."
            )
            errors.append(row_error(item.line, _content_field(item), "taken_down", message))
    return errors
