"""Demographic survey definitions and answers.

Pure Python. Every question offers "prefer not to say"; every answer is self-reported and
optional. A definition is a list of questions::

    [{"key": "age", "text": "Your age group", "kind": "single", "options": ["18-24", ...]}]
"""

from dataclasses import dataclass
from typing import Any

PREFER_NOT_TO_SAY = "prefer_not_to_say"
PREFER_NOT_TO_SAY_LABEL = "Prefer not to say"
QUESTION_KINDS = ("single", "multi", "text")
MAX_QUESTIONS = 30


class SurveyError(ValueError):
    pass


@dataclass(frozen=True)
class Question:
    key: str
    text: str
    kind: str
    options: tuple[str, ...]

    @property
    def choices(self) -> tuple[str, ...]:
        """Options as offered, "prefer not to say" always last."""
        return (*self.options, PREFER_NOT_TO_SAY) if self.kind != "text" else ()


def parse_definition(data: Any) -> list[Question]:
    if data in (None, ""):
        return []
    if not isinstance(data, list) or len(data) > MAX_QUESTIONS:
        raise SurveyError(f"A survey is a list of at most {MAX_QUESTIONS} questions.")
    questions: list[Question] = []
    keys: set[str] = set()
    for position, raw in enumerate(data, start=1):
        if not isinstance(raw, dict):
            raise SurveyError(f"Question {position} must be an object.")
        key = str(raw.get("key") or "").strip()
        if not key.isidentifier() or len(key) > 40 or key in keys:
            raise SurveyError(f"Question {position} needs a unique identifier-like 'key'.")
        keys.add(key)
        kind = raw.get("kind", "single")
        if kind not in QUESTION_KINDS:
            raise SurveyError(f"Question {key!r}: kind must be one of {', '.join(QUESTION_KINDS)}.")
        options = raw.get("options") or []
        if kind != "text":
            if not isinstance(options, list) or len(options) < 2:
                raise SurveyError(f"Question {key!r} needs at least two options.")
            options = [str(option).strip()[:100] for option in options]
            if PREFER_NOT_TO_SAY in options or len(set(options)) != len(options):
                raise SurveyError(f"Question {key!r}: options must be unique.")
        text = str(raw.get("text") or "").strip()
        if not text:
            raise SurveyError(f"Question {key!r} needs a text.")
        questions.append(Question(key, text[:500], kind, tuple(options) if kind != "text" else ()))
    return questions


def validate_answers(questions: list[Question], answers: Any) -> dict[str, Any]:
    """Return the answers in canonical form. Unanswered questions are simply absent."""
    if not isinstance(answers, dict):
        raise SurveyError("Answers must be an object keyed by question.")
    by_key = {question.key: question for question in questions}
    unknown = sorted(set(answers) - set(by_key))
    if unknown:
        raise SurveyError(f"Unknown questions: {', '.join(unknown)}.")
    clean: dict[str, Any] = {}
    for key, value in answers.items():
        question = by_key[key]
        if value in (None, "", []):
            continue
        if question.kind == "single":
            if value not in question.choices:
                raise SurveyError(f"{key}: choose one of the options.")
            clean[key] = value
        elif question.kind == "multi":
            values = value if isinstance(value, list) else [value]
            if not all(v in question.choices for v in values):
                raise SurveyError(f"{key}: choose among the options.")
            if PREFER_NOT_TO_SAY in values and len(values) > 1:
                raise SurveyError(f"{key}: 'prefer not to say' excludes other answers.")
            clean[key] = [option for option in question.choices if option in values]
        else:
            if not isinstance(value, str) or len(value) > 200:
                raise SurveyError(f"{key}: answer with at most 200 characters.")
            clean[key] = value.strip()
    return clean


DEFAULT_SURVEY: list[dict[str, Any]] = [
    {
        "key": "age_group",
        "text": "Your age group",
        "kind": "single",
        "options": ["18-24", "25-34", "35-44", "45-54", "55+"],
    },
    {
        "key": "gender",
        "text": "Your gender",
        "kind": "single",
        "options": ["woman", "man", "non-binary", "self-described"],
    },
    {
        "key": "region",
        "text": "Where you live",
        "kind": "single",
        "options": ["Africa", "Asia", "Europe", "Latin America", "North America", "Oceania"],
    },
]
