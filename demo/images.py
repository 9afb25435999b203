"""The demo's photos: scenes drawn by a program (documents, screens, family rooms, parties,
beaches, houses, streets, landscapes), some carrying EXIF with GPS and XMP packets for the
ingest to strip, zipped with the manifest the import reads.

All people, places and images are invented: the stick figures stand in for people, so the
consent reports have something to find.
"""

import csv
import io
import json
import math
import random
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import ExifTags, Image, ImageDraw, PngImagePlugin

from annotation.models import SubjectConsent
from demo.draws import attribution, balanced, license_source_creator

PRIVACY_VALUES = ("clearly_private", "private", "public", "clearly_public")
# Scene kind -> the crowd's average position on the scale (0 clearly private .. 3 clearly
# public) before group and personal effects.
SCENE_PRIVACY: dict[str, float] = {
    "document": 0.2,
    "screen": 0.7,
    "family": 1.0,
    "party": 1.4,
    "beach": 1.8,
    "house": 2.0,
    "street": 2.5,
    "landscape": 2.9,
}
SCENE_PEOPLE = {"family", "party", "beach", "street"}
IMAGE_SIZE = (320, 240)

# License expression -> weight; "" is an item whose license nobody recorded.
IMAGE_LICENSES = {
    "CC0-1.0": 20,
    "CC-BY-4.0": 25,
    "CC-BY-SA-4.0": 15,
    "CC-BY-NC-4.0": 10,
    "CC-BY-ND-4.0": 5,
    "CC-BY-NC-SA-4.0": 8,
    "CC-BY-4.0 OR CC-BY-SA-4.0": 5,
    "LicenseRef-PhotoClub-Research-Only": 6,
    "NOASSERTION": 7,
    "": 5,
}
PHOTO_CLUB_LICENSE = "LicenseRef-PhotoClub-Research-Only"
IMAGE_SOURCES = (
    ("family-album-donations", "https://family-album.example.org/donated"),
    ("campus-photo-club", "https://photoclub.example.edu/gallery"),
    ("synthetic-generator", "https://chorus.example.net/synthetic"),
)


def _rgb(rng: random.Random, low: int = 40, high: int = 230) -> tuple[int, int, int]:
    return (rng.randint(low, high), rng.randint(low, high), rng.randint(low, high))


