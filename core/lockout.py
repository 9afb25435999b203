"""Sign-in lockout policy, enforced by django-axes on every way in.

The sign-in page, the admin's sign-in and the API token all call ``authenticate()``, so
the axes backend (first in ``AUTHENTICATION_BACKENDS``) refuses a locked-out attempt on
each of them and the axes signal handler counts each failure. This module holds the policy
axes is configured with (``AXES_*`` settings):

- Who a failure counts against: the username as authentication looks it up (NFKC, the
  normalisation of ``AbstractBaseUser.normalize_username`` and the sign-in forms, then
  stripped; case is kept, because usernames are case-sensitive), together with the client
  address (``core.net.client_address``, axes' ``AXES_CLIENT_IP_CALLABLE``: ``REMOTE_ADDR``,
  or behind ``CHORUS_TRUSTED_PROXY_COUNT`` proxies the address the outermost one saw).
- Two tiers, each counting failures that are at most ``CHORUS_LOGIN_FAILURE_MEMORY_SECONDS``
  older than the latest one:

  * address tier, one username from one address: locked at ``CHORUS_LOGIN_FAILURE_LIMIT``
    failures for ``CHORUS_LOGIN_COOLOFF_SECONDS``, doubled by each further failure, at most
    ``CHORUS_LOGIN_MAX_COOLOFF_SECONDS``. Another address (the owner's) is not affected.
  * account tier, one username from all addresses together: locked at the much higher
    ``CHORUS_LOGIN_ACCOUNT_FAILURE_LIMIT`` for ``CHORUS_LOGIN_ACCOUNT_COOLOFF_SECONDS``,
    growing by that length with each further failure, at most
    ``CHORUS_LOGIN_ACCOUNT_MAX_COOLOFF_SECONDS``. It stops guessing spread over many
    addresses, at the price of locking the owner out for that (short) time too.

A tier locks from its latest failure for the cool-off its failure count earns. Attempts
refused during a lockout are not counted, so each cool-off allows one more guess, and a
wrong one earns the next, longer cool-off. A successful sign-in forgets the failures of
that username from that address only: the owner signing in does not hand an attacker
elsewhere a fresh set of guesses.
"""

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username
from axes.models import AccessAttempt
from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Max, QuerySet, Sum
from django.http import HttpRequest

from core.errors import TooManyRequests

# AccessAttempt.username's column width.
_USERNAME_MAX_LENGTH = 255
# Doubling stops growing long before this; it only keeps the arithmetic small.
_MAX_DOUBLINGS = 30


@dataclass(frozen=True)
class LockoutTier:
    """One lockout rule: failures counted over ``parameters`` and what they earn."""

    parameters: tuple[str, ...]
    failure_limit: int
    cool_off: timedelta
    max_cool_off: timedelta
    doubling: bool

    @property
    def per_address(self) -> bool:
        return "ip_address" in self.parameters

    def cool_off_for(self, failures: int) -> timedelta:
        """The lockout that ``failures`` (at least the limit) earn, from the latest one."""
        beyond = max(failures - self.failure_limit, 0)
        factor = 2 ** min(beyond, _MAX_DOUBLINGS) if self.doubling else 1 + beyond
        return min(self.cool_off * factor, self.max_cool_off)


def lockout_tiers() -> tuple[LockoutTier, ...]:
    """The tiers, read from settings on each call (tests and deployments may change them)."""
    return (
        LockoutTier(
            parameters=("username", "ip_address"),
            failure_limit=settings.CHORUS_LOGIN_FAILURE_LIMIT,
            cool_off=timedelta(seconds=settings.CHORUS_LOGIN_COOLOFF_SECONDS),
            max_cool_off=timedelta(seconds=settings.CHORUS_LOGIN_MAX_COOLOFF_SECONDS),
            doubling=True,
        ),
        LockoutTier(
            parameters=("username",),
            failure_limit=settings.CHORUS_LOGIN_ACCOUNT_FAILURE_LIMIT,
            cool_off=timedelta(seconds=settings.CHORUS_LOGIN_ACCOUNT_COOLOFF_SECONDS),
            max_cool_off=timedelta(seconds=settings.CHORUS_LOGIN_ACCOUNT_MAX_COOLOFF_SECONDS),
            doubling=False,
        ),
    )


def username_normalize(raw: str) -> str:
    """The username as authentication looks it up: NFKC (Django's), then stripped."""
    return str(get_user_model().normalize_username(raw)).strip()


# ---------------------------------------------------------------- axes settings' callables


