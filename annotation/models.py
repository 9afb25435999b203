"""Projects, items, enrolments, assignments and annotations.

Rules live in the ``services`` package; models hold data, constraints and small derived facts.
"""

import random
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from core.models import Job, JobStatus, TimeStampedModel, User
from provenance.models import ConsentRecord, Source


class Modality(models.TextChoices):
    IMAGE = "image", "Images"
    TEXT = "text", "Texts"


class ProjectStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


class CompensationUnit(models.TextChoices):
    PER_ITEM = "per_item", "per item"
    PER_HOUR = "per_hour", "per hour"


class AssignmentStrategy(models.TextChoices):
    LEAST_LABELED = "least_labeled", "Least-labeled first"
    MOST_CONTESTED = "most_contested", "Most contested first"


class ControlKind(models.TextChoices):
    """Quality-control items: answered by the researcher, never revealed as such."""

    NONE = "", "Regular item"
    GOLD = "gold", "Gold item"
    ATTENTION = "attention", "Attention check"


class SubjectConsent(models.TextChoices):
    """Consent of the people an item shows (GDPR: an identifiable person's image is personal
    data)."""

    NOT_APPLICABLE = "not_applicable", "Shows no identifiable person"
    OBTAINED = "obtained", "Consent obtained"
    NOT_OBTAINED = "not_obtained", "Consent not obtained"
    UNKNOWN = "unknown", "Unknown"


class ProjectQuerySet(models.QuerySet["Project"]):
    def managed_by(self, user: User) -> "ProjectQuerySet":
        """The projects ``user`` may change: the queryset form of ``Project.is_managed_by``.

        Every selector, page and template that asks "may this user manage the project?"
        asks one of the two, so a demoted owner loses control everywhere at once.
        """
        if user.is_staff:
            return self.all()
        if not user.is_researcher:
            return self.none()
        return self.filter(owner=user)


class Project(TimeStampedModel):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_projects"
    )
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    instructions = models.TextField(help_text="Markdown, shown to annotators as written.")
    modality = models.CharField(max_length=8, choices=Modality.choices)
    label_schema = models.JSONField(help_text="See annotation.schemas.LabelSchema.")
    annotations_per_item = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    status = models.CharField(
        max_length=8, choices=ProjectStatus.choices, default=ProjectStatus.DRAFT, db_index=True
    )
    compensation_amount = models.DecimalField(
        max_digits=10, decimal_places=2, default=Decimal("0"), validators=[MinValueValidator(0)]
    )
    compensation_currency = models.CharField(max_length=3, default="EUR")
    compensation_unit = models.CharField(
        max_length=8, choices=CompensationUnit.choices, default=CompensationUnit.PER_ITEM
    )
    risk_disclosure = models.TextField(help_text="Risks of taking part, shown before consent.")
    data_use_statement = models.TextField(help_text="How annotators' data will be used.")
    survey = models.JSONField(default=list, blank=True, help_text="See annotation.surveys.")
    assignment_strategy = models.CharField(
        max_length=16, choices=AssignmentStrategy.choices, default=AssignmentStrategy.LEAST_LABELED
    )
    assignment_ttl_seconds = models.PositiveIntegerField(
        default=1800, validators=[MinValueValidator(30)]
    )
    control_rate = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(0.5)],
        help_text="Share of assignments drawn from gold and attention-check items.",
    )

    objects = ProjectQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title

    def is_managed_by(self, user: User) -> bool:
        """Its owner, while a researcher, or staff may change it and decide about its items.

        An owner whose role changed (to annotator or auditor) keeps the ownership record
        but not the control; ``ProjectQuerySet.managed_by`` is the same rule for querysets.
        """
        return user.is_staff or (user.is_researcher and self.owner_id == user.pk)


def item_upload_path(item: "Item", filename: str) -> str:
    # Content-addressed names: nothing of the uploader's file name reaches the disk.
    return f"items/{item.project_id}/{item.sha256[:2]}/{item.sha256}.{filename.rsplit('.', 1)[-1]}"


def new_shuffle_key() -> float:
    return random.random()  # noqa: S311 - spreads annotators over items, not security


