"""Response headers: Content-Security-Policy, HSTS behind TLS, Cache-Control on personal data.

Also ``X-Frame-Options: DENY`` stays in force next to ``frame-ancestors`` (older browsers
read only the header).
"""

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.http import HttpResponse
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from annotation.analysis.plots import entropy_histogram_svg
from config.settings import ENV_VARS
from core.middleware import NoStoreMiddleware
from core.models import Role
from tests.annotation.factories import make_open_project, make_project
from tests.annotation.test_api_items import add_image_item
from tests.core.factories import make_user
from tests.core.test_settings import import_settings, strong_key

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_DIRS = [REPO_ROOT / "templates", *REPO_ROOT.glob("*/templates")]
SETTINGS_ENV = (*ENV_VARS, "DJANGO_SETTINGS_MODULE")


def directives(response: Any) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    parsed: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        parsed[name] = sources
    return parsed


# ---------------------------------------------------------------- Content-Security-Policy


@pytest.mark.django_db
def test_csp_page_policy_allows_only_own_origin_scripts_styles_and_forms(signed_in) -> None:
    project = make_open_project(2)

    for response in (
        Client().get("/accounts/login/"),
        signed_in(project.owner).get(f"/research/projects/{project.pk}/"),
    ):
        assert response.status_code == 200
        policy = directives(response)
        assert policy["default-src"] == ["'self'"]
        assert policy["script-src"][0] == "'self'"
        assert all(s.startswith("'nonce-") for s in policy["script-src"][1:])
        assert policy["style-src"] == ["'self'", django_settings.MATPLOTLIB_SVG_STYLE_HASH]
        assert policy["style-src-attr"] == ["'unsafe-inline'"]
        assert policy["img-src"] == ["'self'", "data:"]
        assert policy["object-src"] == ["'none'"]
        assert policy["base-uri"] == ["'self'"]
        assert policy["frame-ancestors"] == ["'none'"]
        assert policy["form-action"] == ["'self'"]
        assert response["X-Frame-Options"] == "DENY"


def test_csp_matplotlib_plot_style_element_allowed_by_its_hash() -> None:
    """A matplotlib upgrade that changes the <style> it writes into every plot fails here."""
    svg = entropy_histogram_svg(histogram=[{"low": 0.0, "high": 0.1, "items": 3}])
    styles = re.findall(r"<style[^>]*>(.*?)</style>", svg, re.DOTALL)

    assert styles, "matplotlib wrote no <style>: the hash in settings can go"
    for style in styles:
        digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
        assert f"'sha256-{digest}'" == django_settings.MATPLOTLIB_SVG_STYLE_HASH


def _template_files() -> list[Path]:
    return [path for folder in TEMPLATE_DIRS for path in folder.rglob("*.html")]


def test_csp_templates_have_no_inline_script_or_event_handler_without_nonce() -> None:
    """Blocked silently by the policy: every script is a static file or carries the nonce."""
    assert len(_template_files()) > 20
    for path in _template_files():
        html = path.read_text()
        for tag in re.findall(r"<script\b[^>]*>", html, re.IGNORECASE):
            assert "src=" in tag or "request.csp_nonce" in tag, (path, tag)
        assert not re.search(r"\son[a-z]+\s*=", html, re.IGNORECASE), path
        assert "javascript:" not in html.lower(), path
        assert not re.search(r"<style\b", html, re.IGNORECASE), path


