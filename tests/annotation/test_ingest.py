"""Item ingest: sanitisation, manifests with line numbers, archive/path safety, batches."""

import io
import json
import os
import re
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from hypothesis import given
from hypothesis import settings as settings_hypothesis
from hypothesis import strategies as st
from PIL import ExifTags, Image

from annotation import ingest
from annotation.ingest import (
    MANIFEST_COLUMNS,
    ImageRejected,
    import_batch_create,
    import_batch_run,
    items_import,
    manifest_columns,
    parse_csv,
    parse_jsonl,
    read_folder,
    read_upload,
    safe_relative_path,
    sanitize_image,
    stores,
    text_sha256,
)
from annotation.models import ImportBatch, Item, ProjectStatus
from annotation.services import project_transition
from annotation.tasks import import_batch_run_task
from core.errors import Conflict, PayloadTooLarge, PermissionDenied, ValidationFailed
from core.models import Role
from provenance.licenses import parse as license_parse
from provenance.models import AuditEvent, Source
from tests.annotation.conftest import (
    XMP_PACKET,
    csv_bytes,
    image_bytes,
    jpeg_with_metadata,
    png_bytes,
    png_declaring,
    zip_bytes,
)
from tests.annotation.factories import add_text_items, make_open_project, make_project
from tests.core.factories import make_user

pytestmark = pytest.mark.django_db

TEXT_HEADER = "external_id,text,license,source,source_url,creator,attribution,metadata,lang"


def _import_text(project, data: bytes, filename: str = "items.csv"):
    return items_import(
        project=project, actor=project.owner, source=read_upload(data=data, filename=filename)
    )


def _import_zip(project, members: dict[str, bytes]):
    source = read_upload(data=zip_bytes(members), filename="images.zip")
    return items_import(project=project, actor=project.owner, source=source)


def _errors(excinfo) -> list[dict]:
    return excinfo.value.extra["errors"]


def _stored_media(media_root: Path) -> list[Path]:
    return [path for path in media_root.rglob("*") if path.is_file()] if media_root.exists() else []


def _import_events() -> int:
    return AuditEvent.objects.filter(action="items.import").count()


# ---------------------------------------------------------------- images


def test_sanitize_image_jpeg_with_metadata_strips_all_and_applies_orientation():
    upload = jpeg_with_metadata(size=(40, 20), orientation=6)

    result = sanitize_image(upload)

    assert result.format == "jpeg" and result.extension == "jpg"
    assert (result.width, result.height) == (20, 40)
    assert result.removed_metadata == ["exif", "gps", "makernote", "xmp", "iptc", "comment"]
    stored = Image.open(io.BytesIO(result.content))
    assert "exif" not in stored.info and "xmp" not in stored.info
    assert "comment" not in stored.info and "photoshop" not in stored.info
    assert len(stored.getexif()) == 0
    assert stored.info.get("icc_profile"), "the ICC profile is kept"
    for secret in (b"SecretCam", b"secret-xmp-location", b"secret-iptc", b"secret-comment"):
        assert secret not in result.content
    assert len(result.phash) == 16


def test_sanitize_image_png_followed_by_html_is_re_encoded_without_it():
    upload = png_bytes() + b"<html><script>alert(document.cookie)</script></html>"

    result = sanitize_image(upload)

    assert b"<html" not in result.content and b"<script" not in result.content
    assert result.content != upload
    assert "trailing_data" in result.removed_metadata


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_sanitize_image_allowed_formats_keep_their_format(fmt):
    result = sanitize_image(image_bytes(fmt))

    assert Image.open(io.BytesIO(result.content)).format == fmt
    assert result.removed_metadata == []


@pytest.mark.parametrize(
    ("data", "detected"),
    [
        (b"<!DOCTYPE html><html><body>hi</body></html>", "HTML"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "SVG"),
        (image_bytes("TIFF"), "TIFF"),
        (image_bytes("GIF"), "GIF"),
        (image_bytes("BMP"), "BMP"),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "PDF"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n", "PostScript/EPS"),
        (b"8BPS\x00\x01" + b"\x00" * 40, "PSD"),
    ],
    ids=["html-as-jpg", "svg-script", "tiff", "gif", "bmp", "pdf", "eps", "psd"],
)
def test_sanitize_image_not_allowed_format_refused(data, detected):
    with pytest.raises(ImageRejected) as excinfo:
        sanitize_image(data)

    assert excinfo.value.code == "image_format_not_allowed"
    assert excinfo.value.status_code == 400
    assert excinfo.value.extra["detected"] == detected


@pytest.mark.parametrize("size", [(12000, 12000), (7000, 7000)], ids=["144MP", "49MP"])
def test_sanitize_image_declared_pixels_over_cap_refused_before_decoding(size):
    bomb = png_declaring(*size)
    assert len(bomb) < 200

    with pytest.raises(ImageRejected) as excinfo:
        sanitize_image(bomb)

    assert excinfo.value.code == "image_too_many_pixels"
    assert excinfo.value.status_code == 400


def test_sanitize_image_truncated_png_is_corrupt():
    with pytest.raises(ImageRejected) as excinfo:
        sanitize_image(png_bytes(size=(64, 64))[:-30])

    assert excinfo.value.code == "image_corrupt"


