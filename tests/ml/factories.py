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
from ml.models import DatasetVersion
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
