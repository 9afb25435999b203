"""Request and response rules that hold for every route.

- ``RequestBodyLimitMiddleware``: a request body larger than its route allows is refused
  with 413 before anything reads it. Routes take ``settings.CHORUS_MAX_REQUEST_BYTES``
  unless their view is marked with ``request_body_limit``; only the import routes are.
- ``NulCharacterMiddleware``: a NUL character in the address, the query string or a page
  form is refused with 400 before any view or database sees it (see ``core.nul``).
- ``ApiErrorShapeMiddleware``: under /api/, a 404 or 405 that Django or a third-party view
  answered in HTML (or YAML) is answered in the one error shape instead, DEBUG or not.
- ``NoStoreMiddleware``: API responses and every response to a signed-in user carry
  ``Cache-Control: no-store, private`` unless the view chose its own caching.

Refusals are JSON in the error shape under /api/ and the ``core/error.html`` page elsewhere.
"""

import json
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import render
from django.utils.cache import patch_cache_control
from django.utils.deprecation import MiddlewareMixin
from rest_framework.views import APIView

from core.api.exceptions import error_body
from core.db import is_transient
from core.errors import ApplicationError
from core.nul import NUL, refuse_nul

DEFAULT_BODY_LIMIT_SETTING = "CHORUS_MAX_REQUEST_BYTES"
_BODY_LIMIT_ATTRIBUTE = "chorus_body_limit_setting"

_View = TypeVar("_View", bound=Callable[..., Any])


def request_body_limit(setting: str) -> Callable[[_View], _View]:
    """Let a view take request bodies of up to ``settings.<setting>`` bytes.

    Works on view functions (its mark survives ``functools.wraps`` decorators on either
    side) and on view classes (``APIView`` and Django's ``View``). The setting is read on
    every request, so tests and deployments can change it.
    """

    if not isinstance(getattr(settings, setting, None), int):
        raise ImproperlyConfigured(f"request_body_limit: settings.{setting} is not a byte count.")

    def mark(view: _View) -> _View:
        setattr(view, _BODY_LIMIT_ATTRIBUTE, setting)
        return view

    return mark


def body_limit_setting(view_func: Callable[..., Any]) -> str:
    """The name of the setting that caps the request body of this resolved view."""
    marked = getattr(view_func, _BODY_LIMIT_ATTRIBUTE, None)
    if marked is None:
        # ``as_view()`` functions carry their class; the mark is a class attribute.
        marked = getattr(getattr(view_func, "view_class", None), _BODY_LIMIT_ATTRIBUTE, None)
    return str(marked or DEFAULT_BODY_LIMIT_SETTING)