def test_sanitize_image_over_byte_cap_refused(settings):
    settings.CHORUS_MAX_IMAGE_BYTES = 100

    with pytest.raises(ImageRejected) as excinfo:
        sanitize_image(png_bytes(size=(64, 64), color=(1, 2, 3)) + b"\0" * 200)

    assert excinfo.value.code == "image_too_large"


def test_sanitize_image_png_text_chunks_and_palette_transparency():
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "secret-png-comment")
    info.add_text("Raw profile type iptc", "secret-iptc")
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>secret</x:xmpmeta>")
    palette = Image.new("P", (8, 8), 0)
    palette.putpalette([255, 0, 0, 0, 0, 255])
    palette.paste(1, (0, 0, 4, 8))
    out = io.BytesIO()
    palette.save(out, "PNG", pnginfo=info, transparency=1)

    result = sanitize_image(out.getvalue())

    assert result.removed_metadata == ["xmp", "iptc", "text"]
    stored = Image.open(io.BytesIO(result.content))
    assert stored.mode == "RGBA"
    assert stored.getpixel((0, 0)) == (0, 0, 255, 0)
    assert stored.getpixel((6, 0)) == (255, 0, 0, 255)
    assert not getattr(stored, "text", {}) and b"secret" not in result.content


def test_sanitize_image_webp_with_exif_and_xmp_stripped():
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SecretCam"
    exif.get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitudeRef] = "N"
    out = io.BytesIO()
    Image.new("RGB", (16, 16), "green").save(out, "WEBP", exif=exif, xmp=XMP_PACKET)

    result = sanitize_image(out.getvalue())

    assert result.removed_metadata == ["exif", "gps", "xmp"]
    assert b"SecretCam" not in result.content and b"xmpmeta" not in result.content


def test_sanitize_image_cmyk_jpeg_becomes_rgb():
    out = io.BytesIO()
    Image.new("CMYK", (10, 10), (0, 255, 255, 0)).save(out, "JPEG")

    result = sanitize_image(out.getvalue())

    assert Image.open(io.BytesIO(result.content)).mode == "RGB"


def test_sanitize_image_animated_png_keeps_first_frame_only():
    out = io.BytesIO()
    frames = [Image.new("RGB", (8, 8), color) for color in ("red", "blue", "green")]
    frames[0].save(out, "PNG", save_all=True, append_images=frames[1:])

    result = sanitize_image(out.getvalue())

    assert "extra_frames" in result.removed_metadata
    assert getattr(Image.open(io.BytesIO(result.content)), "n_frames", 1) == 1


@settings_hypothesis(max_examples=150, deadline=None)
@given(
    seed=st.sampled_from(["png", "jpeg", "webp"]),
    cuts=st.lists(st.integers(0, 10_000), max_size=6),
    junk=st.binary(max_size=16),
)
def test_sanitize_image_mangled_input_only_ever_raises_image_rejected(seed, cuts, junk):
    base = bytearray(
        {"png": png_bytes(), "jpeg": jpeg_with_metadata(), "webp": image_bytes("WEBP")}[seed]
    )
    for cut in cuts:
        position = cut % len(base)
        base[position : position + len(junk)] = junk
    try:
        sanitize_image(bytes(base))
    except ImageRejected:
        pass


# ---------------------------------------------------------------- image imports


def test_items_import_jpeg_with_gps_stored_file_has_no_metadata(image_project, media_root):
    upload = jpeg_with_metadata(size=(40, 20), orientation=6)
    manifest = csv_bytes(
        "external_id,file,license,source,creator,consent",
        "p1,photos/p1.jpg,cc-by-4.0,Camera roll,Ana,obtained",
    )

    [item] = _import_zip(image_project, {"manifest.csv": manifest, "photos/p1.jpg": upload})

    item.refresh_from_db()
    assert item.removed_metadata == ["exif", "gps", "makernote", "xmp", "iptc", "comment"]
    assert (item.image_width, item.image_height) == (20, 40)
    assert item.sha256 == ingest.sha256_hex(upload)
    assert item.license == "CC-BY-4.0"
    assert item.metadata == {"consent": "obtained"}
    assert item.image.name.startswith(f"items/{image_project.pk}/")
    assert "p1" not in item.image.name
    with item.image.open("rb") as handle:
        stored_bytes = handle.read()
    assert stored_bytes != upload
    stored = Image.open(io.BytesIO(stored_bytes))
    exif = stored.getexif()
    assert len(exif) == 0
    assert not exif.get_ifd(ExifTags.IFD.GPSInfo)
    assert "exif" not in stored.info and "xmp" not in stored.info
    assert XMP_PACKET not in stored_bytes and b"SecretCam" not in stored_bytes
    assert stored.size == (20, 40)
    # Orientation 6: the left (red) half of the sensor image is now at the top.
    rgb = stored.convert("RGB")
    top, bottom = rgb.getpixel((10, 5)), rgb.getpixel((10, 35))
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    assert top[0] > 150 and top[2] < 100
    assert bottom[2] > 150 and bottom[0] < 100


