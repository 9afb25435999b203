"""Output shapes shared by several endpoints, and input fields with the API's own guards.

Every shape names people by pseudonym only: no user id, username or email appears in any
payload. Shapes shown to annotators carry no count or value of anyone else's labels.
"""

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from annotation.models import Annotation, Assignment, ImportBatch, Item

MAX_JSON_DEPTH = 20


def _check_json(value: Any, depth: int = 0) -> None:
    if depth > MAX_JSON_DEPTH:
        raise serializers.ValidationError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels.")
    if isinstance(value, str):
        # PostgreSQL's jsonb cannot store U+0000: refuse it here rather than fail there.
        if "\x00" in value:
            raise serializers.ValidationError("Null characters are not allowed.")
    elif isinstance(value, dict):
        for key, inner in value.items():
            _check_json(key, depth + 1)
            _check_json(inner, depth + 1)
    elif isinstance(value, list):
        for inner in value:
            _check_json(inner, depth + 1)


class SafeJSONField(serializers.JSONField):
    """Any JSON value storable on every database we support (no NUL, bounded nesting)."""

    def to_internal_value(self, data: Any) -> Any:
        value = super().to_internal_value(data)
        _check_json(value)
        return value


class ObjectIdField(serializers.IntegerField):
    """A primary key given in a request body (bounded to the database's bigint range)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(**kwargs)


class ProjectSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    title = serializers.CharField()
    description = serializers.CharField()
    instructions = serializers.CharField(help_text="Markdown, shown to annotators as written.")
    modality = serializers.CharField()
    label_schema = serializers.JSONField()
    annotations_per_item = serializers.IntegerField()
    status = serializers.CharField()
    compensation_amount = serializers.DecimalField(max_digits=10, decimal_places=2)
    compensation_currency = serializers.CharField()
    compensation_unit = serializers.CharField()
    risk_disclosure = serializers.CharField()
    data_use_statement = serializers.CharField()
    survey = serializers.JSONField()
    assignment_ttl_seconds = serializers.IntegerField()
    owner_pseudonym = serializers.CharField(source="owner.pseudonym")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


IMAGE_URL_FIELD = serializers.CharField(
    allow_null=True, help_text="Access-checked URL of the sanitised image; null for texts."
)


def item_image_url(item: Item) -> str | None:
    if item.kind != "image" or not item.image:
        return None
    return reverse("api-item-image", args=[item.pk])


class ItemSerializer(serializers.Serializer[Any]):
    """An item as an annotator may see it: content and credits, nothing about its labels."""

    id = serializers.IntegerField()
    project = serializers.IntegerField(source="project_id")
    kind = serializers.CharField()
    text = serializers.CharField()
    image_url = serializers.SerializerMethodField()
    image_width = serializers.IntegerField(allow_null=True)
    image_height = serializers.IntegerField(allow_null=True)
    creator = serializers.CharField()
    license = serializers.CharField(help_text="SPDX license expression.")
    attribution = serializers.CharField()

    @extend_schema_field(IMAGE_URL_FIELD)
    def get_image_url(self, item: Item) -> str | None:
        return item_image_url(item)


class ProjectItemSerializer(ItemSerializer):
    """An item as its project's owner, an auditor or staff see it."""

    external_id = serializers.CharField()
    metadata = serializers.JSONField()
    removed_metadata = serializers.JSONField(help_text="Metadata found in the upload and stripped.")
    sha256 = serializers.CharField()
    phash = serializers.CharField()
    # DRF's metaclass pops declared fields, so these names shadow nothing at run time.
    source = serializers.CharField(source="source.name", allow_null=True)  # type: ignore[assignment]
    slots_taken = serializers.IntegerField(help_text="Open assignments plus labels.")
    created_at = serializers.DateTimeField()


class ImportBatchSerializer(serializers.Serializer[ImportBatch]):
    id = serializers.IntegerField()
    project = serializers.IntegerField(source="project_id")
    status = serializers.CharField()
    original_name = serializers.CharField()
    item_count = serializers.IntegerField()
    # DRF's metaclass pops declared fields: this does not shadow ``Serializer.errors``.
    errors = serializers.JSONField(  # type: ignore[assignment]
        help_text="Every bad row, with its line number."
    )
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class AnnotatorProgressSerializer(serializers.Serializer[Any]):
    labeled = serializers.IntegerField()
    skipped = serializers.IntegerField()
    remaining = serializers.IntegerField()


class EnrolmentSerializer(serializers.Serializer[Any]):
    """The caller's own enrolment; the instance is ``{"enrolment": ..., "progress": ...}``."""

    project = serializers.IntegerField(source="enrolment.project_id")
    consent_version = serializers.CharField(
        source="enrolment.consent.text_version", help_text="sha256 of the consent text shown."
    )
    consent_method = serializers.CharField(source="enrolment.consent.method")
    consented_at = serializers.DateTimeField(source="enrolment.consent.given_at")
    survey_answers = serializers.JSONField(source="enrolment.survey_answers")
    survey_answered_at = serializers.DateTimeField(
        source="enrolment.survey_answered_at", allow_null=True
    )
    withdrawn_at = serializers.DateTimeField(source="enrolment.withdrawn_at", allow_null=True)
    is_active = serializers.BooleanField(source="enrolment.is_active")
    progress = AnnotatorProgressSerializer(help_text="The caller's own progress only.")


class AssignmentSerializer(serializers.Serializer[Assignment]):
    id = serializers.IntegerField()
    project = serializers.IntegerField(source="project_id")
    item = serializers.IntegerField(source="item_id")
    status = serializers.CharField()
    expires_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField()


class AssignedItemSerializer(serializers.Serializer[Item]):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    text = serializers.CharField()
    image_url = serializers.SerializerMethodField()

    @extend_schema_field(IMAGE_URL_FIELD)
    def get_image_url(self, item: Item) -> str | None:
        return item_image_url(item)


class NextAssignmentSerializer(serializers.Serializer[Assignment]):
    id = serializers.IntegerField()
    expires_at = serializers.DateTimeField()
    item = AssignedItemSerializer()


class AnnotationSerializer(serializers.Serializer[Annotation]):
    """One of the caller's own annotations."""

    id = serializers.IntegerField()
    project = serializers.IntegerField(source="project_id")
    item = serializers.IntegerField(source="item_id")
    value = serializers.JSONField()
    confidence = serializers.IntegerField(allow_null=True)
    rationale = serializers.CharField()
    time_spent_ms = serializers.IntegerField(allow_null=True)
    withdrawn = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ProjectAnnotationSerializer(AnnotationSerializer):
    """A label in a project listing: its annotator appears by pseudonym only."""

    annotator_pseudonym = serializers.CharField(source="annotator.pseudonym")
