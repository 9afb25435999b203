"""Database helpers shared by every app."""

import functools
import logging
import random
import time
from collections.abc import Callable
from datetime import timedelta
from typing import ParamSpec, TypeVar

from django.db import InterfaceError, OperationalError, connection, models, transaction
from django.db.models import DateTimeField, ExpressionWrapper
from django.db.models.functions import Now

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

# SQLSTATE serialization_failure and deadlock_detected: the transaction did nothing and
# may simply be run again.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


# SQLSTATE classes and codes of failures that say nothing about the statement: the server
# went away or is restarting (08 connection exception, 57P01-57P03 admin or crash shutdown,
# cannot connect now), or the transaction lost a race (serialization failure, deadlock).
TRANSIENT_SQLSTATE_PREFIXES = ("08",)
TRANSIENT_SQLSTATES = RETRYABLE_SQLSTATES | {"57P01", "57P02", "57P03", "53300"}


def _sqlstate(error: BaseException) -> str | None:
    cause = error.__cause__ or error
    state = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    return str(state) if state else None


def is_transient(error: BaseException) -> bool:
    """Whether running the same work again later may well succeed.

    True for a lost or refused connection (``InterfaceError``, or an ``OperationalError``
    with a connection-class SQLSTATE or none at all, as when the socket closed), a server
    shutting down, too many connections, a deadlock or serialization failure, and SQLite's
    "database is locked". False for everything that would fail the same way again.
    """
    if isinstance(error, InterfaceError):
        return True
    if not isinstance(error, OperationalError):
        return False
    state = _sqlstate(error)
    if state is None:
        # psycopg raises OperationalError without a SQLSTATE when the connection itself
        # failed (closed by the server, refused, reset); SQLite reports a busy database.
        return connection.vendor != "sqlite" or "locked" in str(error)
    return state in TRANSIENT_SQLSTATES or state.startswith(TRANSIENT_SQLSTATE_PREFIXES)


def db_now_plus(seconds: float) -> ExpressionWrapper:
    """The database's clock plus ``seconds``, for writes that must not trust a web server's."""
    return ExpressionWrapper(Now() + timedelta(seconds=seconds), output_field=DateTimeField())


def is_retryable(error: BaseException) -> bool:
    cause = error.__cause__ or error
    return (
        getattr(cause, "sqlstate", None) in RETRYABLE_SQLSTATES
        or getattr(cause, "pgcode", None) in RETRYABLE_SQLSTATES
    )


def atomic_with_retry(attempts: int = 5) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Run the function in its own transaction, retrying serialization failures and deadlocks.

    Must be the outermost transaction: retrying inside an enclosing atomic block would
    re-run work whose transaction Postgres has already aborted.
    """

    def decorator(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if connection.in_atomic_block:
                return func(*args, **kwargs)
            for attempt in range(1, attempts + 1):
                try:
                    with transaction.atomic():
                        return func(*args, **kwargs)
                except OperationalError as error:
                    if attempt == attempts or not is_retryable(error):
                        raise
                    logger.info("retrying %s after %s (attempt %d)", func.__name__, error, attempt)
                    time.sleep(random.uniform(0.005, 0.05) * attempt)  # noqa: S311 - jitter only
            raise AssertionError("unreachable")

        return wrapper

    return decorator


def advisory_xact_lock(namespace: str, key: int) -> None:
    """Hold a PostgreSQL advisory lock on (``namespace``, ``key``) until the transaction
    ends: serialises writers of one thing without locking any row others read or update.
    Elsewhere (SQLite serialises every writer anyway) nothing to do."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"{namespace}:{key}"]
        )


def supports_skip_locked() -> bool:
    return bool(connection.features.has_select_for_update_skip_locked)


def table_statistics_refresh(model: type[models.Model]) -> None:
    """Refresh the planner's statistics for a model's table after a bulk write (PostgreSQL).

    Autovacuum analyses a table only some time after a large insert; until then the planner
    believes it holds a few rows, picks nested loops over every new row, and the
    next-item query of a freshly imported project costs tens of milliseconds instead of
    tens of microseconds. Other databases: nothing to do.
    """
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(f'ANALYZE "{model._meta.db_table}"')
