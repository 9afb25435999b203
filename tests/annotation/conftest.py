"""Fixtures for annotation tests: media in a temporary folder, this host's clock, and
small file builders for ingest."""

import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from PIL import ExifTags, Image, ImageCms

from annotation.models import Project
from core.models import Role, User
from tests.annotation.factories import make_project
from tests.core.factories import make_user

XMP_PACKET = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/'
    b'22-rdf-syntax-ns#"><rdf:Description>secret-xmp-location</rdf:Description></rdf:RDF>'
    b"</x:xmpmeta>"
)


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path: Path) -> Path:
    """Every test stores media and reads server folders under its own temporary folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CHORUS_IMPORT_ROOT = tmp_path / "imports"
    settings.CHORUS_IMPORT_ROOT.mkdir()
    return settings.MEDIA_ROOT


@pytest.fixture
def host_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[timedelta], None]:
    """``host_clock(offset)``: from then on this host's clock runs ``offset`` from the
    database's, which keeps the real time. Patches ``timezone.now`` itself: every module
    reads it through ``django.utils.timezone``."""
    real_now = timezone.now

    def set_offset(offset: timedelta) -> None:
        monkeypatch.setattr(timezone, "now", lambda: real_now() + offset)

    return set_offset


@pytest.fixture
def researcher(db) -> User:
    return make_user(Role.RESEARCHER)


@pytest.fixture
def text_project(researcher: User) -> Project:
    return make_project(researcher, preset="hate_speech")


@pytest.fixture
def image_project(researcher: User) -> Project:
    return make_project(
        researcher,
        preset="privacy_alert",
        risk_disclosure="Photos may show private scenes.",
    )


def png_bytes(
    size: tuple[int, int] = (24, 16), color: tuple[int, int, int] = (200, 30, 30)
) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def image_bytes(fmt: str, size: tuple[int, int] = (24, 16), color: str = "blue") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, fmt)
    return out.getvalue()


def _iptc_segment() -> bytes:
    """A JPEG APP13 (Photoshop IRB) segment holding an IPTC caption."""
    caption = b"secret-iptc-caption"
    iptc = b"\x1c\x02\x78" + struct.pack(">H", len(caption)) + caption
    if len(iptc) % 2:
        iptc += b"\x00"
    block = b"8BIM\x04\x04\x00\x00" + struct.pack(">I", len(iptc)) + iptc
    body = b"Photoshop 3.0\x00" + block
    return b"\xff\xed" + struct.pack(">H", len(body) + 2) + body


def jpeg_with_metadata(
    size: tuple[int, int] = (40, 20), *, orientation: int = 6, color: str = "red"
) -> bytes:
    """A JPEG carrying EXIF (orientation, make, MakerNote, GPS IFD), XMP, IPTC, a comment
    and an sRGB ICC profile. Orientation 6 means "rotate 90° clockwise to display"."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "SecretCam"
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.MakerNote] = b"secret-makernote"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 31.0, 12.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (13.0, 24.0, 36.0)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    # Left half red, right half blue: orientation shows up in the pixels.
    image = Image.new("RGB", size, color)
    image.paste((0, 0, 255), (size[0] // 2, 0, size[0], size[1]))
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, xmp=XMP_PACKET, comment=b"secret-comment", icc_profile=icc)
    data = out.getvalue()
    return data[:2] + _iptc_segment() + data[2:]


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width x height; its IDAT is a few bytes only, so
    decoding it would fail as corrupt: refusing it as too many pixels proves the declared
    size was checked before decoding."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


def zip_bytes(members: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return out.getvalue()


def csv_bytes(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode("utf-8")
