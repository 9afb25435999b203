"""The deployment files agree with each other and with the settings module.

docker-compose.yml, the Dockerfile and .ci/run are read as data; nothing is built or
started from them. Where an nginx binary is installed, deploy/nginx/chorus.conf is also
checked by nginx and run in front of gunicorn (tests marked ``integration``).
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings
from django.urls import URLResolver, get_resolver
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from config import settings as settings_module
from core.middleware import body_limit_setting

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


def test_redis_keeps_an_append_only_file_wherever_chorus_starts_it(compose: dict[str, Any]) -> None:
    """Queued messages survive a kill -9 of Redis only with AOF persistence (issue 11)."""
    command = compose["services"]["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    test_services = (REPO_ROOT / "scripts" / "test-services.sh").read_text()
    assert "--appendonly yes" in test_services and "--appendonly no" not in test_services


def test_beat_schedules_the_job_sweeper(settings: Any) -> None:
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "core.jobs_sweep" in tasks
    sweep = next(
        e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "core.jobs_sweep"
    )
    assert sweep["schedule"] == settings.CHORUS_JOB_SWEEP_SECONDS
    # A dead worker's job is found within a lease and a sweep.
    assert settings.CHORUS_JOB_HEARTBEAT_SECONDS < settings.CHORUS_JOB_LEASE_SECONDS / 2


def test_makefile_test_target_runs_checks_both_database_runs_and_the_fault_suite() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    match = re.search(r"^test:(.*?)##", makefile, re.MULTILINE)
    assert match, "Makefile has no `test` target"
    prerequisites = match.group(1).split()
    for step in ("lint", "typecheck", "importlint", "migrations-check"):
        assert step in prerequisites
    assert prerequisites[-3:] == ["test-sqlite", "test-postgres", "test-faults"]
    # The PostgreSQL run leaves the fault suite to its own services.
    assert re.search(r"^PG_MARKEXPR \?= .*not faults", makefile, re.MULTILINE)


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
    dockerfile = " ".join((REPO_ROOT / "Dockerfile").read_text().replace("\\\n", " ").split())

    assert re.search(r"pip install --require-hashes --no-deps -r \$\(LOCK\)", makefile)
    assert "LOCK := requirements/dev.lock.txt" in makefile
    # PyTorch's own index serves the locked CPU build of torch; the hashes still decide.
    assert re.search(
        r"pip install --require-hashes --no-deps "
        r"(--extra-index-url https://download\.pytorch\.org/whl/cpu )?"
        r"-r requirements/base\.lock\.txt",
        dockerfile,
    )


# nginx in front of gunicorn (issue 11): docker-compose.yml and deploy/nginx/chorus.conf
# agree with each other, with the settings and with the routes; with an nginx binary, the
# config is checked by nginx and run in front of gunicorn (the compose flags) with slow
# clients, the image view's answer and oversized bodies.

NGINX_CONF_PATH = REPO_ROOT / "deploy" / "nginx" / "chorus.conf"
NGINX_CONF_TARGET = "/etc/nginx/conf.d/default.conf"
# Headers of the image view's answer that nginx may leave out of the file it sends: the
# redirect itself, a length that is the file's now, and negotiation details of an answer
# nothing caches (no-store).
ACCEL_DROPPED_HEADERS = {"x-accel-redirect", "content-length", "vary", "allow"}


@dataclass
class NginxDirective:
    name: str
    args: list[str]
    block: list[NginxDirective] | None = None


_NGINX_TOKEN = re.compile(r"""#[^\n]*|'([^']*)'|"([^"]*)"|([;{}])|([^\s;{}'"]+)""")


