"""Item ingest: image sanitisation, manifest parsing, archive safety, all-or-nothing import.

Invariants:

- Nothing stored is the client's bytes as uploaded. Every image is decoded and re-encoded
  from its pixels with no EXIF, GPS, XMP, IPTC, MakerNote or comments (the ICC profile is
  kept and the EXIF orientation applied first); texts are NFC-normalised.
- An import stores every row or none, and reports every bad row with its line number.
- Archives are read in memory, never extracted. No archive member, manifest ``file`` value
  or server folder can name anything outside the archive or folder it belongs to.
"""

import csv
import hashlib
import io
import json
import logging
import re
import unicodedata
import uuid
import warnings
import zipfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol, TypedDict

import imagehash
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.utils import timezone
from PIL import ExifTags, Image, ImageCms, ImageFile, ImageOps, UnidentifiedImageError

from annotation.models import (
    ControlKind,
    ImportBatch,
    Item,
    Modality,
    Project,
    ProjectStatus,
    SubjectConsent,
)
from annotation.schemas import LabelSchema, SchemaError
from core.db import table_statistics_refresh
from core.errors import (
    ApplicationError,
    Conflict,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    ValidationFailed,
)
from core.models import User
from provenance.licenses import UNKNOWN as LICENSE_UNKNOWN
from provenance.licenses import LicenseTable, attribution_text
from provenance.licenses import parse as license_parse
from provenance.models import Source
from provenance.selectors import license_table, tombstone_matches
from provenance.services import audit_record, source_get_or_create

logger = logging.getLogger(__name__)

# Imports at least this large refresh the planner's statistics of the item table at once.
ANALYZE_AFTER_ROWS = 1000

# Pillow format name -> (our format name, file extension).
ALLOWED_FORMATS: dict[str, tuple[str, str]] = {
    "JPEG": ("jpeg", "jpg"),
    "PNG": ("png", "png"),
    "WEBP": ("webp", "webp"),
}
JPEG_QUALITY = 90
WEBP_QUALITY = 90
MAX_ICC_BYTES = 1024 * 1024
MAX_ARCHIVE_MEMBERS = 20_000
# Images and manifests barely compress; a member inflating more than this is a bomb.
MAX_COMPRESSION_RATIO = 100
RATIO_CHECK_MIN_BYTES = 1024 * 1024
MAX_PATH_CHARS = 1000
MAX_METADATA_CHARS = 64_000
MAX_ATTRIBUTION_CHARS = 5000
MAX_STORED_ERRORS = 1000
MANIFEST_NAMES = ("manifest.csv", "manifest.jsonl")
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")

IMAGE_FORMAT_NOT_ALLOWED = "image_format_not_allowed"
IMAGE_TOO_LARGE = "image_too_large"
IMAGE_TOO_MANY_PIXELS = "image_too_many_pixels"
IMAGE_CORRUPT = "image_corrupt"


class ImageRejected(ValidationFailed):
    """An uploaded image Chorus will not store. ``code`` is one of the ``IMAGE_*`` constants."""

    default_code = IMAGE_CORRUPT


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


# ---------------------------------------------------------------- images


@dataclass(frozen=True)
class SanitizedImage:
    """An image re-encoded from its pixels; ``content`` is what gets stored."""

    content: bytes
    format: str
    extension: str
    width: int
    height: int
    removed_metadata: list[str]
    phash: str


# Names in ``removed_metadata``, in the order they are reported.
METADATA_KINDS = (
    "exif",
    "gps",
    "makernote",
    "xmp",
    "iptc",
    "comment",
    "text",
    "icc_profile",
    "extra_frames",
    "trailing_data",
)

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"8BPS", "PSD"),
    (b"%PDF", "PDF"),
    (b"%!PS", "PostScript/EPS"),
    (b"\xc5\xd0\xd3\xc6", "EPS"),
    (b"SIMPLE  =", "FITS"),
    (b"BM", "BMP"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"PK\x03\x04", "ZIP"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
)


