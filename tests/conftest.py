"""Suite-wide test infrastructure: marker skips, a real Celery worker, headless Chromium.

``make test`` runs pytest twice. The first run uses the embedded defaults (SQLite, tasks in
process). The second runs inside ``scripts/test-services.sh`` against a throwaway
PostgreSQL and Redis with ``CHORUS_CELERY_WORKER=1``; tests that need the real worker take
the ``celery_worker_process`` fixture (or carry the ``celery_worker`` marker) and use
``@pytest.mark.django_db(transaction=True)`` so the worker sees their committed rows.

Markers skip themselves where their service is absent:
  postgres       unless the database vendor is PostgreSQL
  celery_worker  unless CELERY_BROKER_URL and CHORUS_CELERY_WORKER=1 are set on PostgreSQL
  browser        unless /usr/bin/chromium exists
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser

REPO_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS_DIR = REPO_ROOT / "artifacts"
CHROMIUM_PATH = Path("/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
WORKER_QUEUES = "default,gpu"
WORKER_STARTUP_TIMEOUT_S = 60.0
WORKER_SHUTDOWN_TIMEOUT_S = 30.0


def _broker_configured() -> bool:
    return bool(os.environ.get("CELERY_BROKER_URL"))


def _database_is_postgres() -> bool:
    from django.conf import settings

    return "postgresql" in settings.DATABASES["default"]["ENGINE"]


def _worker_available() -> bool:
    # A worker is a second process: it cannot open pytest-django's in-memory SQLite.
    return (
        _broker_configured()
        and os.environ.get("CHORUS_CELERY_WORKER") == "1"
        and _database_is_postgres()
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skips = {
        "postgres": None
        if _database_is_postgres()
        else pytest.mark.skip(reason="needs PostgreSQL: DATABASE_URL is not postgres://"),
        "celery_worker": None
        if _worker_available()
        else pytest.mark.skip(
            reason="needs a Celery worker: PostgreSQL DATABASE_URL, CELERY_BROKER_URL and "
            "CHORUS_CELERY_WORKER=1 (the second run of `make test` sets them)"
        ),
        "browser": None
        if CHROMIUM_PATH.exists()
        else pytest.mark.skip(reason=f"needs Chromium at {CHROMIUM_PATH}"),
    }
    for item in items:
        for marker_name, skip in skips.items():
            if skip is not None and item.get_closest_marker(marker_name) is not None:
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def _celery_task_execution_mode(request: pytest.FixtureRequest) -> Iterator[None]:
    """Run tasks in process unless the test uses the real worker.

    With a broker configured, settings send tasks to Redis. Only the tests that use the
    worker have a consumer for them; every other test keeps the in-process execution it
    was written for, which is what lets the whole suite run on PostgreSQL too.
    """
    if not _broker_configured():
        yield
        return
    from config.celery import app

    uses_worker = request.node.get_closest_marker("celery_worker") is not None
    if uses_worker:
        request.getfixturevalue("celery_worker_process")
    uses_worker = uses_worker or "celery_worker_process" in request.fixturenames
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = not uses_worker
    try:
        yield
    finally:
        app.conf.task_always_eager = previous


def _database_url_for(database_name: str) -> str:
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path=f"/{database_name}"))


def _log_tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _stop_worker(process: subprocess.Popen[bytes]) -> None:
    # SIGTERM is Celery's warm shutdown: a running task finishes first.
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=WORKER_SHUTDOWN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    # Pool children left behind would hold connections and block dropping the test DB.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup: None) -> Iterator[subprocess.Popen[bytes]]:
    """A real ``celery worker`` on queues default and gpu, connected to the test database.

    Starts after pytest-django has created and migrated the test database, and stops
    before that database is dropped (this fixture depends on ``django_db_setup``).
    """
    if not _worker_available():
        pytest.skip("needs CELERY_BROKER_URL, CHORUS_CELERY_WORKER=1 and PostgreSQL")
    from django.db import connections

    from config.celery import app

    test_database_name = connections["default"].settings_dict["NAME"]
    hostname = f"chorus-test-{os.getpid()}@{socket.gethostname()}"
    env = {**os.environ, "DATABASE_URL": _database_url_for(test_database_name)}
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    log_path = ARTIFACTS_DIR / "celery-worker.log"
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "-Q",
        WORKER_QUEUES,
        "--concurrency",
        "2",
        "-P",
        "prefork",
        "--loglevel",
        "INFO",
        "--hostname",
        hostname,
        # Alone on a private broker: no peers to sync with, which saves seconds at start.
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + WORKER_STARTUP_TIMEOUT_S
        while not app.control.ping(destination=[hostname], timeout=1.0):
            if process.poll() is not None:
                pytest.fail(
                    f"Celery worker exited with {process.returncode}:\n{_log_tail(log_path)}"
                )
            if time.monotonic() > deadline:
                pytest.fail(
                    f"Celery worker did not answer ping within {WORKER_STARTUP_TIMEOUT_S:.0f} s:"
                    f"\n{_log_tail(log_path)}"
                )
        yield process
    finally:
        _stop_worker(process)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests leave files for people to look at (screenshots, logs); git-ignored."""
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    return ARTIFACTS_DIR


@pytest.fixture(scope="session")
def chromium_browser() -> Iterator[Browser]:
    """Headless Debian Chromium driven by Playwright; no browser download involved."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop running in this thread, which makes
    # Django's ORM refuse to run here (SynchronousOnlyOperation) although nothing is async.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM_PATH), headless=True, args=list(CHROMIUM_ARGS)
            )
            try:
                yield browser
            finally:
                browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """The default hasher costs ~0.3 s a user on these cores; tests check no hash strength."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def client_for() -> Callable[[Any], Any]:
    """``client_for(user)``: an API client authenticated as ``user`` (anonymous for ``None``)."""
    from rest_framework.test import APIClient

    def build(user: Any) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return build


@pytest.fixture
def signed_in() -> Callable[..., Any]:
    """``signed_in(user, **client_kwargs)``: a page client with ``user`` signed in."""
    from django.test import Client

    def build(user: Any, **client_kwargs: Any) -> Client:
        client = Client(**client_kwargs)
        client.force_login(user)
        return client

    return build
