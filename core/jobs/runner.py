"""``job_task``: the Celery task around a job's work, the same for every kind of job."""

import logging
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

from celery import Task, current_app, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, connections, transaction

from core.db import is_transient
from core.jobs.lease import Heartbeat, JobRun, LeaseLost, job_claim
from core.jobs.registry import JobKind, job_kind_for, job_kind_register
from core.models import Job, JobStatus

logger = logging.getLogger(__name__)

Work = Callable[[JobRun[Any]], None]

# Seconds before the soft time limit interrupts the work: time to record the failure.
SOFT_LIMIT_MARGIN_S = 60


def retry_countdown(retries: int) -> float:
    """Exponential backoff with jitter: about 1, 2, 4, 8, 16 s, at most 60."""
    return min(60.0, 2.0**retries) * random.uniform(0.75, 1.25)  # noqa: S311 - jitter only


def job_task(
    *,
    model: type[Job],
    name: str,
    time_limit_s: int,
    queue: str = "default",
    max_attempts: int = 3,
    transient_retries: int = 5,
    on_failed: str = "",
    housekeeping: str = "",
) -> Callable[[Work], Task[Any, Any]]:
    """Make ``work(run)`` the Celery task ``name`` that runs jobs of ``model`` by id.

    The task claims the job's lease (or returns at once: finished, gone, or held by a
    live lease), keeps it alive with a heartbeat while ``work`` runs, and records the
    outcome: ``work`` calls ``run.complete(...)`` or ``run.fail(...)`` inside the
    transaction that stores its result; if it returns without either, the job is done.
    Transient database errors retry the task with backoff (the retry holds the same
    lease); after ``transient_retries`` of them, or on any other error, the job fails
    with a readable message. A job claimed more than ``max_attempts`` times (its workers
    kept dying) fails instead of running again.
    """
    kind = JobKind(
        model=model,
        task_name=name,
        queue=queue,
        time_limit_s=time_limit_s,
        max_attempts=max_attempts,
        transient_retries=transient_retries,
        on_failed=on_failed,
        housekeeping=housekeeping,
    )
    job_kind_register(kind)

    def decorator(work: Work) -> Task[Any, Any]:
        @shared_task(
            bind=True,
            name=name,
            acks_late=True,
            reject_on_worker_lost=True,
            ignore_result=True,
            time_limit=time_limit_s,
            soft_time_limit=max(1, time_limit_s - SOFT_LIMIT_MARGIN_S),
            max_retries=transient_retries,
        )
        def run_job(self: Task[Any, Any], job_id: int) -> str:
            return job_execute(self, kind, job_id, work)

        run_job.__doc__ = work.__doc__
        return run_job

    return decorator


def job_run_here(model: type[Job], job_id: int) -> str:
    """Run the job in this process, now, through the same claim and lease as a worker
    (for the demo and tests): a job that is finished or held by a live worker is left."""
    result = current_app.tasks[job_kind_for(model).task_name].apply(args=(job_id,))
    return str(result.result)


def _owner(task: Task[Any, Any]) -> str:
    return str(task.request.id or f"inline-{uuid.uuid4().hex}")


class _RetryHere(Exception):
    """In process there is no broker to retry through: the caller loops instead."""

    def __init__(self, countdown: float) -> None:
        super().__init__(countdown)
        self.countdown = countdown


# In process, a retry waits at most this long (a locked SQLite database frees quickly).
INLINE_RETRY_MAX_WAIT_S = 0.5


def job_execute(task: Task[Any, Any], kind: JobKind, job_id: int, work: Work) -> str:
    """Claim, run and record one job; returns the status it was left in (for the log)."""
    eager = bool(task.request.is_eager)
    owner = _owner(task)
    retries = int(task.request.retries or 0)
    while True:
        try:
            return _attempt(task, kind, job_id, work, owner=owner, eager=eager, retries=retries)
        except _RetryHere as retry:
            retries += 1
            time.sleep(retry.countdown)


