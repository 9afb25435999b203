"""Image sanitising and content hashing: pure functions of the bytes given, no database.

Nothing stored is the client's bytes as uploaded. Every image is decoded and re-encoded
from its pixels with no EXIF, GPS, XMP, IPTC, MakerNote or comments (the ICC profile is
kept and the EXIF orientation applied first); texts are NFC-normalised. Holds the format
allowlist, the pixel and size caps (from settings), ``sanitize_image`` and its
``SanitizedImage``/``ImageRejected``, the sha256 helpers and the check for characters
PostgreSQL cannot store.
"""

import hashlib
import io
import logging
import unicodedata
import warnings
from dataclasses import dataclass
from typing import Any

import imagehash
from django.conf import settings
from PIL import ExifTags, Image, ImageCms, ImageFile, ImageOps, UnidentifiedImageError

from core.errors import ValidationFailed

logger = logging.getLogger(__name__)

# Pillow format name -> (our format name, file extension).
ALLOWED_FORMATS: dict[str, tuple[str, str]] = {
    "JPEG": ("jpeg", "jpg"),
    "PNG": ("png", "png"),
    "WEBP": ("webp", "webp"),
}
JPEG_QUALITY = 90
WEBP_QUALITY = 90
MAX_ICC_BYTES = 1024 * 1024

IMAGE_FORMAT_NOT_ALLOWED = "image_format_not_allowed"
IMAGE_TOO_LARGE = "image_too_large"
IMAGE_TOO_MANY_PIXELS = "image_too_many_pixels"
IMAGE_CORRUPT = "image_corrupt"


class ImageRejected(ValidationFailed):
    """An uploaded image Chorus will not store. ``code`` is one of the ``IMAGE_*`` constants."""

    default_code = IMAGE_CORRUPT


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
