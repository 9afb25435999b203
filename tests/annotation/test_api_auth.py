"""API: token and session authentication; the token endpoint shares the login throttle."""

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from core.models import LoginFailureCounter, Role
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/v1/auth/token/"


def test_token_obtain_valid_credentials_token_authenticates() -> None:
    user = make_user(Role.RESEARCHER)

    response = APIClient().post(
        TOKEN_URL, {"username": user.username, "password": PASSWORD}, format="json"
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")

    assert response.status_code == 200
    assert response.json()["pseudonym"] == user.pseudonym
    assert response.json()["role"] == "researcher"
    assert client.get("/api/v1/projects/").status_code == 200


def test_token_obtain_wrong_password_returns_400_and_counts_failure() -> None:
    user = make_user(Role.ANNOTATOR)

    response = APIClient().post(
        TOKEN_URL, {"username": user.username, "password": "wrong"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_credentials"
    assert LoginFailureCounter.objects.filter(key=f"user:{user.username}").get().failures == 1


def test_token_obtain_after_max_failures_returns_429_even_with_right_password(
    settings: Any,
) -> None:
    settings.CHORUS_LOGIN_MAX_FAILURES = 3
    user = make_user(Role.ANNOTATOR)
    client = APIClient()
    for _ in range(3):
        client.post(TOKEN_URL, {"username": user.username, "password": "nope"}, format="json")

    response = client.post(
        TOKEN_URL, {"username": user.username, "password": PASSWORD}, format="json"
    )

    assert response.status_code == 429
    assert response.json()["code"] == "login_throttled"
    assert "token" not in response.json()


def test_token_obtain_throttled_by_failures_on_the_sign_in_page(settings: Any) -> None:
    settings.CHORUS_LOGIN_MAX_FAILURES = 2
    user = make_user(Role.RESEARCHER)
    page = Client()
    for _ in range(2):
        page.post("/accounts/login/", {"username": user.username, "password": "nope"})

    response = APIClient().post(
        TOKEN_URL, {"username": user.username, "password": PASSWORD}, format="json"
    )

    assert response.status_code == 429
    assert response.json()["code"] == "login_throttled"


def test_token_obtain_success_resets_the_account_counter(settings: Any) -> None:
    settings.CHORUS_LOGIN_MAX_FAILURES = 3
    user = make_user(Role.ANNOTATOR)
    client = APIClient()
    client.post(TOKEN_URL, {"username": user.username, "password": "nope"}, format="json")

    ok = client.post(TOKEN_URL, {"username": user.username, "password": PASSWORD}, format="json")

    assert ok.status_code == 200
    assert not LoginFailureCounter.objects.filter(key=f"user:{user.username}").exists()


def test_token_obtain_missing_fields_returns_400_invalid() -> None:
    response = APIClient().post(TOKEN_URL, {"username": "x"}, format="json")

    assert response.status_code == 400
    assert "password" in response.json()["extra"]["fields"]


def test_invalid_token_is_refused() -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    response = client.get("/api/v1/projects/")

    assert response.status_code in (401, 403)
    assert response.json()["code"] == "authentication_failed"


def test_session_authentication_reads_and_enforces_csrf_on_writes() -> None:
    user = make_user(Role.RESEARCHER)
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)

    read = client.get("/api/v1/projects/")
    write = client.post("/api/v1/projects/", {"title": "x"}, format="json")

    assert read.status_code == 200
    assert write.status_code == 403
    assert "CSRF" in write.json()["message"]
