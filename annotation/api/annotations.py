"""Labels: an annotator submits and edits their own; a project's labels are listed by
pseudonym."""

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from annotation import selectors, services
from annotation.api.serializers import (
    AnnotationSerializer,
    ObjectIdField,
    ProjectAnnotationSerializer,
    SafeJSONField,
)
from core.api.base import READ_ERRORS, WRITE_ERRORS, BaseApi, paginated_response
from core.api.exceptions import error_responses
from core.api.pagination import Pagination
from core.api.permissions import DenyAuditorWrites, IsAnnotator, request_user


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