@pytest.mark.django_db
def test_csp_api_docs_start_script_is_a_file_and_only_its_styles_may_be_inline() -> None:
    response = Client().get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag, tag
    policy = directives(response)
    assert policy["script-src"][0] == "'self'"
    assert policy["style-src"] == ["'self'", "'unsafe-inline'"]
    script_url = re.findall(r'<script src="([^"]*script[^"]*)"', html)[-1]
    script = Client().get(script_url.replace("&amp;", "&"))
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle(" in script.content.decode()


# ---------------------------------------------------------------- HSTS and TLS


HTTPS_REQUEST = """
import json
import django
django.setup()
from django.test import Client
response = Client().get("/api/v1/projects/", headers={"x-forwarded-proto": "https"})
print(json.dumps(dict(response.headers)))
"""


def _https_response_headers(env: dict[str, str]) -> dict[str, str]:
    """Headers of an https request (as a TLS proxy forwards it) in a fresh DEBUG=0 process:
    the settings are read at import time, and this process has imported its own."""
    child_env = {key: value for key, value in os.environ.items() if key not in SETTINGS_ENV}
    child_env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="0",
        SECRET_KEY=strong_key(),
        ALLOWED_HOSTS="testserver",
        **env,
    )
    result = subprocess.run(  # noqa: S603 - fixed interpreter and code, test input only
        [sys.executable, "-c", HTTPS_REQUEST],
        cwd=REPO_ROOT,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    headers: dict[str, str] = json.loads(result.stdout)
    return headers


def test_hsts_debug_off_behind_tls_proxy_sends_one_year_with_subdomains() -> None:
    headers = _https_response_headers({"CHORUS_BEHIND_TLS_PROXY": "1"})

    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_hsts_debug_off_without_proxy_setting_ignores_forwarded_proto() -> None:
    """Without CHORUS_BEHIND_TLS_PROXY a client could claim https: the header is not trusted."""
    headers = _https_response_headers({})

    assert "Strict-Transport-Security" not in headers


def test_hsts_seconds_and_redirect_read_from_environment() -> None:
    expression = "[s.SECURE_HSTS_SECONDS, s.SECURE_SSL_REDIRECT, s.SECURE_PROXY_SSL_HEADER]"
    production = import_settings(
        {
            "DEBUG": "0",
            "SECRET_KEY": strong_key(),
            "CHORUS_HSTS_SECONDS": "600",
            "CHORUS_SSL_REDIRECT": "1",
            "CHORUS_BEHIND_TLS_PROXY": "1",
        },
        expression,
    )
    development = import_settings({"DEBUG": "1"}, "[s.SECURE_HSTS_SECONDS, s.SECURE_SSL_REDIRECT]")
    plain_http = import_settings(
        {"DEBUG": "0", "SECRET_KEY": strong_key(), "CHORUS_SECURE_COOKIES": "0"},
        "s.SECURE_HSTS_SECONDS",
    )

    assert production.returncode == 0, production.stderr
    assert json.loads(production.stdout) == [600, True, ["HTTP_X_FORWARDED_PROTO", "https"]]
    assert json.loads(development.stdout) == [0, False]
    assert json.loads(plain_http.stdout) == 0


# ---------------------------------------------------------------- Cache-Control


def assert_no_store(response: Any) -> None:
    directives_sent = {part.strip() for part in response["Cache-Control"].split(",")}
    assert {"no-store", "private"} <= directives_sent, response["Cache-Control"]


@pytest.mark.django_db
def test_cache_control_signed_in_pages_no_store(signed_in) -> None:
    project = make_open_project(2)
    client = signed_in(project.owner)

    for path in ("/research/", f"/research/projects/{project.pk}/", "/takedown/"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert_no_store(response)


@pytest.mark.django_db
def test_cache_control_api_responses_no_store_signed_in_or_not() -> None:
    project = make_project()
    client = APIClient()
    client.force_authenticate(project.owner)

    assert_no_store(client.get("/api/v1/projects/"))
    assert_no_store(client.get(f"/api/v1/projects/{project.pk}/"))
    assert_no_store(APIClient().get("/api/v1/projects/"))
    assert_no_store(client.get("/api/v1/no-such-route/"))


@pytest.mark.django_db
def test_cache_control_item_image_no_store(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path
    project = make_project(preset="privacy_alert")
    item = add_image_item(project)
    client = APIClient()
    client.force_authenticate(project.owner)

    response = client.get(f"/api/v1/items/{item.pk}/image/")

    assert response.status_code == 200
    assert_no_store(response)
    assert "max-age" not in response["Cache-Control"]


@pytest.mark.django_db
def test_cache_control_anonymous_public_page_left_cacheable() -> None:
    response = Client().get("/takedown/")

    assert response.status_code == 200
    assert "no-store" not in response.get("Cache-Control", "")


def test_cache_control_set_by_view_kept() -> None:
    request = RequestFactory().get("/api/v1/projects/")
    response = HttpResponse()
    response["Cache-Control"] = "public, max-age=60"

    answered = NoStoreMiddleware(lambda request: response)(request)

    assert answered is response
    assert response["Cache-Control"] == "public, max-age=60"


def test_cache_control_static_files_answered_before_the_no_store_rule() -> None:
    """WhiteNoise answers static files itself, with its own far-future caching."""
    middleware = list(django_settings.MIDDLEWARE)

    assert middleware.index("whitenoise.middleware.WhiteNoiseMiddleware") < middleware.index(
        "core.middleware.NoStoreMiddleware"
    )


@pytest.mark.django_db
def test_cache_control_annotator_label_page_no_store(signed_in) -> None:
    annotator = make_user(Role.ANNOTATOR)

    response = signed_in(annotator).get("/annotate/")

    assert response.status_code == 200
    assert_no_store(response)
