"""REST endpoints for the annotation campaign: one view per URL, one method per operation.

Views are thin: they validate input with their nested serializers, then call services
(writes) and selectors (reads). Who may call is decided by permission classes; which rows
the caller may see is decided by selectors (anything out of scope answers 404, so ids of
other people's objects are not even confirmed to exist).
"""

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation import ingest, selectors, services
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
    AnnotationSerializer,
    AnnotatorAgreementSerializer,
    AssignmentSerializer,
    ConsentChangeSerializer,
    EnrolmentSerializer,
    GroupDisagreementSerializer,
    ImportBatchSerializer,
    ItemDisagreementSerializer,
    ItemSerializer,
    NextAssignmentSerializer,
    ObjectIdField,
    ProjectAnnotationSerializer,
    ProjectItemSerializer,
    ProjectSerializer,
    SafeJSONField,
)
from annotation.consent import consent_changes, enrolment_needs_reconsent, project_consent_text
from annotation.models import (
    AssignmentStrategy,
    CompensationUnit,
    ControlKind,
    Enrolment,
    Modality,
    Project,
    ProjectStatus,
)
from annotation.schemas import PRESETS
from core.api.exceptions import error_responses
from core.api.pagination import Pagination
from core.api.parsers import JSONParser, MultiPartParser
from core.api.permissions import (
    DenyAuditorWrites,
    IsAnnotator,
    IsResearcherOrStaff,
    request_user,
)
from core.api.renderers import CsvDownloadMixin, CsvRenderer, CsvTable
from core.errors import NotFound, PayloadTooLarge, ValidationFailed
from core.middleware import request_body_limit
from core.models import User
from provenance.services import consent_text_version

READ_ERRORS = (401, 403, 404)
WRITE_ERRORS = (400, 401, 403, 404, 409, 413, 415)
ITEM_ORDERINGS = [
    ordering for field in selectors.ITEM_ORDERING_FIELDS for ordering in (field, f"-{field}")
]
# Served images were re-encoded on ingest into one of these formats; nothing else is served.
IMAGE_CONTENT_TYPES = {
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
}


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


def _project_data(project: Project, viewer: User) -> Any:
    return ProjectSerializer(project, context={"viewer": viewer}).data


def _enrolment_data(enrolment: Enrolment) -> Any:
    progress = selectors.annotator_progress(
        project=enrolment.project, annotator=enrolment.annotator
    )
    return EnrolmentSerializer(
        {
            "enrolment": enrolment,
            "progress": progress,
            "reconsent_required": enrolment_needs_reconsent(enrolment),
        }
    ).data


def _own_enrolment(project: Project, user: User) -> Enrolment:
    enrolment = selectors.enrolment_get(project=project, annotator=user)
    if enrolment is None:
        raise NotFound("You are not enrolled in this project.", code="not_enrolled")
    return enrolment


# ---------------------------------------------------------------- projects


class ProjectFieldsSerializer(serializers.Serializer[Any]):
    """The editable project fields; every one optional (the service checks completeness)."""

    title = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(allow_blank=True, required=False)
    instructions = serializers.CharField(required=False)
    modality = serializers.ChoiceField(choices=Modality.choices, required=False)
    label_schema = SafeJSONField(required=False, help_text="See annotation.schemas.LabelSchema.")
    annotations_per_item = serializers.IntegerField(min_value=1, max_value=100, required=False)
    compensation_amount = serializers.DecimalField(
        max_digits=10, decimal_places=2, min_value=0, required=False
    )
    compensation_currency = serializers.RegexField(r"^[A-Z]{3}$", required=False)
    compensation_unit = serializers.ChoiceField(choices=CompensationUnit.choices, required=False)
    risk_disclosure = serializers.CharField(required=False)
    data_use_statement = serializers.CharField(required=False)
    survey = SafeJSONField(required=False, help_text="See annotation.surveys.")
    assignment_ttl_seconds = serializers.IntegerField(
        min_value=30, max_value=7 * 24 * 3600, required=False
    )
    assignment_strategy = serializers.ChoiceField(
        choices=AssignmentStrategy.choices, required=False
    )
    control_rate = serializers.FloatField(
        min_value=0.0,
        max_value=0.5,
        required=False,
        help_text="Share of assignments drawn from gold and attention-check items.",
    )


