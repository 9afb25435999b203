"""REST endpoints for governance: takedown requests, data subjects' consent, auditor reports.

Apart from the labeling campaign's endpoints because its callers differ: anyone may file a
takedown; owners and staff decide; auditors read everything here and change nothing.
"""

from dataclasses import asdict
from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from annotation import selectors, services
from annotation.models import SubjectConsent, TakedownRequest
from core.api.base import READ_ERRORS, WRITE_ERRORS, BaseApi
from core.api.exceptions import error_responses
from core.api.pagination import Pagination
from core.api.permissions import IsResearcherOrStaff, request_user
from core.api.renderers import CsvDownloadMixin, CsvRenderer, CsvTable
from core.models import User
from core.net import client_address
from provenance.licenses import INTENDED_USES


class TakedownSerializer(serializers.Serializer[Any]):
    """A request as its deciders and auditors see it. The requester's contact is kept for the
    deciders only (see ``contact``)."""

    id = serializers.IntegerField()
    reference = serializers.CharField()
    item = serializers.IntegerField(source="item_id", allow_null=True)
    project = serializers.IntegerField(source="project_id", allow_null=True)
    kind = serializers.CharField()
    reason = serializers.CharField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()
    decided_by = serializers.CharField(source="decided_by.pseudonym", allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    decision_reason = serializers.CharField()
    affected = serializers.JSONField(
        help_text="Dataset versions and trained models that held the item when it was taken down."
    )
    contact = serializers.SerializerMethodField(
        help_text="How to reach the requester; empty for auditors (they do not answer requests)."
    )

    def get_contact(self, request: TakedownRequest) -> str:
        viewer = self.context.get("viewer")
        if isinstance(viewer, User) and request.is_decidable_by(viewer):
            return request.contact
        return ""


class TakedownListCreateApi(BaseApi):
    """File a takedown or erasure request (anyone); list requests (owners, auditors, staff)."""

    pagination_class = Pagination

    @extend_schema_serializer(component_name="TakedownFileRequest")
    class InputSerializer(serializers.Serializer[Any]):
        reference = serializers.CharField(
            max_length=200, help_text="The item's id, or the sha256 of its content."
        )
        kind = serializers.ChoiceField(choices=TakedownRequest.Kind.choices)
        reason = serializers.CharField(max_length=5000)
        contact = serializers.CharField(max_length=254, required=False, allow_blank=True)

    @extend_schema_serializer(component_name="TakedownReceipt")
    class ReceiptSerializer(serializers.Serializer[Any]):
        status = serializers.CharField()
        message = serializers.CharField()

    class FilterSerializer(serializers.Serializer[Any]):
        status = serializers.ChoiceField(choices=TakedownRequest.Status.choices, required=False)

    def get_permissions(self) -> list[Any]:
        if self.request.method == "POST":
            return [AllowAny()]
        return [permission() for permission in self.permission_classes]

    @extend_schema(
        operation_id="takedowns_create",
        request=InputSerializer,
        responses={202: ReceiptSerializer, **error_responses(400, 429)},
        auth=[],
    )
    def post(self, request: Request) -> Response:
        filer = services.takedown_throttle(address=client_address(request._request))
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.takedown_file(**data.validated_data, filer=filer)
        # The same answer whether or not the reference named anything: it must not tell
        # anyone which content the datasets hold.
        receipt = {
            "status": "received",
            "message": "Your request was received and will be reviewed. "
            "If you gave a contact, you will hear back.",
        }
        return Response(self.ReceiptSerializer(receipt).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        operation_id="takedowns_list",
        parameters=[OpenApiParameter("status", str, enum=TakedownRequest.Status.values)],
        responses={200: TakedownSerializer(many=True), **error_responses(400, *READ_ERRORS)},
    )
    def get(self, request: Request) -> Response:
        user = request_user(request)
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        requests = selectors.takedown_list_for(
            user=user, status=filters.validated_data.get("status", "")
        )
        paginator = Pagination()
        page = paginator.paginate_queryset(requests, request, view=self)
        data = TakedownSerializer(page, many=True, context={"viewer": user}).data
        return paginator.get_paginated_response(data)


class TakedownDetailApi(BaseApi):
    @extend_schema(
        operation_id="takedowns_retrieve",
        responses={200: TakedownSerializer, **error_responses(*READ_ERRORS)},
    )
    def get(self, request: Request, takedown_id: int) -> Response:
        user = request_user(request)
        takedown = selectors.takedown_get_for(user=user, takedown_id=takedown_id)
        return Response(TakedownSerializer(takedown, context={"viewer": user}).data)


class TakedownDecisionApi(BaseApi):
    """Accept (the item is tombstoned) or reject a request, with a reason: owner or staff."""

    permission_classes = [*BaseApi.permission_classes, IsResearcherOrStaff]

    @extend_schema_serializer(component_name="TakedownDecisionRequest")
    class InputSerializer(serializers.Serializer[Any]):
        accept = serializers.BooleanField()
        reason = serializers.CharField(max_length=5000)

    @extend_schema(
        operation_id="takedowns_decide",
        request=InputSerializer,
        responses={200: TakedownSerializer, **error_responses(*WRITE_ERRORS)},
    )
    def post(self, request: Request, takedown_id: int) -> Response:
        user = request_user(request)
        takedown = selectors.takedown_get_for(user=user, takedown_id=takedown_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        decided = services.takedown_decide(request=takedown, actor=user, **data.validated_data)
        return Response(TakedownSerializer(decided, context={"viewer": user}).data)


class ItemSubjectConsentApi(BaseApi):
    """Record whether the people an item shows consented (owner or staff)."""

    permission_classes = [*BaseApi.permission_classes, IsResearcherOrStaff]

    @extend_schema_serializer(component_name="SubjectConsentRequest")
    class InputSerializer(serializers.Serializer[Any]):
        status = serializers.ChoiceField(choices=SubjectConsent.choices)
        consent_text = serializers.CharField(
            max_length=20000, required=False, allow_blank=True, help_text="The release signed."
        )
        purposes = serializers.ListField(
            child=serializers.CharField(max_length=100), required=False, max_length=20
        )
        lawful_basis = serializers.CharField(max_length=64, required=False)
        evidence = serializers.CharField(max_length=2000, required=False, allow_blank=True)
        given_at = serializers.DateTimeField(required=False)
        expires_at = serializers.DateTimeField(required=False, allow_null=True)

    @extend_schema_serializer(component_name="SubjectConsent")
    class OutputSerializer(serializers.Serializer[Any]):
        item = serializers.IntegerField(source="pk")
        status = serializers.CharField(source="subject_consent")
        consent_record = serializers.IntegerField(
            source="subject_consent_record_id", allow_null=True
        )

    @extend_schema(
        operation_id="items_subject_consent",
        request=InputSerializer,
        responses={200: OutputSerializer, **error_responses(*WRITE_ERRORS)},
    )
    def put(self, request: Request, item_id: int) -> Response:
        user = request_user(request)
        item = selectors.item_get_for(user=user, item_id=item_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        updated = services.item_subject_consent_set(item=item, actor=user, **data.validated_data)
        return Response(self.OutputSerializer(updated).data)


class LicenseClassSerializer(serializers.Serializer[Any]):
    use = serializers.CharField()
    attribution = serializers.BooleanField()
    share_alike = serializers.BooleanField()
    no_derivatives = serializers.BooleanField()


@extend_schema_serializer(component_name="LicenseBlocker")
class LicenseBlockerSerializer(serializers.Serializer[Any]):
    """A rule that blocks an intended use, with example items carrying it."""

    expression = serializers.CharField()
    rule = serializers.CharField()
    message = serializers.CharField()
    conflicts_with = serializers.CharField(allow_null=True)
    items = serializers.ListField(
        child=serializers.CharField(), help_text="Up to 10 external ids carrying it."
    )


@extend_schema_serializer(component_name="LicenseUseAnswer")
class LicenseUseAnswerSerializer(serializers.Serializer[Any]):
    intended_use = serializers.ChoiceField(choices=list(INTENDED_USES))
    allowed = serializers.BooleanField()
    blocking = serializers.SerializerMethodField()
    obligations = serializers.ListField(child=serializers.CharField())
    resulting_class = LicenseClassSerializer(allow_null=True)
    resulting_license = serializers.CharField(allow_null=True)

    @extend_schema_field(LicenseBlockerSerializer(many=True))
    def get_blocking(self, answer: selectors.UseAnswer) -> list[Any]:
        blockers = [{**asdict(blocker), "items": items} for blocker, items in answer.blocking]
        return list(LicenseBlockerSerializer(blockers, many=True).data)


@extend_schema_serializer(component_name="LicenseFinding")
class LicenseFindingSerializer(serializers.Serializer[Any]):
    item = serializers.IntegerField(source="item_id")
    external_id = serializers.CharField()
    license = serializers.CharField()


@extend_schema_serializer(component_name="LicenseReport")
class LicenseReportSerializer(serializers.Serializer[Any]):
    """``selectors.LicenseReport``, every nested field typed in the OpenAPI schema."""

    items = serializers.SerializerMethodField(help_text="Items not taken down.")
    by_license = serializers.SerializerMethodField(
        help_text="Items per license expression, most common first."
    )
    by_use = serializers.DictField(child=serializers.IntegerField())
    missing_license = LicenseFindingSerializer(many=True)
    unknown_license = LicenseFindingSerializer(many=True)
    missing_attribution = LicenseFindingSerializer(many=True)
    answers = LicenseUseAnswerSerializer(many=True)

    def get_items(self, report: selectors.LicenseReport) -> int:
        return len(report.items)

    @extend_schema_field(serializers.DictField(child=serializers.IntegerField()))
    def get_by_license(self, report: selectors.LicenseReport) -> dict[str, int]:
        return dict(report.by_license)


class ProjectLicenseReportApi(CsvDownloadMixin, BaseApi):
    """Licenses of a project's items and what the combination rules allow (owner, auditor,
    staff). ``?format=csv`` downloads one row per item."""

    renderer_classes = [JSONRenderer, CsvRenderer]

    @extend_schema(
        operation_id="projects_license_report",
        parameters=[OpenApiParameter("format", str, enum=["json", "csv"])],
        responses={
            (200, "application/json"): LicenseReportSerializer,
            (200, "text/csv"): OpenApiTypes.STR,
            **error_responses(*READ_ERRORS),
        },
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_readable_by_staff_role(
            user=request_user(request), project_id=project_id
        )
        report = selectors.license_report(project=project)
        if request.accepted_renderer.format == "csv":
            table = CsvTable(
                header=selectors.LICENSE_CSV_HEADER,
                rows=selectors.license_report_rows(report),
                filename=f"licenses-project-{project.pk}.csv",
            )
            return Response(table)
        return Response(LicenseReportSerializer(report).data)


class ProjectConsentReportApi(BaseApi):
    """Consent of the people items show, annotators' consents (pseudonyms) and withdrawals,
    open takedown requests and their age (owner, auditor, staff)."""

    class AnnotatorSerializer(serializers.Serializer[Any]):
        pseudonym = serializers.CharField()
        given_at = serializers.DateTimeField()
        text_version = serializers.CharField()
        purposes = serializers.ListField(child=serializers.CharField())
        method = serializers.CharField()
        expires_at = serializers.DateTimeField(allow_null=True)
        withdrawn_at = serializers.DateTimeField(allow_null=True)

    class ItemSerializer(serializers.Serializer[Any]):
        item = serializers.IntegerField(source="pk")
        external_id = serializers.CharField()
        subject_consent = serializers.CharField()

    class OpenTakedownSerializer(serializers.Serializer[Any]):
        id = serializers.IntegerField()
        kind = serializers.CharField()
        item = serializers.IntegerField(source="item_id", allow_null=True)
        created_at = serializers.DateTimeField()
        age_days = serializers.IntegerField()

    @extend_schema_serializer(component_name="ConsentReport")
    class OutputSerializer(serializers.Serializer[Any]):
        subject_consent = serializers.DictField(child=serializers.IntegerField())
        items_without_consent = serializers.ListField(child=serializers.DictField())
        expired_subject_consents = serializers.ListField(child=serializers.DictField())
        annotators = serializers.ListField(child=serializers.DictField())
        annotators_withdrawn = serializers.IntegerField()
        open_takedowns = serializers.ListField(child=serializers.DictField())

    @extend_schema(
        operation_id="projects_consent_report",
        responses={200: OutputSerializer, **error_responses(*READ_ERRORS)},
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_readable_by_staff_role(
            user=request_user(request), project_id=project_id
        )
        report = selectors.consent_report(project=project)
        now = timezone.now()
        takedowns = [
            {
                "id": takedown.pk,
                "kind": takedown.kind,
                "item_id": takedown.item_id,
                "created_at": takedown.created_at,
                "age_days": (now - takedown.created_at).days,
            }
            for takedown in report.open_takedowns
        ]
        data = {
            "subject_consent": report.subject_consent,
            "items_without_consent": self.ItemSerializer(
                report.items_without_consent, many=True
            ).data,
            "expired_subject_consents": self.ItemSerializer(
                report.expired_subject_consents, many=True
            ).data,
            "annotators": self.AnnotatorSerializer(report.annotators, many=True).data,
            "annotators_withdrawn": report.annotators_withdrawn,
            "open_takedowns": self.OpenTakedownSerializer(takedowns, many=True).data,
        }
        return Response(self.OutputSerializer(data).data)
