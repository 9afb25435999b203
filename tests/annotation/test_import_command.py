"""``manage.py import_items``: synchronous import, errors listed with line numbers."""

import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.models import Item
from core.models import Role
from tests.annotation.conftest import csv_bytes, jpeg_with_metadata, png_bytes, zip_bytes
from tests.core.factories import make_user

pytestmark = pytest.mark.django_db


def _run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_items", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_import_items_csv_file_prints_count(tmp_path, text_project):
    manifest = tmp_path / "items.csv"
    manifest.write_bytes(csv_bytes("external_id,text,license", "a,one,CC-BY-4.0", "b,two,MIT"))

    out, _ = _run("--project", str(text_project.pk), "--file", str(manifest))

    assert f"Imported 2 items into project {text_project.pk}" in out
    assert Item.objects.filter(project=text_project).count() == 2


def test_import_items_bad_rows_prints_every_line_and_exits_non_zero(tmp_path, text_project):
    manifest = tmp_path / "items.jsonl"
    manifest.write_text(
        "\n".join(
            [
                json.dumps({"external_id": "a", "text": "fine"}),
                json.dumps({"external_id": "b", "text": "x", "license": "Not-A-License"}),
                "",
                json.dumps({"text": "no id"}),
            ]
        )
    )
    err = io.StringIO()

    with pytest.raises(CommandError) as excinfo:
        call_command(
            "import_items", "--project", str(text_project.pk), "--file", str(manifest), stderr=err
        )

    lines = err.getvalue().splitlines()
    assert lines[0].startswith("line 2, license:") and lines[0].endswith("[invalid_license]")
    assert lines[1] == "line 4, external_id: external_id is required. [required]"
    assert "import_invalid" in str(excinfo.value)
    assert Item.objects.count() == 0


def test_import_items_zip_of_images(tmp_path, image_project):
    archive = tmp_path / "photos.zip"
    archive.write_bytes(
        zip_bytes(
            {
                "manifest.csv": csv_bytes(
                    "license,external_id,file", "CC0-1.0,a,a.jpg", "CC0-1.0,b,b.png"
                ),
                "a.jpg": jpeg_with_metadata(),
                "b.png": png_bytes(),
            }
        )
    )

    out, _ = _run("--project", str(image_project.pk), "--file", str(archive))

    assert "Imported 2 items" in out
    assert Item.objects.get(external_id="a").removed_metadata[:2] == ["exif", "gps"]


def test_import_items_folder_anywhere_but_paths_stay_inside(tmp_path, image_project):
    folder: Path = tmp_path / "anywhere"
    folder.mkdir()
    (folder / "a.png").write_bytes(png_bytes())
    (tmp_path / "outside.png").write_bytes(png_bytes(color=(5, 5, 5)))
    (folder / "manifest.csv").write_bytes(
        csv_bytes("license,external_id,file", "CC0-1.0,a,a.png", "CC0-1.0,b,../outside.png")
    )
    err = io.StringIO()

    with pytest.raises(CommandError):
        call_command(
            "import_items", "--project", str(image_project.pk), "--folder", str(folder), stderr=err
        )

    assert err.getvalue().startswith("line 3, file: Unsafe path")
    assert Item.objects.count() == 0

    (folder / "manifest.csv").write_bytes(csv_bytes("license,external_id,file", "CC0-1.0,a,a.png"))
    out, _ = _run("--project", str(image_project.pk), "--folder", str(folder))
    assert "Imported 1 items" in out


def test_import_items_as_other_users_checked(tmp_path, text_project):
    manifest = tmp_path / "items.csv"
    manifest.write_bytes(csv_bytes("license,external_id,text", "CC0-1.0,a,one"))
    make_user(Role.AUDITOR, username="auditor-x")
    make_user(Role.RESEARCHER, username="admin-x", is_staff=True)
    base = ("--project", str(text_project.pk), "--file", str(manifest))

    with pytest.raises(CommandError, match="No user named"):
        _run(*base, "--as", "nobody")
    with pytest.raises(CommandError, match="import_not_allowed"):
        _run(*base, "--as", "auditor-x")
    out, _ = _run(*base, "--as", "admin-x")

    assert "Imported 1 items" in out


def test_import_items_unknown_project_fails(tmp_path):
    with pytest.raises(CommandError, match="No project"):
        _run("--project", "999999", "--file", str(tmp_path / "x.csv"))
