"""Training runs through the services, the task and the command, on SQLite with tasks in
process: a real (tiny) training with the MiniLM encoder from its package, artefacts in
storage, cancel, revocation with the version, and the requests Chorus refuses."""

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone

from annotation.models import Item, TakedownRequest
from annotation.services import takedown_decide, takedown_file
from core.errors import Conflict, ValidationFailed
from ml.engine.training.weights import WeightsTampered, load_weights
from ml.models import TrainingRun
from ml.services import training_run_cancel, training_run_create, training_run_train_now
from ml.training import run as training_run_module
from provenance.models import AuditEvent
from tests.annotation.analysis_data import Labelled
from tests.ml.conftest import build_version, grouped_project, image_project

pytestmark = pytest.mark.django_db

FAST = {"params": {"max_epochs": 3, "patience": 2, "batch_size": 4}}


@pytest.fixture(autouse=True)
def embedding_cache(settings: Any, tmp_path: Path) -> Path:
    settings.CHORUS_EMBEDDING_CACHE_DIR = tmp_path / "embeddings"
    return settings.CHORUS_EMBEDDING_CACHE_DIR


@pytest.fixture
def grouped(db: Any) -> Labelled:
    return grouped_project()


def _train(labelled: Labelled, **request: Any) -> TrainingRun:
    version = build_version(labelled, {"split": {"ratios": [0.5, 0.25, 0.25], "seed": 1}})
    return training_run_train_now(
        version=version, actor=labelled.project.owner, request={**FAST, **request}
    )


def test_training_run_text_baseline_publishes_hashed_artefacts_and_metrics(
    grouped: Labelled,
) -> None:
    run = _train(grouped, group_by=["gender", "region"], annotator_questions=["age_group"])

    assert run.status == TrainingRun.Status.DONE, run.error
    assert run.device == "cpu" and run.wall_seconds and run.samples_per_second
    names = {entry["path"] for entry in run.manifest["files"]}
    assert {
        "weights.pt",
        "metrics.json",
        "predictions.parquet",
        "group_metrics.csv",
        "plots/loss.png",
        "plots/confusion.png",
    } <= names
    for entry in run.manifest["files"]:
        with default_storage.open(f"{run.storage_prefix}/{entry['path']}", "rb") as handle:
            assert hashlib.sha256(handle.read()).hexdigest() == entry["sha256"], entry["path"]
    weights_entry = next(e for e in run.manifest["files"] if e["path"] == "weights.pt")
    assert run.weights_sha256 == weights_entry["sha256"]
    test = run.metrics["test"]
    assert 0.0 <= test["accuracy"] <= 1.0 and "ece" in test and "soft_cross_entropy" in test
    assert run.metrics["environment"]["torch"].startswith("2.")
    keys = {row["group_key"] for row in run.metrics["groups"]["items"]}
    assert {"gender", "region", "gender×region"} <= keys
    assert {row["question"] for row in run.metrics["groups"]["annotators"]} >= {"age_group"}
    with default_storage.open(f"{run.storage_prefix}/predictions.parquet", "rb") as handle:
        predictions = pd.read_parquet(io.BytesIO(handle.read()))
    assert set(predictions["split"]) == {"validation", "test"}
    assert AuditEvent.objects.filter(action="training.finish", object_id=str(run.pk)).exists()


def test_training_run_same_seed_same_weights_and_second_run_reads_the_cache(
    grouped: Labelled,
) -> None:
    version = build_version(grouped, {"split": {"ratios": [0.5, 0.25, 0.25], "seed": 1}})
    owner = grouped.project.owner
    first = training_run_train_now(version=version, actor=owner, request={**FAST, "seed": 3})
    second = training_run_train_now(version=version, actor=owner, request={**FAST, "seed": 3})

    assert first.status == second.status == TrainingRun.Status.DONE
    assert first.weights_sha256 == second.weights_sha256
    assert first.metrics["test"] == second.metrics["test"]
    assert first.metrics["encode"]["encoded"] > 0
    assert second.metrics["encode"]["encoded"] == 0
    assert second.metrics["encode"]["cached"] == first.metrics["encode"]["texts"]


