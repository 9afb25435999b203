"""Maps every error to ``{"code", "message", "extra"}`` with a stable ``code``."""

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import (
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import ApplicationError


def error_body(code: str, message: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "extra": extra or {}}


class ErrorSerializer(serializers.Serializer[dict[str, Any]]):
    """The one error shape, as the OpenAPI schema documents it (component ``Error``)."""

    code = serializers.CharField(help_text="Stable, machine-readable error code.")
    message = serializers.CharField(help_text="Human-readable explanation.")
    extra = serializers.DictField(help_text="Details, e.g. per-field errors.")


ERROR_DESCRIPTIONS = {
    400: "Invalid input (code `invalid`, `parse_error`, or a specific code).",
    401: "Not authenticated.",
    403: "Authenticated but not allowed (auditors never write).",
    404: "No such object, or not visible to the caller.",
    409: "Conflicts with the object's current state.",
    413: "Request body too large.",
    415: "Unsupported media type.",
    429: "Too many attempts.",
    503: "The media storage cannot take the file now (code `storage_read_only`, "
    "`storage_full` or `storage_unavailable`); nothing was kept.",
}


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """OpenAPI responses for the given error statuses, all in the one error shape."""
    return {
        status: OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS.get(status, ""))
        for status in statuses
    }


# Django raises these while parsing a request body (DATA_UPLOAD_MAX_* settings); they are
# not DRF exceptions, so without this map they escape as Django's HTML 400 page.
REQUEST_LIMIT_ERRORS: tuple[tuple[type[SuspiciousOperation], int, str, str], ...] = (
    (RequestDataTooBig, 413, "too_large", "The request body is too large."),
    (TooManyFilesSent, 400, "too_many_files", "Too many files in one request."),
    (TooManyFieldsSent, 400, "too_many_fields", "Too many fields in one request."),
)


def _first_message(detail: Any) -> str:
    if isinstance(detail, dict):
        for key, value in detail.items():
            inner = _first_message(value)
            return inner if key == "non_field_errors" else f"{key}: {inner}"
        return "Invalid input."
    if isinstance(detail, list):
        return _first_message(detail[0]) if detail else "Invalid input."
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        response = Response(error_body(exc.code, exc.message, exc.extra), status=exc.status_code)
        retry_after = exc.extra.get("retry_after_seconds")
        if isinstance(retry_after, int) and retry_after >= 0:
            # Throttled, or a dependency is away: when to try again (RFC 9110, 10.2.3).
            response["Retry-After"] = str(retry_after)
        return response
    for error_type, status, code, message in REQUEST_LIMIT_ERRORS:
        if isinstance(exc, error_type):
            return Response(error_body(code, message), status=status)
    if isinstance(exc, DjangoValidationError):
        fields = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        exc = drf_exceptions.ValidationError(detail=fields)
    elif isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf_exceptions.PermissionDenied()

    handled = drf_exception_handler(exc, context)
    if handled is None:
        return None
    response = handled
    assert isinstance(exc, drf_exceptions.APIException)  # noqa: S101 - DRF only answers these
    if isinstance(exc, drf_exceptions.ValidationError):
        body = error_body("invalid", _first_message(exc.detail), {"fields": exc.detail})
    else:
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        body = error_body(str(code), _first_message(exc.detail))
    response.data = body
    return response
