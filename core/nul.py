"""NUL characters (U+0000) are refused in all input, before anything reaches the database.

PostgreSQL can store neither: a NUL in a text column makes psycopg raise ``ValueError``
and a ``\\u0000`` in a jsonb value is a ``DataError``, so such input would be a 500 there,
while SQLite stores it silently. No legitimate label, rationale or form field needs one.

The checks are made once, centrally: the API's parsers (``core.api.parsers``) walk every
parsed body, ``core.middleware.NulCharacterMiddleware`` checks the address, the query string
and page forms, and forms that parse JSON from a text field call ``refuse_nul`` on the
parsed value (a ``\\u0000`` escape is six harmless characters until it is parsed).
"""

from collections.abc import Iterator
from typing import Any

from django.utils.datastructures import MultiValueDict

from core.errors import ValidationFailed

NUL = "\x00"
NUL_CODE = "nul_character"


def _shown(key: str) -> str:
    # The path goes into an error message: the NUL itself is written as its escape.
    return key.replace(NUL, "\\u0000")


def _join(path: str, key: str) -> str:
    return f"{path}.{_shown(key)}" if path else _shown(key)


def _children(path: str, value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, MultiValueDict):
        for key, values in value.lists():
            yield _join(path, str(key)), str(key)
            for item in values:
                yield _join(path, str(key)), item
    elif isinstance(value, dict):
        for key, item in value.items():
            yield _join(path, str(key)), str(key)
            yield _join(path, str(key)), item
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield f"{path}[{index}]", item


def nul_path(data: Any, *, root: str = "") -> str | None:
    """Where in ``data`` the first key or string value holding a NUL is, or ``None``.

    ``data`` is parsed JSON (dicts, lists, strings, numbers), a ``QueryDict`` or any mix.
    Paths read like ``label_schema.choices[0].label``. The walk is iterative: a deeply
    nested body cannot exhaust the stack here.
    """
    stack: list[tuple[str, Any]] = [(root, data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if NUL in value:
                return path
            continue
        # Reversed, so that the first offending field in document order is reported.
        stack.extend(reversed(list(_children(path, value))))
    return None


def refuse_nul(data: Any, *, root: str = "") -> None:
    """Raise ``ValidationFailed`` (code ``nul_character``) when ``data`` holds a NUL."""
    path = nul_path(data, root=root)
    if path is None:
        return
    where = f"The field '{path}'" if path else "The request"
    raise ValidationFailed(
        f"{where} contains a NUL character (U+0000), which is not accepted.",
        code=NUL_CODE,
        extra={"field": path},
    )