class Item(TimeStampedModel):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="items")
    external_id = models.CharField(max_length=200)
    kind = models.CharField(max_length=8, choices=Modality.choices)
    text = models.TextField(blank=True)
    image = models.FileField(upload_to=item_upload_path, blank=True, max_length=300)
    image_width = models.PositiveIntegerField(null=True, blank=True)
    image_height = models.PositiveIntegerField(null=True, blank=True)
    removed_metadata = models.JSONField(
        default=list, blank=True, help_text="Metadata found in the upload and stripped."
    )
    metadata = models.JSONField(default=dict, blank=True)
    sha256 = models.CharField(max_length=64, db_index=True)
    phash = models.CharField(max_length=32, blank=True, db_index=True)
    source = models.ForeignKey(Source, null=True, blank=True, on_delete=models.PROTECT)
    creator = models.CharField(max_length=200, blank=True)
    license = models.CharField(max_length=500, blank=True, help_text="SPDX license expression.")
    attribution = models.TextField(blank=True)
    subject_consent = models.CharField(
        max_length=16, choices=SubjectConsent.choices, default=SubjectConsent.UNKNOWN
    )
    subject_consent_record = models.ForeignKey(
        ConsentRecord, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    control = models.CharField(max_length=10, choices=ControlKind.choices, blank=True, default="")
    expected_value = models.JSONField(
        null=True, blank=True, help_text="The researcher's answer for a gold or attention item."
    )
    # Normalised entropy of the current non-withdrawn labels, kept up to date by the services
    # that add, edit or withdraw labels; "most contested first" orders by it.
    label_entropy = models.FloatField(default=0.0)
    tombstoned_at = models.DateTimeField(null=True, blank=True)
    import_batch = models.ForeignKey(
        "ImportBatch", null=True, blank=True, on_delete=models.SET_NULL, related_name="items"
    )
    # Slots taken: open assignments plus submitted, non-withdrawn labels. Never above k;
    # only changed by conditional UPDATEs in services. Control items take no slot: 0.
    slots_taken = models.PositiveIntegerField(default=0)
    shuffle_key = models.FloatField(default=new_shuffle_key)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "external_id"], name="item_external_id_unique"
            ),
        ]
        indexes = [
            models.Index(
                fields=["project", "slots_taken", "shuffle_key"], name="item_assignment_idx"
            ),
            models.Index(
                fields=["project", "label_entropy", "slots_taken"], name="item_contested_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project_id}:{self.external_id}"


class ImportBatch(Job):
    """A queued import (``annotation.ingest``): a job of ``core.jobs``, whose staged upload
    is deleted once it has run."""

    class Status(models.TextChoices):
        PENDING = JobStatus.PENDING, "Pending"
        RUNNING = JobStatus.RUNNING, "Running"
        DONE = JobStatus.DONE, "Imported"
        FAILED = JobStatus.FAILED, "Failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="import_batches")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    original_name = models.CharField(max_length=255)
    upload = models.FileField(upload_to="imports/", blank=True, max_length=300)
    server_path = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    item_count = models.PositiveIntegerField(default=0)
    # Every problem found in the rows, as {"line", "field", "code", "message"}.
    errors = models.JSONField(default=list, blank=True)


class Enrolment(TimeStampedModel):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="enrolments")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="enrolments"
    )
    consent = models.OneToOneField(ConsentRecord, on_delete=models.PROTECT, related_name="+")
    survey_answers = models.JSONField(default=dict, blank=True)
    survey_answered_at = models.DateTimeField(null=True, blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "annotator"], name="enrolment_unique"),
        ]

    @property
    def is_active(self) -> bool:
        return self.withdrawn_at is None


class Assignment(TimeStampedModel):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        SUBMITTED = "submitted", "Submitted"
        SKIPPED = "skipped", "Skipped"
        EXPIRED = "expired", "Expired"
        CANCELLED = "cancelled", "Cancelled"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="assignments")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="assignments"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "annotator"], name="assignment_unique"),
        ]
        indexes = [
            models.Index(fields=["project", "status", "expires_at"], name="assignment_expiry_idx"),
            models.Index(
                fields=["annotator", "project", "status"], name="assignment_annotator_idx"
            ),
        ]


class Annotation(TimeStampedModel):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="annotations")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="annotations")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="annotations"
    )
    # The consent the current value was given under: after a re-consent, earlier labels
    # stay linked to the version their annotator had agreed to then.
    consent = models.ForeignKey(
        ConsentRecord, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    value = models.JSONField()
    confidence = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    rationale = models.TextField(blank=True, max_length=5000)
    time_spent_ms = models.PositiveIntegerField(null=True, blank=True)
    withdrawn = models.BooleanField(default=False)
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "annotator"], name="annotation_unique"),
        ]
        indexes = [models.Index(fields=["project", "withdrawn"], name="annotation_project_idx")]


