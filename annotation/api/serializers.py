"""Output shapes shared by several endpoints, and input fields with the API's own guards.

Every shape names people by pseudonym only: no user id, username or email appears in any
payload. Shapes shown to annotators carry no count or value of anyone else's labels.
"""

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from annotation.models import Annotation, Assignment, ControlKind, ImportBatch, Item, Project
from annotation.selectors import AssignmentWaitHint
from core.models import User

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
    assignment_strategy = serializers.CharField()
    control_rate = serializers.SerializerMethodField()
    owner_pseudonym = serializers.CharField(source="owner.pseudonym")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    @extend_schema_field(
        serializers.FloatField(
            allow_null=True,
            help_text="Share of assignments drawn from gold and attention-check items; "
            "null for annotators, who are not told how often they are checked.",
        )
    )
    def get_control_rate(self, project: Project) -> float | None:
        # Fails closed: without a known non-annotator viewer in the context, it is hidden.
        viewer = self.context.get("viewer")
        if isinstance(viewer, User) and (viewer.is_staff or not viewer.is_annotator):
            return project.control_rate
        return None


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
    control = serializers.ChoiceField(
        choices=ControlKind.choices, help_text="Gold or attention-check item; empty if regular."
    )
    expected_value = serializers.JSONField(
        allow_null=True, help_text="The researcher's answer for a control item."
    )
    label_entropy = serializers.FloatField(
        help_text="Normalised entropy of the current labels (0: all agree)."
    )
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
    error = serializers.CharField(
        help_text="Why the batch failed, or why its last attempt was abandoned and it was "
        "queued again (its worker stopped); empty otherwise."
    )
    attempts = serializers.IntegerField(help_text="Times a worker has started this batch.")
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class AnnotatorProgressSerializer(serializers.Serializer[Any]):
    labeled = serializers.IntegerField()
    skipped = serializers.IntegerField()
    remaining = serializers.IntegerField()


