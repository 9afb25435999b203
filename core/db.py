"""Database helpers shared by every app."""

import functools
import logging
import random
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.db import OperationalError, connection, models, transaction

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

# SQLSTATE serialization_failure and deadlock_detected: the transaction did nothing and
# may simply be run again.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


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
