"""Dataset version endpoints: create (with a dry run), list, read, download (the bundle
as one zip, or a single file), compare two versions, rebuild and retry."""

from typing import Any

from django.core.files.storage import default_storage
from django.http import FileResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from annotation import selectors as annotation_selectors
from core.api.base import READ_ERRORS, WRITE_ERRORS, BaseApi, paginated_response
from core.api.exceptions import error_responses
from core.api.pagination import Pagination
from core.api.permissions import request_user
from core.errors import ApplicationError, Conflict, NotFound
from ml import selectors, services
from ml.api.serializers import (
    ComparisonSerializer,
    DatasetVersionDetailSerializer,
    DatasetVersionSerializer,
    DryRunSerializer,
    RecipeInputSerializer,
)
from ml.build.archive import bundle_member_names, bundle_zip_stream
from ml.models import DatasetVersion


class Gone(ApplicationError):
    status_code = 410
    default_code = "revoked"


def _downloadable(version: DatasetVersion) -> None:
    if version.is_revoked:
        raise Gone(
            f"{version.label} was revoked ({version.revoked_reason}); its files are deleted. "
            "Rebuild it to get a version without that data.",
            extra={"rebuild": f"/api/v1/datasets/{version.pk}/rebuild/"},
        )
    if version.status != DatasetVersion.Status.DONE:
        raise Conflict(f"{version.label} is not built ({version.status}).", code="not_built")


class ProjectDatasetsApi(BaseApi):
    """A project's dataset versions (owner, auditors, staff), and queuing a new one."""

    pagination_class = Pagination

    @extend_schema(
        operation_id="projects_datasets_list",
        responses={200: DatasetVersionSerializer(many=True), **error_responses(*READ_ERRORS)},
    )
    def get(self, request: Request, project_id: int) -> Response:
        _project, versions = selectors.dataset_versions_for(
            user=request_user(request), project_id=project_id
        )
        return paginated_response(self, request, versions, DatasetVersionSerializer)

    @extend_schema(
        operation_id="projects_datasets_create",
        request=RecipeInputSerializer,
        responses={202: DatasetVersionSerializer, **error_responses(*WRITE_ERRORS, 503)},
    )
    def post(self, request: Request, project_id: int) -> Response:
        user = request_user(request)
        project = annotation_selectors.project_managed_by(user=user, project_id=project_id)
        data = RecipeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = services.dataset_version_create(
            project=project, actor=user, recipe=data.validated_data["recipe"]
        )
        version.refresh_from_db()
        return Response(DatasetVersionSerializer(version).data, status=status.HTTP_202_ACCEPTED)


class ProjectDatasetDryRunApi(BaseApi):
    """What a recipe would ship and leave out, per reason, without building (owner, staff)."""

    @extend_schema(
        operation_id="projects_datasets_dry_run",
        request=RecipeInputSerializer,
        responses={200: DryRunSerializer, **error_responses(*WRITE_ERRORS)},
    )
    def post(self, request: Request, project_id: int) -> Response:
        user = request_user(request)
        project = annotation_selectors.project_managed_by(user=user, project_id=project_id)
        data = RecipeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        dry = services.dataset_version_dry_run(
            project=project, actor=user, recipe=data.validated_data["recipe"]
        )
        return Response(
            DryRunSerializer(
                {
                    "recipe": dry.recipe.to_json(),
                    "items": dry.items,
                    "labels": dry.labels,
                    "annotators": dry.annotators,
                    "left_out": dry.left_out,
                }
            ).data
        )


class DatasetVersionApi(BaseApi):
    """One version: status, progress, counts, left-out reasons, manifest, contamination."""

    @extend_schema(
        operation_id="datasets_retrieve",
        responses={200: DatasetVersionDetailSerializer, **error_responses(*READ_ERRORS)},
    )
    def get(self, request: Request, version_id: int) -> Response:
        version = selectors.dataset_version_get(user=request_user(request), version_id=version_id)
        return Response(DatasetVersionDetailSerializer(version).data)


