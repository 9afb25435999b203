"""API sign-in (core/api/auth.py): tokens, their lifetime and revocation, the shared lockout."""

from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from core.models import Role, User
from core.services import user_role_set
from tests.core.factories import PASSWORD, make_user
from tests.core.signin import (
    ACCOUNT_LIMIT,
    ADDRESS_LIMIT,
    TOKEN_URL,
    WRONG,
    age_failures,
    page_sign_in,
    token_sign_in,
)

pytestmark = pytest.mark.django_db

TTL_SECONDS = 7 * 86400


@pytest.fixture(autouse=True)
def _token_lifetime(settings: Any) -> None:
    settings.CHORUS_API_TOKEN_TTL_SECONDS = TTL_SECONDS


def token_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def obtain(user: User) -> str:
    response = token_sign_in(user.username, PASSWORD)
    assert response.status_code == 200, response.content
    return str(response.json()["token"])


def age_token(user: User, seconds: float) -> None:
    Token.objects.filter(user=user).update(created=timezone.now() - timedelta(seconds=seconds))


def test_token_obtain_valid_credentials_token_authenticates() -> None:
    user = make_user(Role.RESEARCHER)

    response = token_sign_in(user.username, PASSWORD)

    assert response.status_code == 200
    assert response.json()["pseudonym"] == user.pseudonym
    assert response.json()["role"] == "researcher"
    assert token_client(response.json()["token"]).get("/api/v1/projects/").status_code == 200


def test_token_obtain_twice_returns_the_same_live_token() -> None:
    user = make_user(Role.RESEARCHER)

    assert obtain(user) == obtain(user)


def test_token_obtain_wrong_password_returns_400_and_counts_a_failure() -> None:
    user = make_user(Role.ANNOTATOR)

    response = token_sign_in(user.username, WRONG, address="10.0.0.3")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_credentials"
    attempt = AccessAttempt.objects.get(username=user.username)
    assert (attempt.ip_address, attempt.failures_since_start) == ("10.0.0.3", 1)


def test_token_obtain_failure_limit_returns_429_error_shape_even_with_right_password() -> None:
    user = make_user(Role.ANNOTATOR)
    for _ in range(ADDRESS_LIMIT - 1):
        assert token_sign_in(user.username, WRONG).status_code == 400

    last_failure = token_sign_in(user.username, WRONG)
    right_password = token_sign_in(user.username, PASSWORD)

    for response in (last_failure, right_password):
        body = response.json()
        assert response.status_code == 429
        assert set(body) == {"code", "message", "extra"}
        assert body["code"] == "login_throttled"
        assert body["extra"]["retry_after_seconds"] in {59, 60}
        assert "1 minute" in body["message"]
        assert response["Retry-After"] == str(body["extra"]["retry_after_seconds"])
    assert not Token.objects.filter(user=user).exists()


def test_token_obtain_locked_by_failures_on_the_sign_in_page() -> None:
    user = make_user(Role.RESEARCHER)
    for _ in range(ADDRESS_LIMIT):
        page_sign_in(Client(), user.username, WRONG)

    response = token_sign_in(user.username, PASSWORD)

    assert response.status_code == 429
    assert response.json()["code"] == "login_throttled"


def test_token_obtain_failures_lock_the_sign_in_page() -> None:
    user = make_user(Role.RESEARCHER)
    for _ in range(ADDRESS_LIMIT):
        token_sign_in(user.username, WRONG)
    page = Client()

    assert page_sign_in(page, user.username, PASSWORD).status_code == 429
    assert "_auth_user_id" not in page.session


def test_token_obtain_fullwidth_lookalike_username_counts_against_the_account() -> None:
    make_user(Role.RESEARCHER, username="researcher2")
    for n in range(ACCOUNT_LIMIT):
        token_sign_in("\uff52esearcher2", WRONG, address=f"10.3.0.{n}")

    response = token_sign_in("researcher2", PASSWORD, address="10.9.9.9")

    assert response.status_code == 429
    assert set(AccessAttempt.objects.values_list("username", flat=True)) == {"researcher2"}


def test_token_obtain_fullwidth_username_signs_in_as_authentication_normalises_it() -> None:
    user = make_user(Role.RESEARCHER, username="researcher2")

    response = token_sign_in("\uff52esearcher2 ", PASSWORD)

    assert response.status_code == 200
    assert response.json()["pseudonym"] == user.pseudonym


def test_token_obtain_attacker_lock_at_one_address_leaves_owner_at_another() -> None:
    user = make_user(Role.ANNOTATOR)
    for _ in range(ADDRESS_LIMIT):
        token_sign_in(user.username, WRONG, address="203.0.113.7")

    assert token_sign_in(user.username, PASSWORD, address="203.0.113.7").status_code == 429
    assert token_sign_in(user.username, PASSWORD, address="198.51.100.2").status_code == 200


def test_token_obtain_success_forgets_this_address_failures() -> None:
    user = make_user(Role.ANNOTATOR)
    for _ in range(ADDRESS_LIMIT - 1):
        token_sign_in(user.username, WRONG)

    assert token_sign_in(user.username, PASSWORD).status_code == 200
    assert not AccessAttempt.objects.filter(username=user.username).exists()
    for _ in range(ADDRESS_LIMIT - 1):
        assert token_sign_in(user.username, WRONG).status_code == 400


