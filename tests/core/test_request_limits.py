"""Request bodies are capped per route before anything reads them (no 1 GB body is spooled).

Every route takes ``CHORUS_MAX_REQUEST_BYTES``; only the views marked with
``core.middleware.request_body_limit`` (the two import routes) take more. A declared length
over the limit is refused with 413 without reading the body: these tests declare lengths
far larger than the bytes they send, and the test client fails loudly if anything tries to
read past what was sent. Chunked bodies (no Content-Length) are refused with 411.
"""

from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from annotation.models import ImportBatch, Item
from core.middleware import body_limit_setting
from core.models import Role
from tests.annotation.factories import make_project
from tests.core.factories import make_user
from tests.permission_world import db_state

pytestmark = pytest.mark.django_db

HUNDRED_MB = 100 * 1024 * 1024
CSV = b"external_id,text,license\nx1,hello there,CC-BY-4.0\n"


@pytest.fixture(autouse=True)
def _media_root(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


TEXT_CHARS = 19_000


def _rows_over(limit: int) -> int:
    return limit // TEXT_CHARS + 2


def _long_csv(limit: int) -> bytes:
    """A valid import just over ``limit`` bytes: few rows, each text near the length cap."""
    rows = "".join(
        f"long{n},text {n} {'x' * TEXT_CHARS},CC0-1.0\n" for n in range(_rows_over(limit))
    )
    content = CSV.splitlines(keepends=True)[0] + rows.encode()
    assert len(content) > limit
    return content


def _multipart(field: str, filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = "chorusboundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def _declared_post(client: Client, path: str, declared_length: int, **extra: Any) -> Any:
    """POST a small multipart body that claims to be ``declared_length`` bytes long."""
    body, content_type = _multipart("upload", "big.bin", b"x" * 64)
    return client.post(
        path, data=body, content_type=content_type, CONTENT_LENGTH=str(declared_length), **extra
    )


def assert_page_refusal(response: Any, status: int) -> None:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("text/html")
    assert "core/error.html" in [template.name for template in response.templates]


def assert_api_refusal(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.content[:300]
    body = response.json()
    assert set(body) == {"code", "message", "extra"}
    assert body["code"] == code


@pytest.mark.parametrize("path", ["/accounts/login/", "/takedown/"])
def test_request_limit_anonymous_page_post_declaring_100_mb_refused_413_unread(path: str) -> None:
    before = db_state()

    response = _declared_post(Client(), path, HUNDRED_MB)

    assert_page_refusal(response, 413)
    assert db_state() == before


@pytest.mark.parametrize("path", ["/accounts/login/", "/takedown/"])
def test_request_limit_page_post_just_over_default_limit_refused_413(
    path: str, settings: Any
) -> None:
    body, content_type = _multipart("upload", "big.bin", b"x" * settings.CHORUS_MAX_REQUEST_BYTES)

    response = Client().post(path, data=body, content_type=content_type)

    assert_page_refusal(response, 413)


def test_request_limit_api_json_body_over_default_limit_refused_413_json(settings: Any) -> None:
    client = APIClient()
    client.force_authenticate(make_user(Role.RESEARCHER))
    before = db_state()

    response = client.post(
        "/api/v1/projects/",
        {"title": "x", "description": "d" * settings.CHORUS_MAX_REQUEST_BYTES},
        format="json",
    )

    assert_api_refusal(response, 413, "too_large")
    assert response.json()["extra"] == {"max_bytes": settings.CHORUS_MAX_REQUEST_BYTES}
    assert db_state() == before


def test_request_limit_anonymous_api_declaring_100_mb_refused_413_unread() -> None:
    body, content_type = _multipart("file", "big.csv", b"x" * 64)

    response = Client().generic(
        "POST", "/api/v1/takedowns/", body, content_type, CONTENT_LENGTH=str(HUNDRED_MB)
    )

    assert_api_refusal(response, 413, "too_large")


def test_request_limit_page_import_over_default_limit_accepted(
    settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    project = make_project()
    client = Client()
    client.force_login(project.owner)
    upload = SimpleUploadedFile("items.csv", _long_csv(settings.CHORUS_MAX_REQUEST_BYTES))

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("research-project-import", args=[project.pk]), {"upload": upload}
        )

    assert response.status_code == 302, response.content[:300]
    imported = Item.objects.filter(project=project).count()
    assert imported == _rows_over(settings.CHORUS_MAX_REQUEST_BYTES)


def test_request_limit_api_import_over_default_limit_accepted(settings: Any) -> None:
    project = make_project()
    client = APIClient()
    client.force_authenticate(project.owner)
    content = _long_csv(settings.CHORUS_MAX_REQUEST_BYTES)

    response = client.post(
        f"/api/v1/projects/{project.pk}/imports/",
        {"file": SimpleUploadedFile("items.csv", content)},
        format="multipart",
    )

    assert response.status_code == 202, response.content[:300]


def test_request_limit_page_import_declared_over_upload_limit_refused_413_unread() -> None:
    project = make_project()
    client = Client()
    client.force_login(project.owner)
    before = db_state()

    response = _declared_post(
        client, reverse("research-project-import", args=[project.pk]), HUNDRED_MB * 3
    )

    assert_page_refusal(response, 413)
    assert db_state() == before


def test_request_limit_api_import_reads_upload_limit_per_request(settings: Any) -> None:
    settings.CHORUS_MAX_UPLOAD_BYTES = 1024
    project = make_project()
    client = Client()
    client.force_login(project.owner)
    body, content_type = _multipart("file", "items.csv", CSV)

    response = client.generic(
        "POST",
        f"/api/v1/projects/{project.pk}/imports/",
        body,
        content_type,
        CONTENT_LENGTH="2048",
    )

    assert_api_refusal(response, 413, "too_large")
    assert response.json()["extra"] == {"max_bytes": 1024}
    assert not ImportBatch.objects.exists()


@pytest.mark.parametrize(
    ("path", "api"), [("/accounts/login/", False), ("/api/v1/auth/token/", True)]
)
def test_request_limit_chunked_body_without_length_refused_411(path: str, api: bool) -> None:
    response = Client().generic(
        "POST",
        path,
        b"",
        "application/x-www-form-urlencoded",
        HTTP_TRANSFER_ENCODING="chunked",
    )

    if api:
        assert_api_refusal(response, 411, "length_required")
    else:
        assert_page_refusal(response, 411)


def test_request_limit_invalid_content_length_refused_400() -> None:
    response = Client().generic(
        "POST", "/api/v1/auth/token/", b"{}", "application/json", CONTENT_LENGTH="-5"
    )

    assert_api_refusal(response, 400, "invalid_content_length")


def _named_routes(
    patterns: list[URLPattern | URLResolver], prefix: str = ""
) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            found.extend(_named_routes(pattern.url_patterns, prefix + str(pattern.pattern)))
        else:
            found.append((pattern.name or prefix + str(pattern.pattern), pattern.callback))
    return found


def test_request_limit_larger_limit_only_on_the_import_routes() -> None:
    raised = {
        name: body_limit_setting(callback)
        for name, callback in _named_routes(get_resolver().url_patterns)
        if body_limit_setting(callback) != "CHORUS_MAX_REQUEST_BYTES"
    }

    assert raised == {
        "research-project-import": "CHORUS_MAX_UPLOAD_BYTES",
        "api-project-imports": "CHORUS_MAX_UPLOAD_BYTES",
    }


def test_request_limit_default_below_upload_limit_django_limits_kept(
    settings: Any,
) -> None:
    """Forms carry at most a few hundred KB; the Django limits stay in force behind ours."""
    assert settings.CHORUS_MAX_REQUEST_BYTES <= 1024 * 1024
    assert settings.CHORUS_MAX_REQUEST_BYTES < settings.CHORUS_MAX_UPLOAD_BYTES
    assert settings.DATA_UPLOAD_MAX_NUMBER_FILES == 20
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE == 5 * 1024 * 1024


def test_request_limit_refusals_documented_on_every_api_operation() -> None:
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()
    operations = [
        (path, method, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]

    assert len(operations) > 30
    for path, method, operation in operations:
        for status in ("400", "411", "413"):
            content = operation["responses"][status]["content"]
            assert content["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Error"
            }, (path, method, status)