def _sniff(data: bytes) -> str:
    """A name for what the bytes look like, for error messages only (no parser runs)."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for magic, name in _SIGNATURES:
        if data.startswith(magic):
            return name
    head = data[:1024].lstrip().lower()
    if b"<svg" in head:
        return "SVG"
    if head.startswith((b"<!doctype html", b"<html")) or b"<script" in head:
        return "HTML"
    if head.startswith(b"<?xml"):
        return "XML"
    return "an unknown format"


def _not_allowed_or_corrupt(data: bytes) -> ImageRejected:
    looks_like = _sniff(data)
    if looks_like in ALLOWED_FORMATS:
        return ImageRejected(
            f"The file looks like {looks_like} but cannot be read.", code=IMAGE_CORRUPT
        )
    return ImageRejected(
        f"Only JPEG, PNG and WebP images are accepted; this file looks like {looks_like}.",
        code=IMAGE_FORMAT_NOT_ALLOWED,
        extra={"detected": looks_like},
    )


def _too_many_pixels(width: int, height: int) -> ImageRejected:
    limit = settings.CHORUS_MAX_IMAGE_PIXELS
    return ImageRejected(
        f"The image declares {width}x{height} pixels; at most {limit:,} pixels are accepted.",
        code=IMAGE_TOO_MANY_PIXELS,
        extra={"width": width, "height": height, "max_pixels": limit},
    )


def _open_image(data: bytes) -> ImageFile.ImageFile:
    """Open (parse headers only) with the format allowlist and the pixel cap as errors."""
    # Our pixel cap is below Pillow's warning threshold, so the explicit check below is the
    # real guard; turning the warning into an error covers Pillow's own check as well.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise ImageRejected(str(error), code=IMAGE_TOO_MANY_PIXELS) from error
        except UnidentifiedImageError as error:
            raise _not_allowed_or_corrupt(data) from error
        except Exception as error:  # Pillow's parsers raise many types on malformed input.
            raise ImageRejected("The image cannot be read.", code=IMAGE_CORRUPT) from error
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ImageRejected("The image has no pixels.", code=IMAGE_CORRUPT)
    if width * height > settings.CHORUS_MAX_IMAGE_PIXELS:
        raise _too_many_pixels(width, height)
    return image


def _decode(data: bytes) -> ImageFile.ImageFile:
    """Verify the file's structure, then reopen and decode its pixels."""
    try:
        _open_image(data).verify()
    except ImageRejected:
        raise
    except Exception as error:
        raise ImageRejected("The image is damaged.", code=IMAGE_CORRUPT) from error
    # verify() leaves the image unusable: Pillow requires a fresh open to decode.
    image = _open_image(data)
    try:
        image.load()
    except Exception as error:
        raise ImageRejected("The image is truncated or damaged.", code=IMAGE_CORRUPT) from error
    return image


def _exif_kinds(image: Image.Image) -> set[str]:
    found: set[str] = set()
    if image.info.get("exif"):
        found.add("exif")
    try:
        exif = image.getexif()
        if len(exif):
            found.add("exif")
        if ExifTags.Base.GPSInfo in exif or exif.get_ifd(ExifTags.IFD.GPSInfo):
            found.add("gps")
        if exif.get_ifd(ExifTags.IFD.Exif).get(ExifTags.Base.MakerNote):
            found.add("makernote")
    except Exception:  # A malformed EXIF block is still EXIF, and is dropped anyway.
        logger.debug("unreadable EXIF block", exc_info=True)
    return found


def _text_chunk_kinds(image: Image.Image) -> set[str]:
    found: set[str] = set()
    chunks: dict[str, Any] = getattr(image, "text", None) or {}
    for key in chunks:
        lowered = key.lower()
        if "iptc" in lowered:
            found.add("iptc")
        elif "exif" in lowered:
            found.add("exif")
        elif "xmp" in lowered:
            found.add("xmp")
        else:
            found.add("text")
    return found


def _png_end(data: bytes) -> int | None:
    offset = 8
    while offset + 12 <= len(data):
        length = int.from_bytes(data[offset : offset + 4], "big")
        kind = data[offset + 4 : offset + 8]
        offset += 12 + length
        if kind == b"IEND":
            return offset
    return None


def _has_trailing_data(data: bytes, pillow_format: str) -> bool:
    """Bytes after the image's end marker: the usual way to smuggle HTML into an image."""
    if pillow_format == "PNG":
        end = _png_end(data)
        return end is not None and len(data) > end
    if pillow_format == "WEBP":
        riff_size = int.from_bytes(data[4:8], "little")
        return len(data) > 8 + riff_size + (riff_size & 1)
    return not data.rstrip(b"\x00").endswith(b"\xff\xd9")


def _metadata_found(image: ImageFile.ImageFile, data: bytes) -> set[str]:
    found = _exif_kinds(image) | _text_chunk_kinds(image)
    if image.info.get("xmp"):
        found.add("xmp")
    applist: list[tuple[str, bytes]] = getattr(image, "applist", [])
    if "photoshop" in image.info or any(marker == "APP13" for marker, _ in applist):
        found.add("iptc")
    if image.info.get("comment"):
        found.add("comment")
    if getattr(image, "n_frames", 1) > 1:
        found.add("extra_frames")
    if _has_trailing_data(data, image.format or ""):
        found.add("trailing_data")
    return found


