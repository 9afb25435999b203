"""Training run endpoints: start a run on a dataset version, list a project's or a
version's runs, read one (progress, metrics, group tables), cancel it, download its
artefacts (as one zip, or one file)."""

from typing import Any

from django.core.files.storage import default_storage
from django.http import FileResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.base import READ_ERRORS, WRITE_ERRORS, BaseApi, paginated_response
from core.api.exceptions import error_responses
from core.api.pagination import Pagination
from core.api.permissions import request_user
from core.errors import Conflict, NotFound
from ml import selectors, services
from ml.api.datasets import Gone
from ml.api.serializers import (
    TrainingRunDetailSerializer,
    TrainingRunInputSerializer,
    TrainingRunSerializer,
)
from ml.build.archive import zip_stream
from ml.models import TrainingRun


def _servable(run: TrainingRun) -> None:
    if run.is_revoked:
        version = run.dataset_version
        raise Gone(
            f"{run.label} was trained on {version.label}, which was revoked "
            f"({version.revoked_reason}); its artefacts are no longer served. Train again "
            "on the version's rebuild.",
            extra={"rebuild": f"/api/v1/datasets/{version.pk}/rebuild/"},
        )
    if run.status != TrainingRun.Status.DONE:
        raise Conflict(f"{run.label} has no artefacts ({run.status}).", code="not_trained")


def _member_names(run: TrainingRun) -> list[str]:
    return ["manifest.json", *(entry["path"] for entry in run.manifest.get("files", []))]


class ProjectTrainingRunsApi(BaseApi):
    """A project's training runs, newest first (owner, auditors, staff)."""

    pagination_class = Pagination

    @extend_schema(
        operation_id="projects_training_runs_list",
        responses={200: TrainingRunSerializer(many=True), **error_responses(*READ_ERRORS)},
    )
    def get(self, request: Request, project_id: int) -> Response:
        _project, runs = selectors.training_runs_for(
            user=request_user(request), project_id=project_id
        )
        return paginated_response(self, request, runs, TrainingRunSerializer)


class DatasetTrainingRunsApi(BaseApi):
    """A version's training runs (owner, auditors, staff), and starting one (owner, staff)."""

    pagination_class = Pagination

    @extend_schema(
        operation_id="datasets_training_runs_list",
        responses={200: TrainingRunSerializer(many=True), **error_responses(*READ_ERRORS)},
    )
    def get(self, request: Request, version_id: int) -> Response:
        version = selectors.dataset_version_get(user=request_user(request), version_id=version_id)
        runs = selectors.training_runs_of_version(version_id=version.pk).select_related(
            "dataset_version"
        )
        return paginated_response(self, request, runs, TrainingRunSerializer)

    @extend_schema(
        operation_id="datasets_training_runs_create",
        request=TrainingRunInputSerializer,
        responses={202: TrainingRunSerializer, **error_responses(*WRITE_ERRORS, 503)},
    )
    def post(self, request: Request, version_id: int) -> Response:
        user = request_user(request)
        version = selectors.dataset_version_manage(user=user, version_id=version_id)
        data = TrainingRunInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        run = services.training_run_create(version=version, actor=user, request=request.data)
        run.refresh_from_db()
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class TrainingRunApi(BaseApi):
    """One run: status, progress, metrics (test and validation, history, environment),
    the group tables and the artefacts' manifest."""

    @extend_schema(
        operation_id="training_runs_retrieve",
        responses={200: TrainingRunDetailSerializer, **error_responses(*READ_ERRORS)},
    )
    def get(self, request: Request, run_id: int) -> Response:
        run = selectors.training_run_get(user=request_user(request), run_id=run_id)
        return Response(TrainingRunDetailSerializer(run).data)


class TrainingRunCancelApi(BaseApi):
    """Cancel a queued run, or ask a running one to stop (owner, staff)."""

    @extend_schema(
        operation_id="training_runs_cancel",
        request=None,
        responses={200: TrainingRunSerializer, **error_responses(*WRITE_ERRORS)},
    )
    def post(self, request: Request, run_id: int) -> Response:
        user = request_user(request)
        run = selectors.training_run_manage(user=user, run_id=run_id)
        cancelled = services.training_run_cancel(run=run, actor=user)
        return Response(TrainingRunSerializer(cancelled).data)


class TrainingRunDownloadApi(BaseApi):
    """Every artefact as one zip, streamed (owner, staff). 410 once its version is revoked."""

    @extend_schema(
        operation_id="training_runs_download",
        responses={
            (200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY),
            **error_responses(*READ_ERRORS, 409, 410),
        },
    )
    def get(self, request: Request, run_id: int) -> StreamingHttpResponse:
        run = selectors.training_run_manage(user=request_user(request), run_id=run_id)
        _servable(run)
        folder = f"{run.project_id}-run-{run.pk}"
        response = StreamingHttpResponse(
            zip_stream(run.storage_prefix, folder, _member_names(run)),
            content_type="application/zip",
        )
        response["Content-Disposition"] = f'attachment; filename="chorus-{folder}.zip"'
        return response


class TrainingRunFileApi(BaseApi):
    """One artefact by its manifest path (owner, staff; auditors: the manifest, metrics,
    group tables and plots, no weights or predictions). 410 once its version is revoked."""

    @extend_schema(
        operation_id="training_runs_file",
        responses={
            (200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY),
            **error_responses(*READ_ERRORS, 409, 410),
        },
    )
    def get(self, request: Request, run_id: int, path: str) -> Any:
        user = request_user(request)
        run = selectors.training_run_get(user=user, run_id=run_id)
        if not selectors.training_file_readable(user=user, run=run, path=path):
            run = selectors.training_run_manage(user=user, run_id=run_id)  # raises 403
        _servable(run)
        if path not in _member_names(run):
            raise NotFound("No such file in this run.")
        handle = default_storage.open(f"{run.storage_prefix}/{path}", "rb")
        inline = path.endswith(".png")
        return FileResponse(handle, as_attachment=not inline, filename=path.rsplit("/", 1)[-1])