def test_items_import_png_followed_by_html_stored_re_encoded(image_project):
    upload = png_bytes() + b"<html><script>alert(1)</script></html>"
    manifest = csv_bytes("license,external_id,file", "CC0-1.0,a,a.png")

    [item] = _import_zip(image_project, {"manifest.csv": manifest, "a.png": upload})

    with item.image.open("rb") as handle:
        stored = handle.read()
    assert b"<html" not in stored and b"<script" not in stored
    assert item.image.name.endswith(".png")


def test_items_import_decompression_bomb_row_error_and_nothing_stored(image_project, media_root):
    manifest = csv_bytes("license,external_id,file", "CC0-1.0,ok,ok.png", "CC0-1.0,bomb,bomb.png")
    members = {
        "manifest.csv": manifest,
        "ok.png": png_bytes(),
        "bomb.png": png_declaring(12000, 12000),
    }

    with pytest.raises(ValidationFailed) as excinfo:
        _import_zip(image_project, members)

    assert excinfo.value.status_code == 400
    assert excinfo.value.code == "import_invalid"
    [error] = _errors(excinfo)
    assert (error["line"], error["field"], error["code"]) == (3, "file", "image_too_many_pixels")
    assert Item.objects.count() == 0
    assert _stored_media(media_root) == []


def test_items_import_non_images_in_archive_each_refused_with_line(image_project):
    manifest = csv_bytes(
        "license,external_id,file",
        "CC0-1.0,h,x.jpg",
        "CC0-1.0,s,y.png",
        "CC0-1.0,t,z.webp",
        "CC0-1.0,g,w.jpg",
    )
    members = {
        "manifest.csv": manifest,
        "x.jpg": b"<html><body>not a photo</body></html>",
        "y.png": b"<svg><script>alert(1)</script></svg>",
        "z.webp": image_bytes("TIFF"),
        "w.jpg": image_bytes("GIF"),
    }

    with pytest.raises(ValidationFailed) as excinfo:
        _import_zip(image_project, members)

    assert [(e["line"], e["code"]) for e in _errors(excinfo)] == [
        (2, "image_format_not_allowed"),
        (3, "image_format_not_allowed"),
        (4, "image_format_not_allowed"),
        (5, "image_format_not_allowed"),
    ]
    assert Item.objects.count() == 0


def test_items_import_same_image_twice_is_duplicate_content(image_project):
    photo = png_bytes()
    manifest = csv_bytes("license,external_id,file", "CC0-1.0,a,a.png", "CC0-1.0,b,b.png")

    with pytest.raises(ValidationFailed) as excinfo:
        _import_zip(image_project, {"manifest.csv": manifest, "a.png": photo, "b.png": photo})

    [error] = _errors(excinfo)
    assert (error["line"], error["code"]) == (3, "duplicate_content")


def test_items_import_identical_reupload_recognised_by_original_sha256(image_project):
    photo = jpeg_with_metadata()
    _import_zip(
        image_project,
        {"manifest.csv": csv_bytes("license,external_id,file", "CC0-1.0,a,a.jpg"), "a.jpg": photo},
    )

    with pytest.raises(ValidationFailed) as excinfo:
        _import_zip(
            image_project,
            {
                "manifest.csv": csv_bytes("license,external_id,file", "CC0-1.0,b,b.jpg"),
                "b.jpg": photo,
            },
        )

    assert [(e["line"], e["code"]) for e in _errors(excinfo)] == [(2, "duplicate_content")]


# ---------------------------------------------------------------- archives and paths


@pytest.mark.parametrize(
    "member",
    [
        "../../etc/passwd",
        "/etc/passwd",
        "a/../../b.png",
        "..\\..\\evil.png",
        "C:/evil.png",
        "a//b.png",
        "./a.png",
    ],
)
def test_read_upload_zip_with_unsafe_member_name_refused(image_project, media_root, member):
    archive = zip_bytes(
        {
            "manifest.csv": csv_bytes("license,external_id,file", "CC0-1.0,a,a.png"),
            "a.png": png_bytes(),
            member: b"x",
        }
    )

    with pytest.raises(ValidationFailed) as excinfo:
        read_upload(data=archive, filename="images.zip")

    assert excinfo.value.code == "archive_unsafe_member"
    assert _errors(excinfo)[0]["code"] == "unsafe_archive_member"
    assert Item.objects.count() == 0
    assert _stored_media(media_root) == []


def test_read_upload_zip_with_symlink_member_refused():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(
            "manifest.csv", csv_bytes("license,external_id,file", "CC0-1.0,a,link.png")
        )
        link = zipfile.ZipInfo("link.png")
        link.external_attr = 0o120777 << 16
        archive.writestr(link, "/etc/passwd")

    with pytest.raises(ValidationFailed) as excinfo:
        read_upload(data=out.getvalue(), filename="images.zip")

    assert "symbolic link" in excinfo.value.message


@pytest.mark.parametrize(
    "path", ["../a.png", "/etc/passwd", "a\\b.png", "sub/./a.png", "sub//a.png", ""]
)
def test_items_import_unsafe_manifest_file_value_is_row_error(image_project, path):
    manifest = csv_bytes("license,external_id,file", f"CC0-1.0,a,{path}")

    with pytest.raises(ValidationFailed) as excinfo:
        _import_zip(image_project, {"manifest.csv": manifest, "a.png": png_bytes()})

    [error] = _errors(excinfo)
    assert (error["line"], error["field"]) == (2, "file")
    assert error["code"] == ("required" if path == "" else "unsafe_path")