def _nginx_parse(text: str) -> list[NginxDirective]:
    """nginx's configuration syntax: directives end in ``;`` or open a ``{}`` block."""
    root: list[NginxDirective] = []
    stack = [root]
    words: list[str] = []
    for match in _NGINX_TOKEN.finditer(text):
        single, double, punctuation, word = match.groups()
        if punctuation == ";":
            stack[-1].append(NginxDirective(words[0], words[1:]))
            words = []
        elif punctuation == "{":
            block: list[NginxDirective] = []
            stack[-1].append(NginxDirective(words[0], words[1:], block))
            stack.append(block)
            words = []
        elif punctuation == "}":
            stack.pop()
        elif word is not None or single is not None or double is not None:
            words.append(next(part for part in (single, double, word) if part is not None))
    assert len(stack) == 1 and not words, "unbalanced nginx configuration"
    return root


@pytest.fixture(scope="module")
def nginx_conf() -> list[NginxDirective]:
    return _nginx_parse(NGINX_CONF_PATH.read_text())


def _children(block: list[NginxDirective], name: str) -> list[NginxDirective]:
    return [directive for directive in block if directive.name == name]


def _one(block: list[NginxDirective], name: str) -> list[str]:
    found = _children(block, name)
    assert len(found) == 1, f"expected one `{name}`, found {len(found)}"
    return found[0].args


def _server(conf: list[NginxDirective]) -> list[NginxDirective]:
    (server,) = _children(conf, "server")
    assert server.block is not None
    return server.block


def _location(conf: list[NginxDirective], *args: str) -> list[NginxDirective]:
    for location in _children(_server(conf), "location"):
        if tuple(location.args) == args and location.block is not None:
            return location.block
    raise AssertionError(f"no `location {' '.join(args)}` in {NGINX_CONF_PATH.name}")


def _proxied_locations(conf: list[NginxDirective]) -> list[NginxDirective]:
    return [
        location
        for location in _children(_server(conf), "location")
        if location.block is not None and _children(location.block, "proxy_pass")
    ]


def _seconds(value: str) -> int:
    match = re.fullmatch(r"(\d+)(s?)", value)
    assert match, f"{value!r}: write nginx times in seconds"
    return int(match.group(1))


def _bytes(value: str) -> int:
    units = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
    match = re.fullmatch(r"(\d+)([kmg]?)", value.lower())
    assert match, value
    return int(match.group(1)) * units[match.group(2)]


def _proxy_headers(conf: list[NginxDirective]) -> dict[str, str]:
    return {
        directive.args[0].lower(): directive.args[1]
        for directive in _children(_server(conf), "proxy_set_header")
    }


