"""API token authentication with a lifetime (``CHORUS_API_TOKEN_TTL_SECONDS``)."""

from typing import Any

from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed

from core.services import api_token_expired


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, refusing a token past its lifetime (401 ``token_expired``).

    The expired token is left in place (reads do not write); signing in again at
    ``POST /api/v1/auth/token/`` replaces it with a new one.
    """

    def authenticate_credentials(self, key: str) -> tuple[Any, Token]:
        user, token = super().authenticate_credentials(key)
        if api_token_expired(token=token):
            raise AuthenticationFailed(
                "The API token has expired. Sign in again for a new one.", code="token_expired"
            )
        return user, token
