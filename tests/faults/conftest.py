"""Fixtures of the fault suite (``make test-faults``): a whole Chorus on PostgreSQL and
Redis from scripts/test-services.sh, with gunicorn, Celery beat and workers that the
tests kill and restart. Everything runs on the test database, with short job leases so
that a dead worker's job is taken over within seconds.
"""

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.faults import stack

ARTIFACTS = stack.REPO_ROOT / "artifacts" / "faults"

# Short leases and sweeps: a dead worker's job is taken over within a few seconds.
JOB_TIMINGS = {
    "CHORUS_JOB_LEASE_SECONDS": "3",
    "CHORUS_JOB_HEARTBEAT_SECONDS": "0.5",
    "CHORUS_JOB_SWEEP_SECONDS": "1",
    "CHORUS_JOB_DISPATCH_GRACE_SECONDS": "2",
}


def faults_enabled() -> bool:
    return os.environ.get("CHORUS_FAULTS") == "1" and bool(os.environ.get("CHORUS_PG_BIN"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(
        reason="the fault suite runs alone: make test-faults (CHORUS_FAULTS=1 under "
        "scripts/test-services.sh), since it kills and restarts the services"
    )
    for item in items:
        if "tests/faults/" in str(item.fspath):
            item.add_marker(pytest.mark.faults)
            if not faults_enabled():
                item.add_marker(skip)


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True, check=False).returncode == 0


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The media folder every process shares: its own tmpfs where this machine lets us
    mount one (as root), so that a test can make it read-only or full under the running
    processes; a plain folder otherwise (those tests are then skipped)."""
    path = tmp_path_factory.mktemp("fault-media")
    mounted = os.geteuid() == 0 and _mount("-t", "tmpfs", "-o", "size=256m", "tmpfs", str(path))
    yield path
    if mounted:
        subprocess.run(["umount", "-l", str(path)], check=False)


def media_is_mount(path: Path) -> bool:
    return os.path.ismount(path)


def media_remount(path: Path, options: str) -> None:
    """``mount -o remount,OPTIONS``: e.g. ``ro``, ``rw``, ``size=...``."""
    assert _mount("-o", f"remount,{options}", str(path)), f"could not remount {path} {options}"


@pytest.fixture(autouse=True)
def _shared_media(settings, media_dir: Path) -> None:
    """This process stores and reads media where the web and worker processes do."""
    settings.MEDIA_ROOT = media_dir


@pytest.fixture(scope="session")
def fault_env(django_db_setup: None, media_dir: Path) -> dict[str, str]:
    """The environment of every process the suite starts: the test database (created by
    pytest-django), the shared media folder and the short job timings."""
    from django.db import connections

    name = connections["default"].settings_dict["NAME"]
    url = urlsplit(os.environ["DATABASE_URL"])
    return {
        **os.environ,
        "DATABASE_URL": urlunsplit(url._replace(path=f"/{name}")),
        "MEDIA_ROOT": str(media_dir),
        # Beside the media folder, not in it: the media tests fill and remount it.
        "CHORUS_EMBEDDING_CACHE_DIR": f"{media_dir}-embeddings",
        "CONN_MAX_AGE": "60",
        **JOB_TIMINGS,
    }


@pytest.fixture(scope="session")
def services() -> stack.Services:
    return stack.Services.from_environment()


@pytest.fixture(autouse=True)
def _services_restored(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that fails half-way must not leave Redis stopped for the next one."""
    if not faults_enabled():
        yield
        return
    services: stack.Services = request.getfixturevalue("services")
    yield
    try:
        services.redis_pid()
    except Exception:  # noqa: BLE001 - any failure to answer: start it again
        for process in services.restarted:
            if process.poll() is None:
                services.redis_resume(process.pid)
        try:
            services.redis_pid()
        except Exception:  # noqa: BLE001
            services.redis_start()


@pytest.fixture(scope="session")
def web(fault_env: dict[str, str]) -> Iterator[str]:
    """gunicorn with two sync workers, as the deployment runs it; yields its base URL."""
    port = stack.free_port()
    process = stack.gunicorn(fault_env, ARTIFACTS, port)
    yield f"http://127.0.0.1:{port}"
    process.stop()


@pytest.fixture(scope="session")
def beat(fault_env: dict[str, str]) -> Iterator[stack.Process]:
    """Celery beat: sends the job sweep every second (and the other schedules)."""
    process = stack.beat(fault_env, ARTIFACTS)
    yield process
    process.stop()


@pytest.fixture
def start_worker(fault_env: dict[str, str]) -> Iterator[object]:
    """Start Celery workers for this test; every one is stopped afterwards."""
    started: list[stack.Process] = []

    def start(name: str = "worker", *, concurrency: int = 1) -> stack.Process:
        process = stack.worker(
            fault_env, ARTIFACTS, f"{name}-{len(started)}", concurrency=concurrency
        )
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