def test_training_run_stored_weights_load_and_a_tampered_copy_is_refused(
    grouped: Labelled, tmp_path: Path
) -> None:
    run = _train(grouped)
    local = tmp_path / "weights.pt"
    with default_storage.open(f"{run.storage_prefix}/weights.pt", "rb") as handle:
        local.write_bytes(handle.read())

    assert load_weights(local, sha256=run.weights_sha256)
    local.write_bytes(local.read_bytes() + b"\0")
    with pytest.raises(WeightsTampered):
        load_weights(local, sha256=run.weights_sha256)


def test_training_params_target_the_version_does_not_ship_is_refused(grouped: Labelled) -> None:
    version = build_version(grouped, {"targets": ["majority"]})

    with pytest.raises(ValidationFailed) as refused:
        training_run_create(
            version=version, actor=grouped.project.owner, request={"target": "soft"}
        )

    assert refused.value.code == "invalid_training_params"
    assert "target" in refused.value.extra["fields"]
    assert not TrainingRun.objects.exists()


def test_training_params_every_problem_is_named(grouped: Labelled) -> None:
    version = build_version(grouped)

    with pytest.raises(ValidationFailed) as refused:
        training_run_create(
            version=version,
            actor=grouped.project.owner,
            request={
                "encoder": "/etc/passwd",
                "seed": -1,
                "group_by": ["a", "b", "c"],
                "annotator_questions": ["shoe_size"],
                "params": {"max_epochs": 0, "image_size": 64, "learning_rate": "fast", "x": 1},
            },
        )

    fields = refused.value.extra["fields"]
    assert {
        "encoder",
        "seed",
        "group_by",
        "annotator_questions",
        "params.max_epochs",
        "params.image_size",
        "params.learning_rate",
        "params.x",
    } <= set(fields)


def test_training_run_cancel_queued_run_fails_it_at_once(grouped: Labelled, settings: Any) -> None:
    version = build_version(grouped)
    owner = grouped.project.owner
    run = TrainingRun.objects.create(
        project=version.project,
        dataset_version=version,
        created_by=owner,
        modality="text",
        params={"min_group_size": 30},
    )

    cancelled = training_run_cancel(run=run, actor=owner)

    assert cancelled.status == TrainingRun.Status.FAILED and cancelled.is_cancelled
    assert cancelled.error == "Cancelled before it started."
    with pytest.raises(Conflict):
        training_run_cancel(run=cancelled, actor=owner)


