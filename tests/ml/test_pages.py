"""Dataset version pages: the builder's dry run and build, the list with progress, the
version page for its owner and for an auditor (who downloads nothing)."""

import pytest

from core.models import Role
from ml.models import DatasetVersion
from ml.services import dataset_version_build_now
from tests.core.factories import make_user

pytestmark = pytest.mark.django_db

BUILDER = {
    "min_labels": "1",
    "targets": ["majority", "dawid_skene", "soft"],
    "license_use": "research",
    "consent": "standard",
    "train": "0.6",
    "validation": "0.2",
    "test": "0.2",
    "seed": "0",
    "strategy": "random",
    "group_key": "",
    "text_threshold": "0.8",
    "image_max_distance": "6",
}


def test_builder_dry_run_shows_counts_and_builds_nothing(labelled, signed_in) -> None:
    client = signed_in(labelled.project.owner)

    response = client.post(
        f"/research/projects/{labelled.project.pk}/datasets/new/",
        {**BUILDER, "min_labels": "5", "dry_run": "1"},
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert "This recipe would ship" in html and "Too few labels" in html
    assert not DatasetVersion.objects.exists()


def test_builder_build_redirects_to_the_version_page(
    labelled, signed_in, django_capture_on_commit_callbacks
) -> None:
    client = signed_in(labelled.project.owner)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/research/projects/{labelled.project.pk}/datasets/new/", {**BUILDER, "build": "1"}
        )

    version = DatasetVersion.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(
        f"/research/datasets/{version.pk}/"
    )
    page = client.get(response["Location"]).content.decode()
    assert "v1.0" in page and "Download the bundle" in page and 'id="label-distribution"' in page


def test_builder_invalid_ratios_say_so(labelled, signed_in) -> None:
    client = signed_in(labelled.project.owner)

    response = client.post(
        f"/research/projects/{labelled.project.pk}/datasets/new/",
        {**BUILDER, "train": "0.9", "build": "1"},
    )

    assert response.status_code == 400
    assert "add up to 1" in response.content.decode()
    assert not DatasetVersion.objects.exists()


def test_version_page_for_auditor_reads_counts_without_download(labelled, signed_in) -> None:
    version = dataset_version_build_now(
        project=labelled.project, actor=labelled.project.owner, recipe={}
    )
    auditor = signed_in(make_user(Role.AUDITOR))

    html = auditor.get(f"/research/datasets/{version.pk}/").content.decode()

    assert "Left out" in html and "manifest.json" in html
    assert "Download the bundle" not in html and "Rebuild" not in html
    listing = auditor.get(f"/research/projects/{labelled.project.pk}/datasets/").content.decode()
    assert "v1.0" in listing and "Build a new version" not in listing


def test_version_list_shows_progress_while_building(labelled, signed_in) -> None:
    DatasetVersion.objects.create(
        project=labelled.project,
        created_by=labelled.project.owner,
        recipe={},
        status=DatasetVersion.Status.RUNNING,
        progress_done=30,
        progress_total=120,
    )

    html = (
        signed_in(labelled.project.owner)
        .get(f"/research/projects/{labelled.project.pk}/datasets/")
        .content.decode()
    )

    assert '<progress value="30" max="120"' in html and 'http-equiv="refresh"' in html
