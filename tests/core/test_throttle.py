"""Login throttling: an atomic failure counter per key and window (SECURITY_CHECKLIST row 3)."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from core.errors import TooManyRequests
from core.models import LoginFailureCounter
from core.services import login_failure_record, login_success_record, login_throttle_check

MAX_FAILURES = 3
WINDOW_SECONDS = 600


@pytest.fixture(autouse=True)
def _policy(settings) -> None:
    settings.CHORUS_LOGIN_MAX_FAILURES = MAX_FAILURES
    settings.CHORUS_LOGIN_WINDOW_SECONDS = WINDOW_SECONDS


def failures(key: str) -> int:
    return LoginFailureCounter.objects.get(key=key).failures


@pytest.mark.django_db
def test_login_failure_record_increments_per_key() -> None:
    login_failure_record(keys=["user:alice", "ip:10.0.0.1"])
    login_failure_record(keys=["user:alice"])
    assert failures("user:alice") == 2
    assert failures("ip:10.0.0.1") == 1


@pytest.mark.django_db
def test_login_throttle_check_below_limit_allows() -> None:
    for _ in range(MAX_FAILURES - 1):
        login_failure_record(keys=["user:alice"])
    login_throttle_check(keys=["user:alice"])


@pytest.mark.django_db
def test_login_throttle_check_at_limit_raises_too_many_requests() -> None:
    for _ in range(MAX_FAILURES):
        login_failure_record(keys=["user:alice"])
    with pytest.raises(TooManyRequests) as caught:
        login_throttle_check(keys=["user:alice"])
    assert caught.value.code == "login_throttled"
    assert caught.value.status_code == 429
    assert caught.value.extra == {"retry_after_seconds": WINDOW_SECONDS}
    # Any blocked key blocks the attempt; unrelated keys are not affected.
    with pytest.raises(TooManyRequests):
        login_throttle_check(keys=["ip:10.0.0.9", "user:alice"])
    login_throttle_check(keys=["user:bob"])


@pytest.mark.django_db
def test_login_throttle_check_window_expired_allows_and_counter_restarts() -> None:
    for _ in range(MAX_FAILURES):
        login_failure_record(keys=["user:alice"])
    LoginFailureCounter.objects.filter(key="user:alice").update(
        window_started_at=timezone.now() - timedelta(seconds=WINDOW_SECONDS + 1)
    )
    login_throttle_check(keys=["user:alice"])
    login_failure_record(keys=["user:alice"])
    counter = LoginFailureCounter.objects.get(key="user:alice")
    assert counter.failures == 1
    assert timezone.now() - counter.window_started_at < timedelta(seconds=60)


@pytest.mark.django_db
def test_login_success_record_clears_failures() -> None:
    for _ in range(MAX_FAILURES):
        login_failure_record(keys=["user:alice"])
    login_success_record(keys=["user:alice"])
    login_throttle_check(keys=["user:alice"])
    assert not LoginFailureCounter.objects.filter(key="user:alice").exists()


def fail_concurrently(threads_n: int, *, key: str) -> list[BaseException]:
    """Record one failure for ``key`` from each of ``threads_n`` threads started together."""
    start = threading.Barrier(threads_n, timeout=30)
    errors: list[BaseException] = []

    def fail_once() -> None:
        try:
            start.wait()
            login_failure_record(keys=[key])
        except BaseException as error:  # reported to the test thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=fail_once) for _ in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("existing", [False, True], ids=["first-failures", "running-window"])
def test_login_failure_record_concurrent_failures_all_counted(existing: bool) -> None:
    threads_n = 24
    if existing:
        login_failure_record(keys=["user:target"])
    assert fail_concurrently(threads_n, key="user:target") == []
    assert failures("user:target") == threads_n + int(existing)
    with pytest.raises(TooManyRequests):
        login_throttle_check(keys=["user:target"])


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_login_failure_record_concurrent_restart_of_expired_window_counts_all() -> None:
    threads_n = 16
    login_failure_record(keys=["user:target"])
    LoginFailureCounter.objects.filter(key="user:target").update(
        failures=MAX_FAILURES, window_started_at=timezone.now() - timedelta(days=1)
    )
    assert fail_concurrently(threads_n, key="user:target") == []
    assert failures("user:target") == threads_n
