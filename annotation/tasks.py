"""Celery tasks for the annotation app: thin, take ids, call services, safe to run twice.

All run on the `default` queue (CELERY_TASK_DEFAULT_QUEUE); GPU work belongs to `ml`.
"""

import logging
from typing import Any

from celery import Task, shared_task
from django.db import OperationalError

from annotation import analysis, ingest, services
from annotation.models import Project

logger = logging.getLogger(__name__)

IMPORT_TIME_LIMIT_S = 2 * 3600


@shared_task(
    bind=True,
    acks_late=True,
    name="annotation.import_batch_run",
    time_limit=IMPORT_TIME_LIMIT_S,
    soft_time_limit=IMPORT_TIME_LIMIT_S - 60,
)
def import_batch_run_task(self: "Task[Any, Any]", batch_id: int) -> str:
    """Run one import batch. Not retried: the batch's status guard makes a rerun a no-op."""
    batch = ingest.import_batch_run(batch_id=batch_id)
    logger.info("import batch %s %s (task %s)", batch_id, batch.status, self.request.id)
    return str(batch.status)


@shared_task(
    bind=True,
    acks_late=True,
    name="annotation.assignments_expire",
    time_limit=300,
    soft_time_limit=270,
    # Expiring is a conditional UPDATE per assignment: repeating it is harmless.
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def assignments_expire_task(self: "Task[Any, Any]", project_id: int) -> int:
    return services.assignments_expire(project_id=project_id)


@shared_task(
    bind=True,
    acks_late=True,
    name="annotation.agreement_analysis",
    time_limit=analysis.ANALYSIS_TIME_LIMIT_S,
    soft_time_limit=analysis.ANALYSIS_TIME_LIMIT_S - 60,
)
def agreement_analysis_task(self: "Task[Any, Any]", analysis_id: int) -> str:
    """Compute a queued agreement analysis. Not retried: a failure is stored on the analysis,
    and its status guard makes a redelivered run a no-op."""
    result = analysis.analysis_run(analysis_id=analysis_id)
    status = str(result.status) if result is not None else "deleted"
    logger.info("agreement analysis %s %s (task %s)", analysis_id, status, self.request.id)
    return status


@shared_task(bind=True, acks_late=True, name="annotation.ping", time_limit=30, soft_time_limit=25)
def ping_task(self: "Task[Any, Any]") -> dict[str, Any]:
    """A worker health probe: answers and proves it reaches the database."""
    return {"reply": "pong", "projects": Project.objects.count(), "task": self.request.id}