def test_items_import_manifest_names_missing_member_is_row_error(image_project):
    manifest = csv_bytes("license,external_id,file", "CC0-1.0,a,missing.png")

    with pytest.raises(ValidationFailed) as excinfo:
        _import_zip(image_project, {"manifest.csv": manifest})

    assert _errors(excinfo)[0]["code"] == "file_not_found"


def test_read_upload_zip_without_manifest_refused():
    with pytest.raises(ValidationFailed) as excinfo:
        read_upload(data=zip_bytes({"a.png": png_bytes()}), filename="a.zip")

    assert excinfo.value.code == "manifest_missing"


def test_read_upload_zip_over_member_count_cap_refused(monkeypatch):
    monkeypatch.setattr(stores, "MAX_ARCHIVE_MEMBERS", 3)
    members = {f"{i}.png": b"x" for i in range(4)}

    with pytest.raises(ValidationFailed) as excinfo:
        read_upload(data=zip_bytes(members), filename="a.zip")

    assert excinfo.value.code == "archive_too_many_members"


def test_read_upload_zip_unpacking_over_total_cap_refused(settings):
    archive = zip_bytes({"manifest.csv": b"external_id,file\n", "a.bin": b"\0" * 5000})
    settings.CHORUS_MAX_UPLOAD_BYTES = 4000
    assert len(archive) < 4000

    with pytest.raises(PayloadTooLarge) as excinfo:
        read_upload(data=archive, filename="a.zip")

    assert excinfo.value.code == "archive_too_large"
    assert excinfo.value.status_code == 413


def test_read_upload_zip_member_with_bomb_ratio_refused():
    archive = zip_bytes(
        {"manifest.csv": b"external_id,file\n", "zeros.png": b"\0" * (4 * 1024 * 1024)}
    )

    with pytest.raises(ValidationFailed) as excinfo:
        read_upload(data=archive, filename="a.zip")

    assert "inflates suspiciously" in excinfo.value.message


@pytest.mark.parametrize(
    "value",
    ["", ".", "..", "../x", "/x", "x/", "x//y", "x/./y", "x\\y", "C:x", "c:/x", "x\x00y", "x\ny"],
)
def test_safe_relative_path_unsafe_values_refused(value):
    with pytest.raises(ValidationFailed) as excinfo:
        safe_relative_path(value)

    assert excinfo.value.code == "unsafe_path"


@pytest.mark.parametrize(
    "value", ["a.png", "dir/sub/a b.png", "été/photo.jpg", "..a.png", "a..png"]
)
def test_safe_relative_path_plain_values_accepted(value):
    assert safe_relative_path(value) == value


# ---------------------------------------------------------------- folders


def _image_folder(root: Path, name: str = "batch1") -> Path:
    folder = root / name
    (folder / "img").mkdir(parents=True)
    (folder / "img" / "a.png").write_bytes(png_bytes(color=(1, 2, 3)))
    (folder / "img" / "b.jpg").write_bytes(jpeg_with_metadata())
    (folder / "manifest.jsonl").write_text(
        '{"external_id": "a", "file": "img/a.png", "license": "CC0-1.0"}\n'
        '{"external_id": "b", "file": "img/b.jpg", "license": "NOASSERTION"}\n'
    )
    return folder


@pytest.mark.django_db
def test_import_batch_create_server_folder_inside_root_imports(
    settings, image_project, django_capture_on_commit_callbacks
):
    _image_folder(settings.CHORUS_IMPORT_ROOT)
    staff = make_user(Role.RESEARCHER, is_staff=True)

    with django_capture_on_commit_callbacks(execute=True):
        batch = import_batch_create(project=image_project, actor=staff, server_path="batch1")

    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.DONE and batch.item_count == 2
    licenses = dict(Item.objects.values_list("external_id", "license"))
    assert licenses == {"a": "CC0-1.0", "b": "NOASSERTION"}


@pytest.mark.parametrize("server_path", ["/etc", "../outside", "batch1/../../outside"])
def test_import_batch_create_server_folder_outside_root_refused(
    settings, tmp_path, image_project, server_path
):
    _image_folder(tmp_path, "outside")
    _image_folder(settings.CHORUS_IMPORT_ROOT)
    staff = make_user(Role.RESEARCHER, is_staff=True)

    with pytest.raises(ValidationFailed) as excinfo:
        import_batch_create(project=image_project, actor=staff, server_path=server_path)

    assert excinfo.value.code == "import_path_outside_root"
    assert not ImportBatch.objects.exists()


def test_import_batch_create_symlink_out_of_import_root_refused(settings, tmp_path, image_project):
    outside = _image_folder(tmp_path, "outside")
    os.symlink(outside, settings.CHORUS_IMPORT_ROOT / "sneaky")
    staff = make_user(Role.RESEARCHER, is_staff=True)

    with pytest.raises(ValidationFailed) as excinfo:
        import_batch_create(project=image_project, actor=staff, server_path="sneaky")

    assert excinfo.value.code == "import_path_outside_root"


