"""The demo campaign behind ``manage.py create_demo``.

Two projects (PrivacyAlert-style photos, hate speech in short texts), drawn and written
here, imported through the real ingest, and labeled by simulated annotators through the
real services: consent, survey, ``assignment_next``, ``annotation_submit``, withdrawal.
Nothing is written to the database except through those services (and the admin's staff
flag, which no service grants; that grant is audited too).

The simulated annotators have group-dependent tendencies (``SIMULATED_EFFECTS``), so a
disagreement analysis of the demo has real group differences to find. Every random draw
comes from a generator seeded by the ``seed`` option; a label is drawn from a generator
seeded by (seed, item, annotator), so it does not depend on which annotator the
assignment service happened to hand the item to first.

All names, groups, places and images are invented. The hateful example texts target
invented groups only and contain no slurs.
"""

import csv
import io
import json
import math
import random
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.utils import timezone
from PIL import ExifTags, Image, ImageDraw, PngImagePlugin

from annotation.analysis import analysis_compute
from annotation.ingest import describe_error, import_batch_create, import_batch_run
from annotation.models import (
    ImportBatch,
    Item,
    Project,
    ProjectStatus,
    SubjectConsent,
    TakedownRequest,
)
from annotation.selectors import project_progress
from annotation.services import (
    annotation_submit,
    assignment_next,
    assignment_skip,
    enrolment_create,
    enrolment_survey_submit,
    enrolment_withdraw,
    item_control_set,
    item_subject_consent_set,
    project_create,
    project_transition,
    project_update,
    takedown_decide,
    takedown_file,
    user_create,
)
from annotation.surveys import DEFAULT_SURVEY, PREFER_NOT_TO_SAY
from core.models import Role, User
from provenance.models import LicenseCatalogEntry, LicenseUse
from provenance.services import audit_record, license_catalogue_seed, license_entry_save

DEMO_PASSWORD = "chorus-demo-2026"  # noqa: S105 - printed for everyone; demo accounts only
DEMO_URL = "http://127.0.0.1:8000/"
RESEARCHER_USERNAME = "researcher"
AUDITOR_USERNAME = "auditor"
ADMIN_USERNAME = "admin"
ANNOTATOR_PREFIX = "annotator"
IMAGE_PROJECT_TITLE = "Demo: would you share this photo? (PrivacyAlert-style)"
TEXT_PROJECT_TITLE = "Demo: hate speech in short texts"
DEFAULT_K = 5


class DemoError(Exception):
    """The demo cannot be built as asked; the message says why."""


