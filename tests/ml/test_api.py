"""Dataset version endpoints and revocation: download, single files, 410 once revoked,
revocation on takedown and withdrawal, rebuild, compare, the command."""

import io
import json
import zipfile
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.models import Enrolment, Item, TakedownRequest
from annotation.services import enrolment_withdraw, takedown_decide, takedown_file
from ml.models import DatasetVersion
from tests.ml.conftest import build_version

pytestmark = pytest.mark.django_db


def test_create_queues_and_builds_then_detail_and_list(
    labelled, client_for, django_capture_on_commit_callbacks
) -> None:
    client = client_for(labelled.project.owner)

    with django_capture_on_commit_callbacks(execute=True):
        created = client.post(
            f"/api/v1/projects/{labelled.project.pk}/datasets/",
            {"recipe": {"split": {"seed": 7}}},
            format="json",
        )

    assert created.status_code == 202, created.content
    version_id = created.json()["id"]
    detail = client.get(f"/api/v1/datasets/{version_id}/").json()
    # In process (no broker), the build ran when the request committed.
    assert detail["status"] == "done" and detail["label"] == "v1.0"
    assert detail["progress_done"] == detail["progress_total"] > 0
    assert detail["manifest"]["recipe"]["split"]["seed"] == 7
    listed = client.get(f"/api/v1/projects/{labelled.project.pk}/datasets/").json()
    assert [row["id"] for row in listed["results"]] == [version_id]


def test_create_bad_recipe_400_with_every_field(labelled, client_for) -> None:
    response = client_for(labelled.project.owner).post(
        f"/api/v1/projects/{labelled.project.pk}/datasets/",
        {"recipe": {"min_labels": -1, "formats": ["xlsx"]}},
        format="json",
    )

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_recipe"
    assert {"min_labels", "formats"} <= set(body["extra"]["fields"])
    assert not DatasetVersion.objects.exists()


def test_dry_run_counts_without_building(labelled, client_for) -> None:
    response = client_for(labelled.project.owner).post(
        f"/api/v1/projects/{labelled.project.pk}/datasets/dry-run/",
        {"recipe": {"min_labels": 5}},
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert body["items"] == 0 and body["left_out"]["too_few_labels"]["items"] == 10
    assert not DatasetVersion.objects.exists()


def test_download_streams_zip_of_every_file_matching_manifest(labelled, client_for) -> None:
    version = build_version(labelled, {"formats": ["csv"]})

    response = client_for(labelled.project.owner).get(f"/api/v1/datasets/{version.pk}/download/")

    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    names = archive.namelist()
    folder = f"{labelled.project.pk}-v1.0"
    assert names[0] == f"{folder}/manifest.json"
    assert all(name.startswith(f"{folder}/") and ".." not in name for name in names)
    manifest = json.loads(archive.read(f"{folder}/manifest.json"))
    import hashlib

    for entry in manifest["files"]:
        data = archive.read(f"{folder}/{entry['path']}")
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]


def test_auditor_reads_version_and_manifest_but_downloads_no_data(
    labelled, client_for, django_user_model
) -> None:
    from core.models import Role
    from tests.core.factories import make_user

    version = build_version(labelled)
    auditor = client_for(make_user(Role.AUDITOR))

    assert auditor.get(f"/api/v1/datasets/{version.pk}/").status_code == 200
    assert auditor.get(f"/api/v1/datasets/{version.pk}/files/manifest.json").status_code == 200
    refused = auditor.get(f"/api/v1/datasets/{version.pk}/download/")
    assert refused.status_code == 403 and refused.json()["code"] == "download_not_allowed"
    refused = auditor.get(f"/api/v1/datasets/{version.pk}/files/annotations.parquet")
    assert refused.status_code == 403


def test_takedown_of_an_item_revokes_versions_holding_it_410_and_rebuild_without_it(
    labelled, client_for, django_capture_on_commit_callbacks
) -> None:
    version = build_version(labelled)
    item = Item.objects.filter(project=labelled.project).order_by("pk")[0]
    (request,) = takedown_file(
        reference=str(item.pk), kind=TakedownRequest.Kind.PRIVACY, reason="It shows me."
    )

    with django_capture_on_commit_callbacks(execute=True):
        decided = takedown_decide(
            request=request, actor=labelled.project.owner, accept=True, reason="Identifiable."
        )

    assert decided.affected == [{"kind": "dataset_version", "id": version.pk, "label": "v1.0"}]
    version.refresh_from_db()
    assert version.is_revoked and "taken down" in version.revoked_reason
    assert version.revoked_event is not None
    # Files gone; manifest and counts kept.
    assert not default_storage.exists(f"{version.storage_prefix}/manifest.json")
    assert version.manifest["files"] and version.counts["items"]
    client = client_for(labelled.project.owner)
    gone = client.get(f"/api/v1/datasets/{version.pk}/download/")
    assert gone.status_code == 410 and gone.json()["code"] == "revoked"
    assert gone.json()["extra"]["rebuild"].endswith(f"/datasets/{version.pk}/rebuild/")

    with django_capture_on_commit_callbacks(execute=True):
        rebuilt = client.post(f"/api/v1/datasets/{version.pk}/rebuild/")

    assert rebuilt.status_code == 202
    new = DatasetVersion.objects.get(pk=rebuilt.json()["id"])
    assert new.status == "done" and new.rebuild_of_id == version.pk and new.label == "v2.0"
    assert item.pk in new.manifest["left_out"]["tombstoned"]["items"]


def test_withdrawal_revokes_versions_holding_the_annotators_labels(labelled) -> None:
    version = build_version(labelled)
    annotator = labelled.annotators[0]

    enrolment_withdraw(
        enrolment=Enrolment.objects.get(project=labelled.project, annotator=annotator),
        actor=annotator,
    )

    version.refresh_from_db()
    assert version.is_revoked and "withdrew" in version.revoked_reason
    rebuilt = build_version(labelled)
    assert rebuilt.counts["annotators"] == 3
    assert rebuilt.manifest["left_out"]["withdrawn"]["labels"] > 0


def test_compare_reports_added_removed_moved(labelled, client_for) -> None:
    first = build_version(labelled, {"split": {"seed": 1}})
    second = build_version(labelled, {"split": {"seed": 2, "ratios": [0.5, 0.25, 0.25]}})

    response = client_for(labelled.project.owner).get(
        f"/api/v1/datasets/{second.pk}/compare/{first.pk}/"
    )

    assert response.status_code == 200
    body = response.json()
    assert body["added"] == [] and body["removed"] == []
    assert body["moved"], "a different seed and ratios move some items"
    assert body["contamination"] == [] or all(
        match["reason"] in ("exact", "text") for match in body["contamination"]
    )


def test_export_dataset_command_writes_bundle_directory(labelled, tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"formats": ["jsonl"]}))
    out = tmp_path / "bundle"

    call_command(
        "export_dataset",
        "--project",
        str(labelled.project.pk),
        "--recipe",
        str(recipe),
        "--out",
        str(out),
    )

    manifest = json.loads((out / "manifest.json").read_text())
    for entry in manifest["files"]:
        assert (out / entry["path"]).stat().st_size == entry["bytes"]
    assert (out / "data" / "train.jsonl").exists()
    with pytest.raises(CommandError, match="not empty"):
        call_command("export_dataset", "--project", str(labelled.project.pk), "--out", str(out))
