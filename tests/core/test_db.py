"""``atomic_with_retry``: serialization failures and deadlocks are retried and committed once.

Such a transaction did nothing and may simply run again. The unit tests fake the driver
error Django wraps; the
PostgreSQL tests provoke a real deadlock (40P01) and a real serialization failure (40001).
"""

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from core.db import atomic_with_retry, is_retryable
from core.models import LoginFailureCounter

pytestmark = pytest.mark.django_db(transaction=True)


class FakeDriverError(Exception):
    """Stands in for a psycopg error: Django re-raises it as the ``__cause__``."""

    def __init__(self, *, sqlstate: str | None = None, pgcode: str | None = None) -> None:
        super().__init__(f"driver error {sqlstate or pgcode}")
        self.sqlstate = sqlstate
        self.pgcode = pgcode


def wrapped(cause: Exception) -> OperationalError:
    try:
        raise OperationalError(str(cause)) from cause
    except OperationalError as error:
        return error


def flaky(fail_times: int, error: Callable[[], BaseException]) -> tuple[Callable[[], int], list]:
    """A function that writes a row, then fails ``fail_times`` times before succeeding."""
    calls: list[int] = []

    @atomic_with_retry(attempts=4)
    def write() -> int:
        calls.append(1)
        LoginFailureCounter.objects.create(
            key=f"side-effect-{len(calls)}", window_started_at=timezone.now()
        )
        if len(calls) <= fail_times:
            raise error()
        return len(calls)

    return write, calls


@pytest.mark.parametrize(
    "cause",
    [
        pytest.param(FakeDriverError(sqlstate="40001"), id="serialization-failure"),
        pytest.param(FakeDriverError(sqlstate="40P01"), id="deadlock"),
        pytest.param(FakeDriverError(pgcode="40P01"), id="pgcode-deadlock"),
    ],
)
def test_atomic_with_retry_retryable_error_retried_and_committed_once(cause: Exception) -> None:
    write, calls = flaky(2, lambda: wrapped(cause))
    assert write() == 3
    assert len(calls) == 3
    # The failed attempts rolled back: only the successful attempt's write is left.
    assert list(LoginFailureCounter.objects.values_list("key", flat=True)) == ["side-effect-3"]


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(lambda: OperationalError("connection refused"), id="operational-no-cause"),
        pytest.param(lambda: wrapped(FakeDriverError(sqlstate="57014")), id="query-cancelled"),
        pytest.param(lambda: wrapped(FakeDriverError(sqlstate="23505")), id="unique-violation"),
        pytest.param(lambda: IntegrityError("duplicate key"), id="integrity-error"),
        pytest.param(lambda: ValueError("bad input"), id="value-error"),
    ],
)
def test_atomic_with_retry_other_error_not_retried(error: Callable[[], BaseException]) -> None:
    write, calls = flaky(1, error)
    with pytest.raises(type(error())):
        write()
    assert len(calls) == 1
    assert not LoginFailureCounter.objects.exists()


def test_atomic_with_retry_gives_up_after_attempts() -> None:
    write, calls = flaky(99, lambda: wrapped(FakeDriverError(sqlstate="40001")))
    with pytest.raises(OperationalError):
        write()
    assert len(calls) == 4
    assert not LoginFailureCounter.objects.exists()


def test_atomic_with_retry_inside_outer_transaction_runs_once_and_propagates() -> None:
    # Retrying inside an enclosing transaction would re-run work Postgres has aborted.
    write, calls = flaky(1, lambda: wrapped(FakeDriverError(sqlstate="40P01")))
    with pytest.raises(OperationalError), transaction.atomic():
        write()
    assert len(calls) == 1


def test_atomic_with_retry_success_returns_value_and_commits() -> None:
    write, calls = flaky(0, lambda: AssertionError("never raised"))
    assert write() == 1
    assert LoginFailureCounter.objects.count() == 1
    assert not connection.in_atomic_block


def test_is_retryable_reads_sqlstate_of_cause_or_error_itself() -> None:
    assert is_retryable(wrapped(FakeDriverError(sqlstate="40001")))
    assert is_retryable(FakeDriverError(sqlstate="40P01"))
    assert not is_retryable(wrapped(FakeDriverError(sqlstate="40000")))
    assert not is_retryable(OperationalError("no cause"))


# ---------------------------------------------------------------- real PostgreSQL


def run_threads(*targets: Callable[[], Any]) -> list[BaseException]:
    errors: list[BaseException] = []

    def runner(target: Callable[[], Any]) -> None:
        try:
            target()
        except BaseException as error:  # reported to the test thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=runner, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive(), "a thread hung"
    return errors


def make_rows(*keys: str) -> list[int]:
    return [
        LoginFailureCounter.objects.create(key=key, window_started_at=timezone.now()).pk
        for key in keys
    ]


@pytest.mark.postgres
def test_atomic_with_retry_real_deadlock_both_transactions_commit_once() -> None:
    first, second = make_rows("row-a", "row-b")
    both_hold_one_lock = threading.Barrier(2, timeout=20)
    attempts = {"forward": 0, "backward": 0}

    def locker(name: str, order: tuple[int, int]) -> Callable[[], None]:
        @atomic_with_retry(attempts=5)
        def lock_both() -> None:
            attempts[name] += 1
            LoginFailureCounter.objects.select_for_update().get(pk=order[0])
            LoginFailureCounter.objects.filter(pk=order[0]).update(failures=F("failures") + 1)
            if attempts[name] == 1:
                # Each holds one row and now asks for the other's: a deadlock, every time.
                both_hold_one_lock.wait()
            LoginFailureCounter.objects.select_for_update().get(pk=order[1])
            LoginFailureCounter.objects.filter(pk=order[1]).update(failures=F("failures") + 1)

        return lock_both

    errors = run_threads(locker("forward", (first, second)), locker("backward", (second, first)))
    assert errors == []
    # PostgreSQL aborted one of them (40P01); it ran again and committed once.
    assert sorted(attempts.values()) == [1, 2]
    failures = dict(LoginFailureCounter.objects.values_list("key", "failures"))
    assert failures == {"row-a": 2, "row-b": 2}


@pytest.mark.postgres
def test_atomic_with_retry_real_serialization_failure_retried_and_committed_once() -> None:
    (row,) = make_rows("hot-row")
    both_have_snapshots = threading.Barrier(2, timeout=20)
    attempts: list[int] = []

    @atomic_with_retry(attempts=5)
    def increment() -> None:
        attempts.append(1)
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        LoginFailureCounter.objects.get(pk=row)  # takes the snapshot
        if len(attempts) <= 2:
            both_have_snapshots.wait()
        # The second writer finds the row changed since its snapshot: SQLSTATE 40001.
        LoginFailureCounter.objects.filter(pk=row).update(failures=F("failures") + 1)

    errors = run_threads(increment, increment)
    assert errors == []
    assert len(attempts) == 3
    assert LoginFailureCounter.objects.get(pk=row).failures == 2