def test_token_obtain_after_lockout_cool_off_signs_in() -> None:
    user = make_user(Role.ANNOTATOR)
    for _ in range(ADDRESS_LIMIT):
        token_sign_in(user.username, WRONG)
    age_failures(61)

    assert token_sign_in(user.username, PASSWORD).status_code == 200


def test_token_obtain_missing_fields_returns_400_invalid() -> None:
    response = APIClient().post(TOKEN_URL, {"username": "x"}, format="json")

    assert response.status_code == 400
    assert "password" in response.json()["extra"]["fields"]


def test_token_obtain_with_a_stale_token_header_still_signs_in() -> None:
    user = make_user(Role.ANNOTATOR)

    response = token_client("not-a-real-token").post(
        TOKEN_URL, {"username": user.username, "password": PASSWORD}, format="json"
    )

    assert response.status_code == 200


def test_invalid_token_is_refused_with_401() -> None:
    response = token_client("not-a-real-token").get("/api/v1/projects/")

    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
    assert response["WWW-Authenticate"] == "Token"


def test_token_past_its_lifetime_answers_401_token_expired() -> None:
    user = make_user(Role.RESEARCHER)
    key = obtain(user)
    age_token(user, TTL_SECONDS + 1)

    response = token_client(key).get("/api/v1/projects/")

    assert response.status_code == 401
    assert set(response.json()) == {"code", "message", "extra"}
    assert response.json()["code"] == "token_expired"


def test_token_within_its_lifetime_authenticates() -> None:
    user = make_user(Role.RESEARCHER)
    key = obtain(user)
    age_token(user, TTL_SECONDS - 60)

    assert token_client(key).get("/api/v1/projects/").status_code == 200


def test_token_obtain_after_expiry_returns_a_new_token_that_works() -> None:
    user = make_user(Role.RESEARCHER)
    old = obtain(user)
    age_token(user, TTL_SECONDS + 1)

    new = obtain(user)

    assert new != old
    assert token_client(new).get("/api/v1/projects/").status_code == 200
    assert token_client(old).get("/api/v1/projects/").status_code == 401


def test_token_revoke_by_its_owner_answers_204_and_the_token_stops_working() -> None:
    user = make_user(Role.AUDITOR)
    key = obtain(user)
    client = token_client(key)

    response = client.delete(TOKEN_URL)

    assert response.status_code == 204
    assert not Token.objects.filter(user=user).exists()
    assert client.get("/api/v1/projects/").status_code == 401
    assert obtain(user) != key


def test_token_revoke_by_session_user_ends_their_token() -> None:
    user = make_user(Role.RESEARCHER)
    obtain(user)
    client = APIClient()
    client.force_login(user)

    assert client.delete(TOKEN_URL).status_code == 204
    assert not Token.objects.filter(user=user).exists()


def test_token_revoke_anonymous_answers_401_and_revokes_nothing() -> None:
    user = make_user(Role.RESEARCHER)
    obtain(user)

    response = APIClient().delete(TOKEN_URL)

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert Token.objects.filter(user=user).exists()


def test_token_revoke_leaves_other_users_tokens() -> None:
    user, other = make_user(Role.RESEARCHER), make_user(Role.RESEARCHER)
    obtain(other)

    token_client(obtain(user)).delete(TOKEN_URL)

    assert Token.objects.filter(user=other).exists()


def test_password_change_ends_the_users_token() -> None:
    user = make_user(Role.RESEARCHER)
    key = obtain(user)

    user.set_password("a-brand-new-passphrase")
    user.save()

    assert not Token.objects.filter(user=user).exists()
    assert token_client(key).get("/api/v1/projects/").status_code == 401


def test_password_disabled_ends_the_users_token() -> None:
    user = make_user(Role.RESEARCHER)
    obtain(user)

    user.set_unusable_password()
    user.save(update_fields=["password"])

    assert not Token.objects.filter(user=user).exists()


def test_user_save_without_password_change_keeps_the_token() -> None:
    user = make_user(Role.RESEARCHER)
    key = obtain(user)

    user.first_name = "Ada"
    user.save()
    # Signing in again (password checked, last_login saved) is no password change either.
    assert obtain(user) == key

    assert Token.objects.get(user=user).key == key


def test_role_change_ends_the_users_token() -> None:
    user = make_user(Role.RESEARCHER)
    key = obtain(user)

    user_role_set(user=user, role=Role.ANNOTATOR, actor=None)

    assert not Token.objects.filter(user=user).exists()
    assert token_client(key).get("/api/v1/projects/").status_code == 401


def test_session_authentication_reads_and_enforces_csrf_on_writes() -> None:
    user = make_user(Role.RESEARCHER)
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)

    read = client.get("/api/v1/projects/")
    write = client.post("/api/v1/projects/", {"title": "x"}, format="json")

    assert read.status_code == 200
    assert write.status_code == 403
    assert "CSRF" in write.json()["message"]
