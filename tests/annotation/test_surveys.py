"""Demographic survey definitions and answers: optional, self-reported, never forced."""

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from annotation.surveys import (
    DEFAULT_SURVEY,
    MAX_QUESTIONS,
    PREFER_NOT_TO_SAY,
    SurveyError,
    parse_definition,
    validate_answers,
)

DEFINITION: list[dict[str, Any]] = [
    {"key": "age", "text": "Your age group", "kind": "single", "options": ["18-34", "35+"]},
    {
        "key": "languages",
        "text": "Languages you read",
        "kind": "multi",
        "options": ["en", "fr", "de"],
    },
    {"key": "occupation", "text": "Your occupation", "kind": "text"},
]
QUESTIONS = parse_definition(DEFINITION)


def test_parse_definition_every_choice_question_offers_prefer_not_to_say_last() -> None:
    for question in parse_definition(DEFAULT_SURVEY) + QUESTIONS:
        if question.kind == "text":
            assert question.choices == ()
        else:
            assert question.choices[-1] == PREFER_NOT_TO_SAY
            assert question.choices[:-1] == question.options


@pytest.mark.parametrize("empty", [None, "", []])
def test_parse_definition_no_survey_is_empty(empty: Any) -> None:
    assert parse_definition(empty) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param({"key": "age"}, "list", id="not-a-list"),
        pytest.param(
            [{"key": f"q{i}", "text": "t", "kind": "text"} for i in range(MAX_QUESTIONS + 1)],
            "at most",
            id="too-many",
        ),
        pytest.param(["age"], "must be an object", id="question-not-object"),
        pytest.param([{"key": "has space", "text": "t", "kind": "text"}], "key", id="bad-key"),
        pytest.param(
            [{"key": "a", "text": "t", "kind": "text"}, {"key": "a", "text": "u", "kind": "text"}],
            "key",
            id="duplicate-key",
        ),
        pytest.param([{"key": "a", "text": "t", "kind": "scale"}], "kind", id="bad-kind"),
        pytest.param([{"key": "a", "text": "t", "options": ["x"]}], "two options", id="one-opt"),
        pytest.param(
            [{"key": "a", "text": "t", "options": ["x", "x"]}], "unique", id="duplicate-option"
        ),
        pytest.param(
            [{"key": "a", "text": "t", "options": ["x", PREFER_NOT_TO_SAY]}],
            "unique",
            id="own-prefer-not-to-say",
        ),
        pytest.param([{"key": "a", "text": " ", "kind": "text"}], "needs a text", id="no-text"),
    ],
)
def test_parse_definition_invalid_raises_survey_error(data: Any, message: str) -> None:
    with pytest.raises(SurveyError, match=message):
        parse_definition(data)


def test_validate_answers_prefer_not_to_say_accepted_for_every_choice_question() -> None:
    questions = parse_definition(DEFAULT_SURVEY) + QUESTIONS
    answers: dict[str, Any] = {q.key: PREFER_NOT_TO_SAY for q in questions if q.kind == "single"}
    answers["languages"] = [PREFER_NOT_TO_SAY]
    assert validate_answers(questions, answers) == answers


def test_validate_answers_valid_answers_returned_canonical() -> None:
    clean = validate_answers(
        QUESTIONS, {"age": "35+", "languages": ["de", "en"], "occupation": "  nurse  "}
    )
    assert clean == {"age": "35+", "languages": ["en", "de"], "occupation": "nurse"}


def test_validate_answers_unanswered_questions_left_out() -> None:
    assert validate_answers(QUESTIONS, {}) == {}
    assert validate_answers(QUESTIONS, {"age": None, "languages": [], "occupation": ""}) == {}


def test_validate_answers_unknown_key_rejected() -> None:
    with pytest.raises(SurveyError, match="Unknown questions: income"):
        validate_answers(QUESTIONS, {"age": "35+", "income": "high"})


@pytest.mark.parametrize(
    "answers",
    [
        pytest.param(["35+"], id="not-an-object"),
        pytest.param({"age": "99"}, id="single-not-an-option"),
        pytest.param({"age": ["35+"]}, id="single-given-a-list"),
        pytest.param({"languages": ["en", "it"]}, id="multi-not-an-option"),
        pytest.param({"languages": ["en", PREFER_NOT_TO_SAY]}, id="prefer-not-plus-answer"),
        pytest.param({"occupation": 42}, id="text-not-a-string"),
        pytest.param({"occupation": "x" * 201}, id="text-too-long"),
    ],
)
def test_validate_answers_invalid_answer_rejected(answers: Any) -> None:
    with pytest.raises(SurveyError):
        validate_answers(QUESTIONS, answers)


@given(answer=st.text(min_size=1).filter(lambda text: text not in QUESTIONS[0].choices))
def test_validate_answers_any_single_answer_not_offered_rejected(answer: str) -> None:
    with pytest.raises(SurveyError):
        validate_answers(QUESTIONS, {"age": answer})
