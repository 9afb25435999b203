"""Worker-side hygiene: every task starts on a database connection that works.

Celery's Django fixup closes unusable connections only every ``CELERY_DB_REUSE_MAX``
tasks, so after a PostgreSQL restart a worker failed task after task with "the
connection is closed". Before and after each task we drop connections that errored or
outlived ``CONN_MAX_AGE``; with ``CONN_HEALTH_CHECKS`` the next query first checks the
kept one. Connected in ``CoreConfig.ready``; in-process (eager) tasks are left alone,
since they run inside the caller's transaction.
"""

from typing import Any

from celery.signals import task_postrun, task_prerun
from django.db import close_old_connections


def _fresh_connections(task: Any = None, **_: Any) -> None:
    if task is not None and getattr(task.request, "is_eager", False):
        return
    close_old_connections()


def connect() -> None:
    task_prerun.connect(_fresh_connections, weak=False, dispatch_uid="chorus-db-prerun")
    task_postrun.connect(_fresh_connections, weak=False, dispatch_uid="chorus-db-postrun")