def _usable_icc(raw: Any) -> bytes | None:
    """The upload's ICC profile if it is a real, reasonably sized profile; else None."""
    if not isinstance(raw, bytes) or not raw or len(raw) > MAX_ICC_BYTES:
        return None
    try:
        ImageCms.ImageCmsProfile(io.BytesIO(raw))
    except Exception:  # Not a profile lcms can read: it would only be a payload carrier.
        return None
    return raw


def _upright(image: Image.Image) -> Image.Image:
    try:
        turned = ImageOps.exif_transpose(image)
    except Exception:  # A broken orientation tag: keep the pixels as stored.
        logger.debug("could not apply EXIF orientation", exc_info=True)
        turned = None
    return turned if turned is not None else image.copy()


def _cmyk_to_rgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    if icc is not None:
        try:
            converted = ImageCms.profileToProfile(
                image,
                ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                ImageCms.createProfile("sRGB"),
                outputMode="RGB",
            )
            if converted is not None:
                return converted
        except Exception:  # Fall back to a naive conversion below.
            logger.debug("CMYK profile conversion failed", exc_info=True)
    return image.convert("RGB")


GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16"})


def _encodable(image: Image.Image, pillow_format: str) -> Image.Image:
    """Pixels in a mode the output format stores, transparency kept where it can be."""
    has_alpha = "A" in image.mode or "transparency" in image.info
    if pillow_format == "JPEG":
        return image if image.mode in ("L", "RGB") else image.convert("RGB")
    if pillow_format == "PNG":
        keep = image.mode in ("1", "L", "LA", "RGB", "RGBA", "I", "I;16")
        if keep and not ("transparency" in image.info and image.mode in ("L", "RGB")):
            return image
    elif image.mode in ("RGB", "RGBA"):
        return image
    return image.convert("RGBA" if has_alpha else "RGB")


def _encode(image: Image.Image, pillow_format: str, icc: bytes | None) -> bytes:
    # Nothing from the upload may ride along implicitly: JPEG's encoder falls back to
    # info["comment"] and PNG's to info["icc_profile"]. Exif is never passed: even after
    # exif_transpose it still carries GPS.
    image.info = {}
    options: dict[str, Any] = {"icc_profile": icc} if icc else {}
    out = io.BytesIO()
    if pillow_format == "JPEG":
        image.save(out, "JPEG", quality=JPEG_QUALITY, **options)
    elif pillow_format == "PNG":
        image.save(out, "PNG", **options)
    else:
        image.save(out, "WEBP", quality=WEBP_QUALITY, method=4, **options)
    return out.getvalue()


def sanitize_image(data: bytes) -> SanitizedImage:
    """Decode an upload and re-encode it from pixels, in its own (allowed) format.

    Refuses, with an ``ImageRejected`` code: formats other than JPEG/PNG/WebP
    (``image_format_not_allowed``), files over ``CHORUS_MAX_IMAGE_BYTES``
    (``image_too_large``), more than ``CHORUS_MAX_IMAGE_PIXELS`` pixels, checked on the
    declared size before any decoding (``image_too_many_pixels``), and damaged files
    (``image_corrupt``). The result carries no EXIF/GPS/XMP/IPTC/comments and only a
    valid ICC profile; ``removed_metadata`` lists what the upload carried.
    """
    limit = settings.CHORUS_MAX_IMAGE_BYTES
    if len(data) > limit:
        raise ImageRejected(
            f"The image is {len(data):,} bytes; at most {limit:,} bytes are accepted.",
            code=IMAGE_TOO_LARGE,
        )
    image = _decode(data)
    pillow_format = "JPEG" if image.format == "MPO" else (image.format or "")
    if pillow_format not in ALLOWED_FORMATS:
        raise _not_allowed_or_corrupt(data)
    found = _metadata_found(image, data)
    raw_icc = image.info.get("icc_profile")
    icc = _usable_icc(raw_icc)
    if raw_icc and icc is None:
        found.add("icc_profile")
    pixels = _upright(image)
    if pixels.mode == "CMYK":
        pixels, icc = _cmyk_to_rgb(pixels, icc), None
    encodable = _encodable(pixels, pillow_format)
    if (encodable.mode in GRAY_MODES) != (pixels.mode in GRAY_MODES):
        icc = None  # A gray profile cannot describe colour pixels, nor the reverse.
    pixels = encodable
    try:
        content = _encode(pixels, pillow_format, icc)
        phash = str(imagehash.phash(pixels))
    except Exception as error:
        raise ImageRejected("The image cannot be re-encoded.", code=IMAGE_CORRUPT) from error
    name, extension = ALLOWED_FORMATS[pillow_format]
    return SanitizedImage(
        content=content,
        format=name,
        extension=extension,
        width=pixels.width,
        height=pixels.height,
        removed_metadata=[kind for kind in METADATA_KINDS if kind in found],
        phash=phash,
    )