@dataclass(frozen=True)
class DemoOptions:
    annotators: int = 30
    images: int = 60
    texts: int = 120
    seed: int = 7

    @property
    def late_images(self) -> int:
        """Images imported after the crowd is done, left for people trying the demo."""
        return max(1, self.images // 8)

    @property
    def late_texts(self) -> int:
        return max(1, self.texts // 8)

    def validate(self) -> None:
        if self.annotators < 2:
            raise DemoError("--annotators must be at least 2 (one of them withdraws).")
        if self.annotators > 99:
            raise DemoError("--annotators must be at most 99.")
        if not 1 <= self.images <= 2000:
            raise DemoError("--images must be between 1 and 2000.")
        most_texts = distinct_text_count() - self.late_texts
        if not 1 <= self.texts <= most_texts:
            raise DemoError(f"--texts must be between 1 and {most_texts}.")

    @property
    def k(self) -> int:
        # One annotator per project withdraws; the rest must still be able to fill k.
        return min(DEFAULT_K, self.annotators - 1)


# ---------------------------------------------------------------- the simulated crowd

AGE_GROUPS: tuple[str, ...] = tuple(DEFAULT_SURVEY[0]["options"])
GENDERS: tuple[str, ...] = tuple(DEFAULT_SURVEY[1]["options"])
REGIONS: tuple[str, ...] = tuple(DEFAULT_SURVEY[2]["options"])

# Positive = rates photos as more shareable (public); older groups rate them more private.
AGE_PRIVACY_SHIFT: dict[str, float] = {
    "18-24": 0.5,
    "25-34": 0.25,
    "35-44": 0.0,
    "45-54": -0.4,
    "55+": -0.8,
}
# An arbitrary, invented effect so group analysis has something to find: annotators from
# this region pick "offensive" more often (added to its log-odds).
OFFENSIVE_REGION = "Europe"
OFFENSIVE_REGION_LOGIT = 1.6

SIMULATED_EFFECTS = (
    "Photos: older age groups rate photos as more private (shift on the 4-point scale: "
    + ", ".join(f"{group} {shift:+g}" for group, shift in AGE_PRIVACY_SHIFT.items())
    + ").",
    f"Texts: annotators in {OFFENSIVE_REGION} choose 'offensive' more often "
    f"(+{OFFENSIVE_REGION_LOGIT:g} log-odds); an invented effect, not a claim about anyone.",
    "No simulated effect of gender: any gender difference found is chance.",
    "Every annotator also has a personal bias and per-label noise.",
)


@dataclass(frozen=True)
class Persona:
    """A simulated annotator: true traits drive labels; survey answers may hide them."""

    username: str
    age_group: str
    gender: str
    region: str
    # Personal leaning: + rates photos more public / texts more harshly.
    privacy_bias: float
    harshness: float
    survey_mode: str  # "full", "partial" (some "prefer not to say") or "skipped"
    enrols_images: bool
    enrols_texts: bool

    def survey_answers(self, rng: random.Random) -> dict[str, str]:
        answers = {"age_group": self.age_group, "gender": self.gender, "region": self.region}
        if self.survey_mode == "partial":
            hidden = rng.sample(sorted(answers), k=rng.randint(1, 2))
            for key in hidden:
                answers[key] = PREFER_NOT_TO_SAY
        return answers


def _balanced(values: Sequence[str], n: int, rng: random.Random) -> list[str]:
    """Each value about equally often, in random order, so every group has members."""
    drawn = [values[i % len(values)] for i in range(n)]
    rng.shuffle(drawn)
    return drawn


def personas_generate(n: int, k: int, rng: random.Random) -> list[Persona]:
    ages = _balanced(AGE_GROUPS, n, rng)
    regions = _balanced(REGIONS, n, rng)
    genders = _balanced(("woman", "man", "woman", "man", "non-binary"), n, rng)
    # With spare annotators, a few take part in one project only.
    spare = n > k + 3
    personas = []
    for index in range(n):
        mode = rng.choices(("full", "partial", "skipped"), weights=(75, 15, 10))[0]
        personas.append(
            Persona(
                username=f"{ANNOTATOR_PREFIX}{index + 1:02d}",
                age_group=ages[index],
                gender=genders[index],
                region=regions[index],
                privacy_bias=rng.gauss(0.0, 0.25),
                harshness=rng.gauss(0.0, 0.3),
                survey_mode="full" if index == 0 else mode,
                enrols_images=not (spare and index % 6 == 5),
                enrols_texts=not (spare and index % 6 == 2),
            )
        )
    return personas


def _pair_rng(seed: int, item: Item, username: str) -> random.Random:
    # A string seed is hashed with SHA-512: stable across processes and PYTHONHASHSEED.
    return random.Random(f"{seed}:{item.project_id}:{item.external_id}:{username}")  # noqa: S311


# ---------------------------------------------------------------- images

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
CREATORS = (
    "Ana Kestrel",
    "Bo Lindqvist",
    "Chidi Okafor",
    "Dana Ruiz",
    "Eun-ji Park",
    "Femi Adeyemi",
    "Photo club member 12",
    "Chorus demo generator",
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


def _license_source_creator(
    index: int,
    rng: random.Random,
    licenses: dict[str, int],
    sources: Sequence[tuple[str, str]],
) -> tuple[str, str, str, str]:
    # Every expression once first, so even a small demo shows the variety; then by weight.
    names = list(licenses)
    if index < len(names):
        license_expression = names[index]
    else:
        license_expression = rng.choices(names, weights=list(licenses.values()))[0]
    source_name, source_url = sources[rng.randrange(len(sources))]
    creator = rng.choice(CREATORS)
    return license_expression, source_name, source_url, creator


def _attribution(creator: str, license_expression: str, source_name: str) -> str:
    if not license_expression or license_expression == "NOASSERTION":
        return ""
    return f'"{creator}", via {source_name}, {license_expression}'


def _subject_consent(people: int, rng: random.Random) -> str:
    """As imported: unknown or not obtained for pictures of people (obtained is recorded
    afterwards, with its release form, by ``_record_releases``)."""
    if not people:
        return SubjectConsent.NOT_APPLICABLE
    return rng.choices([SubjectConsent.UNKNOWN, SubjectConsent.NOT_OBTAINED], [3, 1])[0]


def images_archive(n: int, rng: random.Random, *, start: int = 0) -> tuple[bytes, list[DemoImage]]:
    """A zip of ``n`` drawn images (numbered from ``start``) with ``manifest.csv`` at its root."""
    kinds = _balanced(tuple(SCENE_PRIVACY), n, rng)
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
            license_expression, source_name, source_url, creator = _license_source_creator(
                index, rng, IMAGE_LICENSES, IMAGE_SOURCES
            )
            image = image_render(index, kind, creator, rng)
            images.append(image)
            archive.writestr(image.filename, image.content)
            metadata = {
                "scene": kind,
                "people_depicted": image.people,
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
                    _attribution(creator, license_expression, source_name),
                    _subject_consent(image.people, rng),
                    json.dumps(metadata, sort_keys=True),
                ]
            )
        archive.writestr("manifest.csv", manifest.getvalue().encode())
    return archive_bytes.getvalue(), images


def privacy_label(*, kind: str, persona: Persona, rng: random.Random) -> tuple[str, int]:
    """A simulated rating on the 4-point scale and a confidence from 1 to 5."""
    noise = rng.gauss(0.0, 0.55)
    score = SCENE_PRIVACY[kind] + AGE_PRIVACY_SHIFT[persona.age_group] + persona.privacy_bias
    position = min(3, max(0, round(score + noise)))
    confidence = min(5, max(1, 5 - round(abs(noise) * 3)))
    return PRIVACY_VALUES[position], confidence


# ---------------------------------------------------------------- texts

HATE_VALUES = ("hateful", "offensive", "neither")
INVENTED_GROUPS = (
    "Zorblaxians",
    "Quellites",
    "Marnovians",
    "Tervani",
    "Ondrish people",
    "Vellorans",
)
TOPICS = (
    "match",
    "app update",
    "bus timetable",
    "fantasy league",
    "phone",
    "parking system",
    "sequel",
    "menu",
)
# Category -> (templates, probabilities of hateful / offensive / neither for an average
# annotator). {g} is an invented group, {t} a mundane topic.
TEXT_CATEGORIES: dict[str, tuple[tuple[str, ...], tuple[float, float, float]]] = {
    "hateful": (
        (
            "{g} are vermin and should leave our town.",
            "Every one of the {g} is a liar, it's in their blood.",
            "{g} should not be allowed to vote or open shops here.",
            "Keep the {g} out of our neighbourhood, they ruin everything.",
            "I would never hire one of the {g}, they are lazy by nature.",
            "{g} are a disease on this country.",
            "Don't rent flats to {g}, they're all criminals.",
            "{g} aren't real people, they're pests.",
        ),
        (0.78, 0.17, 0.05),
    ),
    "offensive": (
        (
            "This referee is a total clown, worst {t} I have ever sat through.",
            "Whoever designed this {t} is an absolute idiot.",
            "Shut up about your stupid {t} already, nobody cares.",
            "What a garbage {t}, the people behind it should be embarrassed.",
            "You're a moron if you think this {t} is worth the money.",
            "My landlord is a greedy jerk and so is his {t}.",
        ),
        (0.07, 0.73, 0.20),
    ),
    "neither": (
        (
            "Had a lovely walk by the river with the {g} community choir today.",
            "The {g} food stall at the market has the best dumplings in town.",
            "Does anyone know when the {t} will be fixed?",
            "Our book club is reading a novel about a family of {g} this month.",
            "Great turnout at the {g} new year festival, the lanterns were beautiful.",
            "Reminder: the meeting about the {t} moved to Thursday.",
            "Just tried the new {t}, honestly pretty good.",
        ),
        (0.02, 0.06, 0.92),
    ),
    "counter_speech": (
        (
            "Calling {g} 'vermin' is dehumanising and we should all call it out.",
            "I'm tired of people blaming {g} for everything. They are our neighbours.",
            "The council condemned posters saying {g} should leave. Good.",
            "A leaflet claiming {g} are criminals was handed out downtown; police are "
            "investigating.",
        ),
        (0.18, 0.12, 0.70),
    ),
    "satire": (
        (
            "Breaking: local man blames {g} for the weather, again. Meteorologists unimpressed.",
            "New study finds {g} responsible for everything, says man who did not do a study.",
            "Area uncle discovers {g} exist, immediately has strong opinions at dinner.",
        ),
        (0.20, 0.25, 0.55),
    ),
}
CATEGORY_WEIGHTS = {
    "hateful": 25,
    "offensive": 25,
    "neither": 30,
    "counter_speech": 10,
    "satire": 10,
}
TEXT_LICENSES = {
    "CC0-1.0": 25,
    "CC-BY-4.0": 30,
    "CC-BY-SA-4.0": 15,
    "CC-BY-NC-4.0": 10,
    "NOASSERTION": 10,
    "": 5,
}
TEXT_SOURCES = (
    ("forum-simulation", "https://forum.example.net/threads"),
    ("comment-section-sample", "https://news.example.com/comments"),
    ("synthetic-generator", "https://chorus.example.net/synthetic"),
)


@dataclass(frozen=True)
class DemoText:
    external_id: str
    text: str
    category: str


def _text_variants() -> dict[str, list[str]]:
    """Every distinct text each category's templates can give, sorted."""
    return {
        category: sorted(
            {
                template.format(g=group, t=topic)
                for template in templates
                for group in INVENTED_GROUPS
                for topic in TOPICS
            }
        )
        for category, (templates, _) in TEXT_CATEGORIES.items()
    }


def distinct_text_count() -> int:
    return sum(len(variants) for variants in _text_variants().values())


def texts_generate(n: int, rng: random.Random) -> list[DemoText]:
    """``n`` distinct short texts, categories mixed by ``CATEGORY_WEIGHTS``."""
    combos = _text_variants()
    for variants in combos.values():
        rng.shuffle(variants)
    categories = list(CATEGORY_WEIGHTS)
    weights = list(CATEGORY_WEIGHTS.values())
    result: list[DemoText] = []
    for index in range(n):
        available = [c for c in categories if combos[c]]
        if not available:
            raise DemoError(f"The text templates give at most {index} distinct texts.")
        category = rng.choices(
            available, weights=[weights[categories.index(c)] for c in available]
        )[0]
        result.append(DemoText(f"txt-{index + 1:04d}", combos[category].pop(), category))
    return result


def texts_csv(texts: Sequence[DemoText], rng: random.Random) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["external_id", "text", "license", "source", "source_url", "creator", "attribution"]
        + ["metadata"]
    )
    for index, text in enumerate(texts):
        license_expression, source_name, source_url, _ = _license_source_creator(
            index, rng, TEXT_LICENSES, TEXT_SOURCES
        )
        creator = f"forum user {rng.randint(100, 999)}"
        metadata = {"template_category": text.category, "synthetic": True, "language": "en"}
        writer.writerow(
            [
                text.external_id,
                text.text,
                license_expression,
                source_name,
                f"{source_url}/{text.external_id}",
                creator,
                _attribution(creator, license_expression, source_name),
                json.dumps(metadata, sort_keys=True),
            ]
        )
    return out.getvalue().encode()


def hate_label(*, category: str, persona: Persona, rng: random.Random) -> tuple[str, int]:
    """A simulated hate-speech label and a confidence from 1 to 5."""
    base = TEXT_CATEGORIES[category][1]
    logits = [math.log(p) for p in base]
    logits[0] += persona.harshness
    logits[1] += 0.5 * persona.harshness
    if persona.region == OFFENSIVE_REGION:
        logits[1] += OFFENSIVE_REGION_LOGIT
    weights = [math.exp(value) for value in logits]
    value = rng.choices(HATE_VALUES, weights=weights)[0]
    chosen = weights[HATE_VALUES.index(value)] / sum(weights)
    confidence = min(5, max(1, round(1 + 4 * chosen + rng.gauss(0.0, 0.5))))
    return value, confidence


# ---------------------------------------------------------------- reading the demo back


@dataclass(frozen=True)
class Login:
    username: str
    password: str
    role: str
    look_at: str


def demo_projects() -> list[Project]:
    return list(
        Project.objects.filter(
            owner__username=RESEARCHER_USERNAME,
            title__in=(IMAGE_PROJECT_TITLE, TEXT_PROJECT_TITLE),
        ).order_by("modality")
    )


def demo_exists() -> bool:
    return bool(demo_projects())


def demo_usernames_taken() -> list[str]:
    """Demo usernames that already exist (a clash when the demo itself is absent)."""
    fixed = (RESEARCHER_USERNAME, AUDITOR_USERNAME, ADMIN_USERNAME)
    taken = set(User.objects.filter(username__in=fixed).values_list("username", flat=True))
    taken |= set(
        User.objects.filter(username__regex=rf"^{ANNOTATOR_PREFIX}[0-9]{{2}}$").values_list(
            "username", flat=True
        )
    )
    return sorted(taken)


def demo_logins() -> list[Login]:
    annotators = list(
        User.objects.filter(role=Role.ANNOTATOR, username__regex=rf"^{ANNOTATOR_PREFIX}[0-9]{{2}}$")
        .order_by("username")
        .values_list("username", flat=True)
    )
    logins = [
        Login(
            RESEARCHER_USERNAME,
            DEMO_PASSWORD,
            "researcher",
            "owns both projects: Analysis (agreement, groups, contested items), gold "
            "items, takedown decisions, import; API at /api/v1/",
        ),
        Login(
            AUDITOR_USERNAME,
            DEMO_PASSWORD,
            "auditor",
            "read-only: license and consent reports (with findings), takedowns, "
            "analyses, the audit log and its chain check",
        ),
        Login(ADMIN_USERNAME, DEMO_PASSWORD, "staff admin", "Django admin at /admin/"),
    ]
    if annotators:
        span = annotators[0] if len(annotators) == 1 else f"{annotators[0]}..{annotators[-1]}"
        logins.append(
            Login(
                span,
                DEMO_PASSWORD,
                "annotator",
                "annotator home, consent, survey, own labels (blind: never others')",
            )
        )
    return logins


def demo_media_names() -> list[str]:
    """Stored files of every item and staged upload: what a database flush orphans."""
    names = [name for name in Item.objects.values_list("image", flat=True) if name]
    names += [name for name in ImportBatch.objects.values_list("upload", flat=True) if name]
    return names


def media_delete(names: Sequence[str]) -> int:
    deleted = 0
    for name in names:
        if default_storage.exists(name):
            default_storage.delete(name)
            deleted += 1
    return deleted


# ---------------------------------------------------------------- building it


@dataclass
class ProjectReport:
    title: str
    modality: str
    k: int
    progress: dict[str, Any]
    enrolled: int
    surveys_full: int
    surveys_partial: int
    surveys_skipped: int
    withdrawn: list[str]
    skipped_items: int
    agreement: dict[str, Any] = field(default_factory=dict)


@dataclass
class DemoReport:
    projects: list[ProjectReport] = field(default_factory=list)
    images_with_metadata: int = 0
    metadata_removed: dict[str, int] = field(default_factory=dict)
    stored_images_still_tagged: int = 0
    licenses: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


Log = Callable[[str], None]


def _create_people(personas: Sequence[Persona], log: Log) -> tuple[User, list[User]]:
    researcher = user_create(
        username=RESEARCHER_USERNAME,
        password=DEMO_PASSWORD,
        role=Role.RESEARCHER,
        email="researcher@example.org",
    )
    user_create(
        username=AUDITOR_USERNAME,
        password=DEMO_PASSWORD,
        role=Role.AUDITOR,
        email="auditor@example.org",
    )
    admin = user_create(
        username=ADMIN_USERNAME,
        password=DEMO_PASSWORD,
        role=Role.RESEARCHER,
        email="admin@example.org",
    )
    # No service grants staff: it is an operator's act (createsuperuser does the same),
    # recorded in the audit log as the governance action it is.
    admin.is_staff = True
    admin.is_superuser = True
    admin.save(update_fields=["is_staff", "is_superuser"])
    audit_record(
        actor=None,
        action="user.staff_grant",
        obj=admin,
        payload={"pseudonym": admin.pseudonym, "by": "create_demo"},
    )
    annotators = [
        user_create(
            username=persona.username,
            password=DEMO_PASSWORD,
            role=Role.ANNOTATOR,
            email=f"{persona.username}@example.org",
        )
        for persona in personas
    ]
    log(f"Created researcher, auditor, admin and {len(annotators)} annotators.")
    return researcher, annotators


def _import(project: Project, researcher: User, name: str, content: bytes) -> ImportBatch:
    batch = import_batch_create(
        project=project, actor=researcher, upload=SimpleUploadedFile(name, content)
    )
    # The run is enqueued on commit, which the demo's one transaction defers to its end,
    # and no worker can see the uncommitted batch: run it here. The enqueued run then
    # finds the batch done and does nothing (its status guard).
    batch = import_batch_run(batch_id=batch.pk)
    if batch.status != ImportBatch.Status.DONE:
        problems = "; ".join(describe_error(error) for error in batch.errors[:5])
        raise DemoError(f"Importing {name} ended {batch.status}: {problems}")
    return batch


def _create_projects(
    researcher: User, options: DemoOptions, rng: random.Random, log: Log
) -> tuple[Project, Project, list[DemoImage], list[DemoText], list[DemoText]]:
    image_project = project_create(
        owner=researcher,
        preset="privacy_alert",
        title=IMAGE_PROJECT_TITLE,
        description=(
            "Would you share this photo, and with whom? Drawn scenes (documents, screens, "
            "family rooms, parties, beaches, houses, streets, landscapes) rated on the "
            "PrivacyAlert 4-point scale. All images are synthetic."
        ),
        annotations_per_item=options.k,
        compensation_amount=Decimal("0.08"),
        compensation_currency="EUR",
        compensation_unit="per_item",
        risk_disclosure=(
            "Some photos suggest private situations (documents, screens, people at home). "
            "No real person or place is shown: every image is drawn by a program."
        ),
        data_use_statement=(
            "Your ratings, under a random pseudonym, and your optional survey answers are "
            "used to study how people judge photo privacy and are published in a research "
            "dataset. Nothing identifying you is published."
        ),
        survey=DEFAULT_SURVEY,
    )
    text_project = project_create(
        owner=researcher,
        preset="hate_speech",
        title=TEXT_PROJECT_TITLE,
        description=(
            "Is this short text hateful, offensive, or neither? Generated texts about "
            "invented groups (Zorblaxians, Quellites, ...), including satire and "
            "counter-speech."
        ),
        annotations_per_item=options.k,
        compensation_amount=Decimal("12.00"),
        compensation_currency="EUR",
        compensation_unit="per_hour",
        risk_disclosure=(
            "Some texts are insulting or hateful. They target invented groups only and "
            "contain no slurs, but reading them can still be unpleasant. Take breaks; you "
            "can stop or withdraw at any time."
        ),
        data_use_statement=(
            "Your labels, under a random pseudonym, and your optional survey answers are "
            "used to study disagreement in hate-speech labeling and are published in a "
            "research dataset."
        ),
        survey=DEFAULT_SURVEY,
    )
    license_catalogue_seed()
    license_entry_save(
        entry=LicenseCatalogEntry(
            spdx_id=PHOTO_CLUB_LICENSE,
            name="Campus photo club licence: academic research only",
            use=LicenseUse.ACADEMIC_ONLY,
            attribution=True,
            terms_url="https://photoclub.example.edu/licence",
            source_url="https://photoclub.example.edu/licence",
            notes="Invented for the demo: a custom license registered by staff.",
        ),
        actor=None,
    )
    archive, images = images_archive(options.images, rng)
    _import(image_project, researcher, "demo-photos.zip", archive)
    all_texts = texts_generate(options.texts + options.late_texts, rng)
    texts, late_texts = all_texts[: options.texts], all_texts[options.texts :]
    _import(text_project, researcher, "demo-texts.csv", texts_csv(texts, rng))
    log(f"Imported {len(images)} drawn images and {len(texts)} texts through ingest.")
    controls = _mark_controls(image_project, text_project, images, texts, researcher)
    log(
        f"Marked {controls} items as gold or attention checks, mixed in at "
        f"{CONTROL_RATE:.0%} and never shown as such."
    )
    for project in (image_project, text_project):
        project_transition(project=project, actor=researcher, status=ProjectStatus.OPEN)
    return image_project, text_project, images, texts, late_texts


CONTROL_RATE = 0.08
GOLD_IMAGE_KINDS = ("document", "landscape", "street", "screen")


def _mark_controls(
    image_project: Project,
    text_project: Project,
    images: Sequence[DemoImage],
    texts: Sequence[DemoText],
    researcher: User,
) -> int:
    """Gold photos whose answer the researcher is sure of (a document is clearly private, a
    landscape clearly public) and attention-check texts whose answer is unmistakable."""
    marked = 0
    first_of_kind = {image.kind: image for image in reversed(images)}
    for kind in GOLD_IMAGE_KINDS:
        if kind not in first_of_kind:  # a small demo may draw no image of this kind
            continue
        image = first_of_kind[kind]
        item = Item.objects.get(project=image_project, external_id=image.external_id)
        expected = PRIVACY_VALUES[min(3, max(0, round(SCENE_PRIVACY[kind])))]
        item_control_set(item=item, actor=researcher, control="gold", expected_value=expected)
        marked += 1
    for category, expected in (("hateful", "hateful"), ("neither", "neither")):
        chosen = [text for text in texts if text.category == category][:2]
        for text in chosen:
            item = Item.objects.get(project=text_project, external_id=text.external_id)
            item_control_set(
                item=item, actor=researcher, control="attention", expected_value=expected
            )
            marked += 1
    for project in (image_project, text_project):
        project_update(project=project, actor=researcher, data={"control_rate": CONTROL_RATE})
    return marked


def _import_late_arrivals(
    *,
    researcher: User,
    image_project: Project,
    text_project: Project,
    late_texts: Sequence[DemoText],
    options: DemoOptions,
    rng: random.Random,
    log: Log,
) -> None:
    """A second batch per project after the crowd is done: work left for a human to try."""
    archive, late_images = images_archive(options.late_images, rng, start=options.images)
    _import(image_project, researcher, "demo-photos-late.zip", archive)
    _import(text_project, researcher, "demo-texts-late.csv", texts_csv(late_texts, rng))
    log(
        f"Imported {len(late_images)} more images and {len(late_texts)} more texts, "
        "unlabeled: sign in as any annotator to label them."
    )


@dataclass
class _Campaign:
    """One project's simulated labeling: who is active, when someone withdraws."""

    project: Project
    members: list[tuple[Persona, User]]
    label: Callable[[Item, Persona, random.Random], tuple[str, int]]
    withdraw_after: int
    withdraw_username: str = ""
    labels: int = 0
    skipped: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    withdrawn: list[str] = field(default_factory=list)


def _enrol(campaign: _Campaign, rng: random.Random) -> tuple[int, int, int]:
    full = partial = skipped = 0
    for persona, user in campaign.members:
        enrolment = enrolment_create(project=campaign.project, annotator=user)
        if persona.survey_mode == "skipped":
            skipped += 1
            continue
        enrolment_survey_submit(enrolment=enrolment, answers=persona.survey_answers(rng))
        if persona.survey_mode == "partial":
            partial += 1
        else:
            full += 1
    return full, partial, skipped


def _label_once(
    campaign: _Campaign, persona: Persona, user: User, seed: int, allow_skips: bool
) -> bool:
    """One next-item + submit for this annotator; False when nothing is left for them."""
    assignment = assignment_next(project=campaign.project, annotator=user)
    if assignment is None:
        return False
    item = assignment.item
    pair = _pair_rng(seed, item, persona.username)
    if allow_skips and pair.random() < 0.02:
        assignment_skip(assignment=assignment, annotator=user)
        campaign.skipped += 1
        return True
    value, confidence = campaign.label(item, persona, pair)
    rationale = ""
    if pair.random() < 0.1:
        rationale = f"Went with '{value}' after a second look."
    annotation_submit(
        annotator=user,
        item=item,
        value=value,
        confidence=confidence,
        rationale=rationale,
        time_spent_ms=int(pair.lognormvariate(math.log(7000), 0.5)),
    )
    campaign.labels += 1
    campaign.counts[persona.username] += 1
    return True


def _maybe_withdraw(campaign: _Campaign, active: list[tuple[Persona, User]]) -> bool:
    """Once labeling is far enough along, one annotator who has labeled leaves."""
    if campaign.withdrawn or campaign.labels < campaign.withdraw_after:
        return False
    candidates = [pair for pair in active if campaign.counts[pair[0].username]]
    chosen = [pair for pair in candidates if pair[0].username == campaign.withdraw_username]
    if not (chosen or candidates):
        return False
    persona, user = (chosen or candidates)[0]
    enrolment = campaign.project.enrolments.get(annotator=user)
    enrolment_withdraw(enrolment=enrolment, actor=user)
    campaign.withdrawn.append(persona.username)
    active.remove((persona, user))
    return True


def _run_labeling(campaigns: Sequence[_Campaign], options: DemoOptions, rng: random.Random) -> None:
    """Round-robin over (project, annotator) until nobody gets another item."""
    allow_skips = options.annotators >= 2 * options.k + 2
    for campaign in campaigns:
        active = list(campaign.members)
        finished: list[tuple[Persona, User]] = []
        while active:
            order = list(active)
            rng.shuffle(order)
            for pair in order:
                if pair not in active:
                    continue
                if not _label_once(campaign, pair[0], pair[1], options.seed, allow_skips):
                    active.remove(pair)
                    finished.append(pair)
                elif _maybe_withdraw(campaign, active):
                    # The withdrawn labels freed slots: those who ran out may label again.
                    active.extend(finished)
                    finished.clear()


RELEASE_TEXT = (
    "I agree that photos of me taken at the campus photo club may be used, without my "
    "name, to study how people judge photo privacy, and published in a research dataset."
)


def _record_releases(project: Project, researcher: User, rng: random.Random) -> int:
    """Signed releases for some pictures of people: consent obtained, with its evidence."""
    candidates = list(
        Item.objects.filter(project=project, subject_consent=SubjectConsent.UNKNOWN).order_by(
            "external_id"
        )
    )
    chosen = rng.sample(candidates, k=len(candidates) // 3)
    for number, item in enumerate(chosen, start=1):
        item_subject_consent_set(
            item=item,
            actor=researcher,
            status=SubjectConsent.OBTAINED,
            consent_text=RELEASE_TEXT,
            purposes=["research", "dataset-publication"],
            evidence=f"Signed release PC-{number:03d}, photo club archive, folder 2026",
            expires_at=timezone.now() + timedelta(days=3 * 365),
        )
    return len(chosen)


def _file_takedowns(
    image_project: Project, text_project: Project, researcher: User, log: Log
) -> None:
    """Requests from the public: one accepted (the item is tombstoned), two left open."""
    photo = (
        Item.objects.filter(project=image_project, subject_consent=SubjectConsent.NOT_OBTAINED)
        .order_by("external_id")
        .first()
    )
    if photo is not None:
        (accepted,) = takedown_file(
            reference=str(photo.pk),
            kind=TakedownRequest.Kind.PRIVACY,
            reason="This is me at a party; I never agreed to be in a dataset.",
            contact="requester@example.org",
        )
        takedown_decide(
            request=accepted,
            actor=researcher,
            accept=True,
            reason="The person shown did not consent; GDPR art. 17 applies.",
        )
    text = Item.objects.filter(project=text_project).order_by("external_id").first()
    if text is not None:
        takedown_file(
            reference=text.sha256,
            kind=TakedownRequest.Kind.COPYRIGHT,
            reason="I wrote this comment and did not license it for reuse.",
            contact="author@example.net",
        )
    takedown_file(
        reference="IMG_2041.jpg",
        kind=TakedownRequest.Kind.OTHER,
        reason="Is a photo of my house in your dataset?",
    )
    log("Takedowns: one accepted (its item tombstoned), two open for the reports to show.")


def _image_label(
    kinds: dict[str, str],
) -> Callable[[Item, Persona, random.Random], tuple[str, int]]:
    def label(item: Item, persona: Persona, rng: random.Random) -> tuple[str, int]:
        return privacy_label(kind=kinds[item.external_id], persona=persona, rng=rng)

    return label


def _text_label(
    categories: dict[str, str],
) -> Callable[[Item, Persona, random.Random], tuple[str, int]]:
    def label(item: Item, persona: Persona, rng: random.Random) -> tuple[str, int]:
        return hate_label(category=categories[item.external_id], persona=persona, rng=rng)

    return label


def _image_checks(project: Project, report: DemoReport) -> None:
    """What ingest removed, and proof that no stored copy still carries it."""
    removed: Counter[str] = Counter()
    still_tagged = 0
    for item in Item.objects.filter(project=project, tombstoned_at__isnull=True).only(
        "image", "removed_metadata"
    ):
        if item.removed_metadata:
            report.images_with_metadata += 1
            removed.update(item.removed_metadata)
        with item.image.open("rb") as handle, Image.open(handle) as stored:
            exif = stored.getexif()
            if (
                len(exif)
                or stored.info.get("xmp")
                or any("xmp" in key.lower() for key in getattr(stored, "text", {}) or {})
            ):
                still_tagged += 1
    report.metadata_removed = dict(sorted(removed.items()))
    report.stored_images_still_tagged = still_tagged


def demo_build(*, options: DemoOptions, log: Log) -> DemoReport:
    """Build the whole demo in one transaction: all of it, or nothing."""
    options.validate()
    started = time.monotonic()
    rng = random.Random(options.seed)  # noqa: S311 - reproducible simulation, not security
    personas = personas_generate(options.annotators, options.k, rng)
    report = DemoReport()
    with transaction.atomic():
        researcher, annotators = _create_people(personas, log)
        image_project, text_project, images, texts, late_texts = _create_projects(
            researcher, options, rng, log
        )
        crowd = list(zip(personas, annotators, strict=True))
        targets = {
            image_project.pk: options.images * options.k,
            text_project.pk: options.texts * options.k,
        }
        image_members = [pair for pair in crowd if pair[0].enrols_images]
        text_members = [pair for pair in crowd if pair[0].enrols_texts]
        campaigns = [
            _Campaign(
                project=image_project,
                members=image_members,
                label=_image_label({image.external_id: image.kind for image in images}),
                withdraw_after=int(targets[image_project.pk] * 0.4),
                withdraw_username=image_members[-1][0].username,
            ),
            _Campaign(
                project=text_project,
                members=text_members,
                label=_text_label({text.external_id: text.category for text in texts}),
                withdraw_after=int(targets[text_project.pk] * 0.5),
                withdraw_username=text_members[len(text_members) // 2][0].username,
            ),
        ]
        surveys = {id(c): _enrol(c, rng) for c in campaigns}
        log("Annotators consented; most answered the survey. Labeling through the services...")
        _run_labeling(campaigns, options, rng)
        _import_late_arrivals(
            researcher=researcher,
            image_project=image_project,
            text_project=text_project,
            late_texts=late_texts,
            options=options,
            rng=rng,
            log=log,
        )
        releases = _record_releases(image_project, researcher, rng)
        log(f"Recorded {releases} signed releases for pictures of people.")
        _file_takedowns(image_project, text_project, researcher, log)
        # The main job: each project's disagreement analysis, as its researcher sees it.
        summaries = {
            campaign.project.pk: analysis_compute(project=campaign.project, filters={}).summary
            for campaign in campaigns
        }
        log("Computed the disagreement analyses (agreement, Dawid-Skene, annotator groups).")
        _image_checks(image_project, report)
        for campaign in campaigns:
            project = campaign.project
            full, partial, skipped = surveys[id(campaign)]
            report.projects.append(
                ProjectReport(
                    title=project.title,
                    modality=project.modality,
                    k=project.annotations_per_item,
                    progress=project_progress(project=project).as_dict(),
                    enrolled=len(campaign.members),
                    surveys_full=full,
                    surveys_partial=partial,
                    surveys_skipped=skipped,
                    withdrawn=campaign.withdrawn,
                    skipped_items=campaign.skipped,
                    agreement=summaries[project.pk],
                )
            )
        report.licenses = dict(
            Counter(
                license_expression or "(none)"
                for license_expression in Item.objects.filter(
                    project__in=(image_project, text_project)
                ).values_list("license", flat=True)
            ).most_common()
        )
    report.seconds = time.monotonic() - started
    return report


__all__ = [
    "DEMO_PASSWORD",
    "DEMO_URL",
    "SIMULATED_EFFECTS",
    "DemoError",
    "DemoOptions",
    "DemoReport",
    "Login",
    "demo_build",
    "demo_exists",
    "demo_logins",
    "demo_media_names",
    "demo_projects",
    "demo_usernames_taken",
    "hate_label",
    "images_archive",
    "media_delete",
    "personas_generate",
    "privacy_label",
    "texts_csv",
    "texts_generate",
]
