"""The lockout policy (core/lockout.py): tiers, growing cool-offs, the username key."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import RequestFactory

from core.lockout import (
    TieredLockoutHandler,
    failure_memory,
    lockout_parameters,
    lockout_tiers,
    lockout_username,
    username_normalize,
)
from tests.core.signin import ACCOUNT_LIMIT, ADDRESS_LIMIT

MINUTE = timedelta(minutes=1)


def test_lockout_tiers_address_tier_low_limit_account_tier_much_higher() -> None:
    address, account = lockout_tiers()

    assert address.parameters == ("username", "ip_address") and address.per_address
    assert account.parameters == ("username",) and not account.per_address
    assert (address.failure_limit, account.failure_limit) == (ADDRESS_LIMIT, ACCOUNT_LIMIT)
    assert account.failure_limit >= 10 * address.failure_limit


def test_lockout_address_tier_cool_off_doubles_per_failure_up_to_an_hour() -> None:
    address, _ = lockout_tiers()

    cool_offs = [address.cool_off_for(ADDRESS_LIMIT + n) for n in range(8)]

    assert cool_offs == [MINUTE * m for m in (1, 2, 4, 8, 16, 32)] + [MINUTE * 60] * 2
    assert address.cool_off_for(10_000) == MINUTE * 60


def test_lockout_account_tier_cool_off_grows_slowly_up_to_15_minutes() -> None:
    _, account = lockout_tiers()

    cool_offs = [account.cool_off_for(ACCOUNT_LIMIT + n) for n in range(4)]

    assert cool_offs == [MINUTE, MINUTE * 2, MINUTE * 3, MINUTE * 4]
    assert account.cool_off_for(ACCOUNT_LIMIT + 100) == MINUTE * 15


def test_lockout_tiers_read_settings_on_each_call(settings) -> None:
    settings.CHORUS_LOGIN_FAILURE_LIMIT = 2
    settings.CHORUS_LOGIN_COOLOFF_SECONDS = 10

    address, _ = lockout_tiers()

    assert address.failure_limit == 2
    assert address.cool_off_for(3) == timedelta(seconds=20)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("researcher2", "researcher2"),
        ("\uff52esearcher2", "researcher2"),  # fullwidth r
        ("\uff52\uff45\uff53\uff45\uff41\uff52\uff43\uff48\uff45\uff52\uff12", "researcher2"),
        ("  researcher2\t", "researcher2"),
        ("researcher2\u3000", "researcher2"),  # ideographic space: NFKC makes it a space
        ("Researcher2", "Researcher2"),  # case is kept: usernames are case-sensitive
        ("caf\u0065\u0301", "caf\u00e9"),  # combining accent composed
    ],
)
def test_username_normalize_nfkc_and_strip_like_authentication(raw: str, expected: str) -> None:
    assert username_normalize(raw) == expected


def test_lockout_username_from_credentials_then_posted_form() -> None:
    posted = RequestFactory().post("/accounts/login/", {"username": "\uff52esearcher2"})

    assert lockout_username(posted, {"username": " alice "}) == "alice"
    assert lockout_username(posted, None) == "researcher2"
    assert lockout_username(None, {"password": "********"}) is None
    assert len(lockout_username(None, {"username": "\ufdfa" * 150}) or "") == 255


def test_lockout_axes_settings_point_at_this_policy() -> None:
    assert settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesStandaloneBackend"
    assert settings.MIDDLEWARE[-1] == "axes.middleware.AxesMiddleware"
    assert settings.AXES_HANDLER == f"{TieredLockoutHandler.__module__}.TieredLockoutHandler"
    assert lockout_parameters(None) == [["username", "ip_address"], ["username"]]
    assert failure_memory() == timedelta(days=1)