class DatasetDownloadApi(BaseApi):
    """The whole bundle as one zip, streamed (owner, staff). 410 once revoked."""

    @extend_schema(
        operation_id="datasets_download",
        responses={
            (200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY),
            **error_responses(*READ_ERRORS, 409, 410),
        },
    )
    def get(self, request: Request, version_id: int) -> StreamingHttpResponse:
        version = selectors.dataset_version_for_download(
            user=request_user(request), version_id=version_id
        )
        _downloadable(version)
        response = StreamingHttpResponse(bundle_zip_stream(version), content_type="application/zip")
        name = f"chorus-project-{version.project_id}-{version.label}.zip"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


class DatasetFileApi(BaseApi):
    """One file of the bundle by its manifest path (owner, staff; auditors: the manifest
    and licenses.csv only). 410 once revoked."""

    AUDITOR_FILES = frozenset({"manifest.json", "licenses.csv"})

    @extend_schema(
        operation_id="datasets_file",
        responses={
            (200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY),
            **error_responses(*READ_ERRORS, 409, 410),
        },
    )
    def get(self, request: Request, version_id: int, path: str) -> Any:
        user = request_user(request)
        if path in self.AUDITOR_FILES:
            version = selectors.dataset_version_get(user=user, version_id=version_id)
        else:
            version = selectors.dataset_version_for_download(user=user, version_id=version_id)
        _downloadable(version)
        if path not in bundle_member_names(version):
            raise NotFound("No such file in this version.")
        handle = default_storage.open(f"{version.storage_prefix}/{path}", "rb")
        return FileResponse(handle, as_attachment=True, filename=path.rsplit("/", 1)[-1])


class DatasetCompareApi(BaseApi):
    """What changed from ``other`` to this version (items added, removed, moved between
    splits), and whether this version's test split nearly duplicates ``other``'s train
    split (owner, auditors, staff)."""

    @extend_schema(
        operation_id="datasets_compare",
        responses={200: ComparisonSerializer, **error_responses(*READ_ERRORS, 409)},
    )
    def get(self, request: Request, version_id: int, other_id: int) -> Response:
        user = request_user(request)
        new = selectors.dataset_version_get(user=user, version_id=version_id)
        old = selectors.dataset_version_get(user=user, version_id=other_id)
        for version in (new, old):
            if version.status != DatasetVersion.Status.DONE:
                raise Conflict(f"{version.label} is not built.", code="not_built")
        comparison = selectors.dataset_versions_compare(old=old, new=new)
        # Imported here: the near-duplicate engine (datasketch, pandas) stays out of web
        # start-up.
        from ml.build.contamination import cross_version_check

        return Response(
            ComparisonSerializer(
                {
                    "old": old.pk,
                    "new": new.pk,
                    "added": comparison.added,
                    "removed": comparison.removed,
                    "moved": [
                        {"item": item, "from": before, "to": after}
                        for item, before, after in comparison.moved
                    ],
                    "contamination": cross_version_check(test_of=new, train_of=old),
                }
            ).data
        )


class DatasetRebuildApi(BaseApi):
    """Queue a new version by the same recipe (owner, staff): after a revocation, it
    ships without the data that caused it."""

    @extend_schema(
        operation_id="datasets_rebuild",
        request=None,
        responses={202: DatasetVersionSerializer, **error_responses(*WRITE_ERRORS, 503)},
    )
    def post(self, request: Request, version_id: int) -> Response:
        user = request_user(request)
        version = selectors.dataset_version_manage(user=user, version_id=version_id)
        rebuilt = services.dataset_version_rebuild(version=version, actor=user)
        rebuilt.refresh_from_db()
        return Response(DatasetVersionSerializer(rebuilt).data, status=status.HTTP_202_ACCEPTED)


class DatasetRetryApi(BaseApi):
    """Queue a failed build again (owner, staff)."""

    @extend_schema(
        operation_id="datasets_retry",
        request=None,
        responses={202: DatasetVersionSerializer, **error_responses(*WRITE_ERRORS, 503)},
    )
    def post(self, request: Request, version_id: int) -> Response:
        user = request_user(request)
        version = selectors.dataset_version_manage(user=user, version_id=version_id)
        retried = services.dataset_version_retry(version=version, actor=user)
        return Response(DatasetVersionSerializer(retried).data, status=status.HTTP_202_ACCEPTED)
