"""The client address behind trusted proxies (core/net.py), as the per-address limits key it."""

import pytest
from django.test import RequestFactory

from core.net import client_address

NGINX = "172.18.0.5"


def address_of(remote_addr: str | None, forwarded_for: str | None = None) -> str:
    request = RequestFactory().get("/")
    if forwarded_for is not None:
        request.META["HTTP_X_FORWARDED_FOR"] = forwarded_for
    if remote_addr is None:
        del request.META["REMOTE_ADDR"]
    else:
        request.META["REMOTE_ADDR"] = remote_addr
    return client_address(request)


def test_client_address_no_trusted_proxy_ignores_forwarded_for(settings) -> None:
    settings.CHORUS_TRUSTED_PROXY_COUNT = 0

    assert address_of(NGINX, "198.51.100.2") == NGINX
    assert address_of(NGINX) == NGINX


def test_client_address_one_trusted_proxy_takes_the_address_it_saw(settings) -> None:
    settings.CHORUS_TRUSTED_PROXY_COUNT = 1

    assert address_of(NGINX, "198.51.100.2") == "198.51.100.2"
    assert address_of(NGINX, " 198.51.100.2 ") == "198.51.100.2"


def test_client_address_one_trusted_proxy_forged_leftmost_entry_ignored(settings) -> None:
    settings.CHORUS_TRUSTED_PROXY_COUNT = 1

    assert address_of(NGINX, "1.2.3.4, 198.51.100.2") == "198.51.100.2"


def test_client_address_two_trusted_proxies_take_the_outermost_ones_entry(settings) -> None:
    settings.CHORUS_TRUSTED_PROXY_COUNT = 2

    # client forged "1.2.3.4"; the balancer appended the client, nginx the balancer.
    assert address_of(NGINX, "1.2.3.4, 198.51.100.2, 10.0.0.7") == "198.51.100.2"


def test_client_address_ipv6_entry_normalised(settings) -> None:
    settings.CHORUS_TRUSTED_PROXY_COUNT = 1

    assert address_of(NGINX, "2001:DB8:0:0::1") == "2001:db8::1"


@pytest.mark.parametrize(
    "forwarded_for",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param("198.51.100.2, ", id="empty-rightmost"),
        pytest.param("not-an-address", id="not-an-address"),
        pytest.param("198.51.100.2:443", id="with-port"),
        pytest.param("198.51.100.256", id="out-of-range"),
    ],
)
def test_client_address_missing_or_malformed_header_falls_back_to_remote_addr(
    settings, forwarded_for: str | None
) -> None:
    settings.CHORUS_TRUSTED_PROXY_COUNT = 1

    assert address_of(NGINX, forwarded_for) == NGINX


def test_client_address_fewer_entries_than_trusted_proxies_falls_back_to_remote_addr(
    settings,
) -> None:
    settings.CHORUS_TRUSTED_PROXY_COUNT = 2

    assert address_of(NGINX, "198.51.100.2") == NGINX


def test_client_address_no_remote_addr_is_empty(settings) -> None:
    settings.CHORUS_TRUSTED_PROXY_COUNT = 0

    assert address_of(None) == ""
