"""Imports on a read-only or full media storage: a 503 in the error shape with a stable
code (API), one line and a non-zero exit (``import_items``), and nothing left in
MEDIA_ROOT, neither a partial image nor a staged upload (issue 11)."""

import errno
import io
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.ingest import sanitize_image
from annotation.models import ImportBatch, Item, Project
from tests.annotation.conftest import csv_bytes, png_bytes, zip_bytes
from tests.core.storage_faults import StorageFaults, files_under

pytestmark = pytest.mark.django_db

TEXTS = csv_bytes("external_id,text,license", "x1,hello there,CC-BY-4.0", "x2,more,CC0-1.0")
FIRST_PNG = png_bytes(color=(200, 30, 30))
SECOND_PNG = png_bytes(color=(30, 30, 200))
PHOTOS = zip_bytes(
    {
        "manifest.csv": csv_bytes("license,external_id,file", "CC0-1.0,a,a.png", "CC0-1.0,b,b.png"),
        "a.png": FIRST_PNG,
        "b.png": SECOND_PNG,
    }
)
# Room for the first stored image and a few bytes of the second.
AFTER_FIRST_IMAGE = len(sanitize_image(FIRST_PNG).content) + 10


@pytest.fixture
def faults(monkeypatch: pytest.MonkeyPatch, media_root: Path) -> StorageFaults:
    return StorageFaults(monkeypatch, media_root)


def post_import(client_for: Any, project: Project, name: str, data: bytes) -> Any:
    upload = SimpleUploadedFile(name, data, content_type="application/octet-stream")
    return client_for(project.owner).post(
        f"/api/v1/projects/{project.pk}/imports/", {"file": upload}, format="multipart"
    )


def assert_storage_error(response: Any, code: str, media_root: Path) -> None:
    assert response.status_code == 503, response.content[:300]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"code", "message", "extra"}
    assert body["code"] == code
    assert "operator" in body["message"]
    assert str(media_root) not in response.content.decode()
    assert body["extra"] == {}


def run_import(*args: str) -> tuple[CommandError, str]:
    err = io.StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command("import_items", *args, stdout=io.StringIO(), stderr=err)
    return excinfo.value, err.getvalue()


# ---------------------------------------------------------------- API


def test_import_create_read_only_media_returns_503_storage_read_only_nothing_kept(
    client_for: Any, text_project: Project, faults: StorageFaults, media_root: Path
) -> None:
    faults.read_only()

    response = post_import(client_for, text_project, "texts.csv", TEXTS)

    assert_storage_error(response, "storage_read_only", media_root)
    assert not ImportBatch.objects.exists()
    assert not media_root.exists() or files_under(media_root) == []


def test_import_create_disk_full_while_staging_returns_503_storage_full_nothing_kept(
    client_for: Any, text_project: Project, faults: StorageFaults, media_root: Path
) -> None:
    faults.disk_full_after(len(TEXTS) // 2)

    response = post_import(client_for, text_project, "texts.csv", TEXTS)

    assert_storage_error(response, "storage_full", media_root)
    assert not ImportBatch.objects.exists()
    assert files_under(media_root) == []


def test_import_run_disk_full_at_second_image_fails_batch_storage_full_nothing_kept(
    client_for: Any,
    image_project: Project,
    faults: StorageFaults,
    media_root: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    faults.disk_full_after(len(PHOTOS) + AFTER_FIRST_IMAGE)

    with django_capture_on_commit_callbacks(execute=True):
        response = post_import(client_for, image_project, "photos.zip", PHOTOS)

    # Staging fitted; the queued run (in process here) met the full disk and recorded it.
    assert response.status_code == 202, response.content[:300]
    batch = ImportBatch.objects.get(pk=response.json()["id"])
    assert batch.status == ImportBatch.Status.FAILED
    assert [error["code"] for error in batch.errors] == ["storage_full"]
    assert str(media_root) not in batch.errors[0]["message"]
    assert not Item.objects.exists()
    assert files_under(media_root) == []


# ---------------------------------------------------------------- import_items


def test_import_items_read_only_media_one_line_non_zero_nothing_kept(
    tmp_path: Path, image_project: Project, faults: StorageFaults, media_root: Path
) -> None:
    archive = tmp_path / "photos.zip"
    archive.write_bytes(PHOTOS)
    faults.read_only()

    error, err = run_import("--project", str(image_project.pk), "--file", str(archive))

    assert str(error).startswith(
        "Import failed [storage_read_only]: The media storage is read-only"
    )
    assert "\n" not in str(error)
    assert error.returncode != 0
    assert err == ""
    assert not Item.objects.exists()
    assert not media_root.exists() or files_under(media_root) == []


def test_import_items_disk_full_at_second_image_one_line_non_zero_nothing_kept(
    tmp_path: Path, image_project: Project, faults: StorageFaults, media_root: Path
) -> None:
    archive = tmp_path / "photos.zip"
    archive.write_bytes(PHOTOS)
    faults.disk_full_after(AFTER_FIRST_IMAGE)

    error, err = run_import("--project", str(image_project.pk), "--file", str(archive))

    assert str(error).startswith("Import failed [storage_full]: The media storage is full")
    assert "\n" not in str(error)
    assert error.returncode != 0
    assert err == ""
    assert not Item.objects.exists()
    assert files_under(media_root) == []


def test_import_items_unreadable_input_file_one_line(
    tmp_path: Path, text_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = tmp_path / "items.csv"
    manifest.write_bytes(TEXTS)

    def refuse(path: Path) -> bytes:
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(Path, "read_bytes", refuse)

    error, _ = run_import("--project", str(text_project.pk), "--file", str(manifest))

    assert str(error) == f"{manifest} cannot be read: Permission denied."