class AnnotationEdit(models.Model):
    """The previous state of an annotation, kept each time its author edits it."""

    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="edits")
    previous_value = models.JSONField()
    previous_confidence = models.PositiveSmallIntegerField(null=True, blank=True)
    previous_rationale = models.TextField(blank=True)
    edited_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"edit of annotation {self.annotation_id} at {self.edited_at:%Y-%m-%d %H:%M}"


class TakedownRequest(TimeStampedModel):
    """A request to take an item down (copyright, privacy or GDPR erasure), filed by anyone."""

    class Kind(models.TextChoices):
        COPYRIGHT = "copyright", "Copyright or license"
        PRIVACY = "privacy", "Privacy: I am shown or identifiable"
        ERASURE = "erasure", "Erasure of my personal data (GDPR art. 17)"
        OTHER = "other", "Other"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACCEPTED = "accepted", "Accepted"
        REJECTED = "rejected", "Rejected"

    reference = models.CharField(max_length=200, help_text="The item id or hash as filed.")
    item = models.ForeignKey(
        Item, null=True, blank=True, on_delete=models.PROTECT, related_name="takedown_requests"
    )
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE, related_name="takedown_requests"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    reason = models.TextField(max_length=5000)
    contact = models.CharField(max_length=254, blank=True, help_text="How to reach the requester.")
    status = models.CharField(
        max_length=8, choices=Status.choices, default=Status.OPEN, db_index=True
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    # What already contained the item when the takedown was accepted (dataset versions,
    # trained models), so their owners can be told.
    affected = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"takedown {self.pk} ({self.get_status_display()})"

    def is_decidable_by(self, user: User) -> bool:
        """Whoever manages the item's project; staff alone for a request naming no item."""
        return user.is_staff or (self.project is not None and self.project.is_managed_by(user))


class AgreementAnalysis(Job):
    """A project's disagreement analysis for one filter, with the label count it was run on:
    a job of ``core.jobs`` when a worker computes it."""

    class Status(models.TextChoices):
        PENDING = JobStatus.PENDING, "Queued"
        RUNNING = JobStatus.RUNNING, "Running"
        DONE = JobStatus.DONE, "Done"
        FAILED = JobStatus.FAILED, "Failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="analyses")
    filters = models.JSONField(default=dict, blank=True)
    filters_key = models.CharField(max_length=64, help_text="sha256 of the canonical filters.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    annotation_count = models.PositiveIntegerField(default=0)
    # Changes when labels are added, edited or withdrawn: the result is stale once the
    # project's current fingerprint differs.
    fingerprint = models.CharField(max_length=64, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    annotators = models.JSONField(default=list, blank=True)
    groups = models.JSONField(default=dict, blank=True)
    # The plots of this result, drawn when it was computed so that pages only read them:
    # {"entropy": svg, "groups": {question key: {"distribution": svg, "heatmap": svg}}},
    # "" where there is nothing to plot. Only annotation.analysis.plots writes this SVG.
    figures = models.JSONField(default=dict, blank=True)
    computed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "filters_key"], name="agreement_analysis_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"analysis of project {self.project_id} ({self.status})"


class ItemDisagreement(models.Model):
    """One item's row of an analysis: sortable and paginated in the API."""

    analysis = models.ForeignKey(AgreementAnalysis, on_delete=models.CASCADE, related_name="items")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="+")
    n_labels = models.PositiveIntegerField()
    entropy = models.FloatField()
    majority = models.JSONField(null=True, blank=True)
    soft_label = models.JSONField(default=dict)
    ds_label = models.JSONField(null=True, blank=True)
    ds_confidence = models.FloatField(null=True, blank=True)
    ds_posterior = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["analysis", "item"], name="item_disagreement_unique"),
        ]
        indexes = [models.Index(fields=["analysis", "entropy"], name="item_disagreement_entropy")]

    def __str__(self) -> str:
        return f"item {self.item_id} in analysis {self.analysis_id}"


__all__ = [
    "AgreementAnalysis",
    "ControlKind",
    "ItemDisagreement",
    "SubjectConsent",
    "TakedownRequest",
    "Annotation",
    "AnnotationEdit",
    "Assignment",
    "AssignmentStrategy",
    "CompensationUnit",
    "Enrolment",
    "ImportBatch",
    "Item",
    "Modality",
    "Project",
    "ProjectStatus",
]
