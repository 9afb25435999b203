"""Forms for the annotation pages. They parse and shape input; services decide the rules."""

import json
from typing import Any, cast

from django import forms

from annotation.models import (
    AssignmentStrategy,
    CompensationUnit,
    ControlKind,
    Modality,
    Project,
    ProjectStatus,
    SubjectConsent,
    TakedownRequest,
)
from annotation.schemas import PRESETS, LabelSchema
from annotation.services import PROJECT_EDITABLE_FIELDS, PROJECT_FROZEN_AFTER_DRAFT
from annotation.surveys import DEFAULT_SURVEY, PREFER_NOT_TO_SAY, PREFER_NOT_TO_SAY_LABEL, Question
from core.nul import NUL_CODE, nul_path

CUSTOM_PRESET = "custom"
# Filled in by a preset when the researcher leaves them empty.
PRESET_FIELDS = ("modality", "label_schema", "instructions")
CONFIDENCE_CHOICES = [("", "Not sure / not given")] + [(str(n), str(n)) for n in range(1, 6)]
PREFER_NOT_TO_SAY_SUFFIX = "__prefer_not_to_say"


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


class JSONTextField(forms.CharField):
    """A textarea holding JSON; the parsed value is returned (shape checked by services)."""

    widget = forms.Textarea(attrs={"rows": 12, "class": "mono", "spellcheck": "false"})

    def __init__(self, *, expect: type, **kwargs: Any) -> None:
        self.expect = expect
        kwargs.setdefault("strip", True)
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, (dict, list)):
            return pretty_json(value)
        return value

    def to_python(self, value: Any) -> Any:
        if isinstance(value, (dict, list)):
            # A disabled field is cleaned from its initial, already-parsed value.
            return value
        text = super().to_python(value)
        if not text:
            return None
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as error:
            raise forms.ValidationError(
                f"Not valid JSON (line {error.lineno}, column {error.colno}): {error.msg}.",
                code="invalid_json",
            ) from error
        if not isinstance(parsed, self.expect):
            kind = "an object" if self.expect is dict else "a list"
            raise forms.ValidationError(f"Must be {kind}.", code="invalid_json")
        # A "\u0000" escape becomes a NUL only now, after the request's own check (core.nul).
        nul_at = nul_path(parsed)
        if nul_at is not None:
            raise forms.ValidationError(
                f"Contains a NUL character (U+0000) at {nul_at or 'the top level'}, "
                "which is not accepted.",
                code=NUL_CODE,
            )
        return parsed

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            return bool(self.to_python(data) != initial)
        except forms.ValidationError:
            return True


