"""Read-only governance endpoints for auditors and staff: the audit log and its chain check."""

from dataclasses import asdict
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
    """Check the chain, reading only: by default the events after the checkpoint, with
    ``full`` every event from the first. Neither moves the checkpoint or records a full
    check; the schedule and ``manage.py verify_audit_chain`` do."""

    permission_classes = [IsAuthenticated, DenyAuditorWrites, IsAuditorOrStaff]

    class InputSerializer(serializers.Serializer[Any]):
        full = serializers.BooleanField(required=False, default=False)

    @extend_schema(
        operation_id="audit_verify",
        parameters=[
            OpenApiParameter(
                "full",
                bool,
                description="Check every event from the first, not only those after the "
                "checkpoint: the only check that finds an edit to an event already verified.",
            )
        ],
        responses={200: ChainReportSerializer, **error_responses(400, 401, 403)},
    )
    def get(self, request: Request) -> Response:
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        report = services.audit_chain_verify(full=params.validated_data["full"])
        checkpoint = selectors.audit_chain_checkpoint()
        last_full_check = (
            checkpoint if checkpoint is not None and checkpoint.full_check_at else None
        )
        data = {**asdict(report), "last_full_check": last_full_check}
        return Response(ChainReportSerializer(data).data)
