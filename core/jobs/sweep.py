"""The sweeper: no job stays queued or running forever.

Run by Celery beat every ``CHORUS_JOB_SWEEP_SECONDS`` (``core.jobs_sweep``), and by
``manage.py jobs_sweep``. Safe to run anywhere, any number of times at once: each
decision is a conditional UPDATE on the row as it was seen.
"""

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Now

from core.db import db_now_plus
from core.jobs.dispatch import Dispatch, job_send
from core.jobs.lease import job_released_fields
from core.jobs.registry import JobKind, job_kinds
from core.models import Job, JobStatus

logger = logging.getLogger(__name__)

# Rows looked at per kind and decision in one sweep; the next sweep takes the rest.
SWEEP_BATCH = 200


@dataclass
class SweepReport:
    requeued: int = 0
    failed: int = 0
    resent: int = 0
    housekeeping: int = 0
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, kind: JobKind, what: str, count: int) -> None:
        if not count:
            return
        setattr(self, what, getattr(self, what) + count)
        self.by_kind.setdefault(kind.label, {})[what] = count


def _seen(job: Job) -> str:
    return job.heartbeat_at.strftime("%Y-%m-%d %H:%M:%S UTC") if job.heartbeat_at else "never"


def _expired_leases(kind: JobKind, report: SweepReport) -> tuple[list[Dispatch], list[Job]]:
    """Jobs whose worker stopped renewing its lease: queue them again (returned to be sent
    once committed), or fail them once they have had their attempts (returned for their
    kind's clean-up, also once committed)."""
    model = kind.model
    # A running row without a lease predates leases (or was written by hand): expired.
    expired = Q(lease_expires_at__lt=Now()) | Q(lease_expires_at__isnull=True)
    stale = list(
        model._default_manager.filter(expired, status=JobStatus.RUNNING).order_by("updated_at")[
            :SWEEP_BATCH
        ]
    )
    to_send: list[Dispatch] = []
    failed: list[Job] = []
    for job in stale:
        same = model._default_manager.filter(
            expired, pk=job.pk, status=JobStatus.RUNNING, lease_owner=job.lease_owner
        )
        last = _seen(job)
        if job.attempts >= kind.max_attempts:
            message = (
                f"Stopped after {job.attempts} attempts: the worker running it stopped "
                f"responding each time (last heartbeat {last}). It was not tried again."
            )
            if same.update(
                **job_released_fields(), status=JobStatus.FAILED, error=message, finished_at=Now()
            ):
                failed.append(job)
            continue
        message = (
            f"The worker running it stopped responding (last heartbeat {last}); queued "
            f"again (attempt {job.attempts + 1} of at most {kind.max_attempts})."
        )
        if same.update(
            **job_released_fields(), status=JobStatus.PENDING, error=message, dispatched_at=None
        ):
            to_send.append(Dispatch(kind=kind, job_id=job.pk))
    report.add(kind, "requeued", len(to_send))
    report.add(kind, "failed", len(failed))
    return to_send, failed


def _failed_tidy(kind: JobKind, failed: list[Job]) -> None:
    hook = kind.failed_hook()
    for job in failed:
        logger.warning("%s %s failed: its workers kept stopping", kind.label, job.pk)
        if hook is not None:
            # After the commit, as in the runner: a hook deletes files, which no rollback
            # brings back.
            job.refresh_from_db()
            hook(job)


def _undelivered(kind: JobKind) -> list[Dispatch]:
    """Pending jobs whose message was never sent, or was sent long ago and never picked
    up (lost with the broker, or behind a long queue): send it again. The wait before
    sending again doubles with each message already sent, so a long queue is not flooded
    with duplicates (which the lease would make harmless, but not free)."""
    grace_s = settings.CHORUS_JOB_DISPATCH_GRACE_SECONDS
    redispatch_s = settings.CHORUS_JOB_REDISPATCH_SECONDS
    candidates = (
        kind.model._default_manager.filter(status=JobStatus.PENDING)
        .filter(
            Q(dispatched_at__isnull=True, updated_at__lt=db_now_plus(-grace_s))
            | Q(dispatched_at__lt=db_now_plus(-redispatch_s))
        )
        .annotate(db_now=Now())
        .order_by("updated_at")
        .values_list("pk", "dispatched_at", "dispatches", "db_now")
    )
    due = []
    for job_id, dispatched_at, dispatches, now in candidates[:SWEEP_BATCH]:
        if dispatched_at is not None:
            wait = timedelta(seconds=redispatch_s * 2 ** min(max(dispatches - 1, 0), 6))
            if dispatched_at > now - wait:
                continue
        due.append(Dispatch(kind=kind, job_id=job_id))
    return due


def jobs_sweep() -> SweepReport:
    """Re-queue or fail jobs whose lease expired, re-send messages nobody picked up, and
    run each kind's housekeeping. Returns what it did."""
    report = SweepReport()
    for kind in job_kinds():
        with transaction.atomic():
            to_send, failed = _expired_leases(kind, report)
        _failed_tidy(kind, failed)
        resend = _undelivered(kind)
        for dispatch in to_send + resend:
            job_send(dispatch)
        report.add(kind, "resent", len(resend))
        hook = kind.housekeeping_hook()
        if hook is not None:
            report.add(kind, "housekeeping", hook())
    if report.requeued or report.failed or report.resent:
        logger.info("jobs sweep: %s", report.by_kind)
    return report