def test_items_import_folder_file_symlink_escaping_folder_is_row_error(
    settings, tmp_path, image_project
):
    folder = _image_folder(settings.CHORUS_IMPORT_ROOT)
    secret = tmp_path / "secret.png"
    secret.write_bytes(png_bytes(color=(9, 9, 9)))
    os.symlink(secret, folder / "img" / "escape.png")
    (folder / "manifest.jsonl").write_text(
        '{"external_id": "e", "file": "img/escape.png", "license": "CC0-1.0"}\n'
    )
    source = read_folder(path=Path("batch1"), root=settings.CHORUS_IMPORT_ROOT)

    with pytest.raises(ValidationFailed) as excinfo:
        items_import(project=image_project, actor=image_project.owner, source=source)

    [error] = _errors(excinfo)
    assert (error["line"], error["field"], error["code"]) == (1, "file", "unsafe_path")


def test_import_batch_create_server_folder_by_non_staff_refused(settings, image_project):
    _image_folder(settings.CHORUS_IMPORT_ROOT)

    with pytest.raises(PermissionDenied):
        import_batch_create(project=image_project, actor=image_project.owner, server_path="batch1")


# ---------------------------------------------------------------- text manifests


def test_items_import_csv_creates_items_with_provenance(text_project):
    data = csv_bytes(
        TEXT_HEADER,
        't1,"Cafe\u0301 talk, with a comma",cc-by-4.0,Forum A,https://forum.example/a,Ana,'
        '"Ana, CC BY",,en',
        't2,  second text  ,MIT OR Apache-2.0,Forum A,,Bo,,"{""topic"": ""x""}",de',
        "t3,third text,,,,,,,",
    )

    items = _import_text(text_project, data)

    assert [item.external_id for item in items] == ["t1", "t2", "t3"]
    first, second, third = Item.objects.order_by("external_id")
    assert first.text == "Caf\u00e9 talk, with a comma"
    assert first.sha256 == text_sha256("Caf\u00e9 talk, with a comma")
    assert first.license == "CC-BY-4.0" and first.creator == "Ana"
    assert first.attribution == "Ana, CC BY"
    assert first.metadata == {"lang": "en", "source_url": "https://forum.example/a"}
    assert first.source is not None
    assert first.source.name == "Forum A" and first.source.url == "https://forum.example/a"
    assert second.text == "second text"
    assert second.metadata == {"lang": "de", "topic": "x"}
    assert second.source_id == first.source_id
    assert third.license == "" and third.source is None
    assert Source.objects.count() == 1
    assert {item.kind for item in (first, second, third)} == {"text"}


def test_items_import_same_source_name_two_researchers_each_linked_to_own_source():
    first, second = make_project(preset="hate_speech"), make_project(preset="hate_speech")

    _import_text(first, csv_bytes(TEXT_HEADER, "a1,one,CC0-1.0,City Archive,https://a.example/"))
    _import_text(second, csv_bytes(TEXT_HEADER, "b1,two,CC0-1.0,City Archive,https://b.example/"))

    assert Source.objects.filter(name="City Archive").count() == 2
    mine, theirs = (Item.objects.select_related("source").get(project=p) for p in (first, second))
    assert mine.source is not None and theirs.source is not None
    assert (mine.source.owner, mine.source.url) == (first.owner, "https://a.example/")
    assert (theirs.source.owner, theirs.source.url) == (second.owner, "https://b.example/")


def test_items_import_jsonl_creates_items_skipping_blank_lines(text_project):
    lines = [
        json.dumps(
            {"external_id": "j1", "text": "one", "license": "CC0-1.0", "metadata": {"n": 1}}
        ),
        "",
        json.dumps({"external_id": 2, "text": "two", "split_hint": ["a", "b"]}),
        "   ",
    ]

    items = _import_text(text_project, "\n".join(lines).encode(), "items.jsonl")

    assert [item.external_id for item in items] == ["j1", "2"]
    assert Item.objects.get(external_id="j1").metadata == {"n": 1}
    assert Item.objects.get(external_id="2").metadata == {"split_hint": ["a", "b"]}


def test_items_import_several_bad_rows_reports_every_line_and_stores_nothing(
    text_project, media_root
):
    data = csv_bytes(
        TEXT_HEADER,
        "ok1,fine text,CC-BY-4.0,,,,,,",
        ",no id here,CC-BY-4.0,,,,,,",
        "bad2,text,not-a-license AND,,,,,,",
        "bad3,   ,CC-BY-4.0,,,,,,",
        "bad4,text four,,,,,,{not json,",
        "bad5,text five,,,javascript:alert(1),,,,",
        "ok1,duplicate id,,,,,,,",
    )
    events_before = AuditEvent.objects.count()

    with pytest.raises(ValidationFailed) as excinfo:
        _import_text(text_project, data)

    assert excinfo.value.code == "import_invalid"
    assert [(e["line"], e["field"], e["code"]) for e in _errors(excinfo)] == [
        (3, "external_id", "required"),
        (4, "license", "invalid_license"),
        (5, "text", "text_empty"),
        (6, "metadata", "invalid_metadata"),
        (7, "source_url", "invalid_url"),
        (8, "external_id", "duplicate_external_id"),
    ]
    assert "line 2" in _errors(excinfo)[-1]["message"]
    assert Item.objects.count() == 0
    assert Source.objects.count() == 0
    assert AuditEvent.objects.count() == events_before


