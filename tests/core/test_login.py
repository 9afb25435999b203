"""Signing in on the page and at the admin: the lockout (core.lockout), CSRF, sign-out.

Every way in shares one lockout, counted per normalised username and client address (the
address tier) and per username alone with a much higher limit (the account tier).
"""

from typing import Any

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from core.models import Role
from tests.core.factories import PASSWORD, make_user
from tests.core.signin import (
    ACCOUNT_LIMIT,
    ADDRESS_LIMIT,
    ADMIN_URL,
    PAGE_URL,
    TOKEN_URL,
    WRONG,
    admin_sign_in,
    age_failures,
    page_sign_in,
    signed_in,
    token_sign_in,
)

pytestmark = pytest.mark.django_db

WRONG_PASSWORD_TEXT = "correct username and password"
LOCKOUT_TEXT = "Too many failed sign-in attempts"


def fail_until_locked(client: Client, username: str, address: str = "10.0.0.1") -> None:
    for _ in range(ADDRESS_LIMIT):
        page_sign_in(client, username, WRONG, address=address)


def test_login_page_renders_labelled_form_with_csrf_token(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="csrfmiddlewaretoken"' in html
    assert '<label for="id_username">' in html and '<label for="id_password">' in html
    assert '<meta name="viewport"' in html


def test_login_right_password_redirects_home(client):
    user = make_user(Role.ANNOTATOR)
    response = page_sign_in(client, user.username, PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == reverse("home")


def test_login_wrong_password_shows_error(client):
    user = make_user(Role.ANNOTATOR)
    response = page_sign_in(client, user.username, WRONG)
    assert response.status_code == 200
    html = response.content.decode()
    assert WRONG_PASSWORD_TEXT in html
    assert LOCKOUT_TEXT not in html


def test_login_failure_limit_reached_answers_429_with_wait_and_no_wrong_password_text(client):
    user = make_user(Role.ANNOTATOR)
    for _ in range(ADDRESS_LIMIT - 1):
        assert page_sign_in(client, user.username, WRONG).status_code == 200

    last_failure = page_sign_in(client, user.username, WRONG)
    right_password = page_sign_in(client, user.username, PASSWORD)

    for response in (last_failure, right_password):
        html = response.content.decode()
        assert response.status_code == 429
        assert "Try again in 1 minute." in html
        assert WRONG_PASSWORD_TEXT not in html
        assert response["Retry-After"] in {"59", "60"}
    assert not signed_in(client)


def test_login_ghost_user_failures_from_shared_address_do_not_lock_a_real_user(client):
    """Defect: five failures for a non-existent user locked everyone behind the same NAT."""
    user = make_user(Role.ANNOTATOR)
    fail_until_locked(Client(), "no-such-user", address="10.0.0.1")

    response = page_sign_in(client, user.username, PASSWORD, address="10.0.0.1")

    assert response.status_code == 302
    assert signed_in(client)


def test_login_attacker_failures_from_one_address_do_not_stop_owner_at_another(client):
    user = make_user(Role.ANNOTATOR)
    attacker = Client()
    fail_until_locked(attacker, user.username, address="203.0.113.7")
    assert page_sign_in(attacker, user.username, PASSWORD, address="203.0.113.7").status_code == 429

    response = page_sign_in(client, user.username, PASSWORD, address="198.51.100.2")

    assert response.status_code == 302
    assert signed_in(client)


def test_login_many_guesses_from_one_address_stopped_until_cool_off_ends(client):
    user = make_user(Role.ANNOTATOR)
    fail_until_locked(client, user.username)
    # Guessing on while locked is refused and not counted.
    for _ in range(20):
        assert page_sign_in(client, user.username, WRONG).status_code == 429

    age_failures(61)

    assert page_sign_in(client, user.username, PASSWORD).status_code == 302


def test_login_many_addresses_against_one_username_lock_it_at_the_account_limit(client):
    user = make_user(Role.ANNOTATOR)
    for n in range(ACCOUNT_LIMIT - 1):
        page_sign_in(Client(), user.username, WRONG, address=f"10.1.{n // 200}.{n % 200}")
    # One below the account limit the owner still gets in, from any address.
    assert page_sign_in(Client(), user.username, PASSWORD, address="10.9.9.1").status_code == 302

    page_sign_in(Client(), user.username, WRONG, address="10.2.0.1")
    response = page_sign_in(client, user.username, PASSWORD, address="10.9.9.2")

    assert response.status_code == 429
    assert not signed_in(client)
    age_failures(61)
    assert page_sign_in(client, user.username, PASSWORD, address="10.9.9.2").status_code == 302


def test_login_cool_off_doubles_with_each_failure_after_it(client):
    user = make_user(Role.ANNOTATOR)
    fail_until_locked(client, user.username)
    age_failures(61)

    response = page_sign_in(client, user.username, WRONG)

    assert response.status_code == 429
    assert "Try again in 2 minutes." in response.content.decode()
    assert response["Retry-After"] in {"119", "120"}
    age_failures(61)
    assert page_sign_in(client, user.username, PASSWORD).status_code == 429
    age_failures(60)
    assert page_sign_in(client, user.username, PASSWORD).status_code == 302


def test_login_failures_forgotten_a_memory_window_after_the_latest(client):
    user = make_user(Role.ANNOTATOR)
    for _ in range(ADDRESS_LIMIT - 1):
        page_sign_in(client, user.username, WRONG)
    age_failures(24 * 3600 + 1)

    # Were the earlier ones still counted, this failure would lock.
    assert page_sign_in(client, user.username, WRONG).status_code == 200


def test_login_success_forgets_own_address_failures_but_not_an_attackers(client):
    user = make_user(Role.ANNOTATOR)
    attacker = Client()
    for _ in range(ADDRESS_LIMIT - 1):
        page_sign_in(attacker, user.username, WRONG, address="203.0.113.7")
        page_sign_in(client, user.username, WRONG, address="198.51.100.2")

    assert page_sign_in(client, user.username, PASSWORD, address="198.51.100.2").status_code == 302
    owner_again = Client()
    for _ in range(ADDRESS_LIMIT - 1):
        assert (
            page_sign_in(owner_again, user.username, WRONG, address="198.51.100.2").status_code
            == 200
        )
    # The attacker's count was kept: one more failure locks that address.
    assert page_sign_in(attacker, user.username, WRONG, address="203.0.113.7").status_code == 429


def test_login_fullwidth_lookalike_username_counts_against_the_account(client):
    """Defect: 'ｒesearcher2' (U+FF52) failures did not count against 'researcher2'."""
    user = make_user(Role.RESEARCHER, username="researcher2")
    for n in range(ACCOUNT_LIMIT):
        page_sign_in(Client(), "\uff52esearcher2", WRONG, address=f"10.3.0.{n}")

    response = page_sign_in(client, "researcher2", PASSWORD, address="10.9.9.9")

    assert user.username == "researcher2"
    assert response.status_code == 429
    assert not signed_in(client)


def test_login_fullwidth_lookalike_username_from_one_address_locks_that_pair(client):
    make_user(Role.RESEARCHER, username="researcher2")
    fail_until_locked(Client(), "\uff52esearcher2", address="10.0.0.1")

    assert page_sign_in(client, "researcher2", PASSWORD, address="10.0.0.1").status_code == 429
    assert page_sign_in(client, "researcher2", PASSWORD, address="10.0.0.2").status_code == 302


def test_login_padded_username_counts_against_the_account(client):
    user = make_user(Role.ANNOTATOR)
    for _ in range(ADDRESS_LIMIT):
        page_sign_in(Client(), f"  {user.username}\u3000", WRONG)

    assert page_sign_in(client, user.username, PASSWORD).status_code == 429


def test_login_other_case_username_is_another_account_and_does_not_lock(client):
    """Usernames are case-sensitive: only NFKC and stripping, as authentication does."""
    user = make_user(Role.ANNOTATOR, username="casey")
    fail_until_locked(Client(), "CASEY")

    assert page_sign_in(client, "CASEY", PASSWORD).status_code == 429
    assert page_sign_in(client, "casey", PASSWORD).status_code == 302
    assert user.username == "casey"


def test_admin_login_30_wrong_passwords_lock_and_right_password_does_not_sign_in(client):
    staff = make_user(Role.RESEARCHER, is_staff=True, is_superuser=True)
    statuses = [admin_sign_in(client, staff.username, WRONG).status_code for _ in range(30)]

    response = admin_sign_in(client, staff.username, PASSWORD)

    assert statuses[: ADDRESS_LIMIT - 1] == [200] * (ADDRESS_LIMIT - 1)
    assert set(statuses[ADDRESS_LIMIT - 1 :]) == {429}
    assert response.status_code == 429
    html = response.content.decode()
    assert LOCKOUT_TEXT in html and "minute" in html
    assert WRONG_PASSWORD_TEXT not in html
    assert f'href="{ADMIN_URL}' in html
    assert not signed_in(client)
    assert client.get("/admin/").status_code == 302


def test_admin_login_fullwidth_lookalike_username_counts_against_the_account(client):
    staff = make_user(Role.RESEARCHER, username="researcher2", is_staff=True)
    for _ in range(ADDRESS_LIMIT):
        admin_sign_in(Client(), "\uff52esearcher2", WRONG)

    assert admin_sign_in(client, "researcher2", PASSWORD).status_code == 429
    assert staff.is_staff and not signed_in(client)


def test_admin_login_failures_lock_the_sign_in_page_and_the_token_too(client):
    staff = make_user(Role.RESEARCHER, is_staff=True)
    for _ in range(ADDRESS_LIMIT):
        admin_sign_in(Client(), staff.username, WRONG)

    assert page_sign_in(client, staff.username, PASSWORD).status_code == 429
    assert token_sign_in(staff.username, PASSWORD).status_code == 429


def test_login_page_failures_lock_the_admin_too(client):
    staff = make_user(Role.RESEARCHER, is_staff=True)
    fail_until_locked(Client(), staff.username)

    assert admin_sign_in(client, staff.username, PASSWORD).status_code == 429
    assert not signed_in(client)


# Behind nginx (CHORUS_TRUSTED_PROXY_COUNT): REMOTE_ADDR is nginx's for every client.
NGINX = "172.18.0.5"


def proxied_sign_in(client: Client, username: str, password: str, forwarded_for: str) -> Any:
    return client.post(
        PAGE_URL,
        {"username": username, "password": password},
        REMOTE_ADDR=NGINX,
        HTTP_X_FORWARDED_FOR=forwarded_for,
    )


def proxied_token_sign_in(username: str, password: str, forwarded_for: str) -> Any:
    return APIClient().post(
        TOKEN_URL,
        {"username": username, "password": password},
        format="json",
        REMOTE_ADDR=NGINX,
        HTTP_X_FORWARDED_FOR=forwarded_for,
    )


def recorded_addresses() -> set[str | None]:
    return set(AccessAttempt.objects.values_list("ip_address", flat=True))


def test_login_behind_trusted_proxy_clients_get_separate_address_locks(client, settings):
    settings.CHORUS_TRUSTED_PROXY_COUNT = 1
    user = make_user(Role.ANNOTATOR)
    attacker = Client()
    for _ in range(ADDRESS_LIMIT):
        proxied_sign_in(attacker, user.username, WRONG, forwarded_for="203.0.113.7")
    assert proxied_sign_in(attacker, user.username, PASSWORD, "203.0.113.7").status_code == 429
    assert proxied_token_sign_in(user.username, PASSWORD, "203.0.113.7").status_code == 429

    response = proxied_sign_in(client, user.username, PASSWORD, forwarded_for="198.51.100.2")

    assert response.status_code == 302
    assert signed_in(client)
    assert proxied_token_sign_in(user.username, PASSWORD, "198.51.100.2").status_code == 200
    assert recorded_addresses() == {"203.0.113.7"}


def test_login_behind_trusted_proxy_forged_forwarded_for_keyed_by_real_address(client, settings):
    settings.CHORUS_TRUSTED_PROXY_COUNT = 1
    user = make_user(Role.ANNOTATOR)
    attacker = Client()
    # A new forged entry each time, as if from another machine; nginx's entry is last.
    for n in range(ADDRESS_LIMIT):
        proxied_sign_in(attacker, user.username, WRONG, forwarded_for=f"1.2.3.{n}, 203.0.113.7")

    forged = proxied_sign_in(attacker, user.username, PASSWORD, "9.9.9.9, 203.0.113.7")

    assert forged.status_code == 429
    assert recorded_addresses() == {"203.0.113.7"}
    assert proxied_sign_in(client, user.username, PASSWORD, "198.51.100.2").status_code == 302


def test_login_no_trusted_proxy_forwarded_for_ignored(client, settings):
    settings.CHORUS_TRUSTED_PROXY_COUNT = 0
    user = make_user(Role.ANNOTATOR)
    for _ in range(ADDRESS_LIMIT):
        proxied_sign_in(Client(), user.username, WRONG, forwarded_for="203.0.113.7")

    response = proxied_sign_in(client, user.username, PASSWORD, forwarded_for="198.51.100.2")

    # Both came from REMOTE_ADDR (here nginx's): one address, one lock.
    assert response.status_code == 429
    assert recorded_addresses() == {NGINX}


def test_login_post_without_csrf_token_returns_403():
    user = make_user(Role.ANNOTATOR)
    client = Client(enforce_csrf_checks=True)
    response = page_sign_in(client, user.username, PASSWORD)
    assert response.status_code == 403
    assert not signed_in(client)


def test_logout_by_post_signs_out_and_get_is_refused(client):
    user = make_user(Role.ANNOTATOR)
    client.force_login(user)
    assert client.get(reverse("logout")).status_code == 405
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert not signed_in(client)


def test_error_pages_render_with_status(client):
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert "Not found" in response.content.decode()
