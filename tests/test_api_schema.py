"""The OpenAPI schema: generated without errors or warnings, valid, served, and documented."""

from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}
# Names that would identify a person in a response shape (pseudonyms are the only identity).
IDENTIFYING_PROPERTIES = {"username", "email", "user", "user_id", "annotator", "annotator_id"}


@pytest.fixture
def schema() -> dict[str, Any]:
    response = APIClient().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return dict(response.json())


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def test_schema_generate_validates_without_errors_or_warnings(tmp_path: Path) -> None:
    target = tmp_path / "schema.yaml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))

    generated = yaml.safe_load(target.read_text())
    assert generated["openapi"].startswith("3.")
    assert "/api/v1/annotations/" in generated["paths"]


def test_schema_served_lists_every_api_endpoint(schema: dict[str, Any]) -> None:
    expected = {
        "/api/v1/auth/token/",
        "/api/v1/projects/",
        "/api/v1/projects/{project_id}/",
        "/api/v1/projects/{project_id}/transition/",
        "/api/v1/projects/{project_id}/progress/",
        "/api/v1/projects/{project_id}/consent/",
        "/api/v1/projects/{project_id}/items/",
        "/api/v1/items/{item_id}/",
        "/api/v1/items/{item_id}/image/",
        "/api/v1/projects/{project_id}/imports/",
        "/api/v1/projects/{project_id}/imports/{batch_id}/",
        "/api/v1/projects/{project_id}/enrolment/",
        "/api/v1/projects/{project_id}/enrolment/survey/",
        "/api/v1/projects/{project_id}/enrolment/withdraw/",
        "/api/v1/projects/{project_id}/next/",
        "/api/v1/projects/{project_id}/assignments/",
        "/api/v1/assignments/{assignment_id}/skip/",
        "/api/v1/annotations/",
        "/api/v1/annotations/{annotation_id}/",
        "/api/v1/projects/{project_id}/annotations/",
        "/api/v1/projects/{project_id}/agreement/",
        "/api/v1/projects/{project_id}/items/disagreement/",
        "/api/v1/projects/{project_id}/annotators/agreement/",
        "/api/v1/projects/{project_id}/groups/{question}/",
        "/api/v1/audit/events/",
        "/api/v1/audit/verify/",
    }

    assert expected <= set(schema["paths"])


def test_schema_error_component_has_code_message_extra(schema: dict[str, Any]) -> None:
    error = schema["components"]["schemas"]["Error"]

    assert set(error["properties"]) == {"code", "message", "extra"}
    assert set(error["required"]) == {"code", "message", "extra"}


def test_schema_every_operation_documents_errors_in_the_error_shape(
    schema: dict[str, Any],
) -> None:
    for path, method, operation in operations(schema):
        responses = operation["responses"]
        errors = {code: body for code, body in responses.items() if code.startswith(("4", "5"))}
        assert errors, f"{method} {path} documents no error"
        for code, body in errors.items():
            ref = body["content"]["application/json"]["schema"]["$ref"]
            assert ref == "#/components/schemas/Error", f"{method} {path} {code}"
        if (path, method) not in PUBLIC_OPERATIONS:
            assert {"401", "403"} <= set(responses), f"{method} {path}"
        if "{" in path:
            assert "404" in responses, f"{method} {path}"
        # Operations that take input document refusing it; a GET or DELETE takes none.
        if method not in {"get", "delete"}:
            assert "400" in responses, f"{method} {path}"


# Operations anyone may call, signed in or not: no 401/403 to document.
PUBLIC_OPERATIONS = {("/api/v1/auth/token/", "post"), ("/api/v1/takedowns/", "post")}

POSTS_WITH_BODIES = {
    "/api/v1/auth/token/",
    "/api/v1/projects/",
    "/api/v1/projects/{project_id}/transition/",
    "/api/v1/projects/{project_id}/imports/",
    "/api/v1/projects/{project_id}/enrolment/",
    "/api/v1/annotations/",
}


def test_schema_request_and_response_bodies_documented(schema: dict[str, Any]) -> None:
    for path, method, operation in operations(schema):
        success = [code for code in operation["responses"] if code.startswith("2")]
        assert success, f"{method} {path}"
        for code in success:
            if code != "204":
                assert operation["responses"][code].get("content"), f"{method} {path} {code}"
        if method in {"put", "patch"} or (method == "post" and path in POSTS_WITH_BODIES):
            assert operation.get("requestBody", {}).get("content"), f"{method} {path}"


def test_schema_list_endpoints_are_paginated(schema: dict[str, Any]) -> None:
    lists = [
        "/api/v1/projects/",
        "/api/v1/projects/{project_id}/items/",
        "/api/v1/projects/{project_id}/imports/",
        "/api/v1/projects/{project_id}/assignments/",
        "/api/v1/projects/{project_id}/annotations/",
        "/api/v1/projects/{project_id}/items/disagreement/",
        "/api/v1/projects/{project_id}/annotators/agreement/",
        "/api/v1/audit/events/",
    ]
    for path in lists:
        get = schema["paths"][path]["get"]
        ref = get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        component = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]
        assert {"count", "next", "previous", "results"} <= set(component["properties"]), path
        assert {"page", "page_size"} <= {p["name"] for p in get.get("parameters", [])}, path


def test_schema_response_shapes_carry_no_identifying_properties(schema: dict[str, Any]) -> None:
    for name, component in schema["components"]["schemas"].items():
        if name.endswith("Request"):
            continue
        properties = set(component.get("properties", {}))
        assert not properties & IDENTIFYING_PROPERTIES, name


def test_schema_item_ordering_is_an_enum_of_allowlisted_fields(schema: dict[str, Any]) -> None:
    parameters = schema["paths"]["/api/v1/projects/{project_id}/items/"]["get"]["parameters"]
    ordering = next(p for p in parameters if p["name"] == "ordering")

    assert all("__" not in value for value in ordering["schema"]["enum"])
    assert "external_id" in ordering["schema"]["enum"]


def test_schema_docs_page_renders() -> None:
    response = APIClient().get("/api/docs/")

    assert response.status_code == 200
    assert b"swagger" in response.content.lower()


def test_schema_docs_page_assets_served_locally_not_from_a_cdn() -> None:
    response = APIClient().get("/api/docs/")

    content = response.content.decode()
    assert "cdn.jsdelivr.net" not in content and "unpkg.com" not in content
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in content


def test_schema_license_report_nested_fields_are_typed(schema: dict[str, Any]) -> None:
    components = schema["components"]["schemas"]
    report = components["LicenseReport"]["properties"]

    assert report["answers"]["items"]["$ref"].endswith("/LicenseUseAnswer")
    for finding in ("missing_license", "unknown_license", "missing_attribution"):
        assert report[finding]["items"]["$ref"].endswith("/LicenseFinding"), finding
    blocking = components["LicenseUseAnswer"]["properties"]["blocking"]
    assert blocking["items"]["$ref"].endswith("/LicenseBlocker")
    assert set(components["LicenseBlocker"]["properties"]) == {
        "expression",
        "rule",
        "message",
        "conflicts_with",
        "items",
    }
