"""NUL characters (U+0000) are refused with 400 wherever input comes in, nothing stored.

PostgreSQL stores no NUL in text and no ``\\u0000`` in jsonb (a 500 there), SQLite stores
them silently; the checks run before the database is reached, so these tests hold on both.
API: the parsers in ``core.api.parsers`` (code ``nul_character``, the field's path in the
message and in ``extra.field``). Pages: ``core.middleware.NulCharacterMiddleware`` for form
fields, query strings and addresses, and the JSON text fields of the project form.
"""

import html
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import QueryDict
from django.test import Client
from rest_framework.test import APIClient

from annotation.models import Annotation, ImportBatch, Project
from annotation.services import assignment_next
from core.models import Role, User
from core.nul import nul_path
from tests.annotation.factories import make_enrolled_annotator, make_open_project, make_project
from tests.core.factories import PASSWORD, make_user
from tests.permission_world import db_state

pytestmark = pytest.mark.django_db

NUL = "\x00"


def api_client(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def page_client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def assert_nul_refused(response: Any, field: str | None = None) -> None:
    assert response.status_code == 400, response.content[:300]
    body = response.json()
    assert set(body) == {"code", "message", "extra"}
    assert body["code"] == "nul_character"
    assert "NUL" in body["message"]
    if field is not None:
        assert body["extra"] == {"field": field}
        assert f"'{field}'" in body["message"]


def assert_page_refused(response: Any) -> None:
    assert response.status_code == 400, response.content[:300]
    assert "core/error.html" in [template.name for template in response.templates]
    assert "NUL character" in response.content.decode()


def custom_schema(label: str = "Agree") -> dict[str, Any]:
    return {
        "kind": "nominal",
        "choices": [{"value": "agree", "label": label}, {"value": "disagree", "label": "No"}],
    }


def project_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Opinions",
        "modality": "text",
        "instructions": "Read and choose.",
        "label_schema": custom_schema(),
        "risk_disclosure": "Some texts are rude.",
        "data_use_statement": "Published as a dataset.",
        "compensation_amount": "0.10",
    }
    return body | overrides


# ---------------------------------------------------------------- API


def test_nul_api_project_create_without_nul_is_created() -> None:
    """The body the refusals below alter is a valid one."""
    response = api_client(make_user(Role.RESEARCHER)).post(
        "/api/v1/projects/", project_body(), format="json"
    )

    assert response.status_code == 201, response.json()


def test_nul_api_project_create_label_schema_label_refused_nothing_stored() -> None:
    client = api_client(make_user(Role.RESEARCHER))
    before = db_state()

    response = client.post(
        "/api/v1/projects/", project_body(label_schema=custom_schema(f"Ag{NUL}ree")), format="json"
    )

    assert_nul_refused(response, "label_schema.choices[0].label")
    assert db_state() == before


def test_nul_api_project_patch_label_schema_refused_project_unchanged() -> None:
    project = make_project()
    before = db_state()

    response = api_client(project.owner).patch(
        f"/api/v1/projects/{project.pk}/",
        {"label_schema": custom_schema(NUL)},
        format="json",
    )

    assert_nul_refused(response, "label_schema.choices[0].label")
    assert db_state() == before


def test_nul_api_escaped_in_raw_json_body_refused() -> None:
    """The JSON text holds the six characters \\u0000; parsed, it is a NUL."""
    project = make_project()
    raw = '{"title": "Hello\\u0000world"}'
    assert NUL not in raw

    response = api_client(project.owner).patch(
        f"/api/v1/projects/{project.pk}/", data=raw, content_type="application/json"
    )

    assert_nul_refused(response, "title")
    project.refresh_from_db()
    assert NUL not in project.title


def test_nul_api_key_refused_with_escaped_path() -> None:
    project = make_project()

    response = api_client(project.owner).patch(
        f"/api/v1/projects/{project.pk}/", {"metadata": {f"k{NUL}": 1}}, format="json"
    )

    assert_nul_refused(response, "metadata.k\\u0000")
    assert NUL not in response.json()["message"]


def test_nul_api_annotation_rationale_refused_nothing_stored() -> None:
    project = make_open_project(2)
    annotator = make_enrolled_annotator(project)
    assignment = assignment_next(project=project, annotator=annotator)
    assert assignment is not None
    before = db_state()

    response = api_client(annotator).post(
        "/api/v1/annotations/",
        {"item": assignment.item_id, "value": "hateful", "rationale": f"because{NUL}"},
        format="json",
    )

    assert_nul_refused(response, "rationale")
    assert db_state() == before
    assert not Annotation.objects.exists()


