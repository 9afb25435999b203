"""Sign-in (throttled) and error pages. API paths get JSON errors in the one error shape."""

from typing import Any

from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters

from core.api.exceptions import error_body
from core.errors import TooManyRequests
from core.services import login_failure_record, login_success_record, login_throttle_check


def throttle_keys(request: HttpRequest, username: str) -> list[str]:
    """Count failures per account and per client address, so neither can be brute-forced."""
    address = request.META.get("REMOTE_ADDR", "unknown")
    return [f"user:{username.strip().lower()[:150]}", f"addr:{address}"]


@method_decorator(sensitive_post_parameters(), name="dispatch")
class ThrottledLoginView(auth_views.LoginView):
    template_name = "core/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        keys = throttle_keys(request, str(request.POST.get("username", "")))
        try:
            login_throttle_check(keys=keys)
        except TooManyRequests as error:
            form = self.get_form()
            return render(
                request, self.template_name, {"form": form, "throttled": error.message}, status=429
            )
        response = super().post(request, *args, **kwargs)
        if request.user.is_authenticated:
            login_success_record(keys=keys[:1])
        else:
            login_failure_record(keys=keys)
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
