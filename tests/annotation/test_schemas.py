"""Label schemas: definitions, submitted values and the presets researchers start from."""

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from annotation.schemas import (
    HATE_SPEECH_INSTRUCTIONS,
    HATE_SPEECH_SCHEMA,
    MAX_CHOICES,
    PRESETS,
    PRIVACY_INSTRUCTIONS,
    PRIVACY_SCHEMA,
    LabelSchema,
    SchemaError,
    answers_match,
)


def choices(*values: str) -> list[dict[str, str]]:
    return [{"value": value, "label": value.title()} for value in values]


ORDINAL = LabelSchema.from_json({"kind": "ordinal", "choices": choices("low", "mid", "high")})
NOMINAL = LabelSchema.from_json({"kind": "nominal", "choices": choices("cat", "dog", "bird")})
MULTI = LabelSchema.from_json(
    {
        "kind": "multi_label",
        "choices": choices("red", "green", "blue", "black"),
        "min_selected": 1,
        "max_selected": 3,
    }
)
FREE = LabelSchema.from_json({"kind": "free_text", "max_length": 20})

# Any JSON value an API client could send.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=10,
)


# ---------------------------------------------------------------- definitions


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(["ordinal"], "must be an object", id="not-an-object"),
        pytest.param({"kind": "ranking", "choices": choices("a", "b")}, "kind", id="unknown-kind"),
        pytest.param({"choices": choices("a", "b")}, "kind", id="missing-kind"),
        pytest.param({"kind": "nominal", "choices": "a,b"}, "must be a list", id="choices-str"),
        pytest.param({"kind": "nominal", "choices": ["a", "b"]}, "Choice 1", id="choice-not-obj"),
        pytest.param(
            {"kind": "nominal", "choices": [{"value": "a"}, {"value": 2}]},
            "Choice 2",
            id="choice-value-not-str",
        ),
        pytest.param(
            {"kind": "nominal", "choices": [{"value": "a"}, {"value": "   "}]},
            "1-64 characters",
            id="blank-value",
        ),
        pytest.param(
            {"kind": "nominal", "choices": [{"value": "a"}, {"value": "x" * 65}]},
            "1-64 characters",
            id="value-too-long",
        ),
        pytest.param({"kind": "ordinal", "choices": choices("only")}, "two", id="one-choice"),
        pytest.param({"kind": "nominal", "choices": []}, "two", id="no-choices"),
        pytest.param(
            {"kind": "nominal", "choices": choices(*[f"c{i}" for i in range(MAX_CHOICES + 1)])},
            "at most",
            id="too-many-choices",
        ),
        pytest.param(
            {"kind": "nominal", "choices": choices("a", "b", "a")}, "unique", id="duplicate"
        ),
        pytest.param(
            {"kind": "nominal", "choices": [{"value": "a"}, {"value": " a "}]},
            "unique",
            id="duplicate-after-strip",
        ),
        pytest.param(
            {"kind": "free_text", "choices": choices("a", "b")}, "no choices", id="free-choices"
        ),
        pytest.param(
            {"kind": "multi_label", "choices": choices("a", "b"), "min_selected": "1"},
            "min_selected",
            id="min-not-int",
        ),
        pytest.param(
            {"kind": "multi_label", "choices": choices("a", "b"), "max_selected": True},
            "max_selected",
            id="max-bool",
        ),
        pytest.param(
            {
                "kind": "multi_label",
                "choices": choices("a", "b"),
                "min_selected": 2,
                "max_selected": 1,
            },
            "max_selected must not be below",
            id="max-below-min",
        ),
        pytest.param({"kind": "free_text", "max_length": 0}, "max_length", id="max-length-zero"),
        pytest.param(
            {"kind": "free_text", "max_length": 10**6}, "max_length", id="max-length-huge"
        ),
    ],
)
def test_from_json_invalid_definition_raises_schema_error(data: Any, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        LabelSchema.from_json(data)


def test_from_json_valid_definition_round_trips_through_to_json() -> None:
    data = {
        "kind": "multi_label",
        "choices": [
            {"value": "a", "label": "A", "description": "first"},
            {"value": "b", "label": "B", "description": ""},
        ],
        "min_selected": 1,
        "max_selected": 2,
        "note": "pick any",
    }
    schema = LabelSchema.from_json(data)
    assert schema.values == ("a", "b")
    assert schema.to_json() == data
    assert LabelSchema.from_json(schema.to_json()) == schema


def test_from_json_choice_without_label_uses_value_as_label() -> None:
    schema = LabelSchema.from_json({"kind": "nominal", "choices": [{"value": "x"}, {"value": "y"}]})
    assert [choice.label for choice in schema.choices] == ["x", "y"]


# ---------------------------------------------------------------- ordinal and nominal


@pytest.mark.parametrize("schema", [ORDINAL, NOMINAL], ids=["ordinal", "nominal"])
def test_validate_single_choice_known_value_accepted(schema: LabelSchema) -> None:
    for value in schema.values:
        assert schema.validate(value) == value


@pytest.mark.parametrize("schema", [ORDINAL, NOMINAL], ids=["ordinal", "nominal"])
@pytest.mark.parametrize("value", ["", "LOW", "Cat", " cat", 0, 1, None, True, ["cat"], {"v": 1}])
def test_validate_single_choice_other_value_rejected(schema: LabelSchema, value: Any) -> None:
    with pytest.raises(SchemaError):
        schema.validate(value)


@given(value=json_values)
def test_validate_ordinal_any_value_not_in_choices_rejected(value: Any) -> None:
    if isinstance(value, str) and value in ORDINAL.values:
        assert ORDINAL.validate(value) == value
        return
    with pytest.raises(SchemaError):
        ORDINAL.validate(value)


@given(value=st.text().filter(lambda text: text not in NOMINAL.values))
def test_validate_nominal_any_text_not_in_choices_rejected(value: str) -> None:
    with pytest.raises(SchemaError):
        NOMINAL.validate(value)


def test_choice_index_follows_schema_order() -> None:
    assert [ORDINAL.choice_index(value) for value in ("low", "mid", "high")] == [0, 1, 2]


# ---------------------------------------------------------------- multi-label


def test_validate_multi_label_returns_schema_order() -> None:
    assert MULTI.validate(["blue", "red"]) == ["red", "blue"]
    assert MULTI.validate(["black", "green", "red"]) == ["red", "green", "black"]


@given(selection=st.lists(st.sampled_from(MULTI.values), min_size=1, max_size=3, unique=True))
def test_validate_multi_label_equal_sets_have_one_canonical_form(selection: list[str]) -> None:
    canonical = MULTI.validate(selection)
    assert canonical == MULTI.validate(list(reversed(selection)))
    assert sorted(canonical, key=MULTI.choice_index) == canonical
    assert set(canonical) == set(selection)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("red", "list", id="bare-string"),
        pytest.param(["red", 1], "list", id="non-string-member"),
        pytest.param(["red", "purple"], "Unknown", id="unknown-choice"),
        pytest.param(["red", "red"], "only once", id="duplicate"),
        pytest.param([], "at least 1", id="too-few"),
        pytest.param(["red", "green", "blue", "black"], "at most 3", id="too-many"),
    ],
)
def test_validate_multi_label_invalid_selection_rejected(value: Any, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        MULTI.validate(value)


@given(extra=st.text().filter(lambda text: text not in MULTI.values))
def test_validate_multi_label_any_value_not_in_choices_rejected(extra: str) -> None:
    with pytest.raises(SchemaError):
        MULTI.validate(["red", extra])


# ---------------------------------------------------------------- free text


def test_validate_free_text_stripped_text_accepted() -> None:
    assert FREE.validate("  a fine answer  ") == "a fine answer"
    assert FREE.validate("x" * 20) == "x" * 20


@pytest.mark.parametrize("value", ["", "   \n", "x" * 21, 5, None, ["text"]])
def test_validate_free_text_empty_long_or_non_string_rejected(value: Any) -> None:
    with pytest.raises(SchemaError):
        FREE.validate(value)


# ---------------------------------------------------------------- presets


def test_privacy_alert_preset_is_four_point_ordinal_in_order_with_descriptions() -> None:
    preset = PRESETS["privacy_alert"]
    assert preset.modality == "image"
    assert preset.schema is PRIVACY_SCHEMA
    assert PRIVACY_SCHEMA.kind == "ordinal"
    assert PRIVACY_SCHEMA.values == ("clearly_private", "private", "public", "clearly_public")
    descriptions = [choice.description.lower() for choice in PRIVACY_SCHEMA.choices]
    assert all(descriptions)
    assert "not" in descriptions[0] and "at all" in descriptions[0]
    assert "trust" in descriptions[1]
    assert "social network" in descriptions[2]
    assert "anyone" in descriptions[3]
    assert preset.instructions == PRIVACY_INSTRUCTIONS
    assert "took this photo" in PRIVACY_INSTRUCTIONS
    assert "know the people" in PRIVACY_INSTRUCTIONS
    assert LabelSchema.from_json(PRIVACY_SCHEMA.to_json()) == PRIVACY_SCHEMA


def test_hate_speech_preset_is_three_way_nominal_with_satire_note() -> None:
    preset = PRESETS["hate_speech"]
    assert preset.modality == "text"
    assert preset.schema is HATE_SPEECH_SCHEMA
    assert HATE_SPEECH_SCHEMA.kind == "nominal"
    assert HATE_SPEECH_SCHEMA.values == ("hateful", "offensive", "neither")
    assert [choice.label for choice in HATE_SPEECH_SCHEMA.choices] == [
        "Hateful",
        "Offensive but not hateful",
        "Neither",
    ]
    assert "satire" in HATE_SPEECH_SCHEMA.note.lower()
    assert "not hate speech" in HATE_SPEECH_SCHEMA.note.lower()
    assert "Satire" in HATE_SPEECH_INSTRUCTIONS
    # The note survives storage on the project.
    assert LabelSchema.from_json(HATE_SPEECH_SCHEMA.to_json()).note == HATE_SPEECH_SCHEMA.note


@pytest.mark.parametrize(
    ("value", "expected", "matches"),
    [
        ("hateful", "hateful", True),
        ("hateful", "neither", False),
        (["b", "a"], ["a", "b"], True),  # a label set: stored order does not matter
        (["a"], ["a", "b"], False),
        ("hateful", None, False),  # no expected answer: nothing to match
    ],
)
def test_answers_match_is_the_one_control_scoring_rule(value, expected, matches):
    assert answers_match(value, expected) is matches
