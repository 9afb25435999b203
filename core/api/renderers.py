"""A CSV renderer for download endpoints, and the rule that errors stay JSON.

A view offers CSV by listing ``CsvRenderer`` after the JSON renderer and returning a
``CsvTable`` when ``request.accepted_renderer.format == "csv"``; DRF picks it for
``?format=csv`` or ``Accept: text/csv``. Every cell goes through ``core.csv.safe_cell``.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.csv import csv_text


@dataclass(frozen=True)
class CsvTable:
    """What a view hands to ``CsvRenderer``: a header and rows, plus the download name."""

    header: Sequence[object]
    rows: Iterable[Sequence[object]]
    filename: str = field(default="export.csv")


class CsvRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        if not isinstance(data, CsvTable):
            raise TypeError("CsvRenderer renders a CsvTable only.")
        response = (renderer_context or {}).get("response")
        if response is not None:
            response["Content-Disposition"] = f'attachment; filename="{data.filename}"'
        return csv_text(header=data.header, rows=data.rows).encode(self.charset)


class CsvDownloadMixin(APIView):
    """Answers in JSON whatever is not a ``CsvTable`` (errors in the one error shape, OPTIONS
    metadata) even when CSV was asked for."""

    def finalize_response(
        self, request: Request, response: Any, *args: Any, **kwargs: Any
    ) -> Response:
        if isinstance(response, Response) and not isinstance(response.data, CsvTable):
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)
