"""API plumbing shared by every app's endpoints: the base view, pagination of a queryset,
and the error statuses a read or a write documents."""

from typing import Any

from django.db.models import QuerySet
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.pagination import Pagination
from core.api.parsers import JSONParser
from core.api.permissions import DenyAuditorWrites

READ_ERRORS = (401, 403, 404)
WRITE_ERRORS = (400, 401, 403, 404, 409, 413, 415)


class BaseApi(APIView):
    """Signed-in callers only; auditors may read but never write."""

    permission_classes: list[type[BasePermission]] = [IsAuthenticated, DenyAuditorWrites]
    parser_classes = [JSONParser]


def paginated_response(
    view: APIView,
    request: Request,
    queryset: QuerySet[Any],
    serializer: type[Any],
    context: dict[str, Any] | None = None,
) -> Response:
    paginator = Pagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer(page, many=True, context=context).data)
