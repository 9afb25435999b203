"""Claiming a job under a lease, keeping the lease alive, recording the outcome under it.

Every write here is a conditional UPDATE evaluated by the database, on the database's
clock: two workers cannot both hold a job, and a worker whose lease was taken over cannot
record a result over its successor's.
"""

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from django.db import DatabaseError, connections
from django.db.models import F, Q
from django.db.models.functions import Coalesce, Now

from core.db import db_now_plus
from core.models import Job, JobStatus

logger = logging.getLogger(__name__)

J = TypeVar("J", bound=Job)


class LeaseLost(Exception):
    """This run no longer holds the job's lease: another worker took it over, or the
    sweeper gave up on it. The run must not record anything; its transaction rolls back."""


def job_released_fields() -> dict[str, Any]:
    """The fields that end a lease, for ``.update(**...)``: whoever held it holds it no
    more (the job is finished, or queued again for someone else)."""
    return {"lease_owner": "", "lease_expires_at": None, "updated_at": Now()}


def job_fresh_fields() -> dict[str, Any]:
    """The fields that queue an existing job row afresh, for ``.update(**...)``: someone
    asked for the work again, so earlier attempts and messages no longer count. A run
    still holding the old lease loses it (it can no longer record its outcome)."""
    return {
        **job_released_fields(),
        "status": JobStatus.PENDING,
        "attempts": 0,
        "heartbeat_at": None,
        "dispatched_at": None,
        "dispatch_error": "",
        "dispatches": 0,
        "started_at": None,
        "finished_at": None,
        "error": "",
    }


def _claimable(owner: str) -> Q:
    # Pending; or running under a lease that expired (its worker died) or that this very
    # message holds (Celery redelivers or retries a message only once its earlier
    # delivery has stopped, so the earlier run is gone).
    return Q(status=JobStatus.PENDING) | Q(
        Q(status=JobStatus.RUNNING)
        & (Q(lease_expires_at__lt=Now()) | Q(lease_expires_at__isnull=True) | Q(lease_owner=owner))
    )


def job_claim(model: type[J], job_id: int, *, owner: str, lease_s: float) -> J | None:
    """Take the job's lease for ``owner`` and return the claimed row, or ``None`` when it
    is finished, gone, or held by a live lease of someone else's."""
    claimed = (
        model._default_manager.filter(pk=job_id)
        .filter(_claimable(owner))
        .update(
            status=JobStatus.RUNNING,
            lease_owner=owner,
            lease_expires_at=db_now_plus(lease_s),
            heartbeat_at=Now(),
            attempts=F("attempts") + 1,
            started_at=Coalesce("started_at", Now()),
            updated_at=Now(),
        )
    )
    if not claimed:
        return None
    return model._default_manager.get(pk=job_id)


class Heartbeat(threading.Thread):
    """Extends the lease every ``interval_s`` from its own database connection, so a job
    working inside one long transaction still shows it is alive. Stops when told to, or
    when the lease is no longer this run's (``lost`` is then set)."""

    def __init__(
        self, model: type[Job], job_id: int, *, owner: str, lease_s: float, interval_s: float
    ) -> None:
        super().__init__(name=f"heartbeat-{model._meta.label}-{job_id}", daemon=True)
        self.model, self.job_id, self.owner = model, job_id, owner
        self.lease_s, self.interval_s = lease_s, interval_s
        self.lost = threading.Event()
        self._stopping = threading.Event()

    def run(self) -> None:
        try:
            while not self._stopping.wait(self.interval_s):
                if not self._beat():
                    self.lost.set()
                    return
        finally:
            # Django connections belong to the thread that opened them.
            connections.close_all()

    def _beat(self) -> bool:
        try:
            return bool(
                self.model._default_manager.filter(
                    pk=self.job_id, status=JobStatus.RUNNING, lease_owner=self.owner
                ).update(lease_expires_at=db_now_plus(self.lease_s), heartbeat_at=Now())
            )
        except DatabaseError:
            # The database is away: keep trying; if it stays away past the lease, the
            # job is taken over, which is what should happen.
            logger.warning("heartbeat of %s %s failed", self.model._meta.label, self.job_id)
            connections.close_all()
            return True

    def stop(self) -> None:
        self._stopping.set()
        if self.is_alive():
            self.join(timeout=self.interval_s + 5)


@dataclass
class JobRun(Generic[J]):
    """What a job's work gets: the claimed row and the means to record its outcome."""

    job: J
    owner: str
    lost: threading.Event = field(default_factory=threading.Event)
    finished: bool = False

    def complete(self, **fields: Any) -> None:
        """Mark the job done (with ``fields`` of the model set), in the caller's
        transaction. Raises ``LeaseLost`` if this run's lease is gone."""
        self._finish(JobStatus.DONE, error="", **fields)

    def fail(self, error: str, **fields: Any) -> None:
        """Mark the job failed with a message for its pages, like ``complete``."""
        self._finish(JobStatus.FAILED, error=error, **fields)

    def check(self) -> None:
        """Raise ``LeaseLost`` if the heartbeat saw the lease go: long work calls this
        between steps to stop early instead of finishing work nobody will keep."""
        if self.lost.is_set():
            raise LeaseLost(f"{self.job._meta.label} {self.job.pk}")

    def _finish(self, status: str, **fields: Any) -> None:
        updated = (
            type(self.job)
            ._default_manager.filter(
                pk=self.job.pk, status=JobStatus.RUNNING, lease_owner=self.owner
            )
            .update(**job_released_fields(), status=status, finished_at=Now(), **fields)
        )
        if not updated:
            raise LeaseLost(f"{self.job._meta.label} {self.job.pk}")
        self.finished = True
