"""Label schemas: what an annotator may answer, and the presets researchers start from.

Pure Python (no Django): a schema is stored on the project as JSON and parsed here.
"""

from dataclasses import dataclass, field
from typing import Any

KINDS = ("ordinal", "nominal", "multi_label", "free_text")
# One choice per label: the kinds that have classes to aggregate and train on.
SINGLE_CHOICE_KINDS = ("ordinal", "nominal")
MAX_CHOICES = 50
MAX_FREE_TEXT = 5000


class SchemaError(ValueError):
    """A schema definition or a submitted value does not fit."""


@dataclass(frozen=True)
class Choice:
    value: str
    label: str
    description: str = ""


@dataclass(frozen=True)
class LabelSchema:
    kind: str
    choices: tuple[Choice, ...] = ()
    min_selected: int = 1
    max_selected: int | None = None
    max_length: int = 2000
    note: str = ""
    values: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(choice.value for choice in self.choices))

    @property
    def is_single_choice(self) -> bool:
        return self.kind in SINGLE_CHOICE_KINDS

    @classmethod
    def from_json(cls, data: Any) -> "LabelSchema":
        if not isinstance(data, dict):
            raise SchemaError("A label schema must be an object.")
        if _has_nul(data):
            # PostgreSQL's jsonb cannot store it; SQLite would, and the two must agree.
            raise SchemaError("The label schema contains a NUL character.")
        kind = data.get("kind")
        if kind not in KINDS:
            raise SchemaError(f"Schema kind must be one of {', '.join(KINDS)}.")
        raw_choices = data.get("choices") or []
        if not isinstance(raw_choices, list):
            raise SchemaError("Schema choices must be a list.")
        choices = []
        for position, raw in enumerate(raw_choices, start=1):
            if not isinstance(raw, dict) or not isinstance(raw.get("value"), str):
                raise SchemaError(f"Choice {position} needs a string 'value'.")
            value = raw["value"].strip()
            if not value or len(value) > 64:
                raise SchemaError(f"Choice {position} value must be 1-64 characters.")
            label = str(raw.get("label") or value)
            choices.append(Choice(value, label[:200], str(raw.get("description") or "")[:1000]))
        if kind == "free_text":
            if choices:
                raise SchemaError("A free-text schema has no choices.")
        else:
            if len(choices) < 2:
                raise SchemaError("A choice schema needs at least two choices.")
            if len(choices) > MAX_CHOICES:
                raise SchemaError(f"A schema may have at most {MAX_CHOICES} choices.")
            if len({c.value for c in choices}) != len(choices):
                raise SchemaError("Choice values must be unique.")
        min_selected = _int(data.get("min_selected", 1), "min_selected", 0, MAX_CHOICES)
        max_selected_raw = data.get("max_selected")
        max_selected = (
            None
            if max_selected_raw is None
            else _int(max_selected_raw, "max_selected", 1, MAX_CHOICES)
        )
        if max_selected is not None and max_selected < min_selected:
            raise SchemaError("max_selected must not be below min_selected.")
        max_length = _int(data.get("max_length", 2000), "max_length", 1, MAX_FREE_TEXT)
        return cls(
            kind=kind,
            choices=tuple(choices),
            min_selected=min_selected,
            max_selected=max_selected,
            max_length=max_length,
            note=str(data.get("note") or ""),
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind,
            "choices": [
                {"value": c.value, "label": c.label, "description": c.description}
                for c in self.choices
            ],
        }
        if self.kind == "multi_label":
            data["min_selected"] = self.min_selected
            data["max_selected"] = self.max_selected
        if self.kind == "free_text":
            data["max_length"] = self.max_length
        if self.note:
            data["note"] = self.note
        return data

    def validate(self, value: Any) -> Any:
        """Return the value in canonical form, or raise ``SchemaError``."""
        if self.is_single_choice:
            if not isinstance(value, str) or value not in self.values:
                raise SchemaError(f"Label must be one of: {', '.join(self.values)}.")
            return value
        if self.kind == "multi_label":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise SchemaError("A multi-label answer must be a list of choice values.")
            unknown = [v for v in value if v not in self.values]
            if unknown:
                raise SchemaError(f"Unknown choices: {', '.join(unknown[:5])}.")
            if len(set(value)) != len(value):
                raise SchemaError("A choice may be selected only once.")
            if len(value) < self.min_selected:
                raise SchemaError(f"Select at least {self.min_selected} choice(s).")
            if self.max_selected is not None and len(value) > self.max_selected:
                raise SchemaError(f"Select at most {self.max_selected} choice(s).")
            # Canonical order is the schema's order, so equal answers compare equal.
            return [v for v in self.values if v in value]
        if not isinstance(value, str) or not value.strip():
            raise SchemaError("A free-text answer must be a non-empty string.")
        if "\x00" in value:
            raise SchemaError("A free-text answer may not contain a NUL character.")
        if len(value) > self.max_length:
            raise SchemaError(f"Answer is longer than {self.max_length} characters.")
        return value.strip()

    def choice_index(self, value: str) -> int:
        return self.values.index(value)


