"""Agreement analysis endpoints: the stored summary (a GET never computes), the owner's
refresh, per-item disagreement (JSON or CSV), per-annotator agreement and group
disagreement."""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from annotation import selectors
from annotation.analysis import (
    ITEM_DISAGREEMENT_ORDERINGS,
    AnalysisRead,
    analysis_categories,
    analysis_get,
    analysis_group_result,
    analysis_refresh,
    item_disagreement_list,
    item_disagreement_table,
)
from annotation.api.serializers import (
    AgreementAnalysisSerializer,
    AnalysisFilterSerializer,
    AnnotatorAgreementSerializer,
    GroupDisagreementSerializer,
    ItemDisagreementSerializer,
)
from annotation.models import Project
from core.api.base import READ_ERRORS, BaseApi, paginated_response
from core.api.exceptions import error_responses
from core.api.pagination import Pagination
from core.api.permissions import request_user
from core.api.renderers import CsvDownloadMixin, CsvRenderer, CsvTable

# The status of an analysis nobody has computed yet for these filters (no row is stored).
NOT_COMPUTED = "not_computed"


def _analysis_for(request: Request, project_id: int) -> tuple[Project, AnalysisRead]:
    """The project (owner, auditors, staff; 404 otherwise) and the analysis stored for the
    query's filters, as it is: a GET never computes (``ProjectAgreementRefreshApi`` does)."""
    project = selectors.project_readable_by_staff_role(
        user=request_user(request), project_id=project_id
    )
    filters = AnalysisFilterSerializer(data=request.query_params)
    filters.is_valid(raise_exception=True)
    return project, analysis_get(project=project, filters=filters.validated_data)


def _agreement_data(read: AnalysisRead) -> dict[str, Any]:
    analysis = read.analysis
    return {
        "status": analysis.status if analysis is not None else NOT_COMPUTED,
        "computed_at": analysis.computed_at if analysis is not None else None,
        "annotation_count": analysis.annotation_count if analysis is not None else 0,
        "filters": read.filters,
        "error": analysis.error if analysis is not None else "",
        "summary": (analysis.summary if analysis is not None else None) or None,
        "stale": read.stale,
    }


class ProjectAgreementApi(BaseApi):
    """Agreement summary of a project's labels: Krippendorff's alpha, percent agreement,
    Fleiss' kappa, Dawid-Skene fit, label entropy (owner, auditors, staff). The stored
    result, stale or not: ``stale`` says whether the labels changed since."""

    @extend_schema_serializer(component_name="AgreementAnalysisState")
    class OutputSerializer(AgreementAnalysisSerializer):
        status = serializers.CharField(
            help_text="not_computed (nothing stored for these filters yet), pending, running, "
            "done or failed."
        )
        stale = serializers.BooleanField(
            help_text="The labels changed since this result was computed, or there is none; "
            "false while it is being recomputed. POST .../agreement/refresh/ recomputes it."
        )

    @extend_schema(
        operation_id="projects_agreement",
        parameters=[AnalysisFilterSerializer],
        responses={200: OutputSerializer, **error_responses(400, *READ_ERRORS)},
    )
    def get(self, request: Request, project_id: int) -> Response:
        _, read = _analysis_for(request, project_id)
        return Response(self.OutputSerializer(_agreement_data(read)).data)


