"""Rate limits: an atomic counter per key and window (``core.services.rate_limit_hit``).

Sign-in failures are django-axes' (tests/core/test_login.py, test_lockout.py); this
counter serves anonymous forms such as takedown filing.
"""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from core.errors import TooManyRequests
from core.models import LoginFailureCounter
from core.services import rate_limit_hit

LIMIT = 3
WINDOW_SECONDS = 600


def hit(key: str, limit: int = LIMIT) -> None:
    rate_limit_hit(key=key, limit=limit, window_seconds=WINDOW_SECONDS)


def count(key: str) -> int:
    return LoginFailureCounter.objects.get(key=key).failures


@pytest.mark.django_db
def test_rate_limit_hit_counts_per_key() -> None:
    hit("form:10.0.0.1")
    hit("form:10.0.0.1")
    hit("form:10.0.0.2")
    assert count("form:10.0.0.1") == 2
    assert count("form:10.0.0.2") == 1


@pytest.mark.django_db
def test_rate_limit_hit_at_limit_raises_too_many_requests_for_that_key_only() -> None:
    for _ in range(LIMIT):
        hit("form:10.0.0.1")
    with pytest.raises(TooManyRequests) as caught:
        hit("form:10.0.0.1")
    assert caught.value.code == "rate_limited"
    assert caught.value.status_code == 429
    assert caught.value.extra == {"retry_after_seconds": WINDOW_SECONDS}
    hit("form:10.0.0.9")


@pytest.mark.django_db
def test_rate_limit_hit_window_expired_allows_and_counter_restarts() -> None:
    for _ in range(LIMIT):
        hit("form:10.0.0.1")
    LoginFailureCounter.objects.filter(key="form:10.0.0.1").update(
        window_started_at=timezone.now() - timedelta(seconds=WINDOW_SECONDS + 1)
    )
    hit("form:10.0.0.1")
    counter = LoginFailureCounter.objects.get(key="form:10.0.0.1")
    assert counter.failures == 1
    assert timezone.now() - counter.window_started_at < timedelta(seconds=60)


def hit_concurrently(threads_n: int, *, key: str) -> list[BaseException]:
    """Count one request for ``key`` from each of ``threads_n`` threads started together."""
    start = threading.Barrier(threads_n, timeout=30)
    errors: list[BaseException] = []

    def hit_once() -> None:
        try:
            start.wait()
            hit(key, limit=10_000)
        except BaseException as error:  # reported to the test thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=hit_once) for _ in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("existing", [False, True], ids=["first-hits", "running-window"])
def test_rate_limit_hit_concurrent_hits_all_counted(existing: bool) -> None:
    threads_n = 24
    if existing:
        hit("form:target")
    assert hit_concurrently(threads_n, key="form:target") == []
    assert count("form:target") == threads_n + int(existing)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_rate_limit_hit_concurrent_restart_of_expired_window_counts_all() -> None:
    threads_n = 16
    hit("form:target")
    LoginFailureCounter.objects.filter(key="form:target").update(
        failures=LIMIT, window_started_at=timezone.now() - timedelta(days=1)
    )
    assert hit_concurrently(threads_n, key="form:target") == []
    assert count("form:target") == threads_n
