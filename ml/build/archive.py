"""A version's bundle (or a training run's artefacts) as one zip, streamed: never
assembled in memory or on disk.

Members are stored (not compressed again: Parquet is compressed, images are), with a
fixed timestamp, in the manifest's order with ``manifest.json`` first, under a top folder
named after the version. Every member name comes from the manifest Chorus wrote, never
from a client, and is checked to stay inside the folder.
"""

import zipfile
from collections.abc import Iterator
from pathlib import PurePosixPath

from django.core.files.storage import default_storage

from ml.models import DatasetVersion

CHUNK = 1024 * 1024
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


class _Sink:
    """A write-only file whose bytes are taken away as they come (``zipfile`` writes
    data descriptors to an unseekable stream)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.offset = 0

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self.offset

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts = []
        return data


def safe_member(path: str) -> str:
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts or "\\" in path:
        raise ValueError(f"unsafe bundle path {path!r}")
    return pure.as_posix()


def bundle_member_names(version: DatasetVersion) -> list[str]:
    return ["manifest.json", *(entry["path"] for entry in version.manifest.get("files", []))]


def bundle_zip_stream(version: DatasetVersion) -> Iterator[bytes]:
    return zip_stream(
        version.storage_prefix,
        f"{version.project_id}-{version.label}",
        bundle_member_names(version),
    )


def zip_stream(prefix: str, folder: str, names: list[str]) -> Iterator[bytes]:
    """The files ``prefix/<name>`` as one zip under ``folder/``, in the order given."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name in names:
            member = zipfile.ZipInfo(f"{folder}/{safe_member(name)}", date_time=FIXED_TIME)
            member.external_attr = 0o644 << 16
            with (
                default_storage.open(f"{prefix}/{name}", "rb") as source,
                archive.open(member, "w", force_zip64=True) as target,
            ):
                while chunk := source.read(CHUNK):
                    target.write(chunk)
                    yield sink.take()
            yield sink.take()
    yield sink.take()
