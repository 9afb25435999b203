"""The import service: all-or-nothing ``items_import`` and queued import batches.

An import stores every row or none, and reports every bad row with its line number. A
batch stages an upload (or names a server folder), is queued once committed, and runs
once (``import_batch_run``, guarded by its status); its staged upload is deleted
afterwards. The run is enqueued by the task's registered name
(``annotation.task_names``), so this module never imports ``annotation.tasks``.
"""

import logging
import unicodedata
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from celery import current_app
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation.ingest.manifest import (
    ImportSource,
    RowError,
    _file_error,
    _invalid,
    row_error,
)
from annotation.ingest.rows import (
    PreparedItem,
    _batch_duplicates,
    _existing_conflicts,
    _prepare_rows,
    _row_context,
    _taken_down,
)
from annotation.ingest.stores import (
    import_folder_resolve,
    read_folder,
    read_upload,
    upload_kind,
)
from annotation.models import ImportBatch, Item, Modality, Project, ProjectStatus
from annotation.task_names import IMPORT_BATCH_RUN_TASK
from core.db import table_statistics_refresh
from core.errors import (
    ApplicationError,
    Conflict,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    ValidationFailed,
)
from core.models import User
from provenance.models import Source
from provenance.services import audit_record, source_get_or_create

logger = logging.getLogger(__name__)

# The registered name of the task that runs a batch (``annotation.tasks``).
# Imports at least this large refresh the planner's statistics of the item table at once.
ANALYZE_AFTER_ROWS = 1000
MAX_STORED_ERRORS = 1000


# ---------------------------------------------------------------- import


def _check_can_import(*, project: Project, actor: User) -> None:
    if project.is_managed_by(actor):
        return
    raise PermissionDenied(
        "Only the project's owner or staff can import items.", code="import_not_allowed"
    )


def _check_importable(project: Project) -> None:
    if project.status == ProjectStatus.CLOSED:
        raise Conflict("Items cannot be imported into a closed project.", code="project_closed")


def _modality_mismatch() -> ValidationFailed:
    return _file_error(
        "modality_mismatch",
        "An image project imports a .zip or folder of images with a manifest, not a "
        "manifest alone.",
    )


def _sources_for(prepared: Sequence[PreparedItem], *, owner: User) -> dict[str, Source]:
    """The project owner's sources the rows name: another researcher's same-named source
    is never linked (each keeps their own URL)."""
    sources: dict[str, Source] = {}
    for item in prepared:
        if item.source_name and item.source_name not in sources:
            sources[item.source_name] = source_get_or_create(
                owner=owner, name=item.source_name, url=item.source_url
            )
    return sources


def _build_item(
    project: Project,
    prepared: PreparedItem,
    sources: dict[str, Source],
    batch: ImportBatch | None,
) -> Item:
    image = prepared.image
    item = Item(
        project=project,
        external_id=prepared.external_id,
        kind=project.modality,
        text=prepared.text,
        image_width=image.width if image else None,
        image_height=image.height if image else None,
        removed_metadata=image.removed_metadata if image else [],
        metadata=prepared.metadata,
        sha256=prepared.sha256,
        phash=image.phash if image else "",
        source=sources.get(prepared.source_name),
        creator=prepared.creator,
        license=prepared.license,
        attribution=prepared.attribution,
        subject_consent=prepared.subject_consent,
        control=prepared.control,
        expected_value=prepared.expected_value,
        import_batch=batch,
    )
    # Uniqueness was checked for the whole batch and the database constraint stands behind
    # it; relations were just created. Checking them per row would cost a query each.
    item.full_clean(
        exclude=["project", "source", "import_batch", "image"],
        validate_unique=False,
        validate_constraints=False,
    )
    if image is not None:
        # The stored name is content-addressed by item_upload_path; only the extension,
        # chosen by us from the decoded format, comes from here.
        item.image.save(f"image.{image.extension}", ContentFile(image.content), save=False)
    return item


def _audit_payload(
    project: Project, prepared: Sequence[PreparedItem], batch: ImportBatch | None, kind: str
) -> dict[str, Any]:
    removed = Counter(
        name for item in prepared if item.image for name in item.image.removed_metadata
    )
    return {
        "project": project.pk,
        "batch": batch.pk if batch is not None else None,
        "source_kind": kind,
        "modality": project.modality,
        "items": len(prepared),
        "licenses": dict(Counter(item.license or "(none)" for item in prepared)),
        "sources": len({item.source_name for item in prepared if item.source_name}),
        "metadata_removed": dict(removed),
    }


