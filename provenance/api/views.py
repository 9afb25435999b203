"""Read-only governance endpoints for auditors and staff: the audit log and its chain check."""

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.exceptions import error_responses
from core.api.pagination import Pagination
from core.api.permissions import DenyAuditorWrites, IsAuditorOrStaff
from provenance import selectors, services
from provenance.api.serializers import AuditEventSerializer, ChainReportSerializer

READ_ERRORS = (400, 401, 403, 404)


class AuditEventListApi(APIView):
    permission_classes = [IsAuthenticated, DenyAuditorWrites, IsAuditorOrStaff]
    pagination_class = Pagination

    class FilterSerializer(serializers.Serializer[Any]):
        """Only these fields filter; any other query parameter is ignored."""

        action = serializers.CharField(max_length=64, required=False)
        object_type = serializers.CharField(max_length=64, required=False)
        object_id = serializers.CharField(max_length=64, required=False)
        actor_pseudonym = serializers.CharField(max_length=32, required=False)

    @extend_schema(
        operation_id="audit_events_list",
        parameters=[
            OpenApiParameter(name, str, description=f"Exact match on {name}.")
            for name in selectors.AUDIT_FILTER_FIELDS
        ],
        responses={200: AuditEventSerializer(many=True), **error_responses(*READ_ERRORS)},
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        events = selectors.audit_event_list(filters=dict(filters.validated_data))
        paginator = Pagination()
        page = paginator.paginate_queryset(events, request, view=self)
        return paginator.get_paginated_response(AuditEventSerializer(page, many=True).data)


class AuditChainVerifyApi(APIView):
    permission_classes = [IsAuthenticated, DenyAuditorWrites, IsAuditorOrStaff]

    @extend_schema(
        operation_id="audit_verify",
        responses={200: ChainReportSerializer, **error_responses(401, 403)},
    )
    def get(self, request: Request) -> Response:
        report = services.audit_chain_verify()
        return Response(ChainReportSerializer(report).data)