def lockout_username(request: HttpRequest | None, credentials: dict[str, Any] | None) -> str | None:
    """``AXES_USERNAME_CALLABLE``: the normalised username a failure counts against."""
    field = get_user_model().USERNAME_FIELD
    if credentials is not None:
        raw = credentials.get(field)
    else:
        raw = request.POST.get(field) if request is not None else None
    if not isinstance(raw, str):
        return None
    return username_normalize(raw)[:_USERNAME_MAX_LENGTH]


def lockout_parameters(request: Any, credentials: dict[str, Any] | None = None) -> list[list[str]]:
    """``AXES_LOCKOUT_PARAMETERS``: the tiers' parameters, for axes' own helpers."""
    return [list(tier.parameters) for tier in lockout_tiers()]


def failure_memory(request: HttpRequest | None = None) -> timedelta:
    """``AXES_COOLOFF_TIME``: how long axes keeps a failure after the latest one.

    Axes' own "cool-off" is a window for counting; the tiers' cool-offs are shorter and
    computed from the counts within it.
    """
    return timedelta(seconds=settings.CHORUS_LOGIN_FAILURE_MEMORY_SECONDS)


# ---------------------------------------------------------------- lockout state


def _attempts(
    request: HttpRequest, credentials: dict[str, Any] | None, tier: LockoutTier
) -> QuerySet[Any]:
    filters: dict[str, Any] = {"username": get_client_username(request, credentials)}
    if tier.per_address:
        filters["ip_address"] = request.axes_ip_address  # type: ignore[attr-defined]  # set by axes
    return AccessAttempt.objects.filter(**filters)


def lockout_remaining(request: HttpRequest, credentials: dict[str, Any] | None) -> timedelta:
    """How much longer this username may not sign in from this request's address (0: free)."""
    now = request.axes_attempt_time  # type: ignore[attr-defined]  # set by axes
    remaining = timedelta(0)
    for tier in lockout_tiers():
        summary = (
            _attempts(request, credentials, tier)
            .filter(attempt_time__gte=now - failure_memory(request))
            .aggregate(failures=Sum("failures_since_start"), latest=Max("attempt_time"))
        )
        failures = summary["failures"] or 0
        if failures >= tier.failure_limit:
            until = summary["latest"] + tier.cool_off_for(failures)
            remaining = max(remaining, until - now)
    return remaining


def is_locked_out(request: HttpRequest) -> bool:
    """Whether axes refused (or just locked) this request's sign-in."""
    return bool(getattr(request, "axes_locked_out", False))


def lockout_error(request: HttpRequest, credentials: dict[str, Any] | None) -> TooManyRequests:
    """The error for a locked-out request, saying how long to wait (at least a second)."""
    remaining = lockout_remaining(request, credentials)
    seconds = max(math.ceil(remaining.total_seconds()), 1)
    minutes = math.ceil(seconds / 60)
    return TooManyRequests(
        "Too many failed sign-in attempts. "
        f"Try again in {minutes} minute{'s' if minutes != 1 else ''}.",
        code="login_throttled",
        extra={"retry_after_seconds": seconds},
    )


class TieredLockoutHandler(AxesDatabaseHandler):
    """Axes' database handler (it records the failures) with the tiers deciding the lock."""

    def is_locked(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> bool:
        return lockout_remaining(request, credentials) > timedelta(0)

    def user_login_failed(
        self,
        sender: Any,
        credentials: dict[str, Any],
        request: HttpRequest | None = None,
        **kwargs: Any,
    ) -> None:
        super().user_login_failed(sender, credentials, request, **kwargs)
        if request is None or request.axes_locked_out:  # type: ignore[attr-defined]  # set by axes
            return
        if self.is_whitelisted(request, credentials) or not self.is_locked(request, credentials):
            return
        # The failure just recorded reached a tier's limit: this response is the lockout.
        request.axes_locked_out = True  # type: ignore[attr-defined]  # axes' flag
        request.axes_credentials = credentials  # type: ignore[attr-defined]  # axes' field
        user_locked_out.send(
            "axes",
            request=request,
            username=get_client_username(request, credentials),
            ip_address=request.axes_ip_address,  # type: ignore[attr-defined]  # set by axes
        )

    def reset_user_attempts(
        self, request: HttpRequest, credentials: dict[str, Any] | None = None
    ) -> int:
        """Forget the failures of the username from the address that just signed in."""
        address_tier = next(tier for tier in lockout_tiers() if tier.per_address)
        count, _ = _attempts(request, credentials, address_tier).delete()
        return int(count)
