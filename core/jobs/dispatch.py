"""The outbox: a job's wake-up message goes to the broker only after its row commits.

The row is what matters: a message that could not be sent (broker down or hung) leaves
the job pending with ``dispatch_error`` set, and the sweeper sends it again. Sending
waits on the broker for about a second at most (``CELERY_BROKER_TRANSPORT_OPTIONS``
socket timeouts and ``CHORUS_JOB_PUBLISH_RETRY_POLICY``), so a hung broker costs a
request that long, not a gunicorn timeout.
"""

import logging
from dataclasses import dataclass

from celery import current_app
from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import F
from django.db.models.functions import Now

from core.errors import ApplicationError
from core.jobs.registry import JobKind, job_kind_for
from core.models import Job, JobStatus

logger = logging.getLogger(__name__)

# Long enough for any broker error message; the column holds 500 characters.
DISPATCH_ERROR_CHARS = 480


class QueueUnavailable(ApplicationError):
    """The job is saved but its message could not reach the job queue (HTTP 503)."""

    status_code = 503
    default_code = "queue_unavailable"


@dataclass
class Dispatch:
    """The fate of one job's message: ``sent`` is None until the transaction commits."""

    kind: JobKind
    job_id: int
    sent: bool | None = None
    error: str = ""

    def raise_if_failed(self, *, what: str = "The job") -> None:
        """Raise ``QueueUnavailable`` if the message could not be sent: for a request that
        queued the job, so its client hears "saved, will start later" as a 503 with the
        job's id, not a success and not a lost upload."""
        if self.sent is not False:
            return
        retry_s = settings.CHORUS_JOB_SWEEP_SECONDS
        raise QueueUnavailable(
            f"{what} is saved (id {self.job_id}) but the job queue cannot be reached right "
            "now. It will start by itself once the queue is back; check its status instead "
            "of sending it again.",
            extra={"job": self.job_id, "status": JobStatus.PENDING, "retry_after_seconds": retry_s},
        )


def job_enqueue(job: Job) -> Dispatch:
    """Send the job's message once the current transaction commits (at once outside one).

    Returns the ``Dispatch``; after the outermost transaction has committed its ``sent``
    says whether the broker took the message. In the embedded runtime (no broker,
    ``CELERY_TASK_ALWAYS_EAGER``) the job runs here, in process, when the transaction
    commits, and its errors propagate.
    """
    dispatch = Dispatch(kind=job_kind_for(type(job)), job_id=job.pk)
    transaction.on_commit(lambda: job_send(dispatch))
    return dispatch


def job_send(dispatch: Dispatch) -> Dispatch:
    """Send the message now and record the outcome on the row. Never raises for a broker
    failure (the row keeps it: ``dispatch_error``, and the sweeper tries again)."""
    kind, job_id = dispatch.kind, dispatch.job_id
    task = current_app.tasks[kind.task_name]
    if current_app.conf.task_always_eager:
        # In process: errors are the job's own and must propagate, as from any call.
        task.apply_async(args=(job_id,), queue=kind.queue)
        dispatch.sent = True
        return dispatch
    try:
        task.apply_async(
            args=(job_id,),
            queue=kind.queue,
            retry=True,
            retry_policy=settings.CHORUS_JOB_PUBLISH_RETRY_POLICY,
        )
    except Exception as error:  # noqa: BLE001 - any failure to publish: kombu, redis, socket
        dispatch.sent = False
        dispatch.error = f"{type(error).__name__}: {error}"[:DISPATCH_ERROR_CHARS]
        logger.warning("could not queue %s %s: %s", kind.label, job_id, dispatch.error)
        _record(kind, job_id, dispatch_error=dispatch.error)
        return dispatch
    dispatch.sent = True
    _record(kind, job_id, dispatched_at=Now(), dispatch_error="", dispatches=F("dispatches") + 1)
    return dispatch


def _record(kind: JobKind, job_id: int, **fields: object) -> None:
    try:
        kind.model._default_manager.filter(pk=job_id).update(**fields)
    except DatabaseError:
        # The message state is a hint for the sweeper; losing it costs a duplicate message
        # at worst, which the lease makes harmless.
        logger.warning("could not record the dispatch of %s %s", kind.label, job_id)
