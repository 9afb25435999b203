"""Validating the JSON a researcher sends (recipes, training parameters): every problem
found at once, by field, in one ``ValidationFailed`` with ``extra["fields"]``.

Each reader returns a usable fallback after recording a problem, so that one bad field
does not hide the next; ``raise_if_any`` then refuses the whole input.
"""

import math
from collections.abc import Mapping

from core.errors import ValidationFailed


class FieldErrors:
    """The problems of one input, ``field name -> messages``, raised with ``code``."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.fields: dict[str, list[str]] = {}

    def add(self, name: str, message: str) -> None:
        self.fields.setdefault(name, []).append(message)

    def raise_if_any(self) -> None:
        if self.fields:
            first_field, messages = next(iter(self.fields.items()))
            raise ValidationFailed(
                f"{first_field}: {messages[0]}", code=self.code, extra={"fields": self.fields}
            )


def whole_number(value: object, name: str, errors: FieldErrors, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        errors.add(name, f"Must be a whole number from {low} to {high}.")
        return low
    return value


def number(value: object, name: str, errors: FieldErrors, *, low: float, high: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        errors.add(name, f"Must be a number from {low} to {high}.")
        return low
    return float(value)


def boolean(value: object, name: str, errors: FieldErrors) -> bool:
    if not isinstance(value, bool):
        errors.add(name, "Must be true or false.")
        return False
    return value


def one_of(value: object, name: str, errors: FieldErrors, *, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        errors.add(name, f"Must be one of {', '.join(allowed)}.")
        return allowed[0]
    return value


def choices(
    value: object, name: str, errors: FieldErrors, *, allowed: tuple[str, ...]
) -> tuple[str, ...]:
    """A list of some of ``allowed``, in ``allowed``'s order without repeats (two spellings
    of one choice are one input)."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors.add(name, f"Must be a list of: {', '.join(allowed)}.")
        return ()
    unknown = [v for v in value if v not in allowed]
    if unknown:
        errors.add(name, f"Unknown {', '.join(map(repr, unknown))}; expected {', '.join(allowed)}.")
    return tuple(v for v in allowed if v in value)


def unknown_keys(
    raw: Mapping[str, object], known: tuple[str, ...], prefix: str, errors: FieldErrors
) -> None:
    for key in raw:
        if key not in known:
            name = f"{prefix}.{key}" if prefix else str(key)
            errors.add(name, "Unknown field.")
