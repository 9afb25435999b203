"""Background jobs that finish or fail visibly, whatever dies under them.

One mechanism for every queued job (imports, analyses, dataset builds, training runs,
probes). A job is a row (a subclass of ``core.models.Job``) and a Celery task made with
``job_task``:

- **Outbox.** The row is written in the transaction that asks for the work and is the
  source of truth; ``job_enqueue`` sends the wake-up message only after that transaction
  commits, with short broker timeouts. A message that could not be sent, or that nobody
  picked up, is sent again by the sweeper.
- **Lease.** A worker claims the job by a conditional UPDATE that names it as the lease
  owner; a heartbeat thread keeps the lease alive. A redelivered message finds either a
  live lease (someone is on it: nothing to do) or an expired one (its worker died: take
  over and redo the work, which commits in one transaction or is idempotent). A run
  records its outcome only while it still holds the lease.
- **Retries.** Transient database errors (a restarted server, a deadlock) retry the task
  with backoff; any other error fails the job with a readable message.
- **Sweeper.** ``jobs_sweep`` (Celery beat, ``core.jobs_sweep``) re-queues or fails every
  job whose lease expired, re-sends what was never picked up, and runs each kind's
  housekeeping (e.g. deleting orphaned staged uploads).
"""

from core.jobs.dispatch import Dispatch, QueueUnavailable, job_enqueue
from core.jobs.lease import JobRun, LeaseLost, job_fresh_fields
from core.jobs.registry import JobKind, job_kinds
from core.jobs.runner import job_task
from core.jobs.sweep import SweepReport, jobs_sweep

__all__ = [
    "Dispatch",
    "JobKind",
    "JobRun",
    "LeaseLost",
    "QueueUnavailable",
    "SweepReport",
    "job_enqueue",
    "job_fresh_fields",
    "job_kinds",
    "job_task",
    "jobs_sweep",
]