class ProjectListCreateApi(BaseApi):
    """Projects the caller may see (researchers: their own; annotators: open or joined;
    auditors and staff: all); researchers create drafts."""

    pagination_class = Pagination

    @extend_schema_serializer(component_name="ProjectCreateRequest")
    class CreateInputSerializer(ProjectFieldsSerializer):
        preset = serializers.ChoiceField(
            choices=sorted(PRESETS),
            required=False,
            help_text="Fills modality, label schema and instructions.",
        )
        title = serializers.CharField(max_length=200)
        risk_disclosure = serializers.CharField()
        data_use_statement = serializers.CharField()

    def get_permissions(self) -> list[BasePermission]:
        permission_classes = list(self.permission_classes)
        if self.request.method == "POST":
            permission_classes.append(IsResearcherOrStaff)
        return [permission() for permission in permission_classes]

    @extend_schema(
        operation_id="projects_list",
        responses={200: ProjectSerializer(many=True), **error_responses(400, 401, 403, 404)},
    )
    def get(self, request: Request) -> Response:
        user = request_user(request)
        projects = selectors.project_list_for(user=user)
        return paginated_response(
            self, request, projects, ProjectSerializer, context={"viewer": user}
        )

    @extend_schema(
        operation_id="projects_create",
        request=CreateInputSerializer,
        responses={201: ProjectSerializer, **error_responses(*WRITE_ERRORS)},
    )
    def post(self, request: Request) -> Response:
        serializer = self.CreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        preset = fields.pop("preset", None)
        user = request_user(request)
        project = services.project_create(owner=user, preset=preset, **fields)
        return Response(_project_data(project, user), status=status.HTTP_201_CREATED)


class ProjectDetailApi(BaseApi):
    """One project; only its owner (or staff) may change it."""

    @extend_schema_serializer(component_name="ProjectUpdateRequest")
    class UpdateInputSerializer(ProjectFieldsSerializer):
        confirm_reconsent = serializers.BooleanField(
            default=False,
            help_text="Required to change an open project's instructions, pay, risks or data "
            "use while annotators are enrolled: each must then consent again. Without it such "
            "a change answers 409 `reconsent_unconfirmed` with the number of annotators.",
        )

    @extend_schema(
        operation_id="projects_retrieve",
        responses={200: ProjectSerializer, **error_responses(*READ_ERRORS)},
    )
    def get(self, request: Request, project_id: int) -> Response:
        user = request_user(request)
        project = selectors.project_get_for(user=user, project_id=project_id)
        return Response(_project_data(project, user))

    @extend_schema(
        operation_id="projects_update",
        request=UpdateInputSerializer,
        responses={200: ProjectSerializer, **error_responses(*WRITE_ERRORS)},
    )
    def patch(self, request: Request, project_id: int) -> Response:
        user = request_user(request)
        project = selectors.project_managed_by(user=user, project_id=project_id)
        serializer = self.UpdateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        confirm_reconsent = data.pop("confirm_reconsent")
        project = services.project_update(
            project=project, actor=user, data=data, confirm_reconsent=confirm_reconsent
        )
        return Response(_project_data(project, user))


