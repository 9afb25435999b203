"""Page plumbing shared by every app's server-rendered views.

Who may open a page (``role_required`` and the per-role decorators), how an
``ApplicationError`` becomes a page (``error_page``: the error's HTTP status, never a
500), and the one way a form POST calls a service (``form_submit``). Auditors never
write: any unsafe method from an auditor is refused before the view runs.
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Concatenate, ParamSpec, TypeVar, cast

from django import forms
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from core.errors import ApplicationError, PermissionDenied
from core.models import Role, User

P = ParamSpec("P")
T = TypeVar("T")
View = Callable[Concatenate[HttpRequest, P], HttpResponse]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PAGE_SIZE = 50  # rows per page of every paginated page


def error_page(request: HttpRequest, error: ApplicationError) -> HttpResponse:
    return render(
        request,
        "core/error.html",
        {"status": error.status_code, "message": error.message},
        status=error.status_code,
    )


def current_user(request: HttpRequest) -> User:
    # Only called behind ``role_required``/``login_required``: the user is signed in.
    return cast(User, request.user)


def role_required(*roles: str, staff: bool = False) -> Callable[[View[P]], View[P]]:
    """Signed-in users whose role is one of ``roles`` (or staff, when ``staff``).

    Auditors are read-only everywhere: an unsafe method from one is a 403 whatever the
    page. Service errors the view does not handle itself become an error page.
    """

    def decorator(view: View[P]) -> View[P]:
        def wrapper(request: HttpRequest, /, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            user = current_user(request)
            if request.method not in SAFE_METHODS and user.is_auditor:
                return error_page(
                    request, PermissionDenied("Auditors have read-only access.", code="read_only")
                )
            if user.role not in roles and not (staff and user.is_staff):
                return error_page(request, PermissionDenied("This page is not for your role."))
            try:
                return view(request, *args, **kwargs)
            except ApplicationError as error:
                return error_page(request, error)

        functools.update_wrapper(wrapper, view)
        return wrapper

    return decorator


annotator_required = role_required(Role.ANNOTATOR)
researcher_required = role_required(Role.RESEARCHER, staff=True)
auditor_required = role_required(Role.AUDITOR, staff=True)


@dataclass(frozen=True)
class Submission:
    """What a form POST came to: ``response`` when it worked; otherwise ``None`` and the
    ``status`` to show the form again with (its errors are on the form)."""

    response: HttpResponse | None
    status: int


def form_submit(
    form: forms.BaseForm,
    *,
    action: Callable[[], T],
    on_success: Callable[[T], HttpResponse],
    on_error: Callable[[ApplicationError], None] | None = None,
) -> Submission:
    """Validate a bound ``form``, then run ``action`` (the service call) and answer with
    ``on_success`` of its result.

    Invalid input: status 400, nothing called. An ``ApplicationError`` from ``action``:
    the error's status, and ``on_error`` (by default the error's message as a form-wide
    error) says so on the form; ``on_error`` may re-raise an error that is no form's
    business, which ``role_required`` turns into an error page.
    """
    if not form.is_valid():
        return Submission(None, 400)
    try:
        result = action()
    except ApplicationError as error:
        if on_error is None:
            form.add_error(None, error.message)
        else:
            on_error(error)
        return Submission(None, error.status_code)
    response = on_success(result)
    return Submission(response, response.status_code)