def answers_match(value: Any, expected: Any) -> bool:
    """Whether an annotator's answer equals a control item's expected answer.

    The one scoring rule for gold and attention items. Multi-label answers are label sets:
    the order they were stored in does not matter. No expected answer matches nothing.
    """
    if expected is None:
        return False
    if isinstance(value, list) and isinstance(expected, list):
        return set(map(str, value)) == set(map(str, expected))
    return bool(value == expected)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(inner) for key, inner in value.items())
    if isinstance(value, list):
        return any(_has_nul(inner) for inner in value)
    return False


def _int(raw: Any, name: str, low: int, high: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
        raise SchemaError(f"{name} must be an integer between {low} and {high}.")
    return raw


PRIVACY_INSTRUCTIONS = """\
Imagine that **you took this photo yourself** and that you are about to post it on a social
network. Imagine too that **you know the people in it** (if there are any): they are your
friends, family or acquaintances.

How widely would you be comfortable sharing it? There is no right answer: we want *your*
judgement. Look at the whole picture — faces, places, documents, screens, what people are
doing — and pick the option that fits best.

- **Clearly private** — you would not share it online at all.
- **Private** — you would share it only with a few people you trust.
- **Public** — fine to share with your social network (friends, followers).
- **Clearly public** — fine for anyone on the internet to see.
"""

PRIVACY_SCHEMA = LabelSchema(
    kind="ordinal",
    choices=(
        Choice("clearly_private", "Clearly private", "Not to be shared online at all."),
        Choice("private", "Private", "Only to be shared with people you trust."),
        Choice("public", "Public", "Fine to share with your social network."),
        Choice("clearly_public", "Clearly public", "Fine for anyone online to see."),
    ),
)

HATE_SPEECH_INSTRUCTIONS = """\
Read each short text and decide whether it is **hateful**: does it attack or demean a person
or a group *because of* who they are (for example ethnicity, religion, gender, sexual
orientation, disability or origin)?

- **Hateful** — attacks, dehumanises or calls for harm against people for who they are.
- **Offensive but not hateful** — rude, vulgar or insulting, but not aimed at anyone for who
  they are.
- **Neither** — neither hateful nor offensive.

Satire, quoting hate in order to criticise it, reporting on it, and critical discussion of
ideas or institutions are **not** hate speech. If you are unsure, go with your own reading:
disagreement between annotators is expected and useful.
"""

HATE_SPEECH_SCHEMA = LabelSchema(
    kind="nominal",
    choices=(
        Choice("hateful", "Hateful", "Attacks or demeans people for who they are."),
        Choice("offensive", "Offensive but not hateful", "Rude or insulting, not identity-based."),
        Choice("neither", "Neither", "Neither hateful nor offensive."),
    ),
    note="Satire and critical discourse about hate are not hate speech.",
)


@dataclass(frozen=True)
class Preset:
    key: str
    name: str
    modality: str
    schema: LabelSchema
    instructions: str


PRESETS: dict[str, Preset] = {
    "privacy_alert": Preset(
        "privacy_alert",
        "Photo privacy (PrivacyAlert-style, 4-point ordinal)",
        "image",
        PRIVACY_SCHEMA,
        PRIVACY_INSTRUCTIONS,
    ),
    "hate_speech": Preset(
        "hate_speech",
        "Hate speech (hateful / offensive / neither)",
        "text",
        HATE_SPEECH_SCHEMA,
        HATE_SPEECH_INSTRUCTIONS,
    ),
}
