"""Output shapes of the dataset version endpoints."""

from typing import Any

from rest_framework import serializers

from ml.models import DatasetVersion


class RecipeInputSerializer(serializers.Serializer[Any]):
    recipe = serializers.JSONField(
        required=False,
        default=dict,
        help_text="The recipe (every field optional; see the README's recipe format).",
    )


class LeftOutSerializer(serializers.Serializer[Any]):
    items = serializers.IntegerField()
    labels = serializers.IntegerField()


class DryRunSerializer(serializers.Serializer[Any]):
    recipe = serializers.DictField(help_text="The recipe as it would be stored (canonical).")
    items = serializers.IntegerField()
    labels = serializers.IntegerField()
    annotators = serializers.IntegerField()
    left_out = serializers.DictField(child=LeftOutSerializer())


class DatasetVersionSerializer(serializers.Serializer[DatasetVersion]):
    id = serializers.IntegerField()
    project = serializers.IntegerField(source="project_id")
    # DRF's metaclass pops declared fields: this does not shadow ``Field.label``.
    label = serializers.CharField(  # type: ignore[assignment]
        help_text="v<major>.<minor> once built, else 'build <id>'."
    )
    major = serializers.IntegerField(allow_null=True)
    minor = serializers.IntegerField(allow_null=True)
    status = serializers.CharField(help_text="pending, running, done or failed.")
    error = serializers.CharField()
    progress_done = serializers.IntegerField()
    progress_total = serializers.IntegerField()
    recipe = serializers.DictField()
    counts = serializers.DictField()
    rebuild_of = serializers.IntegerField(source="rebuild_of_id", allow_null=True)
    created_at = serializers.DateTimeField()
    built_at = serializers.DateTimeField(allow_null=True)
    revoked = serializers.BooleanField(source="is_revoked")
    revoked_at = serializers.DateTimeField(allow_null=True)
    revoked_reason = serializers.CharField()


class DatasetVersionDetailSerializer(DatasetVersionSerializer):
    manifest = serializers.DictField()
    contamination = serializers.DictField()


class ComparisonSerializer(serializers.Serializer[Any]):
    old = serializers.IntegerField()
    new = serializers.IntegerField()
    added = serializers.ListField(child=serializers.IntegerField())
    removed = serializers.ListField(child=serializers.IntegerField())
    moved = serializers.ListField(child=serializers.DictField())
    contamination = serializers.ListField(
        child=serializers.DictField(),
        help_text="Items of the new version's test split that duplicate or nearly duplicate "
        "an item of the old version's train split.",
    )
