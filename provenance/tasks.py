"""Celery tasks for provenance: thin, call services, safe to run twice."""

import logging
from typing import Any

from celery import Task, shared_task

from provenance import services

logger = logging.getLogger(__name__)

CHAIN_CHECK_TIME_LIMIT_S = 3600


@shared_task(
    bind=True,
    name="provenance.audit_chain_checkpoint_advance",
    time_limit=CHAIN_CHECK_TIME_LIMIT_S,
    soft_time_limit=CHAIN_CHECK_TIME_LIMIT_S - 60,
)
def audit_chain_checkpoint_advance_task(self: "Task[Any, Any]", full: bool = False) -> bool:
    """Check the audit chain and move its checkpoint. Not retried: the next scheduled run
    checks again, and a rerun only re-verifies what the checkpoint has not passed yet."""
    report = services.audit_chain_checkpoint_advance(full=full)
    if report.ok:
        logger.info(
            "audit chain intact through #%s (%s events checked, task %s)",
            report.last_seq,
            report.events_checked,
            self.request.id,
        )
    else:
        logger.error(
            "audit chain broken at #%s: %s (task %s)",
            report.first_broken_seq,
            report.reason,
            self.request.id,
        )
    return report.ok
