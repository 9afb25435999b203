"""Dataset version writes: create (queue a build), dry run, rebuild, revoke.

A version is created from a recipe (``ml.recipes``) and built by a job of ``core.jobs``
(``ml.tasks``), or here and now by ``dataset_version_build_now`` (the command). Only the
project's owner and staff create, rebuild or revoke; the selectors decide who reads.
"""

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models.functions import Now

from annotation.models import Project
from core.errors import Conflict, PermissionDenied
from core.jobs import job_enqueue, job_fresh_fields
from core.jobs.runner import job_run_here
from core.models import User
from ml.models import DatasetVersion
from ml.recipes import Recipe, recipe_from_json
from ml.storage import prefix_delete
from provenance.services import audit_record


def _check_manages(project: Project, actor: User) -> None:
    if not project.is_managed_by(actor):
        raise PermissionDenied(
            "Only the project's owner or staff can build its datasets.", code="not_project_owner"
        )


@dataclass(frozen=True)
class DryRun:
    """What a recipe would ship and leave out, per reason, without building anything."""

    recipe: Recipe
    items: int
    labels: int
    annotators: int
    left_out: dict[str, dict[str, int]]


def dataset_version_dry_run(*, project: Project, actor: User, recipe: object) -> DryRun:
    """Apply the recipe's policies to the project's data as it is now and count."""
    _check_manages(project, actor)
    cleaned = recipe_from_json(recipe)
    # Imported here: pandas stays out of web start-up.
    from ml.build.collect import collect

    collected = collect(project, cleaned)
    return DryRun(
        recipe=cleaned,
        items=len(collected.items),
        labels=len(collected.annotations),
        annotators=len(collected.annotators),
        left_out=collected.left_out_counts(),
    )


def _create(
    *, project: Project, actor: User, recipe: Recipe, rebuild_of: DatasetVersion | None
) -> DatasetVersion:
    version = DatasetVersion(
        project=project, created_by=actor, recipe=recipe.to_json(), rebuild_of=rebuild_of
    )
    version.save()
    audit_record(
        actor=actor,
        action="dataset.create",
        obj=version,
        payload={
            "project": project.pk,
            "recipe": recipe.to_json(),
            "rebuild_of": rebuild_of.pk if rebuild_of is not None else None,
        },
    )
    return version


def dataset_version_create(*, project: Project, actor: User, recipe: object) -> DatasetVersion:
    """Queue the build of a new version of ``project`` by ``recipe`` (every field
    optional). Raises ``ValidationFailed(code="invalid_recipe")`` for a bad recipe and
    ``QueueUnavailable`` (503) when the job queue cannot be reached (the version is kept
    queued and built once the queue is back)."""
    _check_manages(project, actor)
    cleaned = recipe_from_json(recipe)
    with transaction.atomic():
        version = _create(project=project, actor=actor, recipe=cleaned, rebuild_of=None)
    job_enqueue(version).raise_if_failed(what="The dataset build")
    return version


def dataset_version_build_now(*, project: Project, actor: User, recipe: object) -> DatasetVersion:
    """Build a new version in this process, now (``manage.py export_dataset``), through
    the same job as a worker's build."""
    _check_manages(project, actor)
    cleaned = recipe_from_json(recipe)
    with transaction.atomic():
        version = _create(project=project, actor=actor, recipe=cleaned, rebuild_of=None)
    job_run_here(DatasetVersion, version.pk)
    version.refresh_from_db()
    return version


def dataset_version_rebuild(*, version: DatasetVersion, actor: User) -> DatasetVersion:
    """Queue a new version of the same project by the same recipe (after a revocation,
    it ships without the data that caused it)."""
    _check_manages(version.project, actor)
    recipe = recipe_from_json(version.recipe)
    with transaction.atomic():
        rebuilt = _create(project=version.project, actor=actor, recipe=recipe, rebuild_of=version)
    job_enqueue(rebuilt).raise_if_failed(what="The dataset build")
    return rebuilt


def dataset_version_retry(*, version: DatasetVersion, actor: User) -> DatasetVersion:
    """Queue a failed build again (the same row, from scratch)."""
    _check_manages(version.project, actor)
    with transaction.atomic():
        updated = DatasetVersion.objects.filter(
            pk=version.pk, status=DatasetVersion.Status.FAILED
        ).update(**job_fresh_fields(), progress_done=0)
        if not updated:
            raise Conflict("Only a failed build can be retried.", code="not_failed")
    job_enqueue(version).raise_if_failed(what="The dataset build")
    version.refresh_from_db()
    return version


def dataset_version_revoke(
    *, version: DatasetVersion, actor: User | None, reason: str, payload: dict[str, Any]
) -> bool:
    """Revoke a built version: record why (and the audit event), delete its bundle files
    from storage, keep its row, manifest and counts. Returns False if it was revoked
    already. ``actor`` is None when Chorus revokes by itself (a withdrawal, a takedown)."""
    with transaction.atomic():
        locked = DatasetVersion.objects.select_for_update().get(pk=version.pk)
        if locked.revoked_at is not None:
            return False
        event = audit_record(
            actor=actor,
            action="dataset.revoke",
            obj=locked,
            payload={"reason": reason, **payload},
        )
        DatasetVersion.objects.filter(pk=locked.pk).update(
            revoked_at=Now(), revoked_reason=reason, revoked_event=event.pk
        )
        prefix = locked.storage_prefix
        transaction.on_commit(lambda: prefix_delete(prefix))
    return True
