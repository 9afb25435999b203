"""Item endpoints: a project's items, one item, its image (the sanitised copy, after the
access check), its gold or attention-check setting, and import batches."""

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.http import FileResponse, HttpResponse
from django.http.response import HttpResponseBase
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
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from annotation import ingest, selectors, services
from annotation.api.serializers import (
    ImportBatchSerializer,
    ItemSerializer,
    ProjectItemSerializer,
    SafeJSONField,
)
from annotation.models import ControlKind, Modality
from core.api.base import READ_ERRORS, WRITE_ERRORS, BaseApi, paginated_response
from core.api.exceptions import error_responses
from core.api.pagination import Pagination
from core.api.parsers import MultiPartParser
from core.api.permissions import IsResearcherOrStaff, request_user
from core.errors import NotFound, PayloadTooLarge, ValidationFailed
from core.middleware import request_body_limit

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
    """The only way item images are served: the sanitised copy, after the access check.

    With ``settings.CHORUS_MEDIA_ACCEL_REDIRECT_PREFIX`` set (behind nginx), the answer is
    empty and names the file in ``X-Accel-Redirect``: nginx sends it from its internal
    location, so a slow client holds nginx, not a gunicorn worker. The check and the
    headers are the same either way.
    """

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
    def get(self, request: Request, item_id: int) -> HttpResponseBase:
        item = selectors.item_get_for(user=request_user(request), item_id=item_id)
        name = item.image.name if item.kind == Modality.IMAGE and item.image else ""
        extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        content_type = IMAGE_CONTENT_TYPES.get(extension)
        if content_type is None:
            raise NotFound("This item has no image.", code="no_image")
        missing = NotFound("This item's image is missing.", code="no_image")
        response: HttpResponseBase
        accel_prefix = settings.CHORUS_MEDIA_ACCEL_REDIRECT_PREFIX
        if accel_prefix:
            # Checked here, so that a missing file is the same JSON 404 in both modes.
            if not item.image.storage.exists(name):
                raise missing
            response = HttpResponse(content_type=content_type)
            response["X-Accel-Redirect"] = accel_prefix + quote(name)
        else:
            try:
                handle = item.image.open("rb")
            except FileNotFoundError as error:
                raise missing from error
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
        responses={202: ImportBatchSerializer, **error_responses(*WRITE_ERRORS, 503)},
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
