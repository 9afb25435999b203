"""Sign-in helpers shared by the lockout tests: the three ways in, and the passing of time."""

from datetime import timedelta
from typing import Any

from axes.models import AccessAttempt
from django.db.models import F
from django.test import Client
from rest_framework.test import APIClient

PAGE_URL = "/accounts/login/"
ADMIN_URL = "/admin/login/"
TOKEN_URL = "/api/v1/auth/token/"
WRONG = "not-the-password"
# The policy the lockout tests are written against (the shipped defaults, pinned).
POLICY = {
    "CHORUS_LOGIN_FAILURE_LIMIT": 5,
    "CHORUS_LOGIN_COOLOFF_SECONDS": 60,
    "CHORUS_LOGIN_MAX_COOLOFF_SECONDS": 3600,
    "CHORUS_LOGIN_ACCOUNT_FAILURE_LIMIT": 50,
    "CHORUS_LOGIN_ACCOUNT_COOLOFF_SECONDS": 60,
    "CHORUS_LOGIN_ACCOUNT_MAX_COOLOFF_SECONDS": 900,
    "CHORUS_LOGIN_FAILURE_MEMORY_SECONDS": 24 * 3600,
}
ADDRESS_LIMIT = POLICY["CHORUS_LOGIN_FAILURE_LIMIT"]
ACCOUNT_LIMIT = POLICY["CHORUS_LOGIN_ACCOUNT_FAILURE_LIMIT"]


def pin_policy(settings: Any) -> None:
    for name, value in POLICY.items():
        setattr(settings, name, value)


def page_sign_in(client: Client, username: str, password: str, address: str = "10.0.0.1") -> Any:
    return client.post(PAGE_URL, {"username": username, "password": password}, REMOTE_ADDR=address)


def admin_sign_in(client: Client, username: str, password: str, address: str = "10.0.0.1") -> Any:
    return client.post(
        ADMIN_URL,
        {"username": username, "password": password, "next": "/admin/"},
        REMOTE_ADDR=address,
    )


def token_sign_in(username: str, password: str, address: str = "10.0.0.1") -> Any:
    return APIClient().post(
        TOKEN_URL, {"username": username, "password": password}, format="json", REMOTE_ADDR=address
    )


def age_failures(seconds: float) -> None:
    """Let ``seconds`` pass for every recorded failure."""
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(seconds=seconds))


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session