def test_items_import_bad_spdx_license_row_error_carries_parse_message(text_project):
    data = csv_bytes("external_id,text,license", "a,hello,GPL-2.0-or-later WITH Bogus-exception-9")
    with pytest.raises(ValueError) as parse_error:
        license_parse("GPL-2.0-or-later WITH Bogus-exception-9")

    with pytest.raises(ValidationFailed) as excinfo:
        _import_text(text_project, data)

    [error] = _errors(excinfo)
    assert (error["line"], error["field"], error["code"]) == (2, "license", "invalid_license")
    assert error["message"] == str(parse_error.value)


def test_items_import_jsonl_errors_count_blank_lines(text_project):
    lines = [
        json.dumps({"external_id": "a", "text": "one", "license": "CC0-1.0"}),
        "",
        "{broken",
        json.dumps(["not", "an", "object"]),
        json.dumps({"external_id": "b", "text": "x", "metadata": "not an object"}),
        json.dumps({"external_id": "c", "text": "bad \u0000 nul"}),
        '{"external_id": "d", "text": "nan", "score": NaN}',
    ]

    with pytest.raises(ValidationFailed) as excinfo:
        _import_text(text_project, "\n".join(lines).encode(), "x.jsonl")

    assert [(e["line"], e["code"]) for e in _errors(excinfo)] == [
        (3, "invalid_json"),
        (4, "invalid_json"),
        (5, "invalid_metadata"),
        (6, "invalid_character"),
        (7, "invalid_json"),
    ]
    assert Item.objects.count() == 0


def test_parse_csv_multiline_quoted_row_line_numbers_are_where_rows_start():
    rows, errors = parse_csv(
        csv_bytes("license,external_id,text", 'CC0-1.0,a,"two\nlines"', "", "CC0-1.0,b,after")
    )

    assert errors == []
    assert [(row.line, row.values["external_id"]) for row in rows] == [(2, "a"), (5, "b")]


def test_parse_csv_byte_order_mark_and_header_case_handled():
    rows, errors = parse_csv("\ufeffExternal_ID , Text\nx,y\n".encode())

    assert errors == []
    assert rows[0].values == {"external_id": "x", "text": "y"}


def test_parse_csv_not_utf8_reports_line():
    with pytest.raises(ValidationFailed) as excinfo:
        parse_csv(b"external_id,text\na,ok\nb,caf\xe9\n")

    assert _errors(excinfo)[0]["line"] == 3


def test_parse_jsonl_line_numbers_count_blank_lines():
    rows, errors = parse_jsonl(b'\n{"external_id": "a"}\n\n\n{"external_id": "b"}\n')

    assert errors == []
    assert [row.line for row in rows] == [2, 5]


def test_items_import_external_id_already_in_project_is_row_error(text_project):
    add_text_items(text_project, 2)

    with pytest.raises(ValidationFailed) as excinfo:
        _import_text(
            text_project,
            csv_bytes("license,external_id,text", "CC0-1.0,new,fresh", "CC0-1.0,t1,dupe"),
        )

    assert [(e["line"], e["code"]) for e in _errors(excinfo)] == [(3, "duplicate_external_id")]
    assert Item.objects.filter(project=text_project).count() == 2


def test_items_import_same_text_in_batch_and_project_is_duplicate_content(text_project):
    _import_text(text_project, csv_bytes("license,external_id,text", "CC0-1.0,a,hello world"))

    with pytest.raises(ValidationFailed) as excinfo:
        _import_text(
            text_project,
            csv_bytes(
                "license,external_id,text", "CC0-1.0,b,hello world", "CC0-1.0,c,x", "CC0-1.0,d,x"
            ),
        )

    assert [(e["line"], e["code"]) for e in _errors(excinfo)] == [
        (2, "duplicate_content"),
        (4, "duplicate_content"),
    ]


def test_items_import_text_over_limit_refused(settings, text_project):
    settings.CHORUS_MAX_TEXT_CHARS = 10

    with pytest.raises(ValidationFailed) as excinfo:
        _import_text(
            text_project, csv_bytes("license,external_id,text", "CC0-1.0,a,this is far too long")
        )

    assert _errors(excinfo)[0]["code"] == "text_too_long"


def test_items_import_writes_one_audit_event_with_counts(text_project):
    data = csv_bytes("external_id,text,license", "a,one,CC-BY-4.0", "b,two,CC-BY-4.0", "c,three,")

    _import_text(text_project, data)

    [event] = AuditEvent.objects.filter(action="items.import")
    assert event.actor_id == text_project.owner_id
    assert event.object_id == str(text_project.pk)
    assert event.payload["items"] == 3
    assert event.payload["licenses"] == {"CC-BY-4.0": 2, "(none)": 1}
    assert event.payload["modality"] == "text"


def test_items_import_into_closed_project_refused(media_root):
    project = make_open_project(n_items=1)
    project_transition(project=project, actor=project.owner, status=ProjectStatus.CLOSED)

    with pytest.raises(Conflict) as excinfo:
        _import_text(project, csv_bytes("license,external_id,text", "CC0-1.0,new,text"))

    assert excinfo.value.code == "project_closed"
    assert excinfo.value.status_code == 409
    assert Item.objects.filter(project=project).count() == 1


