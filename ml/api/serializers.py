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


class TrainingRunInputSerializer(serializers.Serializer[Any]):
    """A run request (every field optional; ``ml.training.params`` validates it)."""

    target = serializers.CharField(required=False, help_text="majority, dawid_skene or soft.")
    seed = serializers.JSONField(required=False)
    device = serializers.CharField(required=False, help_text="auto, cpu or cuda.")
    encoder = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="Text: a configured encoder's key (default: minilm). Image: '' for a CNN "
        "trained from scratch, or a configured backbone's key.",
    )
    group_by = serializers.JSONField(
        required=False, help_text="One or two item metadata keys to report errors by."
    )
    annotator_questions = serializers.JSONField(
        required=False, help_text="Survey questions whose annotator groups to compare."
    )
    min_group_size = serializers.JSONField(required=False)
    params = serializers.JSONField(required=False, help_text="Hyperparameters (see the README).")


class TrainingRunSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    project = serializers.IntegerField(source="project_id")
    dataset_version = serializers.IntegerField(source="dataset_version_id")
    dataset_version_label = serializers.CharField(source="dataset_version.label")
    label = serializers.CharField()  # type: ignore[assignment]
    status = serializers.CharField(help_text="pending, running, done or failed.")
    error = serializers.CharField()
    cancelled = serializers.BooleanField(source="is_cancelled")
    revoked = serializers.BooleanField(
        source="is_revoked", help_text="Trained on a dataset version that was revoked."
    )
    modality = serializers.CharField()
    target = serializers.CharField()
    seed = serializers.IntegerField()
    device_requested = serializers.CharField()
    device = serializers.CharField(help_text="The device it ran on.")
    encoder = serializers.CharField()
    params = serializers.DictField()
    group_by = serializers.ListField(child=serializers.CharField())
    annotator_questions = serializers.ListField(child=serializers.CharField())
    phase = serializers.CharField()
    epoch = serializers.IntegerField()
    epochs = serializers.IntegerField()
    batch = serializers.IntegerField()
    batches = serializers.IntegerField()
    progress = serializers.FloatField(source="progress_fraction")
    wall_seconds = serializers.FloatField(allow_null=True)
    samples_per_second = serializers.FloatField(allow_null=True)
    weights_sha256 = serializers.CharField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class TrainingRunDetailSerializer(TrainingRunSerializer):
    metrics = serializers.DictField(
        help_text="metrics.json: test and validation metrics, history, environment, group tables."
    )
    manifest = serializers.DictField(help_text="The artefacts with their sizes and sha256.")
