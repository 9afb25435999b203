"""Training run writes: start (queue a run), train here and now (the command), cancel.

A run is created from a dataset version and a request (``ml.training.params``), queued
as a job of ``core.jobs`` on the ``gpu`` queue (``ml.tasks``), and trained by
``ml.training.run``. Only the project's owner and staff start or cancel runs; the
selectors decide who reads.
"""

from typing import Any

from django.db import transaction
from django.db.models.functions import Now

from annotation.schemas import LabelSchema
from annotation.surveys import parse_definition
from core.errors import Conflict, PermissionDenied, ValidationFailed
from core.jobs import job_enqueue
from core.jobs.runner import job_run_here
from core.models import JobStatus, User
from ml.models import DatasetVersion, TrainingRun
from ml.training.params import RunParams, run_params_from_json
from ml.training.registry import default_text_encoder, image_backbones, text_encoders
from provenance.services import audit_record


def _check_manages(version: DatasetVersion, actor: User) -> None:
    if not version.project.is_managed_by(actor):
        raise PermissionDenied(
            "Only the project's owner or staff can train on its datasets.",
            code="not_project_owner",
        )


def training_params_clean(*, version: DatasetVersion, request: object) -> RunParams:
    """Validate a run request against the version and the project it is trained on.
    Raises ``ValidationFailed`` (``invalid_training_params``, or ``not_trainable`` for a
    project without classes) and ``Conflict`` for a version that cannot be trained on."""
    project = version.project
    if not LabelSchema.from_json(project.label_schema).is_single_choice:
        raise ValidationFailed(
            "Only single-choice (nominal or ordinal) projects have classes to train on.",
            code="not_trainable",
        )
    if version.is_revoked:
        raise Conflict(
            f"{version.label} was revoked; train on its rebuild instead.", code="revoked"
        )
    if version.status != DatasetVersion.Status.DONE:
        raise Conflict(f"{version.label} is not built ({version.status}).", code="not_built")
    return run_params_from_json(
        request,
        modality=project.modality,
        shipped_targets=tuple(version.recipe.get("targets", ())),
        questions=tuple(question.key for question in parse_definition(project.survey)),
        encoders=tuple(text_encoders()),
        backbones=tuple(image_backbones()),
        default_encoder=default_text_encoder(),
    )


def _create(*, version: DatasetVersion, actor: User, params: RunParams) -> TrainingRun:
    run = TrainingRun(
        project=version.project,
        dataset_version=version,
        created_by=actor,
        modality=version.project.modality,
        target=params.target,
        params=params.stored_params(),
        seed=params.seed,
        device_requested=params.device,
        encoder=params.encoder,
        group_by=list(params.group_by),
        annotator_questions=list(params.annotator_questions),
    )
    run.full_clean()
    run.save()
    audit_record(
        actor=actor,
        action="training.create",
        obj=run,
        payload={
            "project": version.project_id,
            "dataset_version": version.pk,
            "target": params.target,
            "seed": params.seed,
            "encoder": params.encoder,
            "params": params.stored_params(),
        },
    )
    return run


def training_run_create(*, version: DatasetVersion, actor: User, request: object) -> TrainingRun:
    """Queue a training run on ``version``. Raises ``ValidationFailed`` for a bad request
    and ``QueueUnavailable`` (503) when the queue cannot be reached (the run stays queued
    and starts once the queue is back)."""
    _check_manages(version, actor)
    params = training_params_clean(version=version, request=request)
    with transaction.atomic():
        run = _create(version=version, actor=actor, params=params)
    job_enqueue(run).raise_if_failed(what="The training run")
    return run


def training_run_train_now(*, version: DatasetVersion, actor: User, request: object) -> TrainingRun:
    """Train in this process, now (``manage.py train_baseline``, the demo), through the
    same job as a worker's run."""
    _check_manages(version, actor)
    params = training_params_clean(version=version, request=request)
    with transaction.atomic():
        run = _create(version=version, actor=actor, params=params)
    job_run_here(TrainingRun, run.pk)
    run.refresh_from_db()
    return run


def training_run_cancel(*, run: TrainingRun, actor: User) -> TrainingRun:
    """Cancel a queued run at once, or ask a running one to stop (its worker notices
    within seconds and records it failed with "Cancelled"). A finished run cannot be
    cancelled."""
    _check_manages(run.dataset_version, actor)
    with transaction.atomic():
        locked = TrainingRun.objects.select_for_update().get(pk=run.pk)
        if locked.is_finished:
            raise Conflict(f"{locked.label} has finished.", code="finished")
        if locked.cancel_requested_at is not None:
            return locked
        fields: dict[str, Any] = {"cancel_requested_at": Now()}
        if locked.status == JobStatus.PENDING:
            fields |= {
                "status": JobStatus.FAILED,
                "finished_at": Now(),
                "error": "Cancelled before it started.",
            }
        TrainingRun.objects.filter(pk=locked.pk).update(**fields)
        audit_record(
            actor=actor,
            action="training.cancel",
            obj=locked,
            payload={"project": locked.project_id, "status": locked.status},
        )
    run.refresh_from_db()
    return run