def test_items_import_manifest_alone_into_image_project_refused(image_project):
    with pytest.raises(ValidationFailed) as excinfo:
        _import_text(image_project, csv_bytes("license,external_id,file", "CC0-1.0,a,a.png"))

    assert excinfo.value.code == "modality_mismatch"


def test_items_import_files_into_text_project_are_row_errors(text_project):
    manifest = csv_bytes("license,external_id,text,file", "CC0-1.0,a,hello,a.png")

    with pytest.raises(ValidationFailed) as excinfo:
        _import_zip(text_project, {"manifest.csv": manifest, "a.png": png_bytes()})

    assert [(e["line"], e["field"], e["code"]) for e in _errors(excinfo)] == [
        (2, "file", "modality_mismatch")
    ]


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.ANNOTATOR, Role.RESEARCHER])
def test_items_import_by_non_owner_refused(text_project, role):
    intruder = make_user(role)
    source = read_upload(
        data=csv_bytes("license,external_id,text", "CC0-1.0,a,b"), filename="x.csv"
    )

    with pytest.raises(PermissionDenied):
        items_import(project=text_project, actor=intruder, source=source)

    assert Item.objects.count() == 0


@pytest.mark.parametrize("filename", ["notes.txt", "payload.html", "data.xlsx", "noext"])
def test_read_upload_unsupported_file_refused(filename):
    with pytest.raises(ValidationFailed) as excinfo:
        read_upload(data=b"external_id,text\na,b\n", filename=filename)

    assert excinfo.value.code == "import_unsupported_file"


def test_read_upload_zip_content_detected_despite_csv_extension(image_project):
    archive = zip_bytes(
        {
            "manifest.csv": csv_bytes("license,external_id,file", "CC0-1.0,a,a.png"),
            "a.png": png_bytes(),
        }
    )

    source = read_upload(data=archive, filename="looks-like.csv")

    assert source.kind == "zip" and source.files is not None


# ---------------------------------------------------------------- batches


def test_import_batch_create_csv_runs_on_commit_and_cleans_up(
    text_project, django_capture_on_commit_callbacks, media_root
):
    upload = SimpleUploadedFile(
        "../../Evil <name>.csv",
        csv_bytes("license,external_id,text", "CC0-1.0,a,one", "CC0-1.0,b,two"),
    )

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        batch = import_batch_create(project=text_project, actor=text_project.owner, upload=upload)

    assert batch.status == ImportBatch.Status.PENDING
    assert batch.original_name == "Evil <name>.csv"
    staged = batch.upload.name
    assert staged.startswith("imports/") and staged.endswith(".csv")
    assert "Evil" not in staged and ".." not in staged
    assert (media_root / staged).exists()

    for callback in callbacks:
        callback()

    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.DONE
    assert batch.item_count == 2 and batch.errors == [] and batch.finished_at is not None
    assert set(batch.items.values_list("external_id", flat=True)) == {"a", "b"}
    assert not batch.upload and not (media_root / staged).exists()


def test_import_batch_run_bad_rows_fails_with_errors_and_nothing_stored(
    text_project, django_capture_on_commit_callbacks, media_root
):
    upload = SimpleUploadedFile(
        "x.csv", csv_bytes("external_id,text,license", "a,one,nope", ",two,")
    )

    with django_capture_on_commit_callbacks(execute=True):
        batch = import_batch_create(project=text_project, actor=text_project.owner, upload=upload)

    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.FAILED
    assert [(e["line"], e["code"]) for e in batch.errors] == [
        (2, "invalid_license"),
        (3, "required"),
    ]
    assert Item.objects.count() == 0
    assert _stored_media(media_root) == []


def test_import_batch_run_twice_is_idempotent(text_project, django_capture_on_commit_callbacks):
    upload = SimpleUploadedFile("x.csv", csv_bytes("license,external_id,text", "CC0-1.0,a,one"))
    with django_capture_on_commit_callbacks(execute=True):
        batch = import_batch_create(project=text_project, actor=text_project.owner, upload=upload)
    events = _import_events()

    again = import_batch_run(batch_id=batch.pk)
    import_batch_run_task.delay(batch.pk)

    assert again.status == ImportBatch.Status.DONE and again.item_count == 1
    assert Item.objects.count() == 1
    assert _import_events() == events


def test_import_batch_create_zip_into_image_project(
    image_project, django_capture_on_commit_callbacks
):
    archive = zip_bytes(
        {
            "manifest.jsonl": b'{"external_id": "a", "file": "a.webp", "license": "CC0-1.0"}\n',
            "a.webp": image_bytes("WEBP"),
        }
    )
    upload = SimpleUploadedFile("photos.ZIP", archive)

    with django_capture_on_commit_callbacks(execute=True):
        batch = import_batch_create(project=image_project, actor=image_project.owner, upload=upload)

    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.DONE
    assert Item.objects.get().image.name.endswith(".webp")


@pytest.mark.parametrize("filename", ["x.txt", "x.exe", "x.jpg"])
def test_import_batch_create_unsupported_upload_refused(text_project, filename):
    upload = SimpleUploadedFile(filename, b"external_id,text\na,b\n")

    with pytest.raises(ValidationFailed) as excinfo:
        import_batch_create(project=text_project, actor=text_project.owner, upload=upload)

    assert excinfo.value.code == "import_unsupported_file"
    assert not ImportBatch.objects.exists()


