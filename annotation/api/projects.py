"""Project endpoints: list and create, read and edit, move draft -> open -> closed, and
progress.

Views are thin: they validate input with their nested serializers, then call services
(writes) and selectors (reads). Who may call is decided by permission classes; which rows
the caller may see is decided by selectors (anything out of scope answers 404, so ids of
other people's objects are not even confirmed to exist).
"""

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from annotation import selectors, services
from annotation.api.serializers import ProjectSerializer, SafeJSONField
from annotation.models import AssignmentStrategy, CompensationUnit, Modality, Project, ProjectStatus
from annotation.schemas import PRESETS
from core.api.base import READ_ERRORS, WRITE_ERRORS, BaseApi, paginated_response
from core.api.exceptions import error_responses
from core.api.pagination import Pagination
from core.api.permissions import IsResearcherOrStaff, request_user
from core.models import User


def _project_data(project: Project, viewer: User) -> Any:
    return ProjectSerializer(project, context={"viewer": viewer}).data


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