def _person(draw: ImageDraw.ImageDraw, x: int, ground: int, height: int, color: Any) -> None:
    """A stick figure standing on ``ground`` at ``x``."""
    head = max(4, height // 6)
    neck = ground - height + 2 * head
    hip = ground - height // 3
    draw.ellipse((x - head, neck - 2 * head, x + head, neck), fill=(240, 200, 170), outline=color)
    draw.line((x, neck, x, hip), fill=color, width=3)
    draw.line((x - height // 4, neck + head, x + height // 4, neck + head), fill=color, width=3)
    draw.line((x, hip, x - height // 6, ground), fill=color, width=3)
    draw.line((x, hip, x + height // 6, ground), fill=color, width=3)


def _people(draw: ImageDraw.ImageDraw, rng: random.Random, ground: int, count: int) -> None:
    width = IMAGE_SIZE[0]
    for position in range(count):
        x = int((position + 1) * width / (count + 1)) + rng.randint(-12, 12)
        _person(draw, x, ground + rng.randint(-6, 6), rng.randint(50, 110), _rgb(rng, 10, 120))


def _draw_document(draw: ImageDraw.ImageDraw, rng: random.Random) -> int:
    draw.rectangle((0, 0, *IMAGE_SIZE), fill=(120, 85, 55))  # a desk
    left, top = rng.randint(30, 70), rng.randint(10, 30)
    draw.rectangle((left, top, left + 200, top + 210), fill=(250, 250, 245), outline=(90, 90, 90))
    draw.rectangle((left + 12, top + 14, left + 62, top + 74), fill=_rgb(rng, 150, 220))
    for row in range(12):
        y = top + 90 + row * 9
        draw.line((left + 12, y, left + rng.randint(120, 188), y), fill=(70, 70, 90), width=2)
    for row in range(3):
        y = top + 20 + row * 16
        draw.line((left + 74, y, left + rng.randint(140, 188), y), fill=(20, 20, 20), width=3)
    sign = [(left + 120 + i * 8, top + 196 + rng.randint(-5, 5)) for i in range(8)]
    draw.line(sign, fill=(20, 40, 160), width=2)
    return 0


def _draw_screen(draw: ImageDraw.ImageDraw, rng: random.Random) -> int:
    draw.rectangle((0, 0, *IMAGE_SIZE), fill=_rgb(rng, 150, 210))
    draw.rectangle((50, 20, 270, 170), fill=(30, 30, 35))
    draw.rectangle((58, 28, 262, 162), fill=(235, 240, 250))
    draw.polygon([(30, 175), (290, 175), (310, 200), (10, 200)], fill=(90, 90, 100))
    y = 36
    while y < 150:
        mine = rng.random() < 0.5
        width = rng.randint(50, 120)
        x0 = 250 - width if mine else 68
        colour = (120, 200, 120) if mine else (200, 210, 230)
        draw.rounded_rectangle((x0, y, x0 + width, y + 14), radius=6, fill=colour)
        y += rng.randint(18, 24)
    return 0


def _draw_family(draw: ImageDraw.ImageDraw, rng: random.Random) -> int:
    draw.rectangle((0, 0, 320, 170), fill=_rgb(rng, 170, 235))  # wall
    draw.rectangle((0, 170, 320, 240), fill=(150, 110, 80))  # floor
    draw.rectangle((200, 30, 280, 90), fill=(210, 230, 250), outline=(90, 70, 50), width=4)
    draw.rectangle((30, 140, 180, 185), fill=_rgb(rng, 60, 160))  # sofa
    count = rng.randint(3, 5)
    _people(draw, rng, 215, count)
    return count


def _draw_party(draw: ImageDraw.ImageDraw, rng: random.Random) -> int:
    draw.rectangle((0, 0, *IMAGE_SIZE), fill=(40, 30, 70))
    for _ in range(60):
        x, y = rng.randint(0, 319), rng.randint(0, 239)
        draw.rectangle((x, y, x + 3, y + 3), fill=_rgb(rng, 120, 255))
    for _ in range(rng.randint(3, 6)):
        x, y = rng.randint(20, 300), rng.randint(15, 80)
        draw.ellipse((x - 12, y - 16, x + 12, y + 16), fill=_rgb(rng, 100, 255))
        draw.line((x, y + 16, x + rng.randint(-8, 8), y + 60), fill=(220, 220, 220))
    count = rng.randint(4, 7)
    _people(draw, rng, 225, count)
    return count


def _draw_beach(draw: ImageDraw.ImageDraw, rng: random.Random) -> int:
    draw.rectangle((0, 0, 320, 110), fill=(130, 200, 250))
    draw.rectangle((0, 110, 320, 160), fill=(30, 110, 190))
    draw.rectangle((0, 160, 320, 240), fill=(240, 220, 160))
    sun_x = rng.randint(30, 290)
    draw.ellipse((sun_x - 20, 15, sun_x + 20, 55), fill=(255, 220, 60))
    umbrella = rng.randint(40, 280)
    draw.pieslice((umbrella - 35, 140, umbrella + 35, 200), 180, 360, fill=_rgb(rng, 150, 255))
    draw.line((umbrella, 170, umbrella, 225), fill=(80, 60, 40), width=3)
    count = rng.randint(1, 3)
    _people(draw, rng, 225, count)
    return count


def _draw_house(draw: ImageDraw.ImageDraw, rng: random.Random) -> int:
    draw.rectangle((0, 0, 320, 170), fill=(150, 205, 250))
    draw.rectangle((0, 170, 320, 240), fill=(90, 170, 80))
    left = rng.randint(40, 120)
    draw.rectangle((left, 90, left + 150, 190), fill=_rgb(rng, 160, 240), outline=(60, 60, 60))
    draw.polygon([(left - 10, 90), (left + 75, 35), (left + 160, 90)], fill=(150, 50, 40))
    draw.rectangle((left + 62, 140, left + 88, 190), fill=(100, 60, 30))
    for x in (left + 15, left + 105):
        draw.rectangle((x, 105, x + 30, 130), fill=(210, 235, 255), outline=(60, 60, 60))
    draw.rectangle((left + 94, 148, left + 118, 160), fill=(250, 250, 250))  # house number
    tree = rng.choice((20, 300))
    draw.rectangle((tree - 4, 140, tree + 4, 190), fill=(100, 70, 40))
    draw.ellipse((tree - 22, 100, tree + 22, 150), fill=(40, 130, 50))
    return 0


def _draw_street(draw: ImageDraw.ImageDraw, rng: random.Random) -> int:
    draw.rectangle((0, 0, 320, 240), fill=(190, 210, 230))
    x = 0
    while x < 320:
        width, height = rng.randint(30, 60), rng.randint(70, 170)
        draw.rectangle((x, 180 - height, x + width, 180), fill=_rgb(rng, 90, 170))
        for wy in range(180 - height + 8, 170, 14):
            for wx in range(x + 5, x + width - 8, 12):
                draw.rectangle((wx, wy, wx + 6, wy + 7), fill=(250, 240, 170))
        x += width + rng.randint(2, 8)
    draw.rectangle((0, 180, 320, 240), fill=(70, 70, 75))
    for x in range(10, 320, 40):
        draw.rectangle((x, 208, x + 20, 212), fill=(240, 240, 240))
    count = rng.randint(0, 3)
    _people(draw, rng, 200, count)
    return count


def _draw_landscape(draw: ImageDraw.ImageDraw, rng: random.Random) -> int:
    draw.rectangle((0, 0, 320, 240), fill=(150, 200, 245))
    sun_x = rng.randint(30, 290)
    draw.ellipse((sun_x - 18, 20, sun_x + 18, 56), fill=(255, 230, 90))
    for _ in range(rng.randint(2, 4)):
        peak, height = rng.randint(0, 320), rng.randint(70, 150)
        colour = _rgb(rng, 80, 140)
        draw.polygon([(peak - 110, 180), (peak, 180 - height), (peak + 110, 180)], fill=colour)
    draw.rectangle((0, 175, 320, 240), fill=(70, 150, 70))
    draw.ellipse((rng.randint(0, 120), 190, rng.randint(180, 320), 230), fill=(60, 120, 200))
    for _ in range(rng.randint(3, 8)):
        x = rng.randint(0, 320)
        draw.polygon([(x - 10, 200), (x, 165), (x + 10, 200)], fill=(30, 100, 40))
    return 0


SCENE_DRAWERS: dict[str, Callable[[ImageDraw.ImageDraw, random.Random], int]] = {
    "document": _draw_document,
    "screen": _draw_screen,
    "family": _draw_family,
    "party": _draw_party,
    "beach": _draw_beach,
    "house": _draw_house,
    "street": _draw_street,
    "landscape": _draw_landscape,
}

XMP_TEMPLATE = (
    '<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" '
    'xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/">'
    "<dc:creator>{creator}</dc:creator><photoshop:City>{city}</photoshop:City>"
    "</rdf:Description></rdf:RDF></x:xmpmeta>"
    '<?xpacket end="w"?>'
)
INVENTED_CITIES = ("Port Nerrin", "Velmora", "Ashkettle", "Dunmarrow", "Quillon Bay")


@dataclass(frozen=True)
class DemoImage:
    external_id: str
    filename: str
    kind: str
    people: int
    content: bytes
    metadata_planted: tuple[str, ...]


def _gps_exif(rng: random.Random, creator: str) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "DemoCam"
    exif[ExifTags.Base.Model] = f"DC-{rng.randint(100, 999)}"
    exif[ExifTags.Base.Artist] = creator
    exif[ExifTags.Base.DateTime] = f"2025:0{rng.randint(1, 9)}:1{rng.randint(0, 9)} 12:00:00"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    latitude, longitude = rng.uniform(-60, 60), rng.uniform(-170, 170)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N" if latitude >= 0 else "S"
    gps[ExifTags.GPS.GPSLatitude] = _dms(abs(latitude))
    gps[ExifTags.GPS.GPSLongitudeRef] = "E" if longitude >= 0 else "W"
    gps[ExifTags.GPS.GPSLongitude] = _dms(abs(longitude))
    return exif


def _dms(value: float) -> tuple[float, float, float]:
    degrees = math.floor(value)
    minutes = math.floor((value - degrees) * 60)
    seconds = round(((value - degrees) * 60 - minutes) * 60, 2)
    return (float(degrees), float(minutes), seconds)


def image_render(index: int, kind: str, creator: str, rng: random.Random) -> DemoImage:
    """Draw one scene; some carry EXIF with GPS and an XMP packet for ingest to strip."""
    image = Image.new("RGB", IMAGE_SIZE, "white")
    people = SCENE_DRAWERS[kind](ImageDraw.Draw(image), rng)
    with_gps = index % 3 == 0
    with_xmp = index % 4 == 1
    planted: list[str] = []
    options: dict[str, Any] = {}
    if with_gps:
        options["exif"] = _gps_exif(rng, creator)
        planted += ["exif", "gps"]
    xmp = XMP_TEMPLATE.format(creator=creator, city=rng.choice(INVENTED_CITIES)).encode()
    as_png = kind in ("document", "screen") and index % 2 == 0
    out = io.BytesIO()
    if as_png:
        if with_xmp:
            info = PngImagePlugin.PngInfo()
            info.add_itxt("XML:com.adobe.xmp", xmp.decode())
            options["pnginfo"] = info
        image.save(out, "PNG", **options)
        extension = "png"
    else:
        if with_xmp:
            options["xmp"] = xmp
        image.save(out, "JPEG", quality=85, **options)
        extension = "jpg"
    if with_xmp:
        planted.append("xmp")
    external_id = f"img-{index + 1:04d}"
    return DemoImage(
        external_id=external_id,
        filename=f"images/{external_id}.{extension}",
        kind=kind,
        people=people,
        content=out.getvalue(),
        metadata_planted=tuple(planted),
    )


def _subject_consent(people: int, rng: random.Random) -> str:
    """As imported: unknown or not obtained for pictures of people (obtained is recorded
    afterwards, with its release form, by the campaign (``demo.campaign``))."""
    if not people:
        return SubjectConsent.NOT_APPLICABLE
    return rng.choices([SubjectConsent.UNKNOWN, SubjectConsent.NOT_OBTAINED], [3, 1])[0]


def images_archive(n: int, rng: random.Random, *, start: int = 0) -> tuple[bytes, list[DemoImage]]:
    """A zip of ``n`` drawn images (numbered from ``start``) with ``manifest.csv`` at its root."""
    kinds = balanced(tuple(SCENE_PRIVACY), n, rng)
    manifest = io.StringIO()
    writer = csv.writer(manifest, lineterminator="\n")
    writer.writerow(
        ["external_id", "file", "license", "source", "source_url", "creator", "attribution"]
        + ["subject_consent", "metadata"]
    )
    images: list[DemoImage] = []
    archive_bytes = io.BytesIO()
    with zipfile.ZipFile(archive_bytes, "w", zipfile.ZIP_STORED) as archive:
        for index, kind in enumerate(kinds, start=start):
            license_expression, source_name, source_url, creator = license_source_creator(
                index, rng, IMAGE_LICENSES, IMAGE_SOURCES
            )
            image = image_render(index, kind, creator, rng)
            images.append(image)
            archive.writestr(image.filename, image.content)
            metadata = {
                "scene": kind,
                "people_depicted": image.people,
                # Groups a trained model's errors are reported by (people x file format).
                "people": "some" if image.people else "none",
                "file_format": image.filename.rsplit(".", 1)[-1],
                # The drawn figures stand in for real people, so the consent reports have
                # something to find; no real person is shown.
                "synthetic": True,
            }
            writer.writerow(
                [
                    image.external_id,
                    image.filename,
                    license_expression,
                    source_name,
                    f"{source_url}/{image.external_id}",
                    creator,
                    attribution(creator, license_expression, source_name),
                    _subject_consent(image.people, rng),
                    json.dumps(metadata, sort_keys=True),
                ]
            )
        archive.writestr("manifest.csv", manifest.getvalue().encode())
    return archive_bytes.getvalue(), images