class ConsentChangeSerializer(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(choices=["removed", "added", "same"])
    text = serializers.CharField()


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
    reconsent_required = serializers.BooleanField(
        help_text="The terms changed since you consented: consent again (POST to this "
        "endpoint) before your next item, or withdraw."
    )
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


class AssignmentWaitSerializer(serializers.Serializer[AssignmentWaitHint]):
    """The ``extra`` of an ``items_held`` answer: when the first item held by others frees
    up, by the database's clock. Names no annotator and no item."""

    retry_at = serializers.DateTimeField(
        help_text="When the first of the other annotators' assignments runs out."
    )
    retry_after_seconds = serializers.IntegerField(
        min_value=0, help_text="Seconds from now until then (also the Retry-After header)."
    )


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


# ---------------------------------------------------------------- agreement analysis


class AnalysisFilterSerializer(serializers.Serializer[Any]):
    """Query parameters choosing which labels an agreement analysis reads."""

    since = serializers.DateField(required=False, help_text="Labels given on or after this day.")
    until = serializers.DateField(required=False, help_text="Labels given on or before this day.")
    question = serializers.CharField(
        required=False,
        max_length=40,
        help_text="Only annotators who answered this survey question (not 'prefer not to say').",
    )


class AgreementCategorySerializer(serializers.Serializer[Any]):
    value = serializers.CharField()
    # DRF's metaclass pops declared fields: this does not shadow ``Field.label``.
    label = serializers.CharField()  # type: ignore[assignment]


class EntropyBinSerializer(serializers.Serializer[Any]):
    low = serializers.FloatField()
    high = serializers.FloatField()
    items = serializers.IntegerField()


class AgreementSummarySerializer(serializers.Serializer[Any]):
    enough_data = serializers.BooleanField(
        help_text="False until two annotators labelled a same item."
    )
    message = serializers.CharField(allow_blank=True)
    level = serializers.CharField(help_text="ordinal or nominal, from the label schema.")
    categories = AgreementCategorySerializer(many=True)
    n_items = serializers.IntegerField()
    n_items_pairable = serializers.IntegerField(help_text="Items with at least two labels.")
    n_labels = serializers.IntegerField()
    n_labels_ignored = serializers.IntegerField(help_text="Labels outside the schema's choices.")
    n_annotators = serializers.IntegerField()
    label_counts = serializers.DictField(child=serializers.IntegerField())
    alpha = serializers.FloatField(allow_null=True, help_text="Krippendorff's alpha.")
    percent_agreement = serializers.FloatField(allow_null=True)
    fleiss_kappa = serializers.FloatField(
        allow_null=True, help_text="Only when every item has the same number of labels."
    )
    ds_log_likelihood = serializers.FloatField(allow_null=True)
    ds_iterations = serializers.IntegerField(allow_null=True)
    mean_entropy = serializers.FloatField(
        allow_null=True, help_text="Over items with at least two labels; 0..1."
    )
    entropy_histogram = EntropyBinSerializer(many=True)


class AgreementAnalysisSerializer(serializers.Serializer[Any]):
    status = serializers.CharField(help_text="pending, running, done or failed.")
    computed_at = serializers.DateTimeField(allow_null=True)
    annotation_count = serializers.IntegerField(help_text="Labels the result was computed on.")
    filters = serializers.DictField(child=serializers.CharField())
    error = serializers.CharField(allow_blank=True)
    summary = AgreementSummarySerializer(allow_null=True, help_text="Null before a first result.")


class ItemDisagreementSerializer(serializers.Serializer[Any]):
    item = serializers.IntegerField(source="item_id")
    external_id = serializers.CharField(source="item.external_id")
    n_labels = serializers.IntegerField()
    entropy = serializers.FloatField(help_text="Normalised label entropy, 0..1.")
    majority = serializers.CharField(allow_null=True, help_text="Null on a tie.")
    soft_label = serializers.DictField(
        child=serializers.FloatField(), help_text="Category -> share of the item's labels."
    )
    ds_label = serializers.CharField(allow_null=True, help_text="Dawid-Skene's estimate.")
    ds_confidence = serializers.FloatField(allow_null=True)
    ds_posterior = serializers.DictField(child=serializers.FloatField())


class AnnotatorAgreementSerializer(serializers.Serializer[Any]):
    """One annotator's agreement, by pseudonym only."""

    pseudonym = serializers.CharField()
    n_labels = serializers.IntegerField()
    n_compared = serializers.IntegerField(
        help_text="Labels on items where the other annotators have a unique majority."
    )
    majority_agreement = serializers.FloatField(allow_null=True)
    alpha_without = serializers.FloatField(
        allow_null=True, help_text="Alpha of everyone else; above the overall alpha = outlier."
    )
    gold_n = serializers.IntegerField()
    gold_correct = serializers.IntegerField()
    gold_accuracy = serializers.FloatField(allow_null=True)
    attention_n = serializers.IntegerField()
    attention_correct = serializers.IntegerField()
    attention_accuracy = serializers.FloatField(allow_null=True)


class GroupStatsSerializer(serializers.Serializer[Any]):
    group = serializers.CharField(
        help_text="The answer; 'missing' = no answer, 'prefer_not_to_say' = declined."
    )
    n_annotators = serializers.IntegerField()
    n_labels = serializers.IntegerField()
    alpha = serializers.FloatField(allow_null=True, help_text="Agreement within the group.")
    mean_label = serializers.FloatField(allow_null=True, help_text="Ordinal schemas only.")
    distribution = serializers.DictField(child=serializers.FloatField())


class GroupPairSerializer(serializers.Serializer[Any]):
    group_a = serializers.CharField()
    group_b = serializers.CharField()
    n_shared_items = serializers.IntegerField()
    xrr = serializers.FloatField(allow_null=True, help_text="Cross-replication reliability.")
    effect = serializers.FloatField(allow_null=True)
    effect_kind = serializers.CharField(help_text="mean_difference or js_divergence (bits).")
    p_value = serializers.FloatField(allow_null=True, help_text="Permutation test.")


class GroupDisagreementSerializer(serializers.Serializer[Any]):
    key = serializers.CharField()
    text = serializers.CharField()
    status = serializers.CharField(help_text="done, skipped (see message) or pending.")
    message = serializers.CharField(allow_blank=True)
    analysis_status = serializers.CharField()
    computed_at = serializers.DateTimeField(allow_null=True)
    n_permutations = serializers.IntegerField(required=False)
    groups = GroupStatsSerializer(many=True, required=False)
    pairs = GroupPairSerializer(many=True, required=False)
