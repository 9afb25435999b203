"""API: every error has the shape {"code", "message", "extra"}; bad input is never a 500."""

import json
from typing import Any

import pytest
from rest_framework.test import APIClient

from annotation.services import annotation_submit, assignment_next
from core.models import Role
from tests.annotation.factories import make_enrolled_annotator, make_open_project, make_project
from tests.core.factories import make_user

pytestmark = pytest.mark.django_db


def assert_error_shape(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"code", "message", "extra"}
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["extra"], dict)


def test_error_400_validation_lists_fields(client_for) -> None:
    response = client_for(make_user(Role.RESEARCHER)).post(
        "/api/v1/projects/", {"annotations_per_item": "many"}, format="json"
    )

    assert_error_shape(response, 400, "invalid")
    assert {"title", "annotations_per_item"} <= set(response.json()["extra"]["fields"])


@pytest.mark.parametrize("body", ['{"title": ', "[1, 2", "\x00", '{"a": NaN'])
def test_error_400_malformed_json_is_parse_error(body: str, client_for) -> None:
    response = client_for(make_user(Role.RESEARCHER)).post(
        "/api/v1/projects/", data=body, content_type="application/json"
    )

    assert_error_shape(response, 400, "parse_error")


def test_error_400_json_array_body_is_invalid_not_500(client_for) -> None:
    response = client_for(make_user(Role.RESEARCHER)).post(
        "/api/v1/projects/", data=json.dumps([1, 2]), content_type="application/json"
    )

    assert_error_shape(response, 400, "invalid")


def test_error_anonymous_is_not_authenticated(client_for) -> None:
    response = client_for(None).get("/api/v1/projects/")

    assert response.status_code in (401, 403)
    assert_error_shape(response, response.status_code, "not_authenticated")


def test_error_403_wrong_role(client_for) -> None:
    response = client_for(make_user(Role.ANNOTATOR)).get("/api/v1/audit/events/")

    assert_error_shape(response, 403, "auditor_only")


def test_error_404_unknown_object_and_unknown_api_path(client_for) -> None:
    client = client_for(make_user(Role.RESEARCHER))

    assert_error_shape(client.get("/api/v1/projects/999999/"), 404, "not_found")
    assert_error_shape(client.get("/api/v1/no-such-endpoint/"), 404, "not_found")


def test_error_404_huge_id_is_not_found_not_500(client_for) -> None:
    response = client_for(make_user(Role.RESEARCHER)).get(f"/api/v1/projects/{10**30}/")

    assert_error_shape(response, 404, "not_found")


def test_error_405_method_not_allowed(client_for) -> None:
    response = client_for(make_user(Role.RESEARCHER)).delete("/api/v1/projects/")

    assert_error_shape(response, 405, "method_not_allowed")


def test_error_409_conflict(client_for) -> None:
    project = make_open_project(1)
    annotator = make_enrolled_annotator(project)
    assignment = assignment_next(project=project, annotator=annotator)
    assert assignment is not None
    annotation_submit(annotator=annotator, item=assignment.item, value="hateful")

    response = client_for(annotator).post(
        "/api/v1/annotations/", {"item": assignment.item_id, "value": "neither"}, format="json"
    )

    assert_error_shape(response, 409, "already_labeled")


def test_error_413_json_body_over_limit(settings: Any, client_for) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    project = make_project()

    response = client_for(project.owner).patch(
        f"/api/v1/projects/{project.pk}/", {"description": "x" * 4096}, format="json"
    )

    assert_error_shape(response, 413, "too_large")


def test_error_415_unsupported_media_type(client_for) -> None:
    response = client_for(make_user(Role.RESEARCHER)).post(
        "/api/v1/projects/", data="title=x", content_type="text/plain"
    )

    assert_error_shape(response, 415, "unsupported_media_type")


def test_error_429_login_throttled(settings: Any) -> None:
    settings.CHORUS_LOGIN_FAILURE_LIMIT = 2
    client = APIClient()
    client.post("/api/v1/auth/token/", {"username": "ghost", "password": "x"}, format="json")

    response = client.post(
        "/api/v1/auth/token/", {"username": "ghost", "password": "x"}, format="json"
    )

    assert_error_shape(response, 429, "login_throttled")
    assert response.json()["extra"]["retry_after_seconds"] > 0


def test_error_out_of_range_body_values_are_400(client_for) -> None:
    project = make_open_project(1)
    annotator = make_enrolled_annotator(project)

    response = client_for(annotator).post(
        "/api/v1/annotations/",
        {"item": 2**70, "value": "hateful", "time_spent_ms": -1, "confidence": 9},
        format="json",
    )

    assert_error_shape(response, 400, "invalid")
    assert {"item", "time_spent_ms", "confidence"} <= set(response.json()["extra"]["fields"])
