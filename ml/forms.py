"""The version builder's form: a recipe, field by field, with the product's defaults."""

from typing import Any

from django import forms

from ml.recipes import CONSENT_POLICIES, STRATEGIES, Recipe
from provenance.licenses import INTENDED_USES

CONSENT_LABELS = {
    "standard": "Leave out pictures of people without recorded consent (and any refusal)",
    "strict": "Keep only items that show nobody or whose consent is on record",
    "all": "Keep every item (say why in the datasheet)",
}
STRATEGY_LABELS = {
    "random": "Random",
    "stratified": "Stratified by the aggregated label",
    "grouped": "Grouped (a group never straddles splits)",
}
TARGET_LABELS = {
    "majority": "Majority vote",
    "dawid_skene": "Dawid-Skene",
    "soft": "Soft labels (label distribution)",
}


class RecipeForm(forms.Form):
    min_labels = forms.IntegerField(
        min_value=1, max_value=1000, initial=1, label="Items need at least this many labels"
    )
    targets = forms.MultipleChoiceField(
        choices=list(TARGET_LABELS.items()),
        initial=list(TARGET_LABELS),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Aggregated labels (annotator-level labels always ship)",
    )
    license_use = forms.ChoiceField(
        choices=[(use, use) for use in INTENDED_USES], initial="research", label="Intended use"
    )
    consent = forms.ChoiceField(
        choices=[(policy, CONSENT_LABELS[policy]) for policy in CONSENT_POLICIES],
        initial="standard",
        label="People shown in items",
    )
    train = forms.FloatField(min_value=0.01, max_value=1, initial=0.8, label="Train share")
    validation = forms.FloatField(min_value=0, max_value=1, initial=0.1, label="Validation share")
    test = forms.FloatField(min_value=0, max_value=1, initial=0.1, label="Test share")
    seed = forms.IntegerField(min_value=0, max_value=2**32 - 1, initial=0, label="Seed")
    strategy = forms.ChoiceField(
        choices=[(s, STRATEGY_LABELS[s]) for s in STRATEGIES], initial="random", label="Split"
    )
    group_key = forms.CharField(
        required=False,
        max_length=110,
        label="Group by (source, creator or metadata.<key>)",
        help_text="For a grouped split only.",
    )
    jsonl = forms.BooleanField(required=False, label="Also JSONL")
    csv = forms.BooleanField(required=False, label="Also CSV")
    text_threshold = forms.FloatField(
        min_value=0.5, max_value=1, initial=0.8, label="Near-duplicate texts: Jaccard at least"
    )
    image_max_distance = forms.IntegerField(
        min_value=0,
        max_value=16,
        initial=6,
        label="Near-duplicate images: Hamming distance at most",
    )
    stable_pseudonyms = forms.BooleanField(
        required=False, label="Stable pseudonyms (versions can be joined on annotators)"
    )

    def recipe_json(self) -> dict[str, Any]:
        data = self.cleaned_data
        formats = ["parquet"] + [name for name in ("jsonl", "csv") if data.get(name)]
        return {
            "min_labels": data["min_labels"],
            "targets": list(data.get("targets") or []),
            "license_use": data["license_use"],
            "consent": data["consent"],
            "split": {
                "ratios": [data["train"], data["validation"], data["test"]],
                "seed": data["seed"],
                "strategy": data["strategy"],
                "group_key": data.get("group_key") or None,
            },
            "formats": formats,
            "near_duplicates": {
                "text_threshold": data["text_threshold"],
                "image_max_distance": data["image_max_distance"],
            },
            "stable_pseudonyms": bool(data.get("stable_pseudonyms")),
        }


def initial_from(recipe: Recipe) -> dict[str, Any]:
    """The form's fields filled from a stored recipe (a rebuild starts from it)."""
    return {
        "min_labels": recipe.min_labels,
        "targets": list(recipe.targets),
        "license_use": recipe.license_use,
        "consent": recipe.consent,
        "train": recipe.split.ratios[0],
        "validation": recipe.split.ratios[1],
        "test": recipe.split.ratios[2],
        "seed": recipe.split.seed,
        "strategy": recipe.split.strategy,
        "group_key": recipe.split.group_key or "",
        "jsonl": "jsonl" in recipe.formats,
        "csv": "csv" in recipe.formats,
        "text_threshold": recipe.near_duplicates.text_threshold,
        "image_max_distance": recipe.near_duplicates.image_max_distance,
        "stable_pseudonyms": recipe.stable_pseudonyms,
    }


