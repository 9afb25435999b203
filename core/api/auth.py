"""The API's sign-in: an API token for a username and password, and its revocation.

Signing in here shares the lockout of the sign-in page and the admin (``core.lockout``):
all three go through ``authenticate()``, whose first backend is django-axes'.
"""

from typing import Any

from django.contrib.auth import authenticate
from django.contrib.auth.signals import user_logged_in
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.exceptions import ErrorSerializer, error_responses
from core.api.parsers import JSONParser
from core.api.permissions import request_user
from core.errors import ValidationFailed
from core.lockout import is_locked_out, lockout_error, username_normalize
from core.models import User
from core.services import api_token_issue, api_tokens_revoke


class UsernameField(serializers.CharField):
    """A username as authentication looks it up, so the lockout counts what is tried."""

    def to_internal_value(self, data: Any) -> str:
        return username_normalize(super().to_internal_value(data))


class AuthTokenApi(APIView):
    """POST: a username and password for an API token. DELETE: revoke the caller's token."""

    parser_classes = [JSONParser]

    def _signing_in(self) -> bool:
        return getattr(self.request, "method", None) == "POST"

    def get_authenticators(self) -> list[BaseAuthentication]:
        # Signing in reads no credentials: a stale or expired token must not block it.
        return [] if self._signing_in() else super().get_authenticators()

    def get_permissions(self) -> list[BasePermission]:
        # Any signed-in user may end their own token, auditors included.
        return [AllowAny()] if self._signing_in() else [IsAuthenticated()]

    @extend_schema_serializer(component_name="TokenObtainRequest")
    class InputSerializer(serializers.Serializer[Any]):
        username = UsernameField(max_length=150)
        password = serializers.CharField(max_length=256, trim_whitespace=False)

    @extend_schema_serializer(component_name="Token")
    class OutputSerializer(serializers.Serializer[Any]):
        token = serializers.CharField()
        role = serializers.CharField()
        pseudonym = serializers.CharField()

    @extend_schema(
        operation_id="auth_token_obtain",
        description="Exchange a username and password for an API token (throttled like the "
        "sign-in page).",
        auth=[],
        request=InputSerializer,
        responses={200: OutputSerializer, **error_responses(400, 413, 415, 429)},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        username = serializer.validated_data["username"]
        # The Django request: axes marks a lockout on it, and its middleware reads it there.
        http_request = request._request
        user = authenticate(
            http_request, username=username, password=serializer.validated_data["password"]
        )
        if not isinstance(user, User):
            if is_locked_out(http_request):
                raise lockout_error(http_request, {User.USERNAME_FIELD: username})
            raise ValidationFailed("Wrong username or password.", code="invalid_credentials")
        # A sign-in, as ``login()`` announces it: axes forgets this client's failures and
        # ``last_login`` is set, with no session started.
        user_logged_in.send(sender=type(user), request=http_request, user=user)
        token = api_token_issue(user=user)
        return Response(
            self.OutputSerializer(
                {"token": token.key, "role": user.role, "pseudonym": user.pseudonym}
            ).data
        )

    @extend_schema(
        operation_id="auth_token_revoke",
        description="Revoke the caller's API token: every client using it must sign in again.",
        request=None,
        responses={
            204: None,
            **error_responses(401),
            403: OpenApiResponse(
                ErrorSerializer, description="Signed in by session without the CSRF token."
            ),
        },
    )
    def delete(self, request: Request) -> Response:
        api_tokens_revoke(user=request_user(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
