"""The item image view in both modes: streaming the file itself (the default), and behind
nginx, handing it over with X-Accel-Redirect (``CHORUS_MEDIA_ACCEL_REDIRECT_PREFIX``).

Either way the view alone decides who gets the image; tests/test_deployment.py checks
that nginx sends the file named by this answer with the answer's headers.
"""

from pathlib import Path
from typing import Any

import pytest

from core.models import Role
from tests.annotation.factories import make_project
from tests.annotation.test_api_items import add_image_item, png_bytes
from tests.core.factories import make_user
from tests.core.test_settings import import_settings

pytestmark = pytest.mark.django_db

PREFIX = "/protected-media/"


@pytest.fixture(autouse=True)
def _media_root(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path


def image_url(item: Any) -> str:
    return f"/api/v1/items/{item.pk}/image/"


def assert_image_headers(response: Any, item: Any) -> None:
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"] == f'inline; filename="item-{item.pk}.png"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert {"no-store", "private"} <= {
        part.strip() for part in response["Cache-Control"].split(",")
    }


def test_item_image_accel_prefix_unset_streams_file_without_accel_header(
    settings: Any, client_for: Any
) -> None:
    settings.CHORUS_MEDIA_ACCEL_REDIRECT_PREFIX = ""
    project = make_project(preset="privacy_alert")
    item = add_image_item(project)

    response = client_for(project.owner).get(image_url(item))

    assert response.status_code == 200
    assert response.streaming
    assert b"".join(response.streaming_content) == png_bytes()
    assert not response.has_header("X-Accel-Redirect")
    assert_image_headers(response, item)


def test_item_image_accel_prefix_set_answers_empty_with_accel_redirect_to_stored_name(
    settings: Any, client_for: Any
) -> None:
    settings.CHORUS_MEDIA_ACCEL_REDIRECT_PREFIX = PREFIX
    project = make_project(preset="privacy_alert")
    item = add_image_item(project)

    response = client_for(project.owner).get(image_url(item))

    assert response.status_code == 200
    assert response.content == b""
    assert response["X-Accel-Redirect"] == PREFIX + item.image.name
    assert (Path(settings.MEDIA_ROOT) / item.image.name).read_bytes() == png_bytes()
    assert_image_headers(response, item)


def test_item_image_accel_prefix_set_quotes_stored_name_in_header(
    settings: Any, client_for: Any
) -> None:
    settings.CHORUS_MEDIA_ACCEL_REDIRECT_PREFIX = PREFIX
    project = make_project(preset="privacy_alert")
    item = add_image_item(project)
    stored = Path(settings.MEDIA_ROOT) / item.image.name
    renamed = stored.with_name("an image%.png")
    stored.rename(renamed)
    item.image.name = str(renamed.relative_to(settings.MEDIA_ROOT))
    item.save(update_fields=["image"])

    response = client_for(project.owner).get(image_url(item))

    assert response.status_code == 200
    assert response["X-Accel-Redirect"].endswith("/an%20image%25.png")


def test_item_image_accel_prefix_set_missing_file_returns_404_no_image(
    settings: Any, client_for: Any
) -> None:
    settings.CHORUS_MEDIA_ACCEL_REDIRECT_PREFIX = PREFIX
    project = make_project(preset="privacy_alert")
    item = add_image_item(project)
    (Path(settings.MEDIA_ROOT) / item.image.name).unlink()

    response = client_for(project.owner).get(image_url(item))

    assert response.status_code == 404
    assert response.json()["code"] == "no_image"
    assert not response.has_header("X-Accel-Redirect")


def test_item_image_accel_prefix_set_unassigned_annotator_and_anonymous_get_no_accel_header(
    settings: Any, client_for: Any
) -> None:
    settings.CHORUS_MEDIA_ACCEL_REDIRECT_PREFIX = PREFIX
    project = make_project(preset="privacy_alert")
    item = add_image_item(project)

    annotator = client_for(make_user(Role.ANNOTATOR)).get(image_url(item))
    anonymous = client_for(None).get(image_url(item))

    assert annotator.status_code == 404
    assert anonymous.status_code in (401, 403)
    assert not annotator.has_header("X-Accel-Redirect")
    assert not anonymous.has_header("X-Accel-Redirect")


@pytest.mark.parametrize("prefix", ["protected-media/", "/protected-media"])
def test_settings_accel_prefix_without_enclosing_slashes_refuses_to_start(prefix: str) -> None:
    result = import_settings({"CHORUS_MEDIA_ACCEL_REDIRECT_PREFIX": prefix})

    assert result.returncode != 0
    assert "CHORUS_MEDIA_ACCEL_REDIRECT_PREFIX must start and end with '/'" in result.stderr
