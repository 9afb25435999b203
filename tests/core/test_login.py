"""The sign-in page: throttled brute force, CSRF, sign-out by POST."""

import pytest
from django.test import Client
from django.urls import reverse

from core.models import LoginFailureCounter, Role
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

MAX_FAILURES = 3


@pytest.fixture(autouse=True)
def low_failure_limit(settings):
    settings.CHORUS_LOGIN_MAX_FAILURES = MAX_FAILURES
    settings.CHORUS_LOGIN_WINDOW_SECONDS = 900


def attempt(client: Client, username: str, password: str, address: str = "10.0.0.1"):
    return client.post(
        reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address
    )


def test_login_page_renders_labelled_form_with_csrf_token(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="csrfmiddlewaretoken"' in html
    assert '<label for="id_username">' in html and '<label for="id_password">' in html
    assert '<meta name="viewport"' in html


def test_login_right_password_redirects_home(client):
    user = make_user(Role.ANNOTATOR)
    response = attempt(client, user.username, PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == reverse("home")


def test_login_wrong_password_shows_error(client):
    user = make_user(Role.ANNOTATOR)
    response = attempt(client, user.username, "wrong")
    assert response.status_code == 200
    assert "correct username and password" in response.content.decode()


def test_login_after_max_failures_right_password_returns_429(client):
    user = make_user(Role.ANNOTATOR)
    for _ in range(MAX_FAILURES):
        assert attempt(client, user.username, "wrong").status_code == 200
    response = attempt(client, user.username, PASSWORD)
    assert response.status_code == 429
    assert "Too many failed sign-in attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_login_failures_from_many_addresses_still_throttle_the_account(client):
    user = make_user(Role.ANNOTATOR)
    for n in range(MAX_FAILURES):
        attempt(client, user.username, "wrong", address=f"10.0.1.{n}")
    assert attempt(client, user.username, PASSWORD, address="10.0.2.1").status_code == 429


def test_login_success_resets_the_account_counter(client):
    user = make_user(Role.ANNOTATOR)
    for _ in range(MAX_FAILURES - 1):
        attempt(client, user.username, "wrong", address="10.0.0.1")
    assert attempt(client, user.username, PASSWORD, address="10.0.0.1").status_code == 302
    assert not LoginFailureCounter.objects.filter(key__startswith="user:").exists()
    fresh = Client()
    for _ in range(MAX_FAILURES - 1):
        attempt(fresh, user.username, "wrong", address="10.0.0.2")
    # Without the reset the account would now be at 2 * (limit - 1) >= limit failures.
    assert attempt(fresh, user.username, PASSWORD, address="10.0.0.2").status_code == 302


def test_login_post_without_csrf_token_returns_403():
    user = make_user(Role.ANNOTATOR)
    client = Client(enforce_csrf_checks=True)
    response = attempt(client, user.username, PASSWORD)
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


def test_logout_by_post_signs_out_and_get_is_refused(client):
    user = make_user(Role.ANNOTATOR)
    client.force_login(user)
    assert client.get(reverse("logout")).status_code == 405
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


def test_error_pages_render_with_status(client):
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert "Not found" in response.content.decode()
