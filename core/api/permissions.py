"""Small, composable permission classes for the API.

They decide *who may call* an endpoint (role checks). *Which rows* a caller may see or
change is decided in each app's selectors, because DRF applies no object permissions to
list or create endpoints; a row outside the caller's scope answers 404.
"""

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from core.errors import PermissionDenied
from core.models import User


def request_user(request: Request) -> User:
    """The signed-in user; views behind ``IsAuthenticated`` always have one."""
    user = request.user
    if not isinstance(user, User) or not user.is_authenticated:
        raise PermissionDenied("Sign in first.", code="not_authenticated")
    return user


def _user(request: Request) -> User | None:
    user = request.user
    return user if isinstance(user, User) and user.is_authenticated else None


class DenyAuditorWrites(BasePermission):
    """Auditors read everything and change nothing: any unsafe method is refused."""

    message = "Auditors have read-only access."
    code = "auditor_read_only"

    def has_permission(self, request: Request, view: Any) -> bool:
        user = _user(request)
        if user is None or request.method in SAFE_METHODS:
            return True
        return not (user.is_auditor and not user.is_staff)


class IsStaff(BasePermission):
    message = "Only administrators may do this."
    code = "staff_only"

    def has_permission(self, request: Request, view: Any) -> bool:
        user = _user(request)
        return user is not None and user.is_staff


class IsResearcherOrStaff(BasePermission):
    message = "Only researchers may do this."
    code = "researcher_only"

    def has_permission(self, request: Request, view: Any) -> bool:
        user = _user(request)
        return user is not None and (user.is_researcher or user.is_staff)


class IsAnnotator(BasePermission):
    message = "Only annotators may do this."
    code = "annotator_only"

    def has_permission(self, request: Request, view: Any) -> bool:
        user = _user(request)
        return user is not None and user.is_annotator


class IsAuditorOrStaff(BasePermission):
    message = "Only auditors and administrators may do this."
    code = "auditor_only"

    def has_permission(self, request: Request, view: Any) -> bool:
        user = _user(request)
        return user is not None and (user.is_auditor or user.is_staff)
