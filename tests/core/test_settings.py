"""Settings read from the environment; production refuses to start without a real secret key.

Each case imports ``config.settings`` in a fresh interpreter, because the checks run at
import time and this test process has already imported its own settings.
"""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

import config.settings

REPO_ROOT = Path(__file__).resolve().parents[2]
# Variables the settings module reads; the child gets none of this process's values.
_CLEARED = (*config.settings.ENV_VARS, "DJANGO_SETTINGS_MODULE")


def import_settings(
    env: dict[str, str], expression: str = "None"
) -> subprocess.CompletedProcess[str]:
    child_env = {key: value for key, value in os.environ.items() if key not in _CLEARED}
    child_env.update(env)
    code = f"import json, config.settings as s; print(json.dumps({expression}, default=str))"
    return subprocess.run(  # noqa: S603 - fixed interpreter and code, test input only
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def strong_key() -> str:
    return secrets.token_urlsafe(50)


@pytest.mark.parametrize(
    "secret_env",
    [
        pytest.param({}, id="unset"),
        pytest.param({"SECRET_KEY": ""}, id="empty"),
        pytest.param({"SECRET_KEY": config.settings.DEVELOPMENT_SECRET_KEY}, id="development-key"),
        pytest.param({"SECRET_KEY": "changeme"}, id="known-default"),
        pytest.param({"SECRET_KEY": "django-insecure-" + "x" * 40}, id="django-insecure-prefix"),
        pytest.param({"SECRET_KEY": "s3cr3t-but-short"}, id="short"),
    ],
)
def test_settings_debug_off_without_real_secret_key_refuses_to_start(
    secret_env: dict[str, str],
) -> None:
    result = import_settings({"DEBUG": "0", **secret_env})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY" in result.stderr


def test_settings_debug_off_with_long_random_key_starts() -> None:
    key = strong_key()
    result = import_settings({"DEBUG": "0", "SECRET_KEY": key}, "[s.DEBUG, s.SECRET_KEY]")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [False, key]


def test_settings_debug_on_without_key_uses_development_key() -> None:
    result = import_settings({"DEBUG": "1"}, "[s.DEBUG, s.SECRET_KEY]")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [True, config.settings.DEVELOPMENT_SECRET_KEY]


def test_settings_debug_off_allowed_hosts_unset_is_empty() -> None:
    result = import_settings({"DEBUG": "0", "SECRET_KEY": strong_key()}, "s.ALLOWED_HOSTS")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_settings_allowed_hosts_read_from_environment() -> None:
    result = import_settings(
        {"DEBUG": "0", "SECRET_KEY": strong_key(), "ALLOWED_HOSTS": "chorus.example, api.example "},
        "s.ALLOWED_HOSTS",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ["chorus.example", "api.example"]


def test_settings_no_broker_runs_tasks_in_process() -> None:
    result = import_settings(
        {"CELERY_BROKER_URL": ""}, "[s.CELERY_BROKER_URL, s.CELERY_TASK_ALWAYS_EAGER]"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ["", True]


def test_settings_broker_set_sends_tasks_to_it() -> None:
    broker = "redis://127.0.0.1:6399/0"
    result = import_settings(
        {"CELERY_BROKER_URL": broker},
        "[s.CELERY_BROKER_URL, s.CELERY_TASK_ALWAYS_EAGER, s.CELERY_RESULT_BACKEND]",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [broker, False, broker]


def test_settings_queues_are_default_and_gpu() -> None:
    result = import_settings(
        {}, "[[q.name for q in s.CELERY_TASK_QUEUES], s.CELERY_TASK_DEFAULT_QUEUE]"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [["default", "gpu"], "default"]


def test_settings_database_url_selects_postgres() -> None:
    result = import_settings(
        {"DATABASE_URL": "postgres://chorus:pw@db.example:5432/chorus"},
        "[s.DATABASES['default']['ENGINE'], s.DATABASES['default']['NAME']]",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ["django.db.backends.postgresql", "chorus"]


LOCKOUT_AND_TOKEN_SETTINGS = (
    "CHORUS_LOGIN_FAILURE_LIMIT",
    "CHORUS_LOGIN_COOLOFF_SECONDS",
    "CHORUS_LOGIN_MAX_COOLOFF_SECONDS",
    "CHORUS_LOGIN_ACCOUNT_FAILURE_LIMIT",
    "CHORUS_LOGIN_ACCOUNT_COOLOFF_SECONDS",
    "CHORUS_LOGIN_ACCOUNT_MAX_COOLOFF_SECONDS",
    "CHORUS_LOGIN_FAILURE_MEMORY_SECONDS",
    "CHORUS_API_TOKEN_TTL_SECONDS",
)


def test_settings_lockout_and_token_lifetime_defaults() -> None:
    result = import_settings({}, f"[getattr(s, n) for n in {list(LOCKOUT_AND_TOKEN_SETTINGS)!r}]")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [5, 60, 3600, 50, 60, 900, 86400, 7 * 86400]


def test_settings_lockout_and_token_lifetime_read_from_environment() -> None:
    values = [str(11 + n) for n in range(len(LOCKOUT_AND_TOKEN_SETTINGS))]
    result = import_settings(
        dict(zip(LOCKOUT_AND_TOKEN_SETTINGS, values, strict=True)),
        f"[getattr(s, n) for n in {list(LOCKOUT_AND_TOKEN_SETTINGS)!r}] + [s.AXES_FAILURE_LIMIT]",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [int(v) for v in values] + [11]
    assert set(LOCKOUT_AND_TOKEN_SETTINGS) <= set(config.settings.ENV_VARS)


def test_settings_trusted_proxy_count_default_zero_and_read_from_environment() -> None:
    default = import_settings({}, "[s.CHORUS_TRUSTED_PROXY_COUNT, s.AXES_CLIENT_IP_CALLABLE]")
    behind_nginx = import_settings(
        {"CHORUS_TRUSTED_PROXY_COUNT": "1"}, "s.CHORUS_TRUSTED_PROXY_COUNT"
    )

    assert default.returncode == 0, default.stderr
    assert json.loads(default.stdout) == [0, "core.net.client_address"]
    assert behind_nginx.returncode == 0, behind_nginx.stderr
    assert json.loads(behind_nginx.stdout) == 1
    assert "CHORUS_TRUSTED_PROXY_COUNT" in config.settings.ENV_VARS


def test_settings_negative_trusted_proxy_count_refuses_to_start() -> None:
    result = import_settings({"CHORUS_TRUSTED_PROXY_COUNT": "-1"})

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "CHORUS_TRUSTED_PROXY_COUNT" in result.stderr
