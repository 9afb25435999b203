"""Cross-cutting services with no domain knowledge: accounts, rate limits, API tokens."""

from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from rest_framework.authtoken.models import Token

from core.errors import TooManyRequests, ValidationFailed
from core.models import LoginFailureCounter, Role, User
from core.signals import user_created, user_role_changed


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


def rate_limit_hit(*, key: str, limit: int, window_seconds: int) -> None:
    """Count one request for ``key`` and refuse it once ``limit`` were made in the window.

    For anonymous forms (takedown requests), one atomic counter per key and window.
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


# ---------------------------------------------------------------- API tokens


def api_token_expired(*, token: Token, now: datetime | None = None) -> bool:
    """A token works for ``CHORUS_API_TOKEN_TTL_SECONDS`` from when it was issued."""
    lifetime = timedelta(seconds=settings.CHORUS_API_TOKEN_TTL_SECONDS)
    return token.created + lifetime <= (now or timezone.now())


def api_token_issue(*, user: User) -> Token:
    """The user's API token: the live one (all their clients share it), or a new one."""
    token, _ = Token.objects.get_or_create(user=user)
    if not api_token_expired(token=token):
        return token
    # By key: a sign-in racing this one may already have replaced it; then that one is kept.
    Token.objects.filter(key=token.key).delete()
    token, _ = Token.objects.get_or_create(user=user)
    return token


def api_tokens_revoke(*, user: User) -> None:
    """End the user's API tokens: when they revoke theirs, and when their role changes.

    A password change ends them too, in ``User.save`` (Django's own password-change hook).
    """
    Token.objects.filter(user=user).delete()


# ---------------------------------------------------------------- accounts
#
# Invariants: a role is one of ``Role``; creating a user and changing a role are audited
# (``provenance`` records ``user_created`` and ``user_role_changed``, sent inside the
# transaction, see ``core.signals``); a role change revokes the user's API tokens, issued
# under the old role.


def user_create(
    *, username: str, password: str, role: str, email: str = "", actor: User | None = None
) -> User:
    if role not in Role.values:
        raise ValidationFailed(f"Unknown role {role!r}.", code="invalid_role")
    user = User(username=username, email=email, role=role)
    user.set_password(password)
    try:
        user.full_clean()
    except DjangoValidationError as error:
        raise ValidationFailed("Invalid user.", extra={"fields": error.message_dict}) from error
    with transaction.atomic():
        user.save()
        user_created.send(sender=User, user=user, actor=actor)
    return user


def user_role_set(*, user: User, role: str, actor: User | None) -> User:
    if role not in Role.values:
        raise ValidationFailed(f"Unknown role {role!r}.", code="invalid_role")
    if user.role == role:
        return user
    with transaction.atomic():
        previous = user.role
        user.role = role
        user.save(update_fields=["role"])
        api_tokens_revoke(user=user)
        user_role_changed.send(sender=User, user=user, actor=actor, previous=previous, role=role)
    return user
