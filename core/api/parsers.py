"""The API's request parsers: DRF's, refusing NUL characters in any parsed key or value.

Set as ``DEFAULT_PARSER_CLASSES`` and used by every view that lists its parsers, so no
body reaches a serializer (or the database) with a NUL in it; see ``core.nul``. The error
is ``ValidationFailed`` with code ``nul_character`` and the field's path in the message and
in ``extra.field``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

from core.nul import refuse_nul

if TYPE_CHECKING:
    from django.http.request import _ImmutableQueryDict
    from django.utils.datastructures import MultiValueDict


class JSONParser(parsers.JSONParser):
    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as error:
            # json raises this (not ValueError) for deeply nested arrays or objects.
            raise ParseError("JSON parse error - nested too deeply.") from error
        refuse_nul(data)
        return data


class FormParser(parsers.FormParser):
    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> _ImmutableQueryDict:
        data = super().parse(stream, media_type, parser_context)
        refuse_nul(data)
        return data


class MultiPartParser(parsers.MultiPartParser):
    """File names need no check: Django drops non-printable characters from them."""

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> parsers.DataAndFiles[_ImmutableQueryDict, MultiValueDict[str, Any]]:
        parsed = super().parse(stream, media_type, parser_context)
        refuse_nul(parsed.data)
        return parsed
