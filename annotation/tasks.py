"""Celery tasks for the annotation app: thin, take ids, call services, safe to run twice.

All run on the `default` queue (CELERY_TASK_DEFAULT_QUEUE); GPU work belongs to `ml`.
Import batches and analyses are jobs of ``core.jobs`` (``job_task``): one lease, retry and
outbox mechanism, which this module only configures. Services enqueue by the registered
names (``annotation.task_names``) rather than importing this module;
``AnnotationConfig.ready`` imports it so that every process has them registered. The
work's modules (ingest, analysis: pandas and matplotlib) are imported inside the tasks, so
registering them costs a web process nothing.
"""

import logging
from typing import Any

from celery import Task, shared_task
from django.db import OperationalError

from annotation import services
from annotation.models import AgreementAnalysis, ImportBatch, Project, ProjectStatus
from annotation.task_names import (
    AGREEMENT_ANALYSIS_TASK,
    ANALYSIS_TIME_LIMIT_S,
    IMPORT_BATCH_RUN_TASK,
    IMPORT_TIME_LIMIT_S,
)
from core.jobs import JobRun, job_task

logger = logging.getLogger(__name__)


@job_task(
    model=ImportBatch,
    name=IMPORT_BATCH_RUN_TASK,
    time_limit_s=IMPORT_TIME_LIMIT_S,
    on_failed="annotation.ingest.import_batch_failed",
    housekeeping="annotation.ingest.import_uploads_sweep",
)
def import_batch_run_task(run: JobRun[ImportBatch]) -> None:
    """Import one batch's rows, all or none (``annotation.ingest``)."""
    from annotation.ingest import import_batch_execute

    import_batch_execute(run)


@job_task(model=AgreementAnalysis, name=AGREEMENT_ANALYSIS_TASK, time_limit_s=ANALYSIS_TIME_LIMIT_S)
def agreement_analysis_task(run: JobRun[AgreementAnalysis]) -> None:
    """Compute a queued agreement analysis (``annotation.analysis``)."""
    from annotation.analysis import analysis_execute

    analysis_execute(run)


@shared_task(
    bind=True,
    acks_late=True,
    name="annotation.assignments_expire_sweep",
    ignore_result=True,
    time_limit=300,
    soft_time_limit=270,
    # Expiring is a conditional UPDATE per assignment: repeating it is harmless.
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def assignments_expire_sweep_task(self: "Task[Any, Any]") -> int:
    """Return every open project's abandoned slots to the pool (Celery beat, every few
    minutes), so that free slots and progress are right even while nobody asks for a next
    item (``assignment_next`` expires its own project's on demand). Only open projects hand
    out items. Each call frees at most the service's batch; the next sweep takes the rest."""
    project_ids = list(
        Project.objects.filter(status=ProjectStatus.OPEN).values_list("pk", flat=True)
    )
    expired = sum(services.assignments_expire(project_id=pk) for pk in project_ids)
    if expired:
        logger.info("expired %s assignments (task %s)", expired, self.request.id)
    return expired


@shared_task(
    bind=True,
    acks_late=True,
    name="annotation.ping",
    ignore_result=False,
    time_limit=30,
    soft_time_limit=25,
)
def ping_task(self: "Task[Any, Any]") -> dict[str, Any]:
    """A worker health probe: answers and proves it reaches the database."""
    return {"reply": "pong", "projects": Project.objects.count(), "task": self.request.id}
