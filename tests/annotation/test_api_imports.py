"""API: item imports: exactly one file in one field, size limits, polling (row 8)."""

from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotation.models import ImportBatch, Project
from core.models import Role
from tests.annotation.factories import make_project
from tests.core.factories import make_user

pytestmark = pytest.mark.django_db

CSV = b"external_id,text,license\nx1,hello there,CC-BY-4.0\nx2,another text,CC0-1.0\n"


@pytest.fixture
def media_root(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def csv_upload(name: str = "texts.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, CSV, content_type="text/csv")


def imports_url(project: Project) -> str:
    return f"/api/v1/projects/{project.pk}/imports/"


def stored_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


def test_import_create_owner_one_file_returns_202_and_is_pollable(
    media_root: Path, client_for
) -> None:
    project = make_project()
    client = client_for(project.owner)

    response = client.post(imports_url(project), {"file": csv_upload()}, format="multipart")

    assert response.status_code == 202, response.json()
    batch = response.json()
    assert batch["original_name"] == "texts.csv"
    assert batch["status"] in {"pending", "running", "done", "failed"}
    listed = client.get(imports_url(project)).json()
    detail = client.get(f"{imports_url(project)}{batch['id']}/")
    assert [b["id"] for b in listed["results"]] == [batch["id"]]
    assert detail.status_code == 200
    assert set(detail.json()) >= {"id", "status", "item_count", "errors", "finished_at"}


def test_import_create_two_files_in_one_field_returns_400_nothing_stored(
    media_root: Path,
    client_for,
) -> None:
    project = make_project()

    response = client_for(project.owner).post(
        imports_url(project),
        {"file": [csv_upload("a.csv"), csv_upload("b.csv")]},
        format="multipart",
    )

    assert response.status_code == 400
    assert response.json()["code"] == "too_many_files"
    assert not ImportBatch.objects.exists()
    assert stored_files(media_root) == []


def test_import_create_second_file_field_returns_400_nothing_stored(
    media_root: Path, client_for
) -> None:
    project = make_project()

    response = client_for(project.owner).post(
        imports_url(project),
        {"file": csv_upload(), "other": csv_upload("other.csv")},
        format="multipart",
    )

    assert response.status_code == 400
    assert response.json()["code"] == "too_many_files"
    assert not ImportBatch.objects.exists()


def test_import_create_101_files_returns_400_in_error_shape(media_root: Path, client_for) -> None:
    project = make_project()
    files = {f"file{i}": csv_upload(f"{i}.csv") for i in range(101)}

    response = client_for(project.owner).post(imports_url(project), files, format="multipart")

    assert response.status_code == 400
    assert response.json() == {
        "code": "too_many_files",
        "message": "Too many files in one request.",
        "extra": {},
    }
    assert not ImportBatch.objects.exists()
    assert stored_files(media_root) == []


def test_import_create_body_over_limit_returns_413_nothing_stored(
    media_root: Path, settings: Any, client_for
) -> None:
    settings.CHORUS_MAX_UPLOAD_BYTES = 1024
    project = make_project()
    big = SimpleUploadedFile("big.csv", CSV + b"x" * 4096, content_type="text/csv")

    response = client_for(project.owner).post(
        imports_url(project), {"file": big}, format="multipart"
    )

    assert response.status_code == 413
    assert response.json()["code"] == "too_large"
    assert not ImportBatch.objects.exists()
    assert stored_files(media_root) == []


def test_import_create_without_file_returns_400_no_file(media_root: Path, client_for) -> None:
    project = make_project()

    response = client_for(project.owner).post(
        imports_url(project), {"note": "x"}, format="multipart"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "no_file"


def test_import_create_json_body_returns_415(media_root: Path, client_for) -> None:
    project = make_project()

    response = client_for(project.owner).post(imports_url(project), {"file": "x"}, format="json")

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_import_create_other_researcher_404_auditor_403_nothing_stored(
    media_root: Path, client_for
) -> None:
    project = make_project()

    stranger = client_for(make_user(Role.RESEARCHER)).post(
        imports_url(project), {"file": csv_upload()}, format="multipart"
    )
    auditor = client_for(make_user(Role.AUDITOR)).post(
        imports_url(project), {"file": csv_upload()}, format="multipart"
    )

    assert stranger.status_code == 404
    assert auditor.status_code == 403
    assert not ImportBatch.objects.exists()
    assert stored_files(media_root) == []


def test_import_list_auditor_reads_annotator_gets_404(media_root: Path, client_for) -> None:
    project = make_project()
    client_for(project.owner).post(imports_url(project), {"file": csv_upload()}, format="multipart")

    auditor = client_for(make_user(Role.AUDITOR)).get(imports_url(project))
    annotator = client_for(make_user(Role.ANNOTATOR)).get(imports_url(project))

    assert auditor.status_code == 200
    assert auditor.json()["count"] == 1
    assert annotator.status_code == 404


def test_import_detail_of_another_project_returns_404(media_root: Path, client_for) -> None:
    project = make_project()
    other = make_project(owner=project.owner)
    created = client_for(project.owner).post(
        imports_url(project), {"file": csv_upload()}, format="multipart"
    )

    response = client_for(project.owner).get(f"{imports_url(other)}{created.json()['id']}/")

    assert response.status_code == 404


def test_import_list_query_count_does_not_grow_with_batches(
    media_root: Path, django_assert_max_num_queries: Any, client_for
) -> None:
    project = make_project()
    client = client_for(project.owner)
    for index in range(3):
        client.post(imports_url(project), {"file": csv_upload(f"{index}.csv")}, format="multipart")

    with django_assert_max_num_queries(3):
        response = client.get(imports_url(project))

    assert response.json()["count"] == 3
