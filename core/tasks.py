"""Celery tasks of the core: the job sweeper (``core.jobs``), scheduled by beat."""

import logging
from typing import Any

from celery import Task, shared_task

from core.jobs import jobs_sweep

logger = logging.getLogger(__name__)

JOBS_SWEEP_TASK = "core.jobs_sweep"


@shared_task(
    bind=True,
    name=JOBS_SWEEP_TASK,
    ignore_result=True,
    time_limit=300,
    soft_time_limit=270,
    # A missed sweep costs nothing: beat sends the next one.
    expires=240,
)
def jobs_sweep_task(self: "Task[Any, Any]") -> dict[str, Any]:
    """Re-queue or fail jobs whose worker died, re-send messages nobody picked up, and
    tidy each kind's staged files."""
    report = jobs_sweep()
    return {
        "requeued": report.requeued,
        "failed": report.failed,
        "resent": report.resent,
        "housekeeping": report.housekeeping,
    }
