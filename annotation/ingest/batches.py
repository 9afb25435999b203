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
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import Any

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
from core.db import advisory_xact_lock, table_statistics_refresh
from core.errors import (
    ApplicationError,
    Conflict,
    PayloadTooLarge,
    PermissionDenied,
    ValidationFailed,
)
from core.jobs import JobRun, job_enqueue
from core.jobs.runner import job_run_here
from core.models import User
from provenance.models import Source
from provenance.services import audit_record, source_get_or_create

logger = logging.getLogger(__name__)

# Imports at least this large refresh the planner's statistics of the item table at once.
ANALYZE_AFTER_ROWS = 1000
MAX_STORED_ERRORS = 1000
# Where uploads wait for their batch (ImportBatch.upload's upload_to), and how old a
# staged file no batch refers to must be before the sweeper deletes it.
STAGING_DIR = "imports"
ORPHAN_UPLOAD_AGE_S = 3600


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


IMPORT_LOCK = "annotation.import"


def _store_items(
    *,
    project: Project,
    actor: User,
    prepared: Sequence[PreparedItem],
    batch: ImportBatch | None,
    run: JobRun[ImportBatch] | None,
    kind: str,
) -> list[Item]:
    written: list[str] = []
    try:
        with transaction.atomic():
            # Serialises imports into one project, so the re-checks below are exact,
            # without locking the project row that every label submission reads.
            advisory_xact_lock(IMPORT_LOCK, project.pk)
            current = Project.objects.get(pk=project.pk)
            _check_importable(current)
            conflicts = _existing_conflicts(current, prepared) + _taken_down(prepared)
            if conflicts:
                raise _invalid(conflicts)
            sources = _sources_for(prepared, owner=current.owner)
            items: list[Item] = []
            for entry in prepared:
                items.append(_build_item(current, entry, sources, batch))
                if items[-1].image:
                    written.append(items[-1].image.name)
            created = Item.objects.bulk_create(items, batch_size=500)
            if run is not None:
                # Only while this run still holds the batch's lease: a run that was taken
                # over rolls back here instead of importing the rows twice.
                # The staged upload is forgotten with the same commit (the file itself is
                # deleted afterwards; one left by a crash is swept as an orphan).
                run.complete(item_count=len(created), errors=[], upload="")
            # Last: the audit chain's lock is held from here to the commit only.
            audit_record(
                actor=actor,
                action="items.import",
                obj=current,
                payload=_audit_payload(current, prepared, batch, kind),
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
    run: JobRun[ImportBatch] | None = None,
) -> list[Item]:
    """Validate every row, then create all items in one transaction, or none.

    Raises ``ValidationFailed(code="import_invalid")`` whose ``extra["errors"]`` lists every
    problem as ``{"line", "field", "code", "message"}`` (external_id missing or repeated in
    the batch or the project, content already present, bad license, bad image, ...).

    ``sha256`` is of the NFC-normalised UTF-8 text for texts, and of the image bytes as
    uploaded for images (so an identical re-upload is recognised even though the stored
    copy is re-encoded); ``phash`` is of the pixels. One ``items.import`` audit event
    records the counts. When ``run`` is given (a batch's job run) its batch is marked done
    in the same transaction, if the run still holds the batch's lease.
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
        project=project, actor=actor, prepared=prepared, batch=batch, run=run, kind=source.kind
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


def import_batch_create(
    *,
    project: Project,
    actor: User,
    upload: UploadedFile | None = None,
    server_path: str = "",
) -> ImportBatch:
    """Stage an upload (or name a server folder, staff only) and queue its import.

    The stored upload is named by a random id and the detected kind; nothing of the
    client's file name is used for it. The run is queued once the batch is committed.
    Raises ``QueueUnavailable`` (503) when the job queue cannot be reached: the batch and
    its upload are kept then, and the sweeper sends it once the queue is back.
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
    except BaseException:
        if batch.upload:
            _delete_stored([batch.upload.name])
        raise
    # Outside the block above: once the row is committed, a queue that cannot be
    # reached must not cost the upload.
    job_enqueue(batch).raise_if_failed(what="The import")
    return batch


def _stored_errors(error: ApplicationError) -> list[RowError]:
    errors: list[RowError] = list(error.extra.get("errors") or [])
    if not errors:
        errors = [row_error(None, "", error.code, error.message)]
    if len(errors) > MAX_STORED_ERRORS:
        more = len(errors) - MAX_STORED_ERRORS
        errors = errors[:MAX_STORED_ERRORS]
        errors.append(row_error(None, "", "errors_truncated", f"... and {more} more problems."))
    return errors


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


def import_batch_execute(run: JobRun[ImportBatch]) -> None:
    """Run a claimed batch (the work of its task): import its items, or record every
    problem; either way delete its staged upload.

    Transient database errors propagate, so that ``core.jobs`` retries the batch with its
    upload still staged; any other unexpected error is recorded by
    ``import_batch_failed``.
    """
    batch = ImportBatch.objects.select_related("project", "created_by").get(pk=run.job.pk)
    staged = batch.upload.name if batch.upload else ""
    try:
        source = _batch_source(batch)
        items_import(
            project=batch.project, actor=batch.created_by, source=source, batch=batch, run=run
        )
    except ApplicationError as error:
        with transaction.atomic():
            run.fail(error.message, errors=_stored_errors(error), upload="")
    if staged:
        _delete_stored([staged])


def import_batch_failed(batch: ImportBatch) -> None:
    """After ``core.jobs`` failed the batch (its worker kept dying, or it broke
    unexpectedly): show the reason among its errors and delete its staged upload."""
    if not batch.errors:
        ImportBatch.objects.filter(pk=batch.pk).update(
            errors=[row_error(None, "", "import_error", batch.error + " Nothing was imported.")]
        )
    _discard_upload(batch)


def import_uploads_sweep() -> int:
    """Delete staged uploads no pending or running batch refers to (left by a batch whose
    clean-up was interrupted, or by a request killed mid-upload), once they are an hour
    old. Returns how many were deleted. Run by every job sweep."""
    live = set(
        ImportBatch.objects.filter(
            status__in=(ImportBatch.Status.PENDING, ImportBatch.Status.RUNNING)
        )
        .exclude(upload="")
        .values_list("upload", flat=True)
    )
    finished = ImportBatch.objects.filter(
        status__in=(ImportBatch.Status.DONE, ImportBatch.Status.FAILED)
    ).exclude(upload="")
    deleted = 0
    for batch in finished[:200]:
        _discard_upload(batch)
        deleted += 1
    try:
        _dirs, names = default_storage.listdir(STAGING_DIR)
    except (FileNotFoundError, NotImplementedError):
        return deleted
    cutoff = timezone.now() - timedelta(seconds=ORPHAN_UPLOAD_AGE_S)
    for name in names:
        path = f"{STAGING_DIR}/{name}"
        if path in live:
            continue
        try:
            if default_storage.get_modified_time(path) > cutoff:
                continue
        except (OSError, NotImplementedError):
            continue
        _delete_stored([path])
        deleted += 1
    return deleted


def import_batch_run(*, batch_id: int) -> ImportBatch:
    """Run the batch here, in this process, through the same lease as a worker (for the
    demo and tests); a batch that is finished or held by a live worker is left as is."""
    job_run_here(ImportBatch, batch_id)
    return ImportBatch.objects.get(pk=batch_id)