# ---------------------------------------------------------------- texts and hashes


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def text_sha256(text: str) -> str:
    return sha256_hex(text.encode("utf-8"))


def _bad_characters(text: str) -> bool:
    # PostgreSQL text and jsonb refuse NUL and lone surrogates: refuse them as input.
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _bad_characters_within(value: Any) -> bool:
    """``_bad_characters`` in any key or string of a JSON value. Checking its JSON encoding
    would miss NUL: ``json.dumps`` escapes it as the six characters ``\\u0000``."""
    if isinstance(value, str):
        return _bad_characters(value)
    if isinstance(value, dict):
        return any(
            _bad_characters_within(key) or _bad_characters_within(inner)
            for key, inner in value.items()
        )
    if isinstance(value, list):
        return any(_bad_characters_within(inner) for inner in value)
    return False


def normalize_text(value: str) -> str:
    """NFC-normalised, stripped text; refuses empty, oversized or unstorable text."""
    text = unicodedata.normalize("NFC", value).strip()
    if not text:
        raise ValidationFailed("The text is empty.", code="text_empty")
    limit = settings.CHORUS_MAX_TEXT_CHARS
    if len(text) > limit:
        raise ValidationFailed(
            f"The text has {len(text):,} characters; at most {limit:,} are accepted.",
            code="text_too_long",
        )
    if _bad_characters(text):
        raise ValidationFailed(
            "The text contains a NUL or invalid character.", code="invalid_character"
        )
    return text


# ---------------------------------------------------------------- paths and file stores

_DRIVE_LETTER = re.compile(r"^[A-Za-z]:")


def safe_relative_path(value: str) -> str:
    """Return ``value`` if it is a plain relative POSIX path; raise ``ValidationFailed``.

    Refused: empty, absolute, drive letters, backslashes, control characters, and empty,
    ``.`` or ``..`` components. The path is used as given (no normalisation), so what is
    checked is exactly what is looked up.
    """

    def unsafe(reason: str) -> ValidationFailed:
        return ValidationFailed(f"Unsafe path {value[:200]!r}: {reason}.", code="unsafe_path")

    if not value:
        raise unsafe("it is empty")
    if len(value) > MAX_PATH_CHARS:
        raise unsafe("it is too long")
    if "\\" in value:
        raise unsafe("backslashes are not allowed")
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise unsafe("it contains control characters")
    if value.startswith("/"):
        raise unsafe("absolute paths are not allowed")
    if _DRIVE_LETTER.match(value):
        raise unsafe("drive letters are not allowed")
    if any(part in ("", ".", "..") for part in value.split("/")):
        raise unsafe("empty, '.' and '..' components are not allowed")
    return value


class FileStore(Protocol):
    """Files an import's manifest may name, addressed by safe relative paths."""

    def has(self, path: str) -> bool: ...

    def read(self, path: str, *, limit: int) -> bytes:
        """At most ``limit + 1`` bytes, so callers can tell an oversized file."""
        ...


class ZipStore:
    """Members of a zip archive, read in memory. Names were checked when it was opened."""

    def __init__(self, archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo]) -> None:
        self._archive = archive
        self._members = members

    def has(self, path: str) -> bool:
        return path in self._members

    def read(self, path: str, *, limit: int) -> bytes:
        info = self._members.get(path)
        if info is None:
            raise ValidationFailed(f"{path!r} is not in the archive.", code="file_not_found")
        try:
            with self._archive.open(info) as handle:
                return handle.read(limit + 1)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as error:
            raise ValidationFailed(
                f"Archive member {path!r} cannot be read.", code="file_unreadable"
            ) from error


class FolderStore:
    """Files under one folder; symbolic links that lead outside it are refused."""

    def __init__(self, root: Path) -> None:
        self._root = root.resolve(strict=True)

    def _locate(self, path: str) -> Path:
        safe_relative_path(path)
        try:
            target = self._root.joinpath(*path.split("/")).resolve(strict=True)
        except (OSError, RuntimeError) as error:
            raise ValidationFailed(f"{path!r} does not exist.", code="file_not_found") from error
        if not target.is_relative_to(self._root):
            raise ValidationFailed(f"{path!r} leads outside the import folder.", code="unsafe_path")
        if not target.is_file():
            raise ValidationFailed(f"{path!r} is not a file.", code="file_not_found")
        return target

    def has(self, path: str) -> bool:
        try:
            self._locate(path)
        except ValidationFailed:
            return False
        return True

    def read(self, path: str, *, limit: int) -> bytes:
        target = self._locate(path)
        try:
            with target.open("rb") as handle:
                return handle.read(limit + 1)
        except OSError as error:
            raise ValidationFailed(f"{path!r} cannot be read.", code="file_unreadable") from error


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


