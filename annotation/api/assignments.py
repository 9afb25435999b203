"""An annotator's assignments: the next item to label, skipping one, and their own list."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from annotation import selectors, services
from annotation.api.serializers import (
    AssignmentSerializer,
    AssignmentWaitSerializer,
    NextAssignmentSerializer,
)
from core.api.base import READ_ERRORS, WRITE_ERRORS, BaseApi, paginated_response
from core.api.exceptions import ErrorSerializer, error_body, error_responses
from core.api.pagination import Pagination
from core.api.permissions import DenyAuditorWrites, IsAnnotator, request_user

ITEMS_HELD = "items_held"
NEXT_CONFLICTS = (
    "Conflicts with the project's, your enrolment's or the items' current state. "
    "`project_not_open`: the project does not hand out items. `reconsent_required`: the "
    "terms changed since you consented. `items_held`: nothing is free for you now, but items "
    "you could still label are held by other annotators whose assignments have not run out; "
    "`extra.retry_at` (ISO 8601) and `extra.retry_after_seconds` say when the first of them "
    "does (by the database's clock), and the Retry-After header carries the same seconds. "
    "Ask again then: the item may be yours, or taken by someone who asked first. Unlike "
    "204, it does not mean you are done."
)


class AssignmentNextApi(BaseApi):
    """The next item for the caller to label; 204 when nothing is left for them; 409
    ``items_held`` with Retry-After when the items left are all held by others for now.

    "Come back later" is an error answer, not a 200 or a 204: a client that reads 204 as
    "done" or 200 as "an item" must not stop for good, or spin, on a wait. 409 because the
    request is valid and only the items' current state refuses it (503 or 429 would blame
    the server or the caller).
    """

    permission_classes = [IsAuthenticated, DenyAuditorWrites, IsAnnotator]

    @extend_schema(
        operation_id="assignments_next",
        request=None,
        parameters=[
            OpenApiParameter(
                "Retry-After",
                OpenApiTypes.INT,
                location=OpenApiParameter.HEADER,
                response=[409],
                description="With `items_held`: seconds until the first held item may free up.",
            )
        ],
        responses={
            200: NextAssignmentSerializer,
            204: OpenApiResponse(description="Nothing is left for you to label."),
            **error_responses(*WRITE_ERRORS),
            409: OpenApiResponse(ErrorSerializer, description=NEXT_CONFLICTS),
        },
    )
    def post(self, request: Request, project_id: int) -> Response:
        user = request_user(request)
        project = selectors.project_get_for(user=user, project_id=project_id)
        assignment = services.assignment_next(project=project, annotator=user)
        if assignment is not None:
            return Response(NextAssignmentSerializer(assignment).data)
        # Only now, after the service committed its expiries: a wait is read, never raised
        # inside the service, whose transaction would roll them back.
        wait = selectors.assignment_wait_hint(project=project, annotator=user)
        if wait is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        message = (
            "All items are being labeled by others right now. "
            f"Come back in about {wait.retry_after_minutes} "
            f"minute{'s' if wait.retry_after_minutes != 1 else ''}."
        )
        return Response(
            error_body(ITEMS_HELD, message, dict(AssignmentWaitSerializer(wait).data)),
            status=status.HTTP_409_CONFLICT,
            headers={"Retry-After": str(wait.retry_after_seconds)},
        )


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