def _delete_stored(names: Iterable[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            logger.warning("could not delete %s after a failed import", name, exc_info=True)


def _store_items(
    *,
    project: Project,
    actor: User,
    prepared: Sequence[PreparedItem],
    batch: ImportBatch | None,
    kind: str,
) -> list[Item]:
    written: list[str] = []
    try:
        with transaction.atomic():
            # Serialises imports into one project, so the re-checks below are exact.
            locked = Project.objects.select_for_update().get(pk=project.pk)
            _check_importable(locked)
            conflicts = _existing_conflicts(locked, prepared) + _taken_down(prepared)
            if conflicts:
                raise _invalid(conflicts)
            sources = _sources_for(prepared, owner=locked.owner)
            items: list[Item] = []
            for entry in prepared:
                items.append(_build_item(locked, entry, sources, batch))
                if items[-1].image:
                    written.append(items[-1].image.name)
            created = Item.objects.bulk_create(items, batch_size=500)
            if batch is not None:
                _batch_mark_done(batch, item_count=len(created))
            audit_record(
                actor=actor,
                action="items.import",
                obj=locked,
                payload=_audit_payload(locked, prepared, batch, kind),
            )
            if len(created) >= ANALYZE_AFTER_ROWS:
                transaction.on_commit(lambda: table_statistics_refresh(Item))
    except IntegrityError as error:
        _delete_stored(written)
        raise Conflict(
            "Another import added some of these items at the same time; nothing was imported.",
            code="import_conflict",
        ) from error
    except BaseException:
        _delete_stored(written)
        raise
    return created


def items_import(
    *,
    project: Project,
    actor: User,
    source: ImportSource,
    batch: ImportBatch | None = None,
) -> list[Item]:
    """Validate every row, then create all items in one transaction, or none.

    Raises ``ValidationFailed(code="import_invalid")`` whose ``extra["errors"]`` lists every
    problem as ``{"line", "field", "code", "message"}`` (external_id missing or repeated in
    the batch or the project, content already present, bad license, bad image, ...).

    ``sha256`` is of the NFC-normalised UTF-8 text for texts, and of the image bytes as
    uploaded for images (so an identical re-upload is recognised even though the stored
    copy is re-encoded); ``phash`` is of the pixels. One ``items.import`` audit event
    records the counts. When ``batch`` is given it is marked done in the same transaction.
    """
    _check_can_import(project=project, actor=actor)
    _check_importable(project)
    if project.modality == Modality.IMAGE and source.files is None:
        raise _modality_mismatch()
    limit = settings.CHORUS_MAX_IMPORT_ROWS
    if len(source.rows) > limit:
        raise _file_error(
            "import_too_many_rows", f"The manifest has more than {limit:,} rows.", field_name=""
        )
    if not source.rows and not source.errors:
        raise _file_error("import_empty", "The manifest has no rows.", field_name="")
    prepared, errors = _prepare_rows(source, context=_row_context(project))
    errors += (
        _batch_duplicates(prepared) + _existing_conflicts(project, prepared) + _taken_down(prepared)
    )
    if errors:
        raise _invalid(errors)
    return _store_items(
        project=project, actor=actor, prepared=prepared, batch=batch, kind=source.kind
    )


# ---------------------------------------------------------------- batches


def _display_name(name: str) -> str:
    """The client's file name as a label only; it never reaches the file system."""
    base = PurePosixPath(name.replace("\\", "/")).name
    cleaned = "".join(char for char in base if char.isprintable())
    return unicodedata.normalize("NFC", cleaned)[:255] or "upload"


def _stage_upload(batch: ImportBatch, upload: UploadedFile, project: Project) -> None:
    limit = settings.CHORUS_MAX_UPLOAD_BYTES
    if upload.size is None or upload.size > limit:
        raise PayloadTooLarge(f"The upload is over {limit:,} bytes.", code="upload_too_large")
    upload.seek(0)
    head = upload.read(4)
    upload.seek(0)
    kind = upload_kind(head=head, filename=upload.name or "")
    if kind != "zip" and project.modality == Modality.IMAGE:
        raise _modality_mismatch()
    batch.original_name = _display_name(upload.name or "")
    batch.upload.save(f"{uuid.uuid4().hex}.{kind}", upload, save=False)


def _enqueue_batch(batch_id: int) -> None:
    # Looked up by name, not imported: annotation.tasks imports this module. ``delay`` (not
    # ``send_task``) so that the embedded runtime's eager mode runs it in process.
    current_app.tasks[IMPORT_BATCH_RUN_TASK].delay(batch_id)


def import_batch_create(
    *,
    project: Project,
    actor: User,
    upload: UploadedFile | None = None,
    server_path: str = "",
) -> ImportBatch:
    """Stage an upload (or name a server folder, staff only) and queue its import.

    The stored upload is named by a random id and the detected kind; nothing of the
    client's file name is used for it. The run is enqueued once the batch is committed.
    """
    _check_can_import(project=project, actor=actor)
    _check_importable(project)
    if (upload is None) == (not server_path):
        raise ValidationFailed(
            "Give either a file or a server folder.", code="import_source_required"
        )
    batch = ImportBatch(project=project, created_by=actor)
    if upload is not None:
        _stage_upload(batch, upload, project)
    else:
        if not actor.is_staff:
            raise PermissionDenied("Only staff can import from server folders.", code="staff_only")
        folder = import_folder_resolve(server_path)
        batch.server_path = str(folder)
        batch.original_name = _display_name(folder.name)
    try:
        with transaction.atomic():
            batch.full_clean()
            batch.save()
            transaction.on_commit(lambda: _enqueue_batch(batch.pk))
    except BaseException:
        if batch.upload:
            _delete_stored([batch.upload.name])
        raise
    return batch


def _batch_claim(batch_id: int) -> tuple[ImportBatch, bool]:
    with transaction.atomic():
        batch = (
            ImportBatch.objects.select_for_update(of=("self",))
            .select_related("project", "created_by")
            .filter(pk=batch_id)
            .first()
        )
        if batch is None:
            raise NotFound("No such import batch.")
        if batch.status != ImportBatch.Status.PENDING:
            return batch, False
        batch.status = ImportBatch.Status.RUNNING
        batch.save(update_fields=["status", "updated_at"])
    return batch, True


def _batch_mark_done(batch: ImportBatch, *, item_count: int) -> None:
    batch.status = ImportBatch.Status.DONE
    batch.item_count = item_count
    batch.errors = []
    batch.finished_at = timezone.now()
    batch.save(update_fields=["status", "item_count", "errors", "finished_at", "updated_at"])


def _stored_errors(error: ApplicationError) -> list[RowError]:
    errors: list[RowError] = list(error.extra.get("errors") or [])
    if not errors:
        errors = [row_error(None, "", error.code, error.message)]
    if len(errors) > MAX_STORED_ERRORS:
        more = len(errors) - MAX_STORED_ERRORS
        errors = errors[:MAX_STORED_ERRORS]
        errors.append(row_error(None, "", "errors_truncated", f"... and {more} more problems."))
    return errors


def _batch_mark_failed(batch: ImportBatch, errors: list[RowError]) -> None:
    now = timezone.now()
    ImportBatch.objects.filter(pk=batch.pk, status=ImportBatch.Status.RUNNING).update(
        status=ImportBatch.Status.FAILED, errors=errors, finished_at=now, updated_at=now
    )


def _batch_source(batch: ImportBatch) -> ImportSource:
    if batch.server_path:
        return read_folder(path=Path(batch.server_path), root=Path(settings.CHORUS_IMPORT_ROOT))
    with batch.upload.open("rb") as handle:
        data = handle.read(settings.CHORUS_MAX_UPLOAD_BYTES + 1)
    return read_upload(data=data, filename=batch.upload.name)


def _discard_upload(batch: ImportBatch) -> None:
    if not batch.upload:
        return
    name = batch.upload.name
    _delete_stored([name])
    ImportBatch.objects.filter(pk=batch.pk).update(upload="")


def import_batch_run(*, batch_id: int) -> ImportBatch:
    """Run a pending batch once: import its items or record every error.

    Idempotent: a batch that is not pending (running elsewhere, done, failed) is returned
    unchanged. The staged upload is deleted afterwards, whatever the outcome.
    """
    batch, claimed = _batch_claim(batch_id)
    if not claimed:
        return batch
    try:
        source = _batch_source(batch)
        items_import(project=batch.project, actor=batch.created_by, source=source, batch=batch)
    except ApplicationError as error:
        _batch_mark_failed(batch, _stored_errors(error))
    except Exception:
        logger.exception("import batch %s failed unexpectedly", batch_id)
        message = "The import failed unexpectedly; nothing was imported."
        _batch_mark_failed(batch, [row_error(None, "", "import_error", message)])
    finally:
        _discard_upload(batch)
    batch.refresh_from_db()
    return batch
