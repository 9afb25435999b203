"""Cross-cutting services with no domain knowledge."""

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from core.errors import TooManyRequests
from core.models import LoginFailureCounter


def _window() -> timedelta:
    return timedelta(seconds=settings.CHORUS_LOGIN_WINDOW_SECONDS)


def login_throttle_check(*, keys: list[str]) -> None:
    """Refuse a sign-in attempt when any key has reached the failure limit in its window."""
    since = timezone.now() - _window()
    blocked = LoginFailureCounter.objects.filter(
        key__in=keys, window_started_at__gte=since, failures__gte=settings.CHORUS_LOGIN_MAX_FAILURES
    ).exists()
    if blocked:
        raise TooManyRequests(
            "Too many failed sign-in attempts. Try again later.",
            code="login_throttled",
            extra={"retry_after_seconds": settings.CHORUS_LOGIN_WINDOW_SECONDS},
        )


def _counter_increment(*, key: str, window: timedelta) -> None:
    """Count one event for ``key`` in its live window with atomic updates (no read-modify-write)."""
    now = timezone.now()
    since = now - window
    with transaction.atomic():
        updated = LoginFailureCounter.objects.filter(key=key, window_started_at__gte=since).update(
            failures=F("failures") + 1
        )
        if updated:
            return
        # No live window: start one (or restart an expired one).
        restarted = LoginFailureCounter.objects.filter(key=key, window_started_at__lt=since).update(
            window_started_at=now, failures=1
        )
        if restarted:
            return
        try:
            with transaction.atomic():
                LoginFailureCounter.objects.create(key=key, window_started_at=now, failures=1)
        except IntegrityError:
            LoginFailureCounter.objects.filter(key=key).update(failures=F("failures") + 1)


def login_failure_record(*, keys: list[str]) -> None:
    """Count one failure per key."""
    for key in keys:
        _counter_increment(key=key, window=_window())


def rate_limit_hit(*, key: str, limit: int, window_seconds: int) -> None:
    """Count one request for ``key`` and refuse it once ``limit`` were made in the window.

    For anonymous forms (takedown requests): the same atomic counter table as sign-in
    failures, under its own key prefix.
    """
    window = timedelta(seconds=window_seconds)
    since = timezone.now() - window
    if LoginFailureCounter.objects.filter(
        key=key, window_started_at__gte=since, failures__gte=limit
    ).exists():
        raise TooManyRequests(
            "Too many requests. Try again later.",
            code="rate_limited",
            extra={"retry_after_seconds": window_seconds},
        )
    _counter_increment(key=key, window=window)


def login_success_record(*, keys: list[str]) -> None:
    LoginFailureCounter.objects.filter(key__in=keys).delete()