def test_training_run_cancel_while_training_stops_it(
    grouped: Labelled, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cancel request arriving during training is seen by the worker, which stops."""
    monkeypatch.setattr(training_run_module, "CANCEL_CHECK_INTERVAL_S", 0.0)
    progress = training_run_module._Reporter.progress

    def cancel_on_first_epoch(self: Any, phase: str, step: Any) -> None:
        if phase == "train":
            TrainingRun.objects.filter(pk=self.run_id).update(cancel_requested_at=timezone.now())
        progress(self, phase, step)

    monkeypatch.setattr(training_run_module._Reporter, "progress", cancel_on_first_epoch)

    run = _train(grouped, params={"max_epochs": 50, "patience": 50, "batch_size": 2})

    assert run.status == TrainingRun.Status.FAILED and run.is_cancelled
    assert run.error == "Cancelled while training."
    assert run.storage_prefix == "" and not run.manifest


def test_training_run_on_revoked_version_is_revoked_listed_and_not_served(
    grouped: Labelled, client_for: Any
) -> None:
    run = _train(grouped)
    owner = grouped.project.owner
    item = Item.objects.filter(project=grouped.project).order_by("pk")[0]
    (request,) = takedown_file(
        reference=str(item.pk), kind=TakedownRequest.Kind.PRIVACY, reason="It is me."
    )

    decided = takedown_decide(request=request, actor=owner, accept=True, reason="Identifiable.")

    run.refresh_from_db()
    assert run.is_revoked
    assert {
        "kind": "training_run",
        "id": run.pk,
        "label": run.label,
        "dataset_version": run.dataset_version_id,
    } in decided.affected
    client = client_for(owner)
    response = client.get(f"/api/v1/training-runs/{run.pk}/files/metrics.json")
    assert response.status_code == 410
    assert response.json()["code"] == "revoked"
    assert client.get(f"/api/v1/training-runs/{run.pk}/").json()["revoked"] is True


def test_training_run_api_create_read_download(
    grouped: Labelled, client_for: Any, django_capture_on_commit_callbacks: Any
) -> None:
    version = build_version(grouped, {"split": {"ratios": [0.5, 0.25, 0.25], "seed": 1}})
    client = client_for(grouped.project.owner)

    with django_capture_on_commit_callbacks(execute=True):
        created = client.post(
            f"/api/v1/datasets/{version.pk}/training-runs/", {**FAST, "seed": 1}, format="json"
        )

    assert created.status_code == 202, created.content
    run_id = created.json()["id"]
    detail = client.get(f"/api/v1/training-runs/{run_id}/").json()
    assert detail["status"] == "done", detail["error"]
    assert detail["metrics"]["test"]["accuracy"] is not None
    listed = client.get(f"/api/v1/projects/{grouped.project.pk}/training-runs/").json()
    assert [row["id"] for row in listed["results"]] == [run_id]
    download = client.get(f"/api/v1/training-runs/{run_id}/download/")
    assert download.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content)))
    assert f"{grouped.project.pk}-run-{run_id}/weights.pt" in archive.namelist()
    manifest = json.loads(archive.read(f"{grouped.project.pk}-run-{run_id}/manifest.json"))
    assert manifest["dataset_version"]["id"] == version.pk


def test_train_baseline_command_prints_run_and_artefact_directory(grouped: Labelled) -> None:
    version = build_version(grouped, {"split": {"ratios": [0.5, 0.25, 0.25], "seed": 1}})
    out = io.StringIO()
    params = Path(default_storage.path("")) / "params.json"
    params.parent.mkdir(parents=True, exist_ok=True)
    params.write_text(json.dumps(FAST["params"]))

    call_command(
        "train_baseline",
        "--version",
        str(version.pk),
        "--target",
        "soft",
        "--seed",
        "2",
        "--device",
        "cpu",
        "--group-by",
        "gender,region",
        "--params",
        str(params),
        stdout=out,
    )

    run = TrainingRun.objects.get()
    lines = out.getvalue().splitlines()
    assert lines[0] == f"run {run.pk}"
    directory = Path(lines[1].removeprefix("artefacts "))
    assert (directory / "weights.pt").is_file() and (directory / "metrics.json").is_file()
    assert run.target == "soft" and run.seed == 2


def test_training_run_image_baseline_small_cnn_with_augmentation(db: Any) -> None:
    labelled = image_project()
    version = build_version(labelled, {"split": {"ratios": [0.5, 0.25, 0.25], "seed": 1}})

    run = training_run_train_now(
        version=version,
        actor=labelled.project.owner,
        request={
            "group_by": ["tone"],
            "params": {"max_epochs": 3, "batch_size": 4, "image_size": 16, "augment": True},
        },
    )

    assert run.status == TrainingRun.Status.DONE, run.error
    assert run.modality == "image" and run.metrics["encode"] is None
    assert {row["group_value"] for row in run.metrics["groups"]["items"]} >= {"dark", "light"}
    assert run.metrics["n"]["train"] > 0


def test_training_run_page_auditor_reads_metrics_and_plots_not_weights(
    grouped: Labelled, signed_in: Any, client_for: Any
) -> None:
    from core.models import Role
    from tests.core.factories import make_user

    run = _train(grouped, group_by=["gender"])
    auditor = make_user(Role.AUDITOR)

    page = signed_in(auditor).get(f"/research/training/{run.pk}/")

    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="item-groups"' in html and 'id="metrics"' in html
    assert "Download the artefacts" not in html
    assert f"/api/v1/training-runs/{run.pk}/files/plots/loss.png" in html
    api = client_for(auditor)
    assert api.get(f"/api/v1/training-runs/{run.pk}/files/plots/loss.png").status_code == 200
    assert api.get(f"/api/v1/training-runs/{run.pk}/files/weights.pt").status_code == 403
    assert api.get(f"/api/v1/training-runs/{run.pk}/files/predictions.parquet").status_code == 403
