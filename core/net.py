"""The client's network address, as every per-address limit keys it.

Behind reverse proxies ``REMOTE_ADDR`` is the nearest proxy's address, the same for every
client. ``CHORUS_TRUSTED_PROXY_COUNT`` says how many proxies the deployment puts in front
of Django; each appends the address it was reached from to ``X-Forwarded-For`` (nginx in
deploy/nginx/chorus.conf sets the header to it, replacing the client's). The client is then
the entry that many places from the right: the address the outermost trusted proxy saw.
Entries further left were written by the client and are never trusted.

The sign-in lockout (django-axes' ``AXES_CLIENT_IP_CALLABLE``) and the takedown throttle
both call ``client_address``, so they always agree on who the client is.
"""

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    """The client's address: ``REMOTE_ADDR``, or the trusted proxies' ``X-Forwarded-For`` entry.

    With ``CHORUS_TRUSTED_PROXY_COUNT`` at 0 (no proxy) the header is ignored. Otherwise an
    absent header, one with fewer entries than trusted proxies, or an entry that is not an IP
    address falls back to ``REMOTE_ADDR``: the proxies always send a valid one, so anything
    else means a misconfigured proxy, and a client must not be able to pick its own key.
    The result is empty only when the server gave no ``REMOTE_ADDR``.
    """
    remote_addr = str(request.META.get("REMOTE_ADDR") or "")
    trusted_proxies = settings.CHORUS_TRUSTED_PROXY_COUNT
    if trusted_proxies <= 0:
        return remote_addr
    entries = [
        entry.strip() for entry in str(request.META.get("HTTP_X_FORWARDED_FOR", "")).split(",")
    ]
    if len(entries) < trusted_proxies:
        return remote_addr
    try:
        # Normalised, so that one IPv6 address written two ways is one key.
        return str(ipaddress.ip_address(entries[-trusted_proxies]))
    except ValueError:
        return remote_addr