# ---------------------------------------------------------------- uploads, archives, folders


def upload_kind(*, head: bytes, filename: str) -> str:
    """``zip``, ``csv`` or ``jsonl``: zip by content, the manifests by extension."""
    if head.startswith(ZIP_MAGICS):
        return "zip"
    suffix = PurePosixPath(filename.replace("\\", "/")).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    raise ValidationFailed(
        "Upload a .csv or .jsonl manifest, or a .zip of images with manifest.csv or "
        "manifest.jsonl at its root.",
        code="import_unsupported_file",
    )


def _member_problem(info: zipfile.ZipInfo) -> str:
    name = info.filename
    if (info.external_attr >> 16) & 0o170000 == 0o120000:
        return f"Archive member {name!r} is a symbolic link."
    if info.flag_bits & 0x1:
        return f"Archive member {name!r} is encrypted."
    try:
        safe_relative_path(name[:-1] if info.is_dir() else name)
    except ValidationFailed as error:
        return f"Archive member: {error.message}"
    ratio_checked = info.file_size > RATIO_CHECK_MIN_BYTES
    if ratio_checked and info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1):
        return f"Archive member {name!r} inflates suspiciously (possible zip bomb)."
    return ""


def _archive_members(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    infos = archive.infolist()
    if len(infos) > MAX_ARCHIVE_MEMBERS:
        raise _file_error(
            "archive_too_many_members",
            f"The archive has {len(infos):,} members; at most {MAX_ARCHIVE_MEMBERS:,} allowed.",
            field_name="archive",
        )
    members: dict[str, zipfile.ZipInfo] = {}
    errors: list[RowError] = []
    for info in infos:
        problem = _member_problem(info)
        if not problem and info.filename in members:
            problem = f"Archive member {info.filename!r} appears twice."
        if problem:
            errors.append(row_error(None, "archive", "unsafe_archive_member", problem))
        elif not info.is_dir():
            members[info.filename] = info
    if errors:
        raise _invalid(
            errors,
            code="archive_unsafe_member",
            message=f"The archive was refused: {errors[0]['message']} Nothing was imported.",
        )
    total = sum(info.file_size for info in members.values())
    if total > settings.CHORUS_MAX_UPLOAD_BYTES:
        raise PayloadTooLarge(
            f"The archive unpacks to {total:,} bytes; at most "
            f"{settings.CHORUS_MAX_UPLOAD_BYTES:,} are accepted.",
            code="archive_too_large",
        )
    return members


def _manifest_name(store: FileStore) -> str:
    present = [name for name in MANIFEST_NAMES if store.has(name)]
    if not present:
        raise _file_error(
            "manifest_missing",
            "No manifest.csv or manifest.jsonl at the top of the archive or folder.",
            field_name="manifest",
        )
    if len(present) > 1:
        raise _file_error(
            "manifest_ambiguous",
            "Both manifest.csv and manifest.jsonl are present; keep one.",
            field_name="manifest",
        )
    return present[0]


def _source_from_store(store: FileStore, kind: str) -> ImportSource:
    name = _manifest_name(store)
    limit = settings.CHORUS_MAX_UPLOAD_BYTES
    data = store.read(name, limit=limit)
    if len(data) > limit:
        raise PayloadTooLarge("The manifest is too large.", code="manifest_too_large")
    rows, errors = _parse_manifest(data, "csv" if name.endswith(".csv") else "jsonl")
    return ImportSource(kind=kind, rows=rows, errors=errors, files=store)


def _read_zip(data: bytes) -> ImportSource:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        raise _file_error(
            "archive_corrupt", "The archive cannot be read.", field_name="archive"
        ) from error
    return _source_from_store(ZipStore(archive, _archive_members(archive)), "zip")


def read_upload(*, data: bytes, filename: str) -> ImportSource:
    """Parse an uploaded manifest or zip archive (kind detected by content and extension)."""
    limit = settings.CHORUS_MAX_UPLOAD_BYTES
    if len(data) > limit:
        raise PayloadTooLarge(f"The upload is over {limit:,} bytes.", code="upload_too_large")
    kind = upload_kind(head=data[:4], filename=filename)
    if kind == "zip":
        return _read_zip(data)
    rows, errors = _parse_manifest(data, kind)
    return ImportSource(kind=kind, rows=rows, errors=errors)


def _resolve_inside(folder: Path, root: Path) -> Path:
    root = root.resolve()
    candidate = folder if folder.is_absolute() else root / folder
    # Checked before touching the path, so nothing outside the root is even probed.
    if not candidate.resolve().is_relative_to(root):
        raise ValidationFailed(
            "The folder is outside the import root.", code="import_path_outside_root"
        )
    try:
        resolved = candidate.resolve(strict=True)
    except (OSError, RuntimeError) as error:
        raise ValidationFailed(
            "The folder does not exist.", code="import_folder_not_found"
        ) from error
    if not resolved.is_dir():
        raise ValidationFailed("The path is not a folder.", code="import_folder_not_found")
    return resolved


def import_folder_resolve(server_path: str) -> Path:
    """The real path of a server-side folder, which must lie inside ``CHORUS_IMPORT_ROOT``."""
    raw = server_path.strip()
    if not raw or _bad_characters(raw) or len(raw) > MAX_PATH_CHARS:
        raise ValidationFailed("Give a folder path.", code="import_path_invalid")
    return _resolve_inside(Path(raw), Path(settings.CHORUS_IMPORT_ROOT))


def read_folder(*, path: Path, root: Path) -> ImportSource:
    """Parse ``manifest.csv``/``manifest.jsonl`` in a folder that must lie inside ``root``.

    Every ``file`` value must then stay inside the folder itself.
    """
    return _source_from_store(FolderStore(_resolve_inside(path, root)), "folder")


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


# ---------------------------------------------------------------- import


def _check_can_import(*, project: Project, actor: User) -> None:
    if project.is_managed_by(actor):
        return
    raise PermissionDenied(
        "Only the project's owner or staff can import items.", code="import_not_allowed"
    )


def _check_importable(project: Project) -> None:
    if project.status == ProjectStatus.CLOSED:
        raise Conflict("Items cannot be imported into a closed project.", code="project_closed")


def _modality_mismatch() -> ValidationFailed:
    return _file_error(
        "modality_mismatch",
        "An image project imports a .zip or folder of images with a manifest, not a "
        "manifest alone.",
    )


def _sources_for(prepared: Sequence[PreparedItem], *, owner: User) -> dict[str, Source]:
    """The project owner's sources the rows name: another researcher's same-named source
    is never linked (each keeps their own URL)."""
    sources: dict[str, Source] = {}
    for item in prepared:
        if item.source_name and item.source_name not in sources:
            sources[item.source_name] = source_get_or_create(
                owner=owner, name=item.source_name, url=item.source_url
            )
    return sources


def _build_item(
    project: Project,
    prepared: PreparedItem,
    sources: dict[str, Source],
    batch: ImportBatch | None,
) -> Item:
    image = prepared.image
    item = Item(
        project=project,
        external_id=prepared.external_id,
        kind=project.modality,
        text=prepared.text,
        image_width=image.width if image else None,
        image_height=image.height if image else None,
        removed_metadata=image.removed_metadata if image else [],
        metadata=prepared.metadata,
        sha256=prepared.sha256,
        phash=image.phash if image else "",
        source=sources.get(prepared.source_name),
        creator=prepared.creator,
        license=prepared.license,
        attribution=prepared.attribution,
        subject_consent=prepared.subject_consent,
        control=prepared.control,
        expected_value=prepared.expected_value,
        import_batch=batch,
    )
    # Uniqueness was checked for the whole batch and the database constraint stands behind
    # it; relations were just created. Checking them per row would cost a query each.
    item.full_clean(
        exclude=["project", "source", "import_batch", "image"],
        validate_unique=False,
        validate_constraints=False,
    )
    if image is not None:
        # The stored name is content-addressed by item_upload_path; only the extension,
        # chosen by us from the decoded format, comes from here.
        item.image.save(f"image.{image.extension}", ContentFile(image.content), save=False)
    return item


def _audit_payload(
    project: Project, prepared: Sequence[PreparedItem], batch: ImportBatch | None, kind: str
) -> dict[str, Any]:
    removed = Counter(
        name for item in prepared if item.image for name in item.image.removed_metadata
    )
    return {
        "project": project.pk,
        "batch": batch.pk if batch is not None else None,
        "source_kind": kind,
        "modality": project.modality,
        "items": len(prepared),
        "licenses": dict(Counter(item.license or "(none)" for item in prepared)),
        "sources": len({item.source_name for item in prepared if item.source_name}),
        "metadata_removed": dict(removed),
    }


def _delete_stored(names: Iterable[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            logger.warning("could not delete %s after a failed import", name, exc_info=True)


def _store_items(
    *,
    project: Project,
    actor: User,
    prepared: Sequence[PreparedItem],
    batch: ImportBatch | None,
    kind: str,
) -> list[Item]:
    written: list[str] = []
    try:
        with transaction.atomic():
            # Serialises imports into one project, so the re-checks below are exact.
            locked = Project.objects.select_for_update().get(pk=project.pk)
            _check_importable(locked)
            conflicts = _existing_conflicts(locked, prepared) + _taken_down(prepared)
            if conflicts:
                raise _invalid(conflicts)
            sources = _sources_for(prepared, owner=locked.owner)
            items: list[Item] = []
            for entry in prepared:
                items.append(_build_item(locked, entry, sources, batch))
                if items[-1].image:
                    written.append(items[-1].image.name)
            created = Item.objects.bulk_create(items, batch_size=500)
            if batch is not None:
                _batch_mark_done(batch, item_count=len(created))
            audit_record(
                actor=actor,
                action="items.import",
                obj=locked,
                payload=_audit_payload(locked, prepared, batch, kind),
            )
            if len(created) >= ANALYZE_AFTER_ROWS:
                transaction.on_commit(lambda: table_statistics_refresh(Item))
    except IntegrityError as error:
        _delete_stored(written)
        raise Conflict(
            "Another import added some of these items at the same time; nothing was imported.",
            code="import_conflict",
        ) from error
    except BaseException:
        _delete_stored(written)
        raise
    return created


def items_import(
    *,
    project: Project,
    actor: User,
    source: ImportSource,
    batch: ImportBatch | None = None,
) -> list[Item]:
    """Validate every row, then create all items in one transaction, or none.

    Raises ``ValidationFailed(code="import_invalid")`` whose ``extra["errors"]`` lists every
    problem as ``{"line", "field", "code", "message"}`` (external_id missing or repeated in
    the batch or the project, content already present, bad license, bad image, ...).

    ``sha256`` is of the NFC-normalised UTF-8 text for texts, and of the image bytes as
    uploaded for images (so an identical re-upload is recognised even though the stored
    copy is re-encoded); ``phash`` is of the pixels. One ``items.import`` audit event
    records the counts. When ``batch`` is given it is marked done in the same transaction.
    """
    _check_can_import(project=project, actor=actor)
    _check_importable(project)
    if project.modality == Modality.IMAGE and source.files is None:
        raise _modality_mismatch()
    limit = settings.CHORUS_MAX_IMPORT_ROWS
    if len(source.rows) > limit:
        raise _file_error(
            "import_too_many_rows", f"The manifest has more than {limit:,} rows.", field_name=""
        )
    if not source.rows and not source.errors:
        raise _file_error("import_empty", "The manifest has no rows.", field_name="")
    prepared, errors = _prepare_rows(source, context=_row_context(project))
    errors += (
        _batch_duplicates(prepared) + _existing_conflicts(project, prepared) + _taken_down(prepared)
    )
    if errors:
        raise _invalid(errors)
    return _store_items(
        project=project, actor=actor, prepared=prepared, batch=batch, kind=source.kind
    )


# ---------------------------------------------------------------- batches


def _display_name(name: str) -> str:
    """The client's file name as a label only; it never reaches the file system."""
    base = PurePosixPath(name.replace("\\", "/")).name
    cleaned = "".join(char for char in base if char.isprintable())
    return unicodedata.normalize("NFC", cleaned)[:255] or "upload"


def _stage_upload(batch: ImportBatch, upload: UploadedFile, project: Project) -> None:
    limit = settings.CHORUS_MAX_UPLOAD_BYTES
    if upload.size is None or upload.size > limit:
        raise PayloadTooLarge(f"The upload is over {limit:,} bytes.", code="upload_too_large")
    upload.seek(0)
    head = upload.read(4)
    upload.seek(0)
    kind = upload_kind(head=head, filename=upload.name or "")
    if kind != "zip" and project.modality == Modality.IMAGE:
        raise _modality_mismatch()
    batch.original_name = _display_name(upload.name or "")
    batch.upload.save(f"{uuid.uuid4().hex}.{kind}", upload, save=False)


def _enqueue_batch(batch_id: int) -> None:
    # Imported here because annotation.tasks imports this module.
    from annotation.tasks import import_batch_run_task

    import_batch_run_task.delay(batch_id)


def import_batch_create(
    *,
    project: Project,
    actor: User,
    upload: UploadedFile | None = None,
    server_path: str = "",
) -> ImportBatch:
    """Stage an upload (or name a server folder, staff only) and queue its import.

    The stored upload is named by a random id and the detected kind; nothing of the
    client's file name is used for it. The run is enqueued once the batch is committed.
    """
    _check_can_import(project=project, actor=actor)
    _check_importable(project)
    if (upload is None) == (not server_path):
        raise ValidationFailed(
            "Give either a file or a server folder.", code="import_source_required"
        )
    batch = ImportBatch(project=project, created_by=actor)
    if upload is not None:
        _stage_upload(batch, upload, project)
    else:
        if not actor.is_staff:
            raise PermissionDenied("Only staff can import from server folders.", code="staff_only")
        folder = import_folder_resolve(server_path)
        batch.server_path = str(folder)
        batch.original_name = _display_name(folder.name)
    try:
        with transaction.atomic():
            batch.full_clean()
            batch.save()
            transaction.on_commit(lambda: _enqueue_batch(batch.pk))
    except BaseException:
        if batch.upload:
            _delete_stored([batch.upload.name])
        raise
    return batch


def _batch_claim(batch_id: int) -> tuple[ImportBatch, bool]:
    with transaction.atomic():
        batch = (
            ImportBatch.objects.select_for_update(of=("self",))
            .select_related("project", "created_by")
            .filter(pk=batch_id)
            .first()
        )
        if batch is None:
            raise NotFound("No such import batch.")
        if batch.status != ImportBatch.Status.PENDING:
            return batch, False
        batch.status = ImportBatch.Status.RUNNING
        batch.save(update_fields=["status", "updated_at"])
    return batch, True


def _batch_mark_done(batch: ImportBatch, *, item_count: int) -> None:
    batch.status = ImportBatch.Status.DONE
    batch.item_count = item_count
    batch.errors = []
    batch.finished_at = timezone.now()
    batch.save(update_fields=["status", "item_count", "errors", "finished_at", "updated_at"])


def _stored_errors(error: ApplicationError) -> list[RowError]:
    errors: list[RowError] = list(error.extra.get("errors") or [])
    if not errors:
        errors = [row_error(None, "", error.code, error.message)]
    if len(errors) > MAX_STORED_ERRORS:
        more = len(errors) - MAX_STORED_ERRORS
        errors = errors[:MAX_STORED_ERRORS]
        errors.append(row_error(None, "", "errors_truncated", f"... and {more} more problems."))
    return errors


def _batch_mark_failed(batch: ImportBatch, errors: list[RowError]) -> None:
    now = timezone.now()
    ImportBatch.objects.filter(pk=batch.pk, status=ImportBatch.Status.RUNNING).update(
        status=ImportBatch.Status.FAILED, errors=errors, finished_at=now, updated_at=now
    )


def _batch_source(batch: ImportBatch) -> ImportSource:
    if batch.server_path:
        return read_folder(path=Path(batch.server_path), root=Path(settings.CHORUS_IMPORT_ROOT))
    with batch.upload.open("rb") as handle:
        data = handle.read(settings.CHORUS_MAX_UPLOAD_BYTES + 1)
    return read_upload(data=data, filename=batch.upload.name)


def _discard_upload(batch: ImportBatch) -> None:
    if not batch.upload:
        return
    name = batch.upload.name
    _delete_stored([name])
    ImportBatch.objects.filter(pk=batch.pk).update(upload="")


def import_batch_run(*, batch_id: int) -> ImportBatch:
    """Run a pending batch once: import its items or record every error.

    Idempotent: a batch that is not pending (running elsewhere, done, failed) is returned
    unchanged. The staged upload is deleted afterwards, whatever the outcome.
    """
    batch, claimed = _batch_claim(batch_id)
    if not claimed:
        return batch
    try:
        source = _batch_source(batch)
        items_import(project=batch.project, actor=batch.created_by, source=source, batch=batch)
    except ApplicationError as error:
        _batch_mark_failed(batch, _stored_errors(error))
    except Exception:
        logger.exception("import batch %s failed unexpectedly", batch_id)
        message = "The import failed unexpectedly; nothing was imported."
        _batch_mark_failed(batch, [row_error(None, "", "import_error", message)])
    finally:
        _discard_upload(batch)
    batch.refresh_from_db()
    return batch


__all__ = [
    "ImageRejected",
    "ImportSource",
    "ManifestRow",
    "RowError",
    "SanitizedImage",
    "describe_error",
    "import_batch_create",
    "import_batch_run",
    "import_folder_resolve",
    "items_import",
    "normalize_text",
    "parse_csv",
    "parse_jsonl",
    "read_folder",
    "read_upload",
    "safe_relative_path",
    "sanitize_image",
    "text_sha256",
    "upload_kind",
]
