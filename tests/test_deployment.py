"""The deployment files agree with each other and with the settings module.

docker-compose.yml, the Dockerfile and .ci/run are read as data; nothing is built or
started here.
"""

from __future__ import annotations

import os
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from config import settings as settings_module

REPO_ROOT = Path(__file__).resolve().parent.parent
COMPOSE_PATH = REPO_ROOT / "docker-compose.yml"
APP_SERVICES = ("migrate", "web", "worker", "beat", "worker-gpu")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_PATH.read_text())
    return loaded


def _service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    service: dict[str, Any] = compose["services"][name]
    return service


def _command(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def _option(command: list[str], *names: str) -> str | None:
    for index, part in enumerate(command):
        for name in names:
            if part == name and index + 1 < len(command):
                return command[index + 1]
            if part.startswith(f"{name}="):
                return part.split("=", 1)[1]
    return None


def _queues(command: list[str]) -> set[str]:
    queues = _option(command, "-Q", "--queues")
    return set(queues.split(",")) if queues else set()


def _settings_queue_names() -> set[str]:
    return {queue.name for queue in settings.CELERY_TASK_QUEUES}


def test_compose_app_services_share_the_django_anchor_with_same_build_image_and_env(
    compose: dict[str, Any],
) -> None:
    anchor = compose["x-django"]
    raw_text = COMPOSE_PATH.read_text()
    for name in APP_SERVICES:
        service = _service(compose, name)
        for key in ("build", "image", "environment", "volumes"):
            assert service[key] == anchor[key], f"{name}.{key} differs from x-django"
        assert re.search(rf"^  {re.escape(name)}:\n    <<: \*django$", raw_text, re.MULTILINE), (
            f"{name} does not start with `<<: *django`"
        )


def test_compose_app_services_env_sets_only_variables_settings_reads(
    compose: dict[str, Any],
) -> None:
    known = set(settings_module.ENV_VARS)
    for name in APP_SERVICES:
        unknown = set(_service(compose, name)["environment"]) - known
        assert not unknown, f"{name} sets variables config.settings never reads: {unknown}"


def test_compose_app_services_env_runs_production_mode_offline(compose: dict[str, Any]) -> None:
    environment = compose["x-django"]["environment"]
    assert environment["DEBUG"] == "0"
    assert environment["HF_HUB_OFFLINE"] == "1"
    assert environment["SECRET_KEY"].startswith("${SECRET_KEY:?"), "SECRET_KEY needs no default"
    assert environment["DATABASE_URL"].startswith("postgres://")
    assert environment["CELERY_BROKER_URL"].startswith("redis://redis:")


def test_compose_app_services_wait_for_healthy_postgres_and_redis(
    compose: dict[str, Any],
) -> None:
    for backing in ("postgres", "redis"):
        assert "healthcheck" in _service(compose, backing), f"{backing} has no healthcheck"
    for name in APP_SERVICES:
        depends_on = _service(compose, name)["depends_on"]
        for backing in ("postgres", "redis"):
            assert depends_on[backing]["condition"] == "service_healthy", (name, backing)
    for name in ("web", "worker", "worker-gpu"):
        depends_on = _service(compose, name)["depends_on"]
        assert depends_on["migrate"]["condition"] == "service_completed_successfully", name


def test_compose_web_command_runs_gunicorn_with_project_wsgi(compose: dict[str, Any]) -> None:
    command = _command(_service(compose, "web"))
    assert command[0] == "gunicorn"
    assert "config.wsgi:application" in command
    assert _option(command, "--bind", "-b") == "0.0.0.0:8000"


def test_compose_migrate_command_applies_migrations(compose: dict[str, Any]) -> None:
    command = _command(_service(compose, "migrate"))
    assert command[-2:] == ["migrate", "--noinput"]


def test_compose_worker_command_consumes_default_queue(compose: dict[str, Any]) -> None:
    command = _command(_service(compose, "worker"))
    assert command[:4] == ["celery", "-A", "config", "worker"]
    assert _queues(command) == {"default"}


def test_compose_worker_gpu_command_consumes_gpu_queue_one_task_at_a_time(
    compose: dict[str, Any],
) -> None:
    command = _command(_service(compose, "worker-gpu"))
    assert command[:4] == ["celery", "-A", "config", "worker"]
    assert _queues(command) == {"gpu"}
    assert _option(command, "--concurrency", "-c") == "1"


def test_compose_worker_gpu_reserves_an_nvidia_gpu(compose: dict[str, Any]) -> None:
    devices = _service(compose, "worker-gpu")["deploy"]["resources"]["reservations"]["devices"]
    assert any(
        device["driver"] == "nvidia" and "gpu" in device["capabilities"] for device in devices
    )


def test_compose_queues_equal_settings_task_queues(compose: dict[str, Any]) -> None:
    consumed: set[str] = set()
    for name in ("worker", "worker-gpu"):
        consumed |= _queues(_command(_service(compose, name)))
    assert consumed == _settings_queue_names()
    assert settings.CELERY_TASK_DEFAULT_QUEUE in consumed


def test_dockerfile_image_runs_gunicorn_as_non_root_on_port_8000() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    instructions = [
        line.split(maxsplit=1)
        for line in dockerfile.splitlines()
        if line.strip() and not line.startswith("#")
    ]
    by_keyword: dict[str, list[str]] = {}
    for parts in instructions:
        if parts[0].isupper() and len(parts) == 2:
            by_keyword.setdefault(parts[0], []).append(parts[1])
    assert by_keyword["FROM"][0].startswith("python:3.11-slim")
    assert by_keyword["USER"][-1] not in {"root", "0"}
    assert "8000" in by_keyword["EXPOSE"]
    assert "config.wsgi:application" in by_keyword["CMD"][-1]
    assert any("collectstatic" in run for run in by_keyword["RUN"])


def test_ci_run_script_is_executable_and_runs_make_test() -> None:
    ci_run = REPO_ROOT / ".ci" / "run"
    text = ci_run.read_text()
    assert os.access(ci_run, os.X_OK)
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert re.search(r"^exec make test$", text, re.MULTILINE)


def test_makefile_test_target_runs_checks_and_both_database_runs() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    match = re.search(r"^test:(.*?)##", makefile, re.MULTILINE)
    assert match, "Makefile has no `test` target"
    prerequisites = match.group(1).split()
    for step in ("lint", "typecheck", "importlint", "migrations-check"):
        assert step in prerequisites
    assert prerequisites[-2:] == ["test-sqlite", "test-postgres"]


def _locked(path: Path) -> dict[str, str]:
    """name -> pinned version of a pip-compile lock, each entry with at least one hash."""
    text = path.read_text().replace("\\\n", " ")
    pins: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        requirement, *options = line.split()
        assert any(option.startswith("--hash=sha256:") for option in options), requirement
        name, version = requirement.split("==")
        pins[canonicalize_name(name)] = version
    return pins


def _declared(requirements: list[str]) -> dict[str, SpecifierSet]:
    declared: dict[str, SpecifierSet] = {}
    for raw in requirements:
        requirement = Requirement(raw)
        declared[canonicalize_name(requirement.name)] = requirement.specifier
    return declared


def test_lock_files_pin_every_declared_dependency_within_its_range() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    runtime = _declared(project["dependencies"])
    dev = _declared(project["optional-dependencies"]["dev"])
    base_lock = _locked(REPO_ROOT / "requirements" / "base.lock.txt")
    dev_lock = _locked(REPO_ROOT / "requirements" / "dev.lock.txt")

    for name, specifier in runtime.items():
        assert specifier.contains(base_lock[name], prereleases=True), (name, base_lock[name])
        assert dev_lock[name] == base_lock[name], name
    for name, specifier in dev.items():
        assert specifier.contains(dev_lock[name], prereleases=True), (name, dev_lock[name])


def test_installs_use_the_locks_with_hash_checking() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()

    assert re.search(r"pip install --require-hashes --no-deps -r \$\(LOCK\)", makefile)
    assert "LOCK := requirements/dev.lock.txt" in makefile
    assert "pip install --require-hashes --no-deps -r requirements/base.lock.txt" in dockerfile