class ProjectForm(forms.Form):
    """Create or edit a project. ``preset`` only exists on creation."""

    preset = forms.ChoiceField(
        choices=[(key, preset.name) for key, preset in PRESETS.items()]
        + [(CUSTOM_PRESET, "Custom (write the label schema as JSON)")],
        initial="privacy_alert",
        help_text="A preset fills the modality, label schema and instructions you leave empty.",
    )
    title = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    instructions = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 10}),
        required=False,
        help_text="Markdown, shown to annotators as written.",
    )
    modality = forms.ChoiceField(
        choices=[("", "From the preset")] + Modality.choices, required=False
    )
    label_schema = JSONTextField(
        expect=dict,
        required=False,
        help_text='{"kind": "ordinal" | "nominal" | "multi_label" | "free_text", '
        '"choices": [{"value", "label", "description"}, ...]}',
    )
    annotations_per_item = forms.IntegerField(
        min_value=1, max_value=100, initial=3, help_text="How many annotators label each item (k)."
    )
    compensation_amount = forms.DecimalField(min_value=0, max_digits=10, decimal_places=2)
    compensation_currency = forms.CharField(min_length=3, max_length=3, initial="EUR")
    compensation_unit = forms.ChoiceField(choices=CompensationUnit.choices)
    risk_disclosure = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), help_text="Shown to annotators before consent."
    )
    data_use_statement = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), help_text="How annotators' data will be used."
    )
    survey = JSONTextField(
        expect=list,
        required=False,
        initial=DEFAULT_SURVEY,
        help_text='Optional demographic questions: [{"key", "text", "kind": "single" | "multi" | '
        '"text", "options": [...]}]. "Prefer not to say" is always added.',
    )
    assignment_ttl_seconds = forms.IntegerField(
        min_value=30, initial=1800, help_text="An abandoned item returns to the pool after this."
    )
    assignment_strategy = forms.ChoiceField(
        choices=AssignmentStrategy.choices,
        initial=AssignmentStrategy.LEAST_LABELED,
        help_text="Most contested first gives the next label to the items whose labels "
        "disagree most.",
    )
    control_rate = forms.FloatField(
        min_value=0.0,
        max_value=0.5,
        initial=0.0,
        label="Control rate",
        help_text="Share of assignments drawn from gold and attention-check items (0 to 0.5); "
        "annotators are never told which.",
        widget=forms.NumberInput(attrs={"step": "0.01"}),
    )

    def __init__(self, *args: Any, project: Project | None = None, **kwargs: Any) -> None:
        self.project = project
        if project is not None:
            kwargs.setdefault(
                "initial", {name: getattr(project, name) for name in PROJECT_EDITABLE_FIELDS}
            )
        super().__init__(*args, **kwargs)
        if project is None:
            return
        del self.fields["preset"]
        for name in PRESET_FIELDS:
            self.fields[name].required = True
        cast(forms.ChoiceField, self.fields["modality"]).choices = Modality.choices
        if project.status != ProjectStatus.DRAFT:
            # Would change the meaning of labels already given; the service refuses too.
            for name in PROJECT_FROZEN_AFTER_DRAFT:
                self.fields[name].disabled = True
                self.fields[name].help_text = "Fixed once the project has opened."

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.project is None and cleaned.get("preset") == CUSTOM_PRESET:
            for name in PRESET_FIELDS:
                if name in cleaned and not cleaned[name]:
                    self.add_error(name, "Required for a custom project.")
        return cleaned

    def project_fields(self) -> dict[str, Any]:
        """The cleaned values to hand to the service; empty preset fields are left out."""
        fields = {
            name: self.cleaned_data[name]
            for name in PROJECT_EDITABLE_FIELDS
            if name in self.cleaned_data
        }
        if fields.get("survey") is None:
            fields["survey"] = []
        if self.project is None:
            for name in PRESET_FIELDS:
                if not fields.get(name):
                    fields.pop(name, None)
        return fields

    def preset_key(self) -> str | None:
        preset = self.cleaned_data.get("preset")
        return None if preset in (None, "", CUSTOM_PRESET) else str(preset)

    def add_service_errors(self, fields: dict[str, list[str]], fallback: str) -> None:
        """Show a service's per-field errors next to the fields they concern."""
        if not fields:
            self.add_error(None, fallback)
        for name, messages in fields.items():
            target = name if name in self.fields else None
            for message in messages:
                self.add_error(target, message if target else f"{name}: {message}")


class ConsentForm(forms.Form):
    consent = forms.BooleanField(
        label="I have read the information above and I consent to take part.",
        error_messages={"required": "Tick the box to give your consent."},
    )
    consent_version = forms.CharField(widget=forms.HiddenInput)


