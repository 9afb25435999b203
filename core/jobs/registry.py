"""The kinds of job this process knows: each a ``Job`` model and the task that runs it."""

from collections.abc import Callable
from dataclasses import dataclass

from django.utils.module_loading import import_string

from core.models import Job


@dataclass(frozen=True)
class JobKind:
    """How one kind of job is run, retried, given up on and tidied after.

    ``on_failed`` and ``housekeeping`` are dotted paths, imported only when used, so that
    registering a kind (every process does, at start-up) loads none of its work's modules.
    """

    model: type[Job]
    task_name: str
    queue: str
    time_limit_s: int
    # Claims after which a job whose worker keeps dying is failed instead of re-queued.
    max_attempts: int = 3
    # Celery retries for transient database errors before the job is failed.
    transient_retries: int = 5
    # ``fn(job)``, after the machinery itself failed the job (its run could not): e.g.
    # record the reason where the job's pages show it and delete its staged files.
    on_failed: str = ""
    # ``fn() -> int``, run by every sweep: e.g. delete staged files no job refers to.
    housekeeping: str = ""

    @property
    def label(self) -> str:
        return self.model._meta.label

    def failed_hook(self) -> Callable[[Job], None] | None:
        return import_string(self.on_failed) if self.on_failed else None

    def housekeeping_hook(self) -> Callable[[], int] | None:
        return import_string(self.housekeeping) if self.housekeeping else None


_KINDS: dict[str, JobKind] = {}


def job_kind_register(kind: JobKind) -> None:
    known = _KINDS.get(kind.label)
    if known is not None and known.task_name != kind.task_name:
        raise RuntimeError(f"{kind.label} is already run by {known.task_name}")
    _KINDS[kind.label] = kind


def job_kind_for(model: type[Job]) -> JobKind:
    try:
        return _KINDS[model._meta.label]
    except KeyError:
        raise LookupError(f"{model._meta.label} is not a registered job kind") from None


def job_kinds() -> list[JobKind]:
    return list(_KINDS.values())
