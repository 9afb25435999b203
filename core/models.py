"""Shared base models. ``core`` imports no other app."""

import secrets

from django.contrib.auth.models import AbstractUser
from django.db import models

PSEUDONYM_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def new_pseudonym() -> str:
    """A random, stable public handle: the only identity researchers and exports see."""
    return "a-" + "".join(secrets.choice(PSEUDONYM_ALPHABET) for _ in range(10))


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


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


class LoginFailureCounter(models.Model):
    """Failed sign-ins per key (username or client address) in a fixed window.

    Incremented with a single ``UPDATE ... SET count = count + 1`` so concurrent
    attempts cannot slip past the limit.
    """

    key = models.CharField(max_length=200, unique=True)
    window_started_at = models.DateTimeField()
    failures = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.key}: {self.failures} failures"
