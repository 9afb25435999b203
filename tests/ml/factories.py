"""Dataset versions for tests that need one without building it (permission matrices):
a row marked built, with a small manifest and its files in storage."""

import hashlib
import json
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from annotation.models import Item, Project
from core.models import User
from ml.membership import Membership
from ml.models import DatasetVersion, TrainingRun
from ml.recipes import recipe_from_json


def make_built_version(project: Project, actor: User, *, major: int = 1) -> DatasetVersion:
    items = list(Item.objects.filter(project=project).order_by("pk").values_list("pk", flat=True))
    version = DatasetVersion.objects.create(
        project=project,
        created_by=actor,
        recipe=recipe_from_json({}).to_json(),
        status=DatasetVersion.Status.DONE,
        major=major,
        minor=0,
        membership=Membership.from_mapping({pk: "train" for pk in items}).to_bytes(),
        counts={"items": {"train": len(items), "validation": 0, "test": 0}},
        built_at=timezone.now(),
    )
    prefix = f"datasets/{project.pk}/{version.pk}-test"
    licenses = b"item_id,license\n" + b"".join(f"{pk},CC0-1.0\n".encode() for pk in items)
    entries: list[dict[str, Any]] = []
    for path, content in (("licenses.csv", licenses),):
        default_storage.save(f"{prefix}/{path}", ContentFile(content))
        entries.append(
            {"path": path, "bytes": len(content), "sha256": hashlib.sha256(content).hexdigest()}
        )
    manifest = {"format": "chorus-dataset/1", "files": entries, "categories": []}
    default_storage.save(f"{prefix}/manifest.json", ContentFile(json.dumps(manifest).encode()))
    DatasetVersion.objects.filter(pk=version.pk).update(storage_prefix=prefix, manifest=manifest)
    version.refresh_from_db()
    return version


def make_failed_version(project: Project, actor: User) -> DatasetVersion:
    return DatasetVersion.objects.create(
        project=project,
        created_by=actor,
        recipe=recipe_from_json({}).to_json(),
        status=DatasetVersion.Status.FAILED,
        error="It failed unexpectedly; the error is in the worker's log.",
    )


# A 1x1 PNG: a plot as the run page embeds it.
TINY_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def make_trained_run(version: DatasetVersion, actor: User) -> TrainingRun:
    """A run marked trained, with a few artefacts in storage (no real training)."""
    run = TrainingRun.objects.create(
        project=version.project,
        dataset_version=version,
        created_by=actor,
        modality=version.project.modality,
        target=TrainingRun.Target.MAJORITY,
        status=TrainingRun.Status.DONE,
        params={"max_epochs": 2, "min_group_size": 30},
        metrics={"test": {"accuracy": 0.5, "macro_f1": 0.4}, "classes": [], "groups": {}},
        finished_at=timezone.now(),
        device="cpu",
    )
    prefix = f"models/{version.project_id}/{run.pk}-test"
    contents = {
        "metrics.json": json.dumps(run.metrics).encode(),
        "plots/loss.png": TINY_PNG,
        "weights.pt": b"not really weights",
    }
    entries = []
    for path, content in contents.items():
        default_storage.save(f"{prefix}/{path}", ContentFile(content))
        entries.append(
            {"path": path, "bytes": len(content), "sha256": hashlib.sha256(content).hexdigest()}
        )
    manifest = {"format": "chorus-model/1", "files": entries}
    default_storage.save(f"{prefix}/manifest.json", ContentFile(json.dumps(manifest).encode()))
    TrainingRun.objects.filter(pk=run.pk).update(
        storage_prefix=prefix,
        manifest=manifest,
        weights_sha256=entries[-1]["sha256"],
    )
    run.refresh_from_db()
    return run


def make_pending_run(version: DatasetVersion, actor: User) -> TrainingRun:
    """A run queued and not picked up yet (never sent: nothing runs it)."""
    return TrainingRun.objects.create(
        project=version.project,
        dataset_version=version,
        created_by=actor,
        modality=version.project.modality,
        target=TrainingRun.Target.MAJORITY,
        params={"min_group_size": 30},
    )
