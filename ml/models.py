"""Dataset versions: immutable, content-addressed exports of a project's labels."""

import secrets

from django.conf import settings
from django.db import models

from annotation.models import Project
from core.models import Job, JobStatus


def new_pseudonym_key() -> str:
    return secrets.token_hex(32)


class DatasetVersion(Job):
    """One build of a project's data by a recipe (``ml.recipes``): a job of ``core.jobs``.

    Numbered once built (``major``.``minor``): a version that drops data or moves items
    between splits relative to the project's previous one is a major step, one that only
    adds items a minor one. Its files live in storage under ``storage_prefix`` and never
    change; ``manifest`` lists each with its size and sha256. A revoked version keeps its
    row, manifest and counts, and loses its files.
    """

    class Status(models.TextChoices):
        PENDING = JobStatus.PENDING, "Queued"
        RUNNING = JobStatus.RUNNING, "Building"
        DONE = JobStatus.DONE, "Built"
        FAILED = JobStatus.FAILED, "Failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="dataset_versions")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    recipe = models.JSONField(help_text="The canonical recipe (ml.recipes.Recipe.to_json).")
    rebuild_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="rebuilds"
    )
    major = models.PositiveIntegerField(null=True, blank=True)
    minor = models.PositiveIntegerField(null=True, blank=True)
    # Rows processed out of the total, while building: the progress bar.
    progress_done = models.PositiveBigIntegerField(default=0)
    progress_total = models.PositiveBigIntegerField(default=0)
    storage_prefix = models.CharField(max_length=300, blank=True)
    manifest = models.JSONField(default=dict, blank=True)
    # {"items": {split: n}, "labels": {split: n}, "annotators": n, "left_out": {reason:
    # {"items": n, "labels": n}}, "label_distribution": {split: {category: n}}}
    counts = models.JSONField(default=dict, blank=True)
    contamination = models.JSONField(default=dict, blank=True)
    # Which items the version holds and in which split (``ml.membership``): for numbering,
    # comparing versions and finding the versions a takedown or withdrawal touches.
    membership = models.BinaryField(default=b"", blank=True, editable=False)
    # The HMAC key of this version's pseudonyms: secret, never exported.
    pseudonym_key = models.CharField(max_length=64, default=new_pseudonym_key, editable=False)
    built_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.TextField(blank=True)
    revoked_event = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="The audit event that recorded the revocation."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "major", "minor"], name="dataset_version_number_unique"
            ),
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.project_id}: {self.label}"

    @property
    def label(self) -> str:
        if self.major is None:
            return f"build {self.pk}"
        return f"v{self.major}.{self.minor}"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def is_downloadable(self) -> bool:
        return self.status == JobStatus.DONE and not self.is_revoked
