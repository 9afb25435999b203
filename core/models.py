"""Shared base models. ``core`` imports no other app."""

import secrets
from typing import Any

from django.contrib.auth.models import AbstractUser
from django.db import models
from rest_framework.authtoken.models import Token

PSEUDONYM_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def new_pseudonym() -> str:
    """A random, stable public handle: the only identity researchers and exports see."""
    return "a-" + "".join(secrets.choice(PSEUDONYM_ALPHABET) for _ in range(10))


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class JobStatus(models.TextChoices):
    """The states every queued job goes through (``core.jobs``): pending until a worker
    claims it, running while that worker's lease is alive, then done or failed."""

    PENDING = "pending", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class Job(TimeStampedModel):
    """A unit of background work whose row is the source of truth (``core.jobs``).

    The row is written in the transaction that asks for the work; the Celery message is
    only a wake-up call sent after commit (a transactional outbox), which the sweeper sends
    again while nobody has picked the job up. A worker works under a lease: it names itself
    in ``lease_owner`` and a heartbeat keeps ``lease_expires_at`` in the future, so a job
    whose lease is alive is being worked on and one whose lease has expired lost its worker
    and may be taken over. Times are the database's clock, never a web server's.

    Subclasses may redeclare ``status`` with their own labels for the same four values.
    """

    status = models.CharField(max_length=8, choices=JobStatus.choices, default=JobStatus.PENDING)
    # Claims so far (first runs, takeovers after a dead worker, transient-error retries).
    attempts = models.PositiveSmallIntegerField(default=0)
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # The outbox: when the wake-up message last reached the broker, and why it did not.
    dispatched_at = models.DateTimeField(null=True, blank=True)
    dispatch_error = models.CharField(max_length=500, blank=True)
    dispatches = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Why the job failed, or why its last attempt was abandoned and it was queued again.
    error = models.TextField(blank=True)

    class Meta:
        abstract = True

    @property
    def is_finished(self) -> bool:
        return self.status in (JobStatus.DONE, JobStatus.FAILED)


class Role(models.TextChoices):
    RESEARCHER = "researcher", "Researcher"
    ANNOTATOR = "annotator", "Annotator"
    AUDITOR = "auditor", "Auditor"


class User(AbstractUser):
    """A person using Chorus. Staff users are administrators whatever their role."""

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.ANNOTATOR)
    pseudonym = models.CharField(max_length=32, unique=True, default=new_pseudonym, editable=False)

    @property
    def is_researcher(self) -> bool:
        return self.role == Role.RESEARCHER

    @property
    def is_annotator(self) -> bool:
        return self.role == Role.ANNOTATOR

    @property
    def is_auditor(self) -> bool:
        return self.role == Role.AUDITOR

    # Set by ``set_unusable_password`` until the next save.
    _password_disabled = False

    def set_unusable_password(self) -> None:
        super().set_unusable_password()
        self._password_disabled = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save; a changed or disabled password also ends the user's API tokens.

        Django marks a password change the way ``AbstractBaseUser.save`` reads it
        (``_password``, set by ``set_password`` and cleared again for mere hash upgrades);
        a token issued for the old password must not outlive it.
        """
        # ``_password`` is Django's own marker (AbstractBaseUser); the stubs leave it out.
        changed_marker = self._password  # type: ignore[attr-defined]
        password_changed = not self._state.adding and (
            changed_marker is not None or self._password_disabled
        )
        super().save(*args, **kwargs)
        if password_changed:
            self._password_disabled = False
            Token.objects.filter(user=self).delete()


class LoginFailureCounter(models.Model):
    """Events per key in a fixed window, for rate limits (``core.services.rate_limit_hit``).

    Incremented with a single ``UPDATE ... SET count = count + 1`` so concurrent
    requests cannot slip past the limit. (Named for its first use; sign-in failures are now
    django-axes' ``AccessAttempt`` rows, see ``core.lockout``.)
    """

    key = models.CharField(max_length=200, unique=True)
    window_started_at = models.DateTimeField()
    failures = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.key}: {self.failures} failures"
