"""Celery tasks for the annotation app: thin, take ids, call services, safe to run twice.

All run on the `default` queue (CELERY_TASK_DEFAULT_QUEUE); GPU work belongs to `ml`.
Services enqueue these by their registered names (``annotation.task_names``) rather than
importing this module; ``AnnotationConfig.ready`` imports it so that every process has them
registered. The work's modules (ingest, analysis: pandas and matplotlib) are imported
inside the tasks, so registering them costs a web process nothing.
"""

import logging
from typing import Any

from celery import Task, shared_task
from django.db import OperationalError

from annotation import services
from annotation.models import Project, ProjectStatus
from annotation.task_names import (
    AGREEMENT_ANALYSIS_TASK,
    ANALYSIS_TIME_LIMIT_S,
    IMPORT_BATCH_RUN_TASK,
    IMPORT_TIME_LIMIT_S,
)

logger = logging.getLogger(__name__)


@shared_task(
    bind=True,
    acks_late=True,
    name=IMPORT_BATCH_RUN_TASK,
    time_limit=IMPORT_TIME_LIMIT_S,
    soft_time_limit=IMPORT_TIME_LIMIT_S - 60,
)
def import_batch_run_task(self: "Task[Any, Any]", batch_id: int) -> str:
    """Run one import batch. Not retried: the batch's status guard makes a rerun a no-op."""
    from annotation.ingest import import_batch_run

    batch = import_batch_run(batch_id=batch_id)
    logger.info("import batch %s %s (task %s)", batch_id, batch.status, self.request.id)
    return str(batch.status)


@shared_task(
    bind=True,
    acks_late=True,
    name="annotation.assignments_expire_sweep",
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
    name=AGREEMENT_ANALYSIS_TASK,
    time_limit=ANALYSIS_TIME_LIMIT_S,
    soft_time_limit=ANALYSIS_TIME_LIMIT_S - 60,
)
def agreement_analysis_task(self: "Task[Any, Any]", analysis_id: int) -> str:
    """Compute a queued agreement analysis. Not retried: a failure is stored on the analysis,
    and its status guard makes a redelivered run a no-op."""
    from annotation.analysis import analysis_run

    result = analysis_run(analysis_id=analysis_id)
    status = str(result.status) if result is not None else "deleted"
    logger.info("agreement analysis %s %s (task %s)", analysis_id, status, self.request.id)
    return status


@shared_task(bind=True, acks_late=True, name="annotation.ping", time_limit=30, soft_time_limit=25)
def ping_task(self: "Task[Any, Any]") -> dict[str, Any]:
    """A worker health probe: answers and proves it reaches the database."""
    return {"reply": "pong", "projects": Project.objects.count(), "task": self.request.id}