def test_import_batch_create_upload_over_cap_refused(settings, text_project):
    settings.CHORUS_MAX_UPLOAD_BYTES = 10

    with pytest.raises(PayloadTooLarge):
        import_batch_create(
            project=text_project,
            actor=text_project.owner,
            upload=SimpleUploadedFile("x.csv", b"external_id,text\na,b\n"),
        )


def test_import_batch_create_by_auditor_refused(text_project):
    with pytest.raises(PermissionDenied):
        import_batch_create(
            project=text_project,
            actor=make_user(Role.AUDITOR),
            upload=SimpleUploadedFile("x.csv", b"external_id,text\na,b\n"),
        )

    assert not ImportBatch.objects.exists()


@pytest.mark.postgres
def test_items_import_large_refreshes_planner_statistics(
    text_project, django_capture_on_commit_callbacks
):
    """Without it the next-item query plans for an empty table until autovacuum runs."""
    from django.db import connection

    lines = [f"t{i},text number {i},CC0-1.0" for i in range(ingest.ANALYZE_AFTER_ROWS)]
    with django_capture_on_commit_callbacks(execute=True):
        _import_text(text_project, csv_bytes("external_id,text,license", *lines))

    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = 'annotation_item'")
        (estimated_rows,) = cursor.fetchone()
    assert estimated_rows >= ingest.ANALYZE_AFTER_ROWS


# ---------------------------------------------------------------- the columns: one source of truth


def test_items_import_csv_without_license_column_refused_once(text_project):
    with pytest.raises(ValidationFailed) as excinfo:
        _import_text(text_project, csv_bytes("external_id,text", "a,one", "b,two", "c,three"))

    assert [(e["line"], e["field"], e["code"]) for e in _errors(excinfo)] == [
        (1, "license", "missing_column")
    ]
    assert not Item.objects.filter(project=text_project).exists()


def test_items_import_missing_text_column_reported_once_not_per_row(text_project):
    with pytest.raises(ValidationFailed) as excinfo:
        _import_text(
            text_project, csv_bytes("external_id,license", "a,CC0-1.0", "b,CC0-1.0", "c,MIT")
        )

    assert [(e["field"], e["code"]) for e in _errors(excinfo)] == [("text", "missing_column")]


def test_items_import_jsonl_key_missing_from_every_row_is_one_missing_column(text_project):
    lines = [json.dumps({"external_id": f"j{n}", "text": f"t{n}"}) for n in range(3)]

    with pytest.raises(ValidationFailed) as excinfo:
        _import_text(text_project, "\n".join(lines).encode(), "x.jsonl")

    assert [(e["field"], e["code"]) for e in _errors(excinfo)] == [("license", "missing_column")]


@pytest.mark.parametrize(
    "manifest",
    [
        pytest.param(
            csv_bytes("external_id,text,license,note", "a,one,CC0-1.0,bad \x00 nul"),
            id="csv-extra-column",
        ),
        pytest.param(
            json.dumps(
                {"external_id": "a", "text": "one", "license": "MIT", "metadata": {"k": "v\x00"}}
            ).encode(),
            id="jsonl-metadata-value",
        ),
        pytest.param(
            json.dumps(
                {"external_id": "a", "text": "one", "license": "MIT", "metadata": {"k\x00": 1}}
            ).encode(),
            id="jsonl-metadata-key",
        ),
    ],
)
def test_items_import_nul_in_metadata_refused_on_every_database(text_project, manifest):
    """On PostgreSQL jsonb refuses NUL (a DataError, "failed unexpectedly"); SQLite stored
    it. Both refuse it now, as a row error."""
    filename = "x.csv" if manifest.startswith(b"external_id") else "x.jsonl"

    with pytest.raises(ValidationFailed) as excinfo:
        _import_text(text_project, manifest, filename)

    assert [(e["field"], e["code"]) for e in _errors(excinfo)] == [
        ("metadata", "invalid_character")
    ]
    assert not Item.objects.filter(project=text_project).exists()


@pytest.mark.parametrize("modality", ["text", "image"])
def test_page_import_lists_every_manifest_column_of_its_modality(client, modality, request):
    project = request.getfixturevalue(f"{modality}_project")
    client.force_login(project.owner)

    html = client.get(reverse("research-project-import", args=[project.pk])).content.decode()

    for column in manifest_columns(modality):
        assert f"<code>{column.name}</code>" in html
    for name in ("subject_consent", "control", "expected_label", "license"):
        assert f"<code>{name}</code>" in html
    other = "file" if modality == "text" else "text"
    assert f"<code>{other}</code>" not in html


def test_readme_import_column_table_matches_manifest_columns():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    rows = re.findall(r"^\| `([a-z_]+)` \| (all|texts|images) \| (yes|) \| (.+) \|$", readme, re.M)

    documented = [
        (name, scope, required == "yes", meaning.replace("\\|", "|"))
        for name, scope, required, meaning in rows
    ]
    expected = [
        (c.name, f"{c.modality}s" if c.modality else "all", c.required, c.meaning)
        for c in MANIFEST_COLUMNS
    ]
    assert documented == expected