DEVICE_LABELS = {
    "auto": "GPU when the worker has one, else CPU",
    "cpu": "CPU",
    "cuda": "GPU (fails on a worker without one)",
}
HEAD_LABELS = {"linear": "Linear", "mlp": "Small MLP (one hidden layer)"}


class TrainingRunForm(forms.Form):
    """A training run on one version: the choices that version and the deployment offer,
    the engine's defaults filled in. ``request_json`` gives what ``ml.training.params``
    validates (the one place the rules live)."""

    target = forms.ChoiceField(label="Train on")
    encoder = forms.ChoiceField(label="Text encoder (frozen)")
    seed = forms.IntegerField(min_value=0, max_value=2**31 - 1, initial=0, label="Seed")
    device = forms.ChoiceField(choices=list(DEVICE_LABELS.items()), initial="auto", label="Device")
    group_key = forms.CharField(
        required=False,
        max_length=100,
        label="Report errors per group of items by metadata key",
        help_text="E.g. gender; the tables also give every class per group.",
    )
    group_key_2 = forms.CharField(
        required=False,
        max_length=100,
        label="… and by a second key (adds their intersection)",
        help_text="E.g. skin_tone: the table then has gender × skin_tone.",
    )
    annotator_questions = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Compare the model with annotator groups by survey question",
    )
    min_group_size = forms.IntegerField(
        min_value=1, max_value=100_000, initial=30, label="Flag groups smaller than"
    )
    max_epochs = forms.IntegerField(min_value=1, max_value=1000, label="At most this many epochs")
    patience = forms.IntegerField(
        min_value=1, max_value=100, label="Stop after this many epochs without improvement"
    )
    batch_size = forms.IntegerField(min_value=1, max_value=8192, label="Batch size")
    learning_rate = forms.FloatField(min_value=1e-6, max_value=1.0, label="Learning rate (AdamW)")
    weight_decay = forms.FloatField(min_value=0, max_value=1, label="Weight decay")
    dropout = forms.FloatField(min_value=0, max_value=0.9, label="Dropout")
    head = forms.ChoiceField(choices=list(HEAD_LABELS.items()), label="Head")
    hidden = forms.IntegerField(min_value=8, max_value=4096, label="Hidden units (MLP)")
    image_size = forms.IntegerField(min_value=16, max_value=256, label="Image side (pixels)")
    augment = forms.BooleanField(
        required=False, label="Augment (flips, crops, colour jitter, blur)"
    )

    TEXT_ONLY = ("head", "hidden")
    IMAGE_ONLY = ("image_size", "augment")
    HYPER = (
        "max_epochs",
        "patience",
        "batch_size",
        "learning_rate",
        "weight_decay",
        "dropout",
        "head",
        "hidden",
        "image_size",
        "augment",
    )

    def __init__(
        self,
        data: Any = None,
        *,
        modality: str,
        targets: list[tuple[str, str]],
        encoders: list[tuple[str, str]],
        questions: list[tuple[str, str]],
        defaults: dict[str, Any],
    ) -> None:
        super().__init__(data, initial={**defaults, "target": targets[0][0] if targets else ""})
        self.modality = modality
        for name, options in (
            ("target", targets),
            ("encoder", encoders),
            ("annotator_questions", questions),
        ):
            field = self.fields[name]
            if not isinstance(field, forms.ChoiceField):
                raise TypeError(f"{name} is not a choice field")
            field.choices = options
        if modality == "image":
            self.fields["encoder"].label = "Model"
            self.fields["encoder"].required = False
        drop = self.IMAGE_ONLY if modality == "text" else self.TEXT_ONLY
        for name in drop:
            del self.fields[name]
        if not questions:
            del self.fields["annotator_questions"]

    def request_json(self) -> dict[str, Any]:
        data = self.cleaned_data
        group_by = [key for key in (data.get("group_key"), data.get("group_key_2")) if key]
        return {
            "target": data["target"],
            "encoder": data.get("encoder") or "",
            "seed": data["seed"],
            "device": data["device"],
            "group_by": group_by,
            "annotator_questions": list(data.get("annotator_questions") or []),
            "min_group_size": data["min_group_size"],
            "params": {name: data[name] for name in self.HYPER if name in self.fields},
        }