def _mounts(service: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """target -> (source, mode) of a service's short-syntax volumes."""
    mounts: dict[str, tuple[str, str]] = {}
    for volume in service.get("volumes", []):
        source, target, *mode = volume.split(":")
        mounts[target] = (source, mode[0] if mode else "rw")
    return mounts


def _web_port(compose: dict[str, Any]) -> str:
    bind = _option(_command(_service(compose, "web")), "--bind", "-b")
    assert bind is not None
    return bind.rsplit(":", 1)[1]


def _nginx_target(compose: dict[str, Any], source: str) -> str:
    """Where nginx mounts the volume ``source``."""
    targets = [
        target
        for target, (mounted, _) in _mounts(_service(compose, "nginx")).items()
        if mounted == source
    ]
    assert len(targets) == 1, f"nginx mounts {source} {len(targets)} times"
    return targets[0]


def _dockerfile_env() -> dict[str, str]:
    text = (REPO_ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for assignment in line.split()[1:]:
                name, _, value = assignment.partition("=")
                env[name] = value
    return env


def _sample_path(route: str) -> str:
    """A request path for a Django route pattern: each converter takes a sample value."""
    return "/" + re.sub(r"<(?:int:|slug:|str:|path:)?\w+>", "1", route)


def _routes() -> list[tuple[str, str]]:
    """(sample path, body limit setting) of every route Django resolves."""
    found: list[tuple[str, str]] = []

    def walk(resolver: URLResolver, prefix: str) -> None:
        for pattern in resolver.url_patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern, prefix + str(pattern.pattern))
            elif "(?P" not in str(pattern.pattern):  # re_path routes have no sample path
                found.append(
                    (
                        _sample_path(prefix + str(pattern.pattern)),
                        body_limit_setting(pattern.callback),
                    )
                )

    walk(get_resolver(), "")
    return found


def _location_for(conf: list[NginxDirective], path: str) -> list[NginxDirective]:
    """The proxied location nginx picks for ``path``: a matching regex one, else `/`."""
    for location in _proxied_locations(conf):
        if location.args[0] == "~" and re.search(location.args[1], path):
            assert location.block is not None
            return location.block
    return _location(conf, "/")


def test_compose_nginx_is_the_only_service_publishing_a_port(
    compose: dict[str, Any], nginx_conf: list[NginxDirective]
) -> None:
    published = {name for name, service in compose["services"].items() if service.get("ports")}
    assert published == {"nginx"}
    (port,) = _service(compose, "nginx")["ports"]
    assert port.rsplit(":", 1)[1] == _one(_server(nginx_conf), "listen")[0]


def test_compose_web_exposes_gunicorn_port_to_nginx_upstream(
    compose: dict[str, Any], nginx_conf: list[NginxDirective]
) -> None:
    web = _service(compose, "web")
    port = _web_port(compose)
    assert "ports" not in web
    assert [str(exposed) for exposed in web["expose"]] == [port]
    (upstream,) = _children(nginx_conf, "upstream")
    assert upstream.block is not None
    assert _one(upstream.block, "server") == [f"web:{port}"]
    for location in _proxied_locations(nginx_conf):
        assert location.block is not None
        assert _one(location.block, "proxy_pass") == [f"http://{upstream.args[0]}"]


def test_compose_nginx_mounts_config_static_and_media_read_only(
    compose: dict[str, Any], nginx_conf: list[NginxDirective]
) -> None:
    nginx = _service(compose, "nginx")
    mounts = _mounts(nginx)
    assert nginx["image"].startswith("nginx:")
    assert mounts[NGINX_CONF_TARGET] == ("./deploy/nginx/chorus.conf", "ro")
    assert all(mode == "ro" for _, mode in mounts.values()), mounts

    media_root = compose["x-django"]["environment"]["MEDIA_ROOT"]
    (media_volume,) = [
        source
        for target, (source, _) in _mounts(compose["x-django"]).items()
        if target == media_root
    ]
    prefix = compose["x-django"]["environment"]["CHORUS_MEDIA_ACCEL_REDIRECT_PREFIX"]
    media = _location(nginx_conf, "^~", prefix)
    assert _children(media, "internal"), "media must not be reachable by its URL"
    assert _one(media, "alias") == [_nginx_target(compose, media_volume) + "/"]
    assert _nginx_target(compose, media_volume) == media_root

    static = _location(nginx_conf, "^~", "/" + settings.STATIC_URL.strip("/") + "/")
    assert _one(static, "alias") == [_nginx_target(compose, "static") + "/"]


def test_compose_static_service_copies_image_collected_files_into_nginx_volume(
    compose: dict[str, Any],
) -> None:
    static = _service(compose, "static")
    command = _command(static)
    collected = _dockerfile_env()["STATIC_ROOT"]
    (volume_target,) = [
        target for target, (source, _) in _mounts(static).items() if source == "static"
    ]
    assert command[:2] == ["sh", "-c"]
    assert command[2] == f"cp -R {collected}/. {volume_target}/"
    assert volume_target == _nginx_target(compose, "static")
    assert static["restart"] == "no"
    depends_on = _service(compose, "nginx")["depends_on"]
    assert depends_on["static"]["condition"] == "service_completed_successfully"
    assert depends_on["web"]["condition"] == "service_started"


def test_compose_web_gunicorn_flags_bound_requests_below_nginx_read_timeout(
    compose: dict[str, Any], nginx_conf: list[NginxDirective]
) -> None:
    command = _command(_service(compose, "web"))
    timeout = _option(command, "--timeout", "-t")
    assert _option(command, "--workers", "-w") == "${WEB_CONCURRENCY:-3}"
    assert timeout is not None and _option(command, "--graceful-timeout") is not None
    assert _option(command, "--access-logfile") == "-"
    assert int(timeout) < _seconds(_one(_server(nginx_conf), "proxy_read_timeout")[0])
    # Django alone decides from X-Forwarded-Proto whether a request is https.
    assert _option(command, "--forwarded-allow-ips") is None


def test_compose_media_accel_prefix_is_a_variable_settings_reads(compose: dict[str, Any]) -> None:
    prefix = compose["x-django"]["environment"]["CHORUS_MEDIA_ACCEL_REDIRECT_PREFIX"]
    assert "CHORUS_MEDIA_ACCEL_REDIRECT_PREFIX" in settings_module.ENV_VARS
    assert prefix.startswith("/") and prefix.endswith("/")


def test_compose_trusts_one_proxy_nginx_which_sets_forwarded_for_to_the_client(
    compose: dict[str, Any], nginx_conf: list[NginxDirective]
) -> None:
    # nginx replaces X-Forwarded-For with the one address it saw: exactly one trusted hop.
    assert "CHORUS_TRUSTED_PROXY_COUNT" in settings_module.ENV_VARS
    assert compose["x-django"]["environment"]["CHORUS_TRUSTED_PROXY_COUNT"] == "1"
    assert _proxy_headers(nginx_conf)["x-forwarded-for"] == "$remote_addr"


def test_nginx_conf_buffers_whole_requests_and_answers_and_cuts_slow_clients_off(
    nginx_conf: list[NginxDirective],
) -> None:
    server = _server(nginx_conf)
    assert _one(server, "proxy_request_buffering") == ["on"]
    assert _one(server, "proxy_buffering") == ["on"]
    for name in (
        "client_header_timeout",
        "client_body_timeout",
        "send_timeout",
        "keepalive_timeout",
    ):
        assert _seconds(_one(server, name)[0]) <= 15, name
    assert _one(server, "server_tokens") == ["off"]
    assert _one(server, "gzip") == ["on"]
    zone = _one(nginx_conf, "limit_conn_zone")
    assert zone[0] == "$binary_remote_addr"
    assert _one(server, "limit_conn")[0] == zone[1].removeprefix("zone=").split(":")[0]


def test_nginx_conf_forwards_host_and_client_address_it_saw(
    nginx_conf: list[NginxDirective],
) -> None:
    headers = _proxy_headers(nginx_conf)
    assert headers["host"] == "$http_host"
    assert headers["x-forwarded-for"] == "$remote_addr"
    assert headers["x-real-ip"] == "$remote_addr"
    assert headers["x-forwarded-proto"] == "$scheme"
    for location in _proxied_locations(nginx_conf):
        assert location.block is not None
        assert not _children(location.block, "proxy_set_header"), "would drop the server's"


def test_nginx_conf_body_limit_of_each_route_equals_django_limit(
    nginx_conf: list[NginxDirective],
) -> None:
    routes = _routes()
    server_limit = _bytes(_one(_server(nginx_conf), "client_max_body_size")[0])
    assert {setting for _, setting in routes} == {
        "CHORUS_MAX_REQUEST_BYTES",
        "CHORUS_MAX_UPLOAD_BYTES",
    }
    for path, setting in routes:
        location = _location_for(nginx_conf, path)
        limits = _children(location, "client_max_body_size")
        limit = _bytes(limits[0].args[0]) if limits else server_limit
        assert limit == getattr(settings, setting), (path, setting)


def test_nginx_conf_refusals_use_api_error_shape_with_body_limit(
    nginx_conf: list[NginxDirective],
) -> None:
    # nginx's own refusal -> the status it answers with (an unreachable upstream: 503).
    answered = {("413",): "413", ("429",): "429", ("502", "503", "504"): "503"}
    server_limit = _bytes(_one(_server(nginx_conf), "client_max_body_size")[0])
    for location in _proxied_locations(nginx_conf):
        assert location.block is not None
        pages = {
            tuple(page.args[:-1]): page.args[-1] for page in _children(location.block, "error_page")
        }
        limits = _children(location.block, "client_max_body_size")
        limit = _bytes(limits[0].args[0]) if limits else server_limit
        assert set(pages) == set(answered), location.args
        for statuses, named in pages.items():
            refusal = _location(nginx_conf, named)
            status, body = _children(refusal, "return")[-1].args
            error = json.loads(body)
            assert status == answered[statuses]
            assert set(error) == {"code", "message", "extra"}
            if status == "413":
                assert error == {
                    "code": "too_large",
                    "message": "The request body is too large.",
                    "extra": {"max_bytes": limit},
                }


def _nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(path, os.X_OK)),
        None,
    )
    if found is None:
        pytest.skip(
            "nginx is not installed (apt-get install nginx; scripts/ensure-system-deps.sh "
            "installs it for make test)"
        )
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class LocalNginx:
    """deploy/nginx/chorus.conf made runnable here: upstream, port and folders replaced."""

    root: Path
    port: int
    upstream_port: int
    static_dir: Path
    media_dir: Path
    replay_dir: Path

    @property
    def main_conf(self) -> Path:
        return self.root / "nginx.conf"