def test_nul_api_multipart_field_refused_nothing_stored(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path
    project = make_project()
    upload = SimpleUploadedFile("items.csv", b"external_id,text,license\na,hi,CC0-1.0\n")

    response = api_client(project.owner).post(
        f"/api/v1/projects/{project.pk}/imports/",
        {"file": upload, "note": f"x{NUL}"},
        format="multipart",
    )

    assert_nul_refused(response, "note")
    assert not ImportBatch.objects.exists()
    assert not [path for path in tmp_path.rglob("*") if path.is_file()]


def test_nul_api_query_string_refused() -> None:
    response = api_client(make_user(Role.AUDITOR)).get("/api/v1/audit/events/?action=%00")

    assert_nul_refused(response, "action")


def test_nul_api_address_refused() -> None:
    project = make_open_project(1)

    response = api_client(project.owner).get(f"/api/v1/projects/{project.pk}/groups/a%00b/")

    assert_nul_refused(response)


def test_nul_api_token_username_refused_nothing_recorded() -> None:
    before = db_state()

    response = APIClient().post(
        "/api/v1/auth/token/", {"username": f"ghost{NUL}", "password": "x"}, format="json"
    )

    assert_nul_refused(response, "username")
    assert db_state() == before


def test_nul_api_deeply_nested_json_is_parse_error_not_500() -> None:
    body = "[" * 100_000 + "]" * 100_000

    response = api_client(make_user(Role.RESEARCHER)).post(
        "/api/v1/projects/", data=body, content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


# ---------------------------------------------------------------- pages


def project_form_data(**overrides: str) -> dict[str, str]:
    data = {
        "preset": "custom",
        "title": "Opinions",
        "description": "",
        "instructions": "Read and choose.",
        "modality": "text",
        "label_schema": json.dumps(custom_schema()),
        "annotations_per_item": "3",
        "compensation_amount": "0.12",
        "compensation_currency": "EUR",
        "compensation_unit": "per_item",
        "risk_disclosure": "Some texts are rude.",
        "data_use_statement": "Published as a research dataset.",
        "survey": "[]",
        "assignment_ttl_seconds": "1800",
        "assignment_strategy": "least_labeled",
        "control_rate": "0",
    }
    return data | overrides


def test_nul_page_project_new_without_nul_is_created() -> None:
    owner = make_user(Role.RESEARCHER)

    response = page_client(owner).post("/research/projects/new/", project_form_data())

    assert response.status_code == 302, response.content[:500]


def test_nul_page_project_new_label_schema_escape_is_form_error_nothing_stored() -> None:
    owner = make_user(Role.RESEARCHER)
    schema_text = json.dumps(custom_schema(f"Ag{NUL}ree"))
    assert "\\u0000" in schema_text and NUL not in schema_text
    client = page_client(owner)
    before = db_state()

    response = client.post("/research/projects/new/", project_form_data(label_schema=schema_text))

    assert response.status_code == 400
    assert "Contains a NUL character (U+0000) at choices[0].label" in response.content.decode()
    assert db_state() == before
    assert not Project.objects.exists()


def test_nul_page_project_new_title_refused_nothing_stored() -> None:
    client = page_client(make_user(Role.RESEARCHER))
    before = db_state()

    response = client.post("/research/projects/new/", project_form_data(title=f"Opin{NUL}ions"))

    assert_page_refused(response)
    assert "The field 'title'" in html.unescape(response.content.decode())
    assert db_state() == before


def test_nul_page_login_username_refused_no_attempt_recorded() -> None:
    user = make_user(Role.ANNOTATOR)
    before = db_state()

    response = Client().post(
        "/accounts/login/", {"username": f"{user.username}{NUL}", "password": PASSWORD}
    )

    assert_page_refused(response)
    assert db_state() == before


def test_nul_page_post_without_csrf_token_still_refused_403_first() -> None:
    """A POST without a CSRF token is refused (403) before the NUL check looks at it."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user(Role.RESEARCHER))

    response = client.post("/research/projects/new/", project_form_data(title=f"x{NUL}"))

    assert response.status_code == 403
    assert not Project.objects.exists()


def test_nul_page_query_string_refused() -> None:
    response = page_client(make_user(Role.AUDITOR)).get("/audit/?action=%00")

    assert_page_refused(response)


# ---------------------------------------------------------------- the walk itself


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ("plain", None),
        (f"a{NUL}", ""),
        ({"a": [1, {"b": "ok"}, {"c": f"{NUL}"}]}, "a[2].c"),
        ({"a": 1, f"b{NUL}": 2}, "b\\u0000"),
        ([{"x": "ok"}, [f"{NUL}"]], "[1][0]"),
        ({"n": None, "t": True, "f": 1.5}, None),
    ],
)
def test_nul_path_names_first_offending_key_or_value(data: Any, path: str | None) -> None:
    assert nul_path(data) == path


def test_nul_path_query_dict_checks_every_value_of_a_field() -> None:
    query = QueryDict("tag=ok&tag=b%00d&other=fine")

    assert nul_path(query) == "tag"


def test_nul_path_deep_nesting_does_not_exhaust_the_stack() -> None:
    data: Any = NUL
    for _ in range(50_000):
        data = [data]

    assert nul_path(data) == "[0]" * 50_000
