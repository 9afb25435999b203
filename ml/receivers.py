"""The ml app's answers to the annotation app's signals: people keep their rights after a
version is built. A version holding an item that is taken down, or labels an annotator
withdrew, is revoked (``ml.services.dataset_version_revoke``): its files are deleted, its
downloads answer 410, and its owner can rebuild it without that data."""

from typing import Any

from annotation.models import Annotation, Item
from annotation.signals import item_taken_down, labels_withdrawn
from core.db import advisory_xact_lock
from ml.build.locks import NUMBER_LOCK
from ml.selectors import dataset_versions_holding
from ml.services import dataset_version_revoke


def _revoke_for_takedown(
    sender: object, *, item: Item, request: Any, actor: Any, **_: Any
) -> list[dict[str, Any]]:
    # The lock a build publishes under: a build either sees this takedown before it
    # publishes, or is published before this looks (and is revoked here).
    advisory_xact_lock(NUMBER_LOCK, item.project_id)
    affected = []
    for version in dataset_versions_holding(project_id=item.project_id, item_ids={item.pk}):
        dataset_version_revoke(
            version=version,
            actor=actor,
            reason=f"Item {item.pk} was taken down (takedown request {request.pk}).",
            payload={"item": item.pk, "takedown": request.pk},
        )
        affected.append({"kind": "dataset_version", "id": version.pk, "label": version.label})
    return affected


def _revoke_for_withdrawal(
    sender: object, *, project_id: int, annotator_id: int, item_ids: list[int], actor: Any, **_: Any
) -> list[dict[str, Any]]:
    advisory_xact_lock(NUMBER_LOCK, project_id)
    affected = []
    for version in dataset_versions_holding(project_id=project_id, item_ids=set(item_ids)):
        # Only a version built after at least one of these labels was given holds them.
        held = version.built_at is None or (
            Annotation.objects.filter(
                project_id=project_id,
                annotator_id=annotator_id,
                item_id__in=item_ids,
                created_at__lt=version.built_at,
            ).exists()
        )
        if not held:
            continue
        dataset_version_revoke(
            version=version,
            actor=actor,
            reason="An annotator whose labels it holds withdrew from the study.",
            payload={"withdrawal": True, "project": project_id},
        )
        affected.append({"kind": "dataset_version", "id": version.pk, "label": version.label})
    return affected


def connect() -> None:
    item_taken_down.connect(_revoke_for_takedown, dispatch_uid="ml-revoke-takedown")
    labels_withdrawn.connect(_revoke_for_withdrawal, dispatch_uid="ml-revoke-withdrawal")