def _attempt(
    task: Task[Any, Any],
    kind: JobKind,
    job_id: int,
    work: Work,
    *,
    owner: str,
    eager: bool,
    retries: int,
) -> str:
    # In process there is no other runner to hand over to: the lease lasts the time limit.
    lease_s = kind.time_limit_s if eager else settings.CHORUS_JOB_LEASE_SECONDS
    try:
        job = job_claim(kind.model, job_id, owner=owner, lease_s=lease_s)
    except DatabaseError as error:
        _retry_or_return(task, kind, job_id, error, eager=eager, retries=retries)
        raise
    if job is None:
        return _unclaimed(kind, job_id)
    if job.attempts > kind.max_attempts:
        _give_up(
            kind,
            JobRun(job=job, owner=owner),
            f"Stopped after {kind.max_attempts} attempts: the worker running it stopped "
            "each time (for example killed for memory or time). It was not tried again.",
        )
        return JobStatus.FAILED
    heartbeat = None
    run: JobRun[Any] = JobRun(job=job, owner=owner)
    if not eager:
        heartbeat = Heartbeat(
            kind.model,
            job_id,
            owner=owner,
            lease_s=lease_s,
            interval_s=settings.CHORUS_JOB_HEARTBEAT_SECONDS,
        )
        run.lost = heartbeat.lost
        heartbeat.start()
    try:
        work(run)
        if not run.finished:
            with transaction.atomic():
                run.complete()
    except LeaseLost:
        logger.warning("%s %s: lease lost to another run; result discarded", kind.label, job_id)
        return "lost"
    except SoftTimeLimitExceeded:
        minutes = max(1, kind.time_limit_s // 60)
        _give_up(kind, run, f"It ran over its time limit ({minutes} minutes) and was stopped.")
        return JobStatus.FAILED
    except Exception as error:
        if isinstance(error, DatabaseError) and is_transient(error):
            if heartbeat is not None:
                heartbeat.stop()
            _retry_or_return(task, kind, job_id, error, eager=eager, retries=retries)
            _give_up(
                kind,
                run,
                f"The database kept failing ({type(error).__name__}); it was tried "
                f"{retries + 1} times. Start it again once the database is healthy.",
            )
            return JobStatus.FAILED
        logger.exception("%s %s failed", kind.label, job_id)
        _give_up(kind, run, "It failed unexpectedly; the error is in the worker's log.")
        return JobStatus.FAILED
    finally:
        if heartbeat is not None:
            heartbeat.stop()
    return JobStatus.DONE


def _retry_or_return(
    task: Task[Any, Any],
    kind: JobKind,
    job_id: int,
    error: DatabaseError,
    *,
    eager: bool,
    retries: int,
) -> None:
    """Retry later for a transient error with retries left (raises); return for a
    permanent one or when the retries are spent."""
    if not is_transient(error) or retries >= kind.transient_retries:
        return
    countdown = retry_countdown(retries)
    logger.warning(
        "%s %s: transient database error (%s); retrying in %.1f s",
        kind.label,
        job_id,
        error,
        countdown,
    )
    # The connection may be broken: drop it so that the retry opens a fresh one. Inside
    # a transaction (in process, under a caller's atomic block) it is the caller's.
    for conn in connections.all():
        if not conn.in_atomic_block:
            conn.close_if_unusable_or_obsolete()
    if eager:
        raise _RetryHere(min(countdown, INLINE_RETRY_MAX_WAIT_S))
    # The retry is the same message (same task id), so it takes the lease over at once.
    raise task.retry(exc=error, countdown=countdown)


def _give_up(kind: JobKind, run: JobRun[Any], error: str) -> None:
    """Fail the job because its run cannot finish, then let its kind tidy up."""
    try:
        with transaction.atomic():
            run.fail(error)
    except LeaseLost:
        return
    except DatabaseError:
        # The database is away: the lease runs out and the sweeper decides later.
        logger.warning("%s %s: could not record the failure", kind.label, run.job.pk)
        return
    hook = kind.failed_hook()
    if hook is not None:
        run.job.refresh_from_db()
        hook(run.job)


def _unclaimed(kind: JobKind, job_id: int) -> str:
    row = kind.model._default_manager.filter(pk=job_id).values("status", "lease_owner").first()
    if row is None:
        logger.info("%s %s no longer exists", kind.label, job_id)
        return "deleted"
    if row["status"] == JobStatus.RUNNING:
        logger.info("%s %s is held by %s: nothing to do", kind.label, job_id, row["lease_owner"])
        return "held"
    return str(row["status"])