def is_api_request(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")


def error_response(
    request: HttpRequest,
    status: int,
    code: str,
    message: str,
    extra: dict[str, Any] | None = None,
) -> HttpResponse:
    """An error in the one shape under /api/, the standalone error page elsewhere."""
    if is_api_request(request):
        return JsonResponse(error_body(code, message, extra), status=status)
    return render(request, "core/error.html", {"status": status, "message": message}, status=status)


def _is_drf_view(view_func: Callable[..., Any]) -> bool:
    view_class = getattr(view_func, "cls", None)
    return isinstance(view_class, type) and issubclass(view_class, APIView)


class RequestBodyLimitMiddleware(MiddlewareMixin):
    """Must come before anything that reads the body (``CsrfViewMiddleware`` does).

    Only the declared ``Content-Length`` is checked, and that is enough under WSGI: Django
    reads at most that many bytes of a body (``LimitedStream``). A body without one, sent
    with ``Transfer-Encoding: chunked``, would be read as empty, so such requests are
    refused with 411 on every route instead of being half-understood. (Under ASGI the
    server has already buffered the body; cap it there.)
    """

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        if request.META.get("HTTP_TRANSFER_ENCODING"):
            return error_response(
                request,
                411,
                "length_required",
                "Send the request body with a Content-Length header; "
                "chunked transfer encoding is not accepted.",
            )
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0:
            return error_response(
                request, 400, "invalid_content_length", "The Content-Length header is invalid."
            )
        limit = int(getattr(settings, body_limit_setting(view_func)))
        if length > limit:
            return error_response(
                request,
                413,
                "too_large",
                "The request body is too large.",
                {"max_bytes": limit},
            )
        return None


class NulCharacterMiddleware(MiddlewareMixin):
    """Checks the address and query string of every request and the form fields of page
    requests. API bodies are checked by the API's parsers instead (``core.api.parsers``),
    so that an API upload is parsed only after authentication and permissions.

    Place it after ``CsrfViewMiddleware``, so that a request without a CSRF token is still
    refused with 403 before its body is parsed here.
    """

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        if NUL in request.path_info:
            return error_response(
                request,
                400,
                "nul_character",
                "The address contains a NUL character (U+0000), which is not accepted.",
            )
        try:
            refuse_nul(request.GET)
            if request.method == "POST" and not _is_drf_view(view_func):
                refuse_nul(request.POST)
        except ApplicationError as error:
            return error_response(
                request, error.status_code, error.code, error.message, error.extra
            )
        return None


class ApiErrorShapeMiddleware(MiddlewareMixin):
    """Rewrites the body of a non-JSON 404 or 405 under /api/: Django's own 404 page (with
    DEBUG, the technical page listing every URL pattern, which bypasses ``handler404``) and
    the 405s of the schema and docs views, which render errors as YAML or HTML.

    The response is changed in place, so that the headers and cookies other middleware
    set on it are kept.
    """

    STATUS_CODES = {404: "not_found", 405: "method_not_allowed"}

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        code = self.STATUS_CODES.get(response.status_code)
        if (
            code is None
            or not is_api_request(request)
            or not isinstance(response, HttpResponse)
            or response.get("Content-Type", "").startswith("application/json")
        ):
            return response
        if response.status_code == 404:
            message = "Not found."
        else:
            message = f'Method "{request.method}" not allowed.'
        response.content = json.dumps(error_body(code, message)).encode()
        response["Content-Type"] = "application/json"
        if response.has_header("Content-Length"):
            response["Content-Length"] = str(len(response.content))
        return response


# How long a client should wait before trying again while the database is away.
DATABASE_RETRY_AFTER_S = 2


class DatabaseUnavailableMiddleware(MiddlewareMixin):
    """A database that is restarting or unreachable answers 503 "try again shortly" in the
    error shape (or the error page), with ``Retry-After``, instead of a 500: the request did
    nothing wrong. The broken connection is dropped so the next request opens a new one.
    Any other database error is a bug and stays a 500.
    """

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponseBase | None:
        if not isinstance(exception, DatabaseError) or not is_transient(exception):
            return None
        for conn in connections.all():
            conn.close_if_unusable_or_obsolete()
        message = "Chorus cannot reach its database for a moment. Try again in a few seconds."
        extra = {"retry_after_seconds": DATABASE_RETRY_AFTER_S}
        if is_api_request(request):
            response: HttpResponse = JsonResponse(
                error_body("database_unavailable", message, extra), status=503
            )
        else:
            # No template: the page layout reads the session, which needs the database.
            response = HttpResponse(
                f"<!doctype html><title>Try again shortly</title><p>{message}</p>",
                status=503,
                content_type="text/html; charset=utf-8",
            )
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
        return response


class NoStoreMiddleware(MiddlewareMixin):
    """Personal pages and API answers (item images included: they are access-checked) must
    not stay in a browser's or a shared proxy's cache after sign-out or withdrawal.

    Static files never get here: WhiteNoise answers them earlier, with its own caching."""

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if response.has_header("Cache-Control"):
            return response
        user = getattr(request, "user", None)
        if is_api_request(request) or (user is not None and user.is_authenticated):
            patch_cache_control(response, no_store=True, private=True)
        return response