class ProjectTransitionApi(BaseApi):
    """Move a project draft -> open -> closed (owner or staff)."""

    @extend_schema_serializer(component_name="ProjectTransitionRequest")
    class InputSerializer(serializers.Serializer[Any]):
        status = serializers.ChoiceField(choices=ProjectStatus.choices)

    @extend_schema(
        operation_id="projects_transition",
        request=InputSerializer,
        responses={200: ProjectSerializer, **error_responses(*WRITE_ERRORS)},
    )
    def post(self, request: Request, project_id: int) -> Response:
        user = request_user(request)
        project = selectors.project_managed_by(user=user, project_id=project_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        project = services.project_transition(
            project=project, actor=user, status=serializer.validated_data["status"]
        )
        return Response(_project_data(project, user))


class ProjectProgressApi(BaseApi):
    """Labeling progress from non-withdrawn labels (owner, auditors, staff)."""

    @extend_schema_serializer(component_name="ProjectProgress")
    class OutputSerializer(serializers.Serializer[Any]):
        items = serializers.IntegerField()
        items_complete = serializers.IntegerField(help_text="Items with k non-withdrawn labels.")
        percent_complete = serializers.FloatField()
        labels = serializers.IntegerField()
        labels_withdrawn = serializers.IntegerField()
        annotators_active = serializers.IntegerField()
        annotators_withdrawn = serializers.IntegerField()
        labels_per_item = serializers.DictField(
            child=serializers.IntegerField(),
            help_text="Histogram: number of labels -> number of items.",
        )
        control_items = serializers.IntegerField(
            help_text="Gold and attention-check items; not counted in items above."
        )
        control_labels = serializers.IntegerField(
            help_text="Non-withdrawn answers to control items; not counted in labels above."
        )

    @extend_schema(
        operation_id="projects_progress",
        responses={200: OutputSerializer, **error_responses(*READ_ERRORS)},
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_readable_by_staff_role(
            user=request_user(request), project_id=project_id
        )
        progress = selectors.project_progress(project=project).as_dict()
        return Response(self.OutputSerializer(progress).data)


class ProjectConsentApi(BaseApi):
    """The exact consent text an annotator agrees to, and its version."""

    @extend_schema_serializer(component_name="ProjectConsent")
    class OutputSerializer(serializers.Serializer[Any]):
        project = serializers.IntegerField()
        text = serializers.CharField(help_text="The exact text an annotator consents to.")
        version = serializers.CharField(help_text="sha256 of the text; recorded with consent.")
        purposes = serializers.ListField(child=serializers.CharField())
        changes_since_your_consent = ConsentChangeSerializer(
            many=True,
            help_text="For an enrolled annotator whose consent was to earlier terms: the "
            "lines removed and added since (with a line of context); empty otherwise.",
        )

    @extend_schema(
        operation_id="projects_consent",
        responses={200: OutputSerializer, **error_responses(*READ_ERRORS)},
    )
    def get(self, request: Request, project_id: int) -> Response:
        user = request_user(request)
        project = selectors.project_get_for(user=user, project_id=project_id)
        text = project_consent_text(project)
        enrolment = selectors.enrolment_get(project=project, annotator=user)
        changes = (
            consent_changes(enrolment.consent.text, text)
            if enrolment is not None and enrolment_needs_reconsent(enrolment)
            else []
        )
        data = {
            "project": project.pk,
            "text": text,
            "version": consent_text_version(text),
            "purposes": services.CONSENT_PURPOSES,
            "changes_since_your_consent": changes,
        }
        return Response(self.OutputSerializer(data).data)


# ---------------------------------------------------------------- items and imports


class ProjectItemListApi(BaseApi):
    """A project's items with provenance (owner, auditors, staff); ordering on allowlisted
    fields only."""

    pagination_class = Pagination

    @extend_schema(
        operation_id="projects_items_list",
        parameters=[
            OpenApiParameter(
                "ordering", str, enum=ITEM_ORDERINGS, description="Sort key; '-' for descending."
            )
        ],
        responses={200: ProjectItemSerializer(many=True), **error_responses(400, *READ_ERRORS)},
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_readable_by_staff_role(
            user=request_user(request), project_id=project_id
        )
        ordering = request.query_params.get("ordering") or None
        if ordering is not None and ordering not in ITEM_ORDERINGS:
            # Never handed to the ORM: an unchecked order_by could traverse relations.
            raise ValidationFailed(
                "Unknown ordering.", code="invalid_ordering", extra={"allowed": ITEM_ORDERINGS}
            )
        items = selectors.item_list(project=project, ordering=ordering)
        return paginated_response(self, request, items, ProjectItemSerializer)


class ItemDetailApi(BaseApi):
    """One item: owner, auditors and staff, or an annotator it is assigned to. Never carries
    labels."""

    @extend_schema(
        operation_id="items_retrieve",
        responses={200: ItemSerializer, **error_responses(*READ_ERRORS)},
    )
    def get(self, request: Request, item_id: int) -> Response:
        item = selectors.item_get_for(user=request_user(request), item_id=item_id)
        return Response(ItemSerializer(item).data)


class ItemControlApi(BaseApi):
    """Make an item a gold or attention-check item with its expected answer, or a regular
    item again (owner or staff). Annotators are never told which items are control items."""

    permission_classes = [*BaseApi.permission_classes, IsResearcherOrStaff]

    @extend_schema_serializer(component_name="ItemControlRequest")
    class InputSerializer(serializers.Serializer[Any]):
        control = serializers.ChoiceField(
            choices=ControlKind.choices,
            allow_blank=True,
            required=False,
            help_text="gold, attention, or empty for a regular item; absent: unchanged.",
        )
        expected_value = SafeJSONField(
            required=False,
            allow_null=True,
            help_text="The expected answer, validated against the project's label schema; "
            "null for a regular item. Absent: unchanged if the kind is.",
        )

    @extend_schema_serializer(component_name="ItemControl")
    class OutputSerializer(serializers.Serializer[Any]):
        item = serializers.IntegerField(source="pk")
        control = serializers.ChoiceField(choices=ControlKind.choices)
        expected_value = serializers.JSONField(allow_null=True)

    @extend_schema(
        operation_id="items_control_set",
        request=InputSerializer,
        responses={200: OutputSerializer, **error_responses(*WRITE_ERRORS)},
    )
    def patch(self, request: Request, item_id: int) -> Response:
        user = request_user(request)
        item = selectors.item_get_for(user=user, item_id=item_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        # PATCH: what is left out keeps its value, as far as the new kind allows.
        control = data.get("control", item.control)
        if "expected_value" in data:
            expected_value = data["expected_value"]
        else:
            expected_value = item.expected_value if control == item.control else None
        item = services.item_control_set(
            item=item, actor=user, control=control, expected_value=expected_value
        )
        return Response(self.OutputSerializer(item).data)


class ImageContentNegotiation(DefaultContentNegotiation):
    """An image request may accept only ``image/*``: its errors are still answered in JSON."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderers = list(renderers)
        try:
            selected: tuple[BaseRenderer, str] = super().select_renderer(
                request, renderers, format_suffix
            )
        except NotAcceptable:
            return renderers[0], renderers[0].media_type
        return selected


class ItemImageApi(BaseApi):
    """The only way item images are served: the sanitised copy, after the access check."""

    content_negotiation_class = ImageContentNegotiation

    @extend_schema(
        operation_id="items_image",
        responses={
            (200, "image/jpeg"): OpenApiResponse(OpenApiTypes.BINARY),
            (200, "image/png"): OpenApiResponse(OpenApiTypes.BINARY),
            (200, "image/webp"): OpenApiResponse(OpenApiTypes.BINARY),
            **error_responses(*READ_ERRORS),
        },
    )
    def get(self, request: Request, item_id: int) -> FileResponse:
        item = selectors.item_get_for(user=request_user(request), item_id=item_id)
        name = item.image.name if item.kind == Modality.IMAGE and item.image else ""
        extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        content_type = IMAGE_CONTENT_TYPES.get(extension)
        if content_type is None:
            raise NotFound("This item has no image.", code="no_image")
        try:
            handle = item.image.open("rb")
        except FileNotFoundError as error:
            raise NotFound("This item's image is missing.", code="no_image") from error
        response = FileResponse(handle, content_type=content_type)
        response["Content-Disposition"] = f'inline; filename="item-{item.pk}.{extension}"'
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        return response


@request_body_limit("CHORUS_MAX_UPLOAD_BYTES")
class ProjectImportListCreateApi(BaseApi):
    """Import batches: the owner (or staff) uploads exactly one file; owner, auditors and
    staff poll."""

    pagination_class = Pagination
    parser_classes = [MultiPartParser]

    @extend_schema_serializer(component_name="ImportUploadRequest")
    class CreateInputSerializer(serializers.Serializer[Any]):
        file = serializers.FileField(
            help_text="One CSV/JSONL of texts, or a zip of images with a CSV/JSONL manifest."
        )

    @extend_schema(
        operation_id="projects_imports_list",
        responses={200: ImportBatchSerializer(many=True), **error_responses(400, *READ_ERRORS)},
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_readable_by_staff_role(
            user=request_user(request), project_id=project_id
        )
        batches = selectors.import_batch_list(project=project)
        return paginated_response(self, request, batches, ImportBatchSerializer)

    @extend_schema(
        operation_id="projects_imports_create",
        request={"multipart/form-data": CreateInputSerializer},
        responses={202: ImportBatchSerializer, **error_responses(*WRITE_ERRORS)},
    )
    def post(self, request: Request, project_id: int) -> Response:
        user = request_user(request)
        project = selectors.project_managed_by(user=user, project_id=project_id)
        files = request.FILES
        uploads = files.getlist("file")
        if len(uploads) > 1 or any(name != "file" for name in files):
            raise ValidationFailed(
                "Send exactly one file, in the field 'file'.", code="too_many_files"
            )
        if not uploads:
            raise ValidationFailed("Send the file to import in the field 'file'.", code="no_file")
        upload = uploads[0]
        if upload.size is not None and upload.size > settings.CHORUS_MAX_UPLOAD_BYTES:
            raise PayloadTooLarge(
                "The upload is too large.", extra={"max_bytes": settings.CHORUS_MAX_UPLOAD_BYTES}
            )
        batch = ingest.import_batch_create(project=project, actor=user, upload=upload)
        return Response(ImportBatchSerializer(batch).data, status=status.HTTP_202_ACCEPTED)


class ProjectImportDetailApi(BaseApi):
    """One import batch: its status and every bad row (owner, auditors, staff)."""

    @extend_schema(
        operation_id="projects_imports_retrieve",
        responses={200: ImportBatchSerializer, **error_responses(*READ_ERRORS)},
    )
    def get(self, request: Request, project_id: int, batch_id: int) -> Response:
        project = selectors.project_readable_by_staff_role(
            user=request_user(request), project_id=project_id
        )
        batch = selectors.import_batch_list(project=project).filter(pk=batch_id).first()
        if batch is None:
            raise NotFound("No such import.")
        return Response(ImportBatchSerializer(batch).data)


# ---------------------------------------------------------------- enrolment (annotators)


class EnrolmentApi(BaseApi):
    """The caller's own enrolment in a project; POST gives consent (annotators only)."""

    permission_classes = [IsAuthenticated, DenyAuditorWrites, IsAnnotator]

    @extend_schema_serializer(component_name="EnrolmentCreateRequest")
    class CreateInputSerializer(serializers.Serializer[Any]):
        consent = serializers.BooleanField(
            help_text="Must be true: you read the consent text and agree. Also how an "
            "enrolled annotator consents again after the terms changed."
        )
        consent_version = serializers.RegexField(
            r"^[0-9a-f]{64}$",
            required=False,
            help_text="The version of the text you read (from the consent endpoint); if the "
            "terms changed since, 409 `consent_version_stale` and nothing is recorded.",
        )

        def validate_consent(self, value: bool) -> bool:
            if value is not True:
                raise serializers.ValidationError("Consent is required to enrol.")
            return value

    @extend_schema(
        operation_id="enrolment_retrieve",
        responses={200: EnrolmentSerializer, **error_responses(*READ_ERRORS)},
    )
    def get(self, request: Request, project_id: int) -> Response:
        user = request_user(request)
        project = selectors.project_get_for(user=user, project_id=project_id)
        return Response(_enrolment_data(_own_enrolment(project, user)))

    @extend_schema(
        operation_id="enrolment_create",
        request=CreateInputSerializer,
        responses={
            200: OpenApiResponse(EnrolmentSerializer, description="Already enrolled."),
            201: EnrolmentSerializer,
            **error_responses(*WRITE_ERRORS),
        },
    )
    def post(self, request: Request, project_id: int) -> Response:
        user = request_user(request)
        project = selectors.project_get_for(user=user, project_id=project_id)
        serializer = self.CreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        existed = selectors.enrolment_get(project=project, annotator=user) is not None
        enrolment = services.enrolment_create(
            project=project,
            annotator=user,
            method="api",
            consent_version=serializer.validated_data.get("consent_version"),
        )
        return Response(
            _enrolment_data(enrolment),
            status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED,
        )


class EnrolmentSurveyApi(BaseApi):
    """Answer or edit the optional, self-reported demographic survey."""

    permission_classes = [IsAuthenticated, DenyAuditorWrites, IsAnnotator]

    @extend_schema_serializer(component_name="SurveyAnswersRequest")
    class InputSerializer(serializers.Serializer[Any]):
        answers = serializers.DictField(
            child=SafeJSONField(allow_null=True),
            help_text="Question key -> answer; every question is optional.",
        )

    @extend_schema(
        operation_id="enrolment_survey_submit",
        request=InputSerializer,
        responses={200: EnrolmentSerializer, **error_responses(*WRITE_ERRORS)},
    )
    def put(self, request: Request, project_id: int) -> Response:
        user = request_user(request)
        project = selectors.project_get_for(user=user, project_id=project_id)
        enrolment = _own_enrolment(project, user)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        enrolment = services.enrolment_survey_submit(
            enrolment=enrolment, answers=serializer.validated_data["answers"]
        )
        return Response(_enrolment_data(enrolment))


class EnrolmentWithdrawApi(BaseApi):
    """Withdraw in one step: labels kept but excluded from every later analysis and export."""

    permission_classes = [IsAuthenticated, DenyAuditorWrites, IsAnnotator]

    @extend_schema(
        operation_id="enrolment_withdraw",
        request=None,
        responses={200: EnrolmentSerializer, **error_responses(*WRITE_ERRORS)},
    )
    def post(self, request: Request, project_id: int) -> Response:
        user = request_user(request)
        project = selectors.project_get_for(user=user, project_id=project_id)
        enrolment = services.enrolment_withdraw(enrolment=_own_enrolment(project, user), actor=user)
        return Response(_enrolment_data(enrolment))


# ---------------------------------------------------------------- assignments (annotators)


class AssignmentNextApi(BaseApi):
    """The next item for the caller to label, or 204 when nothing is left."""

    permission_classes = [IsAuthenticated, DenyAuditorWrites, IsAnnotator]

    @extend_schema(
        operation_id="assignments_next",
        request=None,
        responses={
            200: NextAssignmentSerializer,
            204: OpenApiResponse(description="Nothing is left for you to label."),
            **error_responses(*WRITE_ERRORS),
        },
    )
    def post(self, request: Request, project_id: int) -> Response:
        user = request_user(request)
        project = selectors.project_get_for(user=user, project_id=project_id)
        assignment = services.assignment_next(project=project, annotator=user)
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(NextAssignmentSerializer(assignment).data)


class AssignmentSkipApi(BaseApi):
    """Skip one of the caller's own open assignments."""

    permission_classes = [IsAuthenticated, DenyAuditorWrites, IsAnnotator]

    @extend_schema(
        operation_id="assignments_skip",
        request=None,
        responses={200: AssignmentSerializer, **error_responses(*WRITE_ERRORS)},
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        user = request_user(request)
        assignment = selectors.assignment_get_own(user=user, assignment_id=assignment_id)
        assignment = services.assignment_skip(assignment=assignment, annotator=user)
        return Response(AssignmentSerializer(assignment).data)


class AssignmentListApi(BaseApi):
    """The caller's own assignments in a project."""

    permission_classes = [IsAuthenticated, DenyAuditorWrites, IsAnnotator]
    pagination_class = Pagination

    @extend_schema(
        operation_id="assignments_list_own",
        responses={200: AssignmentSerializer(many=True), **error_responses(400, *READ_ERRORS)},
    )
    def get(self, request: Request, project_id: int) -> Response:
        user = request_user(request)
        project = selectors.project_get_for(user=user, project_id=project_id)
        assignments = selectors.assignment_list_own(user=user, project=project)
        return paginated_response(self, request, assignments, AssignmentSerializer)


# ---------------------------------------------------------------- annotations


class AnnotationCreateApi(BaseApi):
    """Submit a label for an assigned item; an identical repeat is a replay (200), a
    different one a conflict (409)."""

    permission_classes = [IsAuthenticated, DenyAuditorWrites, IsAnnotator]

    @extend_schema_serializer(component_name="AnnotationCreateRequest")
    class InputSerializer(serializers.Serializer[Any]):
        item = ObjectIdField()
        value = SafeJSONField(help_text="Validated against the project's label schema.")
        confidence = serializers.IntegerField(
            min_value=1, max_value=5, allow_null=True, required=False
        )
        rationale = serializers.CharField(max_length=5000, allow_blank=True, required=False)
        time_spent_ms = serializers.IntegerField(
            min_value=0, max_value=2**31 - 1, allow_null=True, required=False
        )

    @extend_schema(
        operation_id="annotations_create",
        request=InputSerializer,
        responses={
            200: OpenApiResponse(AnnotationSerializer, description="Identical replay."),
            201: AnnotationSerializer,
            **error_responses(*WRITE_ERRORS),
        },
    )
    def post(self, request: Request) -> Response:
        user = request_user(request)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        item = selectors.item_get_for(user=user, item_id=data["item"])
        result = services.annotation_submit(
            annotator=user,
            item=item,
            value=data["value"],
            confidence=data.get("confidence"),
            rationale=data.get("rationale", ""),
            time_spent_ms=data.get("time_spent_ms"),
        )
        return Response(
            AnnotationSerializer(result.annotation).data,
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )


class ProjectAnnotationListApi(BaseApi):
    """A project's labels, annotators by pseudonym only."""

    pagination_class = Pagination

    @extend_schema(
        operation_id="projects_annotations_list",
        description="Owner, auditors and staff: every label not withdrawn, by pseudonym. "
        "Annotators: their own labels only.",
        responses={
            200: ProjectAnnotationSerializer(many=True),
            **error_responses(400, *READ_ERRORS),
        },
    )
    def get(self, request: Request, project_id: int) -> Response:
        user = request_user(request)
        if user.is_annotator and not user.is_staff:
            project = selectors.project_get_for(user=user, project_id=project_id)
        else:
            project = selectors.project_readable_by_staff_role(user=user, project_id=project_id)
        annotations = selectors.annotation_list_for(user=user, project=project)
        return paginated_response(self, request, annotations, ProjectAnnotationSerializer)


class AnnotationDetailApi(BaseApi):
    """The author's own annotation; anyone else's id answers 404."""

    @extend_schema_serializer(component_name="AnnotationUpdateRequest")
    class UpdateInputSerializer(serializers.Serializer[Any]):
        value = SafeJSONField(required=False)
        confidence = serializers.IntegerField(
            min_value=1, max_value=5, allow_null=True, required=False
        )
        rationale = serializers.CharField(max_length=5000, allow_blank=True, required=False)

    @extend_schema(
        operation_id="annotations_retrieve",
        responses={200: AnnotationSerializer, **error_responses(*READ_ERRORS)},
    )
    def get(self, request: Request, annotation_id: int) -> Response:
        annotation = selectors.annotation_get_own(
            user=request_user(request), annotation_id=annotation_id
        )
        return Response(AnnotationSerializer(annotation).data)

    @extend_schema(
        operation_id="annotations_update",
        request=UpdateInputSerializer,
        responses={200: AnnotationSerializer, **error_responses(*WRITE_ERRORS)},
    )
    def patch(self, request: Request, annotation_id: int) -> Response:
        user = request_user(request)
        annotation = selectors.annotation_get_own(user=user, annotation_id=annotation_id)
        serializer = self.UpdateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        # PATCH: fields left out keep their current value.
        annotation = services.annotation_update(
            annotation=annotation,
            annotator=user,
            value=data.get("value", annotation.value),
            confidence=data.get("confidence", annotation.confidence),
            rationale=data.get("rationale"),
        )
        return Response(AnnotationSerializer(annotation).data)


# ---------------------------------------------------------------- agreement analysis


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