class SurveyForm(forms.Form):
    """One optional field per question; every question offers "Prefer not to say"."""

    def __init__(
        self, *args: Any, questions: list[Question], answers: dict[str, Any], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.questions = questions
        for question in questions:
            answer = answers.get(question.key)
            if question.kind == "text":
                declined = answer == PREFER_NOT_TO_SAY
                self.fields[question.key] = forms.CharField(
                    label=question.text,
                    max_length=200,
                    required=False,
                    initial="" if declined else answer,
                )
                self.fields[question.key + PREFER_NOT_TO_SAY_SUFFIX] = forms.BooleanField(
                    label=PREFER_NOT_TO_SAY_LABEL, required=False, initial=declined
                )
                continue
            choices = [
                (option, PREFER_NOT_TO_SAY_LABEL if option == PREFER_NOT_TO_SAY else option)
                for option in question.choices
            ]
            if question.kind == "multi":
                self.fields[question.key] = forms.MultipleChoiceField(
                    label=question.text,
                    choices=choices,
                    required=False,
                    widget=forms.CheckboxSelectMultiple,
                    initial=answer or [],
                )
            else:
                self.fields[question.key] = forms.ChoiceField(
                    label=question.text,
                    choices=choices,
                    required=False,
                    widget=forms.RadioSelect,
                    initial=answer,
                )

    def answers(self) -> dict[str, Any]:
        answers: dict[str, Any] = {}
        for question in self.questions:
            value = self.cleaned_data.get(question.key)
            if question.kind == "text" and self.cleaned_data.get(
                question.key + PREFER_NOT_TO_SAY_SUFFIX
            ):
                value = PREFER_NOT_TO_SAY
            if value not in (None, "", []):
                answers[question.key] = value
        return answers


def label_value_field(
    schema: LabelSchema, *, label: str | None = None, required: bool = True
) -> forms.Field:
    """A field for one answer in the schema's shape (the service validates it again)."""
    choices = [(choice.value, choice.label) for choice in schema.choices]
    if schema.kind in ("ordinal", "nominal"):
        return forms.ChoiceField(
            choices=choices,
            widget=forms.RadioSelect,
            label=label or "Your label",
            required=required,
        )
    if schema.kind == "multi_label":
        return forms.MultipleChoiceField(
            choices=choices,
            widget=forms.CheckboxSelectMultiple,
            required=required and schema.min_selected > 0,
            label=label or "Your labels",
        )
    return forms.CharField(
        max_length=schema.max_length,
        widget=forms.Textarea(attrs={"rows": 4}),
        label=label or "Your answer",
        required=required,
    )


class LabelForm(forms.Form):
    """A label for one item, shaped by the project's schema (the service validates it again)."""

    confidence = forms.TypedChoiceField(
        choices=CONFIDENCE_CHOICES,
        coerce=int,
        empty_value=None,
        required=False,
        label="How confident are you? (optional)",
        widget=forms.RadioSelect,
    )
    rationale = forms.CharField(
        max_length=5000,
        required=False,
        label="Why? (optional)",
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args: Any, schema: LabelSchema, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.schema = schema
        self.fields = {"value": label_value_field(schema), **self.fields}


class LabelSubmitForm(LabelForm):
    """The labeling page's form: the label plus which assignment it answers and when."""

    assignment = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    item = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    shown_at = forms.IntegerField(widget=forms.HiddenInput, min_value=0, required=False)


class SkipForm(forms.Form):
    assignment = forms.IntegerField(widget=forms.HiddenInput, min_value=1)


class ImportForm(forms.Form):
    upload = forms.FileField(
        label="File to import",
        help_text="CSV or JSONL of texts, or a zip of images with a manifest.csv / manifest.jsonl.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.jsonl,.json,.zip"}),
    )


class TakedownForm(forms.Form):
    """The public request form: no account needed."""

    reference = forms.CharField(
        max_length=200,
        label="Item id or content hash",
        help_text="The item's number, or the sha256 of the picture or text.",
    )
    kind = forms.ChoiceField(label="What is the problem?", choices=TakedownRequest.Kind.choices)
    reason = forms.CharField(
        max_length=5000, widget=forms.Textarea(attrs={"rows": 6}), label="Tell us more"
    )
    contact = forms.CharField(
        max_length=254,
        required=False,
        label="How can we reach you? (optional)",
        help_text="An email address or other contact; only the people deciding see it.",
    )


class TakedownDecisionForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[("accept", "Accept: take the item down"), ("reject", "Reject")]
    )
    reason = forms.CharField(max_length=5000, widget=forms.Textarea(attrs={"rows": 3}))


class SubjectConsentForm(forms.Form):
    status = forms.ChoiceField(choices=SubjectConsent.choices, label="Consent of people shown")
    consent_text = forms.CharField(
        required=False,
        max_length=20000,
        widget=forms.Textarea(attrs={"rows": 4}),
        label="Release text signed",
    )
    purposes = forms.CharField(
        required=False, max_length=500, help_text="Comma-separated, e.g. research, publication."
    )
    lawful_basis = forms.CharField(required=False, max_length=64, initial="consent")
    evidence = forms.CharField(
        required=False, max_length=2000, help_text="Where the signed release is kept."
    )
    expires_at = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )

    def clean_purposes(self) -> list[str]:
        raw = str(self.cleaned_data.get("purposes") or "")
        return [part.strip() for part in raw.split(",") if part.strip()]


class ControlItemForm(forms.Form):
    """Make an item, named by its external id, a gold or attention-check item (or a regular
    one again) with its expected answer in the project's schema."""

    external_id = forms.CharField(max_length=200, label="Item (external id)")
    # Not required: its empty choice is a meaningful one, "regular item".
    control = forms.ChoiceField(
        choices=ControlKind.choices, initial=ControlKind.GOLD, required=False, label="Kind of item"
    )

    def __init__(self, *args: Any, schema: LabelSchema, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["expected_value"] = label_value_field(
            schema, label="Expected answer (not for a regular item)", required=False
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        # An empty answer is no answer: the service asks for one where a control item needs it.
        if cleaned.get("control") == ControlKind.NONE or cleaned.get("expected_value") == "":
            cleaned["expected_value"] = None
        return cleaned