def _local_nginx(root: Path, binary: str, compose: dict[str, Any]) -> LocalNginx:
    """Writes the runnable copy. Each replaced line must be in chorus.conf exactly once, so
    that a change to it shows here instead of testing something else."""
    local = LocalNginx(
        root=root,
        port=_free_port(),
        upstream_port=_free_port(),
        static_dir=root / "static",
        media_dir=root / "media",
        replay_dir=root / "replay",
    )
    for folder in (local.static_dir, local.media_dir, local.replay_dir, root / "temp"):
        folder.mkdir(parents=True, exist_ok=True)
    (published,) = _service(compose, "nginx")["ports"]
    media_root = compose["x-django"]["environment"]["MEDIA_ROOT"]
    replacements = {
        f"server web:{_web_port(compose)};": f"server 127.0.0.1:{local.upstream_port};",
        f"listen {published.rsplit(':', 1)[1]} default_server;": (
            f"listen 127.0.0.1:{local.port} default_server;"
        ),
        f"alias {_nginx_target(compose, 'static')}/;": f"alias {local.static_dir}/;",
        f"alias {media_root}/;": f"alias {local.media_dir}/;",
    }
    text = NGINX_CONF_PATH.read_text()
    for old, new in replacements.items():
        assert text.count(old) == 1, f"`{old}` is not in {NGINX_CONF_PATH.name} exactly once"
        text = text.replace(old, new)
    (root / "chorus.conf").write_text(text)

    # What the nginx image's own nginx.conf provides around conf.d, with paths of our own.
    built_without = subprocess.run(  # noqa: S603 - the nginx binary found above, fixed flag
        [binary, "-V"], capture_output=True, text=True, check=True
    ).stderr
    temp_paths = ["client_body_temp_path", "proxy_temp_path"] + [
        f"{module}_temp_path"
        for module in ("fastcgi", "uwsgi", "scgi")
        if f"--without-http_{module}_module" not in built_without
    ]
    temp = "\n".join(f"    {name} {root}/temp/{name};" for name in temp_paths)
    user = "user root;\n" if os.geteuid() == 0 else ""
    local.main_conf.write_text(
        f"""{user}worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log info;
events {{ worker_connections 512; }}
http {{
    types {{ text/css css; application/javascript js; image/png png; application/json json; }}
    default_type application/octet-stream;
    access_log {root}/access.log;
{temp}
    include {root}/chorus.conf;
}}
"""
    )
    return local


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"port {port} not open after 15 s:\n{log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen[bytes], stop_signal: signal.Signals) -> None:
    if process.poll() is None:
        process.send_signal(stop_signal)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def behind_nginx(
    compose: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalNginx]:
    """gunicorn with the compose file's flags (two sync workers, as in the issue) serving
    tests/deployment_upstream.py, and nginx with deploy/nginx/chorus.conf in front of it."""
    binary = _nginx_binary()
    local = _local_nginx(tmp_path_factory.mktemp("nginx"), binary, compose)
    command = _command(_service(compose, "web"))
    gunicorn_args = [
        str(Path(sys.executable).with_name("gunicorn")),
        *[
            {
                "config.wsgi:application": "tests.deployment_upstream:application",
                f"0.0.0.0:{_web_port(compose)}": f"127.0.0.1:{local.upstream_port}",
                "${WEB_CONCURRENCY:-3}": "2",
            }.get(part, part)
            for part in command[1:]
        ],
    ]
    gunicorn_log = local.root / "gunicorn.log"
    nginx_log = local.root / "error.log"
    with gunicorn_log.open("wb") as gunicorn_out:
        gunicorn = subprocess.Popen(  # noqa: S603 - this venv's gunicorn, the compose flags
            gunicorn_args,
            cwd=REPO_ROOT,
            env={**os.environ, "CHORUS_REPLAY_DIR": str(local.replay_dir)},
            stdout=gunicorn_out,
            stderr=subprocess.STDOUT,
        )
    nginx = subprocess.Popen(  # noqa: S603 - the nginx binary, our generated config
        [
            binary,
            "-p",
            str(local.root),
            "-c",
            str(local.main_conf),
            "-e",
            str(nginx_log),
            "-g",
            "daemon off;",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(local.upstream_port, gunicorn, gunicorn_log)
        _wait_for_port(local.port, nginx, nginx_log)
        yield local
    finally:
        _stop(nginx, signal.SIGQUIT)
        _stop(gunicorn, signal.SIGINT)


def _get(
    port: int, path: str, headers: dict[str, str] | None = None, timeout: float = 5
) -> tuple[int, dict[str, str], bytes, float]:
    """status, headers (lower-case names), body and seconds taken."""
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        body = response.read()
        answer = {name.lower(): value for name, value in response.getheaders()}
        return response.status, answer, body, time.monotonic() - started
    finally:
        connection.close()


def _post(port: int, path: str, body: Any, chunked: bool = False) -> tuple[int, str, bytes]:
    """status, Content-Type and body; ``chunked`` sends ``body`` (an iterable) in chunks."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", path, body=body, encode_chunked=chunked)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


def test_nginx_conf_passes_nginx_config_test(compose: dict[str, Any], tmp_path: Path) -> None:
    binary = _nginx_binary()
    local = _local_nginx(tmp_path, binary, compose)

    result = subprocess.run(  # noqa: S603 - the nginx binary, our generated config
        [binary, "-t", "-p", str(tmp_path), "-c", str(local.main_conf), "-e", "stderr"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


class SlowClients:
    """Connections that each send one byte of their request every ``interval`` seconds."""

    def __init__(self, port: int, requests: list[bytes], interval: float = 0.2) -> None:
        self.sockets = [socket.create_connection(("127.0.0.1", port)) for _ in requests]
        self.pending = [bytearray(request) for request in requests]
        self.failed: list[OSError] = []
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drip, daemon=True)

    def _drip(self) -> None:
        while not self._stop.is_set():
            for connection, pending in zip(self.sockets, self.pending, strict=True):
                if pending:
                    try:
                        connection.send(bytes(pending[:1]))
                        del pending[:1]
                    except OSError as error:
                        self.failed.append(error)
                        pending.clear()
            self._stop.wait(self.interval)

    def __enter__(self) -> SlowClients:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for connection in self.sockets:
            connection.close()


def _slow_headers(count: int) -> list[bytes]:
    return [b"GET /slow HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"x" * 4000] * count


def _slow_bodies(count: int) -> list[bytes]:
    # Headers arrive at once (the first bytes, sent together), then the body byte by byte.
    return [
        b"POST /slow HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4000\r\n\r\n" + b"x" * 4000
    ] * count


@pytest.mark.integration
@pytest.mark.slow
def test_nginx_slow_clients_holding_connections_normal_request_answers_within_2s(
    behind_nginx: LocalNginx,
) -> None:
    with SlowClients(behind_nginx.port, _slow_headers(20) + _slow_bodies(4)) as slow:
        # The slow bodies' headers go in one piece, so nginx has passed them to its body phase.
        for connection, pending in zip(slow.sockets[20:], slow.pending[20:], strict=True):
            head, _, body = bytes(pending).partition(b"\r\n\r\n")
            connection.sendall(head + b"\r\n\r\n")
            pending[:] = body
        time.sleep(1)
        answers = []
        for _ in range(3):
            answers.append(_get(behind_nginx.port, "/api/v1/projects/", timeout=2))
            time.sleep(0.3)
        still_sending = not slow.failed

    assert [status for status, *_ in answers] == [200, 200, 200]
    assert max(seconds for *_, seconds in answers) < 2
    assert still_sending, f"nginx dropped slow clients early: {slow.failed}"

    # The same two workers without nginx: two slow clients are enough to stop the site.
    with SlowClients(behind_nginx.upstream_port, _slow_headers(2)):
        time.sleep(0.5)
        with pytest.raises(TimeoutError):
            _get(behind_nginx.upstream_port, "/api/v1/projects/", timeout=2)


@pytest.mark.integration
@pytest.mark.django_db
def test_nginx_image_view_accel_answer_sends_media_file_with_view_headers(
    behind_nginx: LocalNginx, compose: dict[str, Any], settings: Any, client_for: Any
) -> None:
    from tests.annotation.factories import make_project
    from tests.annotation.test_api_items import add_image_item, png_bytes

    settings.MEDIA_ROOT = behind_nginx.media_dir
    settings.CHORUS_MEDIA_ACCEL_REDIRECT_PREFIX = compose["x-django"]["environment"][
        "CHORUS_MEDIA_ACCEL_REDIRECT_PREFIX"
    ]
    project = make_project(preset="privacy_alert")
    item = add_image_item(project)
    # A name that has to be quoted in the header, to check that nginx unquotes it.
    stored = behind_nginx.media_dir / item.image.name
    renamed = stored.with_name("an image.png")
    stored.rename(renamed)
    item.image.name = str(renamed.relative_to(behind_nginx.media_dir))
    item.save(update_fields=["image"])
    view_answer = client_for(project.owner).get(f"/api/v1/items/{item.pk}/image/")
    assert view_answer.has_header("X-Accel-Redirect")
    (behind_nginx.replay_dir / "image.json").write_text(
        json.dumps({"status": "200 OK", "headers": list(view_answer.items()), "body": ""})
    )

    status, headers, body, _ = _get(behind_nginx.port, "/replay/image")

    assert status == 200
    assert body == png_bytes()
    for name, value in view_answer.items():
        if name.lower() not in ACCEL_DROPPED_HEADERS:
            assert headers.get(name.lower()) == value, name
    assert "x-accel-redirect" not in headers


@pytest.mark.integration
def test_nginx_protected_media_requested_directly_returns_404(behind_nginx: LocalNginx) -> None:
    (behind_nginx.media_dir / "secret.png").write_bytes(b"not for you")

    status, _, body, _ = _get(behind_nginx.port, "/protected-media/secret.png")

    assert status == 404
    assert b"not for you" not in body


@pytest.mark.integration
def test_nginx_body_over_route_limit_refused_with_413_in_api_error_shape(
    behind_nginx: LocalNginx,
) -> None:
    over_request_limit = b"x" * (settings.CHORUS_MAX_REQUEST_BYTES + 1)

    api = _post(behind_nginx.port, "/api/v1/projects/", over_request_limit)
    page = _post(behind_nginx.port, "/research/projects/new/", over_request_limit)
    upload = _post(behind_nginx.port, "/api/v1/projects/1/imports/", over_request_limit)

    assert api[:2] == (413, "application/json")
    assert json.loads(api[2]) == {
        "code": "too_large",
        "message": "The request body is too large.",
        "extra": {"max_bytes": settings.CHORUS_MAX_REQUEST_BYTES},
    }
    assert page[0] == 413 and page[1].startswith("text/html")
    assert upload[0] == 200
    assert json.loads(upload[2])["received"] == len(over_request_limit)


@pytest.mark.integration
def test_nginx_declared_upload_over_upload_limit_refused_before_body_is_sent(
    behind_nginx: LocalNginx,
) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", behind_nginx.port, timeout=5)
    try:
        connection.putrequest("POST", "/api/v1/projects/1/imports/")
        connection.putheader("Content-Length", str(settings.CHORUS_MAX_UPLOAD_BYTES + 1))
        connection.endheaders()
        response = connection.getresponse()
        error = json.loads(response.read())
    finally:
        connection.close()

    assert response.status == 413
    assert error["extra"] == {"max_bytes": settings.CHORUS_MAX_UPLOAD_BYTES}


@pytest.mark.integration
def test_nginx_forwarded_headers_from_client_replaced_by_what_nginx_saw(
    behind_nginx: LocalNginx,
) -> None:
    forged = {
        "Host": f"localhost:{behind_nginx.port}",
        "X-Forwarded-For": "203.0.113.9",
        "X-Real-IP": "203.0.113.9",
        "X-Forwarded-Proto": "https",
    }

    status, _, body, _ = _get(behind_nginx.port, "/echo/", headers=forged)
    seen = json.loads(body)

    assert status == 200
    assert seen["HTTP_HOST"] == f"localhost:{behind_nginx.port}"
    assert seen["HTTP_X_FORWARDED_FOR"] == "127.0.0.1"
    assert seen["HTTP_X_REAL_IP"] == "127.0.0.1"
    assert seen["HTTP_X_FORWARDED_PROTO"] == "http"


@pytest.mark.integration
def test_nginx_chunked_body_reaches_gunicorn_with_content_length(
    behind_nginx: LocalNginx,
) -> None:
    # Django refuses chunked bodies (411); nginx buffers them and sends a length instead.
    chunks = iter([b"a" * 1000, b"b" * 24])

    status, _, body = _post(behind_nginx.port, "/echo/", chunks, chunked=True)
    seen = json.loads(body)

    assert status == 200
    assert seen["CONTENT_LENGTH"] == "1024"
    assert seen["HTTP_TRANSFER_ENCODING"] is None
    assert seen["received"] == 1024


@pytest.mark.integration
def test_nginx_static_hashed_name_cached_immutable_and_precompressed_sent(
    behind_nginx: LocalNginx,
) -> None:
    css = behind_nginx.static_dir / "css"
    css.mkdir(exist_ok=True)
    (css / "app.0123456789ab.css").write_text("body { color: black; }\n" * 100)
    (css / "app.0123456789ab.css.gz").write_bytes(
        gzip.compress((css / "app.0123456789ab.css").read_bytes())
    )
    (css / "app.css").write_text("body {}\n")

    hashed = _get(
        behind_nginx.port, "/static/css/app.0123456789ab.css", {"Accept-Encoding": "gzip"}
    )
    plain = _get(behind_nginx.port, "/static/css/app.css")
    missing = _get(behind_nginx.port, "/static/css/")

    assert hashed[0] == 200
    assert hashed[1]["cache-control"] == "public, max-age=31536000, immutable"
    assert hashed[1]["content-encoding"] == "gzip"
    assert hashed[1]["x-content-type-options"] == "nosniff"
    assert plain[0] == 200 and plain[1]["cache-control"] == "public, max-age=60"
    assert missing[0] in (403, 404)
