"""Under /api/ every 404 and 405 has the one error shape, DEBUG on or off.

Django's technical 404 page (DEBUG) bypasses ``handler404``, and the schema and docs views
render their errors as YAML or HTML; ``core.middleware.ApiErrorShapeMiddleware`` answers
them in JSON. Pages keep their HTML error page.
"""

from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, reverse
from rest_framework.test import APIClient

from annotation.api.urls import urlpatterns as annotation_api_routes
from core.models import Role, User
from provenance.api.urls import urlpatterns as provenance_api_routes
from tests.core.factories import make_user

pytestmark = pytest.mark.django_db

METHODS = ("get", "post", "put", "patch", "delete")


def assert_error_shape(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"code", "message", "extra"}
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert body["extra"] == {}


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "production"])
@pytest.mark.parametrize(
    "path", ["/api/v1/no-such-endpoint/", "/api/v1/projects/x/", "/api/", "/api/v2/projects/"]
)
def test_api_unknown_route_answers_json_not_found_without_url_list(
    settings: Any, debug: bool, path: str
) -> None:
    settings.DEBUG = debug
    client = APIClient()
    client.force_authenticate(make_user(Role.RESEARCHER))

    for method in METHODS:
        response = getattr(client, method)(path)
        assert_error_shape(response, 404, "not_found")
        assert b"urlpatterns" not in response.content
        assert b"api/v1/" not in response.content


def test_api_unknown_route_debug_keeps_the_other_middlewares_headers(settings: Any) -> None:
    settings.DEBUG = True

    response = APIClient().get("/api/v1/no-such-endpoint/")

    assert_error_shape(response, 404, "not_found")
    assert "no-store" in response["Cache-Control"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert int(response["Content-Length"]) == len(response.content)


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "production"])
def test_page_unknown_route_keeps_html_not_found_page(settings: Any, debug: bool) -> None:
    settings.DEBUG = debug

    response = Client().get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/"])
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_api_schema_and_docs_wrong_method_answer_json_method_not_allowed(
    path: str, method: str
) -> None:
    response = getattr(APIClient(), method)(path)

    assert_error_shape(response, 405, "method_not_allowed")
    assert response["Allow"]


def _route_path(pattern: URLPattern) -> str:
    kwargs = {
        name: "region" if converter.__class__.__name__ == "StringConverter" else 999_999
        for name, converter in pattern.pattern.converters.items()
    }
    return reverse(str(pattern.name), kwargs=kwargs)


def _callers() -> list[User]:
    """One caller that passes each route's role check, whichever role it wants."""
    return [
        make_user(Role.RESEARCHER, is_staff=True),
        make_user(Role.ANNOTATOR),
        make_user(Role.AUDITOR),
    ]


def test_api_every_route_unimplemented_method_answers_json_method_not_allowed() -> None:
    callers = _callers()
    checked = 0

    for pattern in [*annotation_api_routes, *provenance_api_routes]:
        assert isinstance(pattern, URLPattern)
        view_class = getattr(pattern.callback, "view_class", None)
        assert view_class is not None, pattern
        path = _route_path(pattern)
        for method in METHODS:
            if hasattr(view_class, method):
                continue
            statuses = set()
            for user in callers:
                client = APIClient()
                client.force_authenticate(user)
                response = getattr(client, method)(path, {}, format="json")
                body = response.json()
                assert set(body) == {"code", "message", "extra"}, (method, path)
                statuses.add(response.status_code)
                if response.status_code == 405:
                    assert body["code"] == "method_not_allowed"
                    assert response["Allow"]
                else:
                    # Auditors' writes are refused first, whatever the route takes.
                    assert response.status_code == 403, (method, path, body)
            assert 405 in statuses, (method, path)
            checked += 1

    assert checked > 40
