"""API: item lists (allowlisted ordering), item detail, and the access-checked image view."""

import io
from typing import Any

import pytest
from django.core.files.base import ContentFile
from PIL import Image

from annotation.models import Item, Modality, Project
from annotation.services import annotation_submit, assignment_next
from core.models import Role
from tests.annotation.factories import (
    add_text_items,
    make_enrolled_annotator,
    make_open_project,
    make_project,
)
from tests.core.factories import make_user

pytestmark = pytest.mark.django_db

SCRIPT_TEXT = "</script><script>alert(1)</script>"


@pytest.fixture(autouse=True)
def _media_root(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def add_image_item(project: Project) -> Item:
    """A stored, already-sanitised image item (ingest has its own tests)."""
    content = png_bytes()
    item = Item(
        project=project,
        external_id="img-1",
        kind=Modality.IMAGE,
        sha256="ab" * 32,
        image_width=8,
        image_height=6,
        license="CC0-1.0",
    )
    item.image.save("upload.png", ContentFile(content), save=False)
    item.save()
    return item


def items_url(project: Project) -> str:
    return f"/api/v1/projects/{project.pk}/items/"


def test_item_list_owner_gets_paginated_items_in_bounded_queries(
    django_assert_max_num_queries: Any,
    client_for,
) -> None:
    project = make_open_project(12)

    with django_assert_max_num_queries(4):
        response = client_for(project.owner).get(items_url(project), {"page_size": 5})

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 12
    assert len(body["results"]) == 5
    assert {"external_id", "sha256", "license", "slots_taken"} <= set(body["results"][0])


def test_item_list_allowlisted_ordering_descending_sorts(client_for) -> None:
    project = make_open_project(3)

    response = client_for(project.owner).get(items_url(project), {"ordering": "-external_id"})

    assert [i["external_id"] for i in response.json()["results"]] == ["t2", "t1", "t0"]


@pytest.mark.parametrize(
    "ordering", ["owner__password", "project__owner__password", "text", "-sha256", "?"]
)
def test_item_list_unknown_ordering_returns_400_invalid_ordering(ordering: str, client_for) -> None:
    project = make_open_project(2)

    response = client_for(project.owner).get(items_url(project), {"ordering": ordering})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_ordering"


def test_item_list_auditor_reads_and_other_researcher_gets_404(client_for) -> None:
    project = make_open_project(2)

    auditor = client_for(make_user(Role.AUDITOR)).get(items_url(project))
    stranger = client_for(make_user(Role.RESEARCHER)).get(items_url(project))

    assert auditor.status_code == 200
    assert stranger.status_code == 404


def test_item_detail_assigned_annotator_gets_content_without_label_counts(client_for) -> None:
    project = make_open_project(1, k=3)
    first = make_enrolled_annotator(project)
    assignment = assignment_next(project=project, annotator=first)
    assert assignment is not None
    annotation_submit(annotator=first, item=assignment.item, value="hateful")
    second = make_enrolled_annotator(project)
    assert assignment_next(project=project, annotator=second) is not None

    response = client_for(second).get(f"/api/v1/items/{assignment.item_id}/")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "id",
        "project",
        "kind",
        "text",
        "image_url",
        "image_width",
        "image_height",
        "creator",
        "license",
        "attribution",
    }
    assert "hateful" not in response.content.decode()
    assert first.pseudonym not in response.content.decode()


def test_item_detail_unassigned_annotator_returns_404(client_for) -> None:
    project = make_open_project(2)
    annotator = make_enrolled_annotator(project)
    item = project.items.first()
    assert item is not None

    response = client_for(annotator).get(f"/api/v1/items/{item.pk}/")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_item_text_with_script_tag_comes_back_as_json_string(client_for) -> None:
    project = make_project()
    add_text_items(project, 1)
    item = project.items.get()
    item.text = SCRIPT_TEXT
    item.save()

    response = client_for(project.owner).get(f"/api/v1/items/{item.pk}/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response.json()["text"] == SCRIPT_TEXT


def test_item_image_owner_gets_stored_bytes_with_safe_headers(client_for) -> None:
    project = make_project(preset="privacy_alert")
    item = add_image_item(project)

    detail = client_for(project.owner).get(f"/api/v1/items/{item.pk}/")
    response = client_for(project.owner).get(detail.json()["image_url"])

    assert detail.json()["image_url"] == f"/api/v1/items/{item.pk}/image/"
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"].startswith("inline")
    assert "private" in response["Cache-Control"]
    assert response.getvalue() == png_bytes()


def test_item_image_unassigned_annotator_and_stranger_get_404(client_for) -> None:
    project = make_project(preset="privacy_alert")
    item = add_image_item(project)
    url = f"/api/v1/items/{item.pk}/image/"

    annotator = client_for(make_user(Role.ANNOTATOR)).get(url)
    stranger = client_for(make_user(Role.RESEARCHER)).get(url)
    anonymous = client_for(None).get(url)

    assert annotator.status_code == 404
    assert stranger.status_code == 404
    assert anonymous.status_code in (401, 403)
    assert annotator["Content-Type"] == "application/json"


def test_item_image_of_text_item_returns_404_no_image(client_for) -> None:
    project = make_open_project(1)
    item = project.items.get()

    response = client_for(project.owner).get(f"/api/v1/items/{item.pk}/image/")

    assert response.status_code == 404
    assert response.json()["code"] == "no_image"


def test_item_image_accept_image_only_gets_image_and_json_errors(client_for) -> None:
    project = make_project(preset="privacy_alert")
    item = add_image_item(project)
    client = client_for(project.owner)

    image = client.get(f"/api/v1/items/{item.pk}/image/", HTTP_ACCEPT="image/png")
    missing = client.get("/api/v1/items/999999/image/", HTTP_ACCEPT="image/png")

    assert image.status_code == 200
    assert image["Content-Type"] == "image/png"
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
