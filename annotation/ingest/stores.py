"""Where an import's files come from: uploads, zip archives and server folders.

Archives are read in memory, never extracted. No archive member, manifest ``file`` value
or server folder can name anything outside the archive or folder it belongs to:
``safe_relative_path`` checks every name, ``ZipStore`` and ``FolderStore`` serve only
what lies inside, and ``import_folder_resolve`` keeps server folders under
``CHORUS_IMPORT_ROOT``. ``read_upload`` and ``read_folder`` return the parsed manifest.
"""

import io
import re
import zipfile
from pathlib import Path, PurePosixPath

from django.conf import settings

from annotation.ingest.images import _bad_characters
from annotation.ingest.manifest import (
    FileStore,
    ImportSource,
    RowError,
    _file_error,
    _invalid,
    _parse_manifest,
    row_error,
)
from core.errors import PayloadTooLarge, ValidationFailed

MAX_ARCHIVE_MEMBERS = 20_000
# Images and manifests barely compress; a member inflating more than this is a bomb.
MAX_COMPRESSION_RATIO = 100
RATIO_CHECK_MIN_BYTES = 1024 * 1024
MAX_PATH_CHARS = 1000
MANIFEST_NAMES = ("manifest.csv", "manifest.jsonl")
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")


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
