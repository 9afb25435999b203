"""An annotator's assignments: the next item to label, skipping one, and their own list."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from annotation import selectors, services
from annotation.api.serializers import AssignmentSerializer, NextAssignmentSerializer
from core.api.base import READ_ERRORS, WRITE_ERRORS, BaseApi, paginated_response
from core.api.exceptions import error_responses
from core.api.pagination import Pagination
from core.api.permissions import DenyAuditorWrites, IsAnnotator, request_user


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
