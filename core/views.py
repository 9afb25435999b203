"""Sign-in, the home router and error pages. API paths get JSON errors in the one error
shape."""

from typing import Any

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from core.api.exceptions import error_body
from core.lockout import lockout_error
from core.pages import current_user


class ThrottledLoginView(auth_views.LoginView):
    """The sign-in page; django-axes throttles it (``core.lockout``), like the admin's."""

    template_name = "core/login.html"
    redirect_authenticated_user = True


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Where signing in lands: each role's own start page, named by URL name only (core
    imports no app)."""
    user = current_user(request)
    if user.is_staff or user.is_researcher:
        return redirect("research-projects")
    if user.is_auditor:
        return redirect("auditor-projects")
    return redirect("annotator-home")


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """``AXES_LOCKOUT_CALLABLE``: what a locked-out sign-in gets, instead of any form error.

    429 with how long to wait: the one error shape under /api/, a page elsewhere (the
    sign-in page and the admin's), never next to a "wrong password" message.
    """
    error = lockout_error(request, credentials)
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse(
            error_body(error.code, error.message, error.extra), status=error.status_code
        )
    else:
        context = {"message": error.message, "sign_in_url": request.get_full_path()}
        response = render(request, "core/lockout.html", context, status=error.status_code)
    response["Retry-After"] = str(error.extra["retry_after_seconds"])
    return response


def api_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    return render(
        request, "core/error.html", {"status": 404, "message": "Page not found."}, status=404
    )


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("server_error", "Internal server error."), status=500)
    return render(
        request, "core/error.html", {"status": 500, "message": "Server error."}, status=500
    )
