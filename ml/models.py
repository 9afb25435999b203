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


class TrainingRun(Job):
    """A baseline classifier trained on one dataset version: a job of ``core.jobs`` on the
    ``gpu`` queue (``ml.training``).

    What it was asked (``target``, ``params``, ``seed``, ``device_requested``, the encoder
    or backbone, the groups to report on) never changes after creation; what it found
    (``device``, ``metrics``, the artefacts under ``storage_prefix`` listed in
    ``manifest`` with their sha256, the weights' hash) is written once, when it is done.
    A run whose dataset version is revoked is revoked with it: its artefacts stop being
    served and its page says so.
    """

    class Status(models.TextChoices):
        PENDING = JobStatus.PENDING, "Queued"
        RUNNING = JobStatus.RUNNING, "Training"
        DONE = JobStatus.DONE, "Trained"
        FAILED = JobStatus.FAILED, "Failed"

    class Target(models.TextChoices):
        MAJORITY = "majority", "Majority vote"
        DAWID_SKENE = "dawid_skene", "Dawid-Skene"
        SOFT = "soft", "Soft labels (the annotators' distribution)"

    class Device(models.TextChoices):
        AUTO = "auto", "GPU when the worker has one"
        CPU = "cpu", "CPU"
        CUDA = "cuda", "GPU (CUDA)"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="training_runs")
    dataset_version = models.ForeignKey(
        DatasetVersion, on_delete=models.PROTECT, related_name="training_runs"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    modality = models.CharField(max_length=8)
    target = models.CharField(max_length=16, choices=Target.choices, default=Target.MAJORITY)
    # The canonical hyperparameters (``ml.training.params``), seed and device apart.
    params = models.JSONField(default=dict)
    seed = models.PositiveIntegerField(default=0)
    device_requested = models.CharField(max_length=8, choices=Device.choices, default=Device.AUTO)
    # A key of CHORUS_TEXT_ENCODERS (text) or CHORUS_IMAGE_BACKBONES (image, "" = from scratch).
    encoder = models.CharField(max_length=64, blank=True)
    # Item metadata keys (one, or two for their intersection) and survey questions.
    group_by = models.JSONField(default=list, blank=True)
    annotator_questions = models.JSONField(default=list, blank=True)
    # Progress while it runs: the phase ("encode", "train", "evaluate", "upload"), then the
    # epoch of at most ``epochs`` and the batch of ``batches``.
    phase = models.CharField(max_length=16, blank=True)
    epoch = models.PositiveIntegerField(default=0)
    epochs = models.PositiveIntegerField(default=0)
    batch = models.PositiveIntegerField(default=0)
    batches = models.PositiveIntegerField(default=0)
    device = models.CharField(max_length=64, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    storage_prefix = models.CharField(max_length=300, blank=True)
    manifest = models.JSONField(default=dict, blank=True)
    weights_sha256 = models.CharField(max_length=64, blank=True)
    wall_seconds = models.FloatField(null=True, blank=True)
    samples_per_second = models.FloatField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["project", "-created_at"], name="training_run_project")]

    def __str__(self) -> str:
        return f"{self.project_id}: {self.label}"

    @property
    def label(self) -> str:
        return f"run {self.pk}"

    @property
    def is_cancelled(self) -> bool:
        return self.cancel_requested_at is not None and self.status == JobStatus.FAILED

    @property
    def is_revoked(self) -> bool:
        """Trained on a version that was revoked (withdrawal or takedown)."""
        return self.dataset_version.revoked_at is not None

    @property
    def progress_fraction(self) -> float:
        """How far the training is, for the progress bar (0 to 1)."""
        if self.status == JobStatus.DONE:
            return 1.0
        if not self.epochs:
            return 0.0
        done = max(self.epoch - 1, 0) + (self.batch / self.batches if self.batches else 0.0)
        return min(done / self.epochs, 1.0)
