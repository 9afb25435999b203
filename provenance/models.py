"""Where data came from, who consented to what, and who did what (tamper-evident)."""

from django.conf import settings
from django.db import models

from core.models import TimeStampedModel


class Source(TimeStampedModel):
    """Where items come from: a collection, a site, a camera roll, a generator.

    A source belongs to the researcher whose imports named it: two researchers' "City
    Archive" are two sources, each with its own URL. Sources without an owner predate the
    scoping and were used by no item; imports never link to them.
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    name = models.CharField(max_length=200)
    url = models.URLField(blank=True)
    creator = models.CharField(max_length=200, blank=True, help_text="Publisher or creator.")
    collection_method = models.CharField(max_length=200, blank=True)
    collected_on = models.DateField(null=True, blank=True)
    terms = models.TextField(blank=True, help_text="Terms of use of the source.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="source_owner_name_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class LicenseUse(models.TextChoices):
    """What a license lets you do with the data, on the Data Provenance Initiative's axis."""

    COMMERCIAL = "commercial", "Commercial use allowed"
    NON_COMMERCIAL = "non-commercial", "Non-commercial only"
    ACADEMIC_ONLY = "academic-only", "Academic research only"
    UNSPECIFIED = "unspecified", "Unspecified or unknown"


class LicenseCatalogEntry(TimeStampedModel):
    """A license's class, editable by staff; seeded from ``provenance/data/license_classes.csv``.

    ``provenance.licenses`` holds the rules; this table is the data they run on, so a
    ``LicenseRef-`` custom license becomes usable once it is registered here.
    """

    spdx_id = models.CharField(max_length=100, unique=True, help_text="SPDX id or LicenseRef-.")
    name = models.CharField(max_length=200)
    use = models.CharField(max_length=16, choices=LicenseUse.choices)
    attribution = models.BooleanField(default=False, help_text="Attribution required.")
    share_alike = models.BooleanField(default=False)
    no_derivatives = models.BooleanField(default=False)
    terms_url = models.URLField(blank=True, help_text="The license text.")
    source_url = models.URLField(blank=True, help_text="Where this classification comes from.")
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["spdx_id"]
        verbose_name_plural = "license catalogue entries"

    def __str__(self) -> str:
        return self.spdx_id


class ConsentRecord(models.Model):
    """A consent given by a person, with the exact text they saw.

    Used for annotators enrolling in a project and for people depicted in items.
    """

    class SubjectKind(models.TextChoices):
        ANNOTATOR = "annotator", "Annotator"
        DATA_SUBJECT = "data_subject", "Person depicted in an item"

    subject_kind = models.CharField(max_length=16, choices=SubjectKind.choices)
    subject = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    scope = models.CharField(max_length=200, help_text='What it covers, e.g. "project:12".')
    text = models.TextField(help_text="The exact text shown when consent was given.")
    text_version = models.CharField(max_length=64, help_text="sha256 of the text shown.")
    purposes = models.JSONField(default=list)
    method = models.CharField(max_length=64, help_text="How consent was given.")
    lawful_basis = models.CharField(max_length=64, default="consent")
    evidence = models.TextField(
        blank=True, help_text="Where the proof is kept, e.g. a signed release form's reference."
    )
    given_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["scope", "subject_kind"])]

    def __str__(self) -> str:
        return f"consent {self.pk} ({self.scope})"


class AuditChainHead(models.Model):
    """The single row every audit append locks: it serialises the chain and records its end.

    Keeping the last sequence number and hash here makes deleting the newest events
    detectable, which a chain alone cannot show.
    """

    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="")

    def __str__(self) -> str:
        return f"audit chain head #{self.last_seq}"


class AuditChainCheckpoint(models.Model):
    """The single row recording how far the chain has been verified, and the last full check.

    ``seq`` and ``hash`` name the last event a check found intact: later checks start after
    it instead of at the first event. The row is kept apart from ``AuditChainHead`` so that
    appends never wait on a verification, and only a check writes it. It vouches for a
    prefix only while no full check has found that prefix broken: a failed full check takes
    it back to the genesis (``seq`` 0).
    """

    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, blank=True, help_text="Empty at the genesis.")
    verified_at = models.DateTimeField(null=True, blank=True)
    full_check_at = models.DateTimeField(null=True, blank=True)
    full_check_ok = models.BooleanField(null=True, blank=True)
    full_check_events = models.BigIntegerField(default=0)
    full_check_broken_seq = models.BigIntegerField(null=True, blank=True)
    full_check_reason = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return f"audit chain verified through #{self.seq}"


class AuditEvent(models.Model):
    """An append-only governance event; ``hash`` covers the fields and the previous hash."""

    seq = models.BigIntegerField(unique=True)
    created_at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_pseudonym = models.CharField(max_length=32, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    payload = models.JSONField(default=dict)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["seq"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.object_type}:{self.object_id}"


class Tombstone(models.Model):
    """The hashes of content taken down: kept so the same content is never imported again."""

    sha256 = models.CharField(max_length=64, db_index=True)
    phash = models.CharField(max_length=32, blank=True, db_index=True)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    reason = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"tombstone {self.sha256[:12]} ({self.object_type}:{self.object_id})"