class ProjectAgreementRefreshApi(BaseApi):
    """Recompute the agreement analysis for the given filters (owner or staff): within the
    request when it has at most ``CHORUS_ANALYSIS_INLINE_LIMIT`` labels (200), otherwise
    queued for a worker (202, status pending; poll the GET). A fresh result is left as is."""

    @extend_schema_serializer(component_name="AgreementRefreshRequest")
    class InputSerializer(AnalysisFilterSerializer):
        pass

    @extend_schema(
        operation_id="projects_agreement_refresh",
        request=InputSerializer,
        responses={
            200: ProjectAgreementApi.OutputSerializer,
            202: ProjectAgreementApi.OutputSerializer,
            **error_responses(400, *READ_ERRORS, 413, 415),
        },
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = selectors.project_managed_by(user=request_user(request), project_id=project_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        analysis_refresh(project=project, filters=serializer.validated_data)
        read = analysis_get(project=project, filters=serializer.validated_data)
        return Response(
            ProjectAgreementApi.OutputSerializer(_agreement_data(read)).data,
            status=status.HTTP_202_ACCEPTED if read.in_progress else status.HTTP_200_OK,
        )


def _json_errors(*statuses: int) -> dict[tuple[int, str], OpenApiResponse]:
    return {(code, "application/json"): body for code, body in error_responses(*statuses).items()}


class ProjectItemDisagreementListApi(CsvDownloadMixin, BaseApi):
    """Per-item disagreement (entropy, majority, soft label, Dawid-Skene), paginated JSON or
    the whole table as CSV (``?format=csv`` or ``Accept: text/csv``)."""

    pagination_class = Pagination
    renderer_classes = [JSONRenderer, CsvRenderer]

    @extend_schema(
        operation_id="projects_items_disagreement",
        parameters=[
            AnalysisFilterSerializer,
            OpenApiParameter(
                "ordering",
                str,
                enum=list(ITEM_DISAGREEMENT_ORDERINGS),
                description="Sort key; '-' for descending. Default: -entropy.",
            ),
        ],
        responses={
            (200, "application/json"): ItemDisagreementSerializer(many=True),
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR, description="Every item, one column per category."
            ),
            **_json_errors(400, *READ_ERRORS),
        },
    )
    def get(self, request: Request, project_id: int) -> Response:
        project, read = _analysis_for(request, project_id)
        analysis = read.analysis
        ordering = request.query_params.get("ordering") or None
        if request.accepted_renderer.format == "csv":
            categories = [
                c["value"] for c in analysis_categories(project=project, analysis=analysis)
            ]
            header, rows = item_disagreement_table(analysis=analysis, categories=categories)
            filename = f"project-{project.pk}-item-disagreement.csv"
            return Response(CsvTable(header=header, rows=rows, filename=filename))
        items = item_disagreement_list(analysis=analysis, ordering=ordering)
        return paginated_response(self, request, items, ItemDisagreementSerializer)


class ProjectAnnotatorAgreementApi(BaseApi):
    """Per-annotator agreement, by pseudonym only: labels, agreement with the others'
    majority, alpha without them, accuracy on gold and attention items."""

    pagination_class = Pagination

    @extend_schema(
        operation_id="projects_annotators_agreement",
        parameters=[AnalysisFilterSerializer],
        responses={
            200: AnnotatorAgreementSerializer(many=True),
            **error_responses(400, *READ_ERRORS),
        },
    )
    def get(self, request: Request, project_id: int) -> Response:
        _, read = _analysis_for(request, project_id)
        stored = read.analysis.annotators if read.analysis is not None else None
        rows = stored if isinstance(stored, list) else []
        paginator = Pagination()
        # DRF's paginator slices any sequence; its stubs only name querysets.
        page: list[dict[str, Any]] | None = paginator.paginate_queryset(
            rows,  # type: ignore[arg-type]
            request,
            view=self,
        )
        return paginator.get_paginated_response(AnnotatorAgreementSerializer(page, many=True).data)


class ProjectGroupDisagreementApi(BaseApi):
    """Do annotator groups (by their answer to one survey question) label differently?
    Within-group alpha, cross-group agreement (xRR), effect size and permutation p-value."""

    @extend_schema(
        operation_id="projects_groups_disagreement",
        parameters=[AnalysisFilterSerializer],
        responses={200: GroupDisagreementSerializer, **error_responses(400, *READ_ERRORS)},
    )
    def get(self, request: Request, project_id: int, question: str) -> Response:
        project, read = _analysis_for(request, project_id)
        analysis = read.analysis
        result = analysis_group_result(project=project, analysis=analysis, question=question)
        data = {
            **result,
            "analysis_status": analysis.status if analysis is not None else NOT_COMPUTED,
            "computed_at": analysis.computed_at if analysis is not None else None,
        }
        return Response(GroupDisagreementSerializer(data).data)
