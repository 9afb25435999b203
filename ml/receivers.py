"""The ml app's answers to the annotation app's signals: people keep their rights after a
version is built. A version holding an item that is taken down, or labels an annotator
withdrew, is revoked (``ml.services.dataset_version_revoke``): its files are deleted, its
downloads answer 410, and its owner can rebuild it without that data. The models trained
on it are revoked with it (their artefacts are no longer served) and listed as affected."""

from typing import Any

from annotation.models import Annotation, Item
from annotation.signals import item_taken_down, labels_withdrawn
from core.db import advisory_xact_lock
from ml.build.locks import NUMBER_LOCK
from ml.models import DatasetVersion
from ml.selectors import dataset_versions_holding, training_runs_on_versions
from ml.services import dataset_version_revoke


def _affected(versions: list[DatasetVersion]) -> list[dict[str, Any]]:
    """The revoked versions and the models trained on them, for ``TakedownRequest.affected``
    (a model is revoked with its version: ``TrainingRun.is_revoked``)."""
    entries = [{"kind": "dataset_version", "id": v.pk, "label": v.label} for v in versions]
    runs = training_runs_on_versions(version_ids=[v.pk for v in versions])
    entries += [
        {
            "kind": "training_run",
            "id": run.pk,
            "label": run.label,
            "dataset_version": run.dataset_version_id,
        }
        for run in runs
    ]
    return entries


def _revoke_for_takedown(
    sender: object, *, item: Item, request: Any, actor: Any, **_: Any
) -> list[dict[str, Any]]:
    # The lock a build publishes under: a build either sees this takedown before it
    # publishes, or is published before this looks (and is revoked here).
    advisory_xact_lock(NUMBER_LOCK, item.project_id)
    revoked = []
    for version in dataset_versions_holding(project_id=item.project_id, item_ids={item.pk}):
        dataset_version_revoke(
            version=version,
            actor=actor,
            reason=f"Item {item.pk} was taken down (takedown request {request.pk}).",
            payload={"item": item.pk, "takedown": request.pk},
        )
        revoked.append(version)
    return _affected(revoked)


def _revoke_for_withdrawal(
    sender: object, *, project_id: int, annotator_id: int, item_ids: list[int], actor: Any, **_: Any
) -> list[dict[str, Any]]:
    advisory_xact_lock(NUMBER_LOCK, project_id)
    revoked = []
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
        revoked.append(version)
    return _affected(revoked)


def connect() -> None:
    item_taken_down.connect(_revoke_for_takedown, dispatch_uid="ml-revoke-takedown")
    labels_withdrawn.connect(_revoke_for_withdrawal, dispatch_uid="ml-revoke-withdrawal")
