"""Annotation writes: an annotator's label for an item assigned to them, and its edits.

Invariants:
- Only an item assigned to the annotator is labeled, and once: an identical repeat is an
  idempotent replay, a different one a conflict; an edit keeps the previous answer
  (``AnnotationEdit``) and is possible only while the project is open.
- Every answer is checked against the project's label schema and stored in canonical
  form (``_clean_label``, which control items' expected answers go through too).
- Each label is linked to the consent it was given under; the audit log never holds free
  text an annotator wrote (free-text answers as their sha256).
- Submit, edit and withdrawal lock the enrolment first and take the audit log's lock
  last: one lock order, no deadlock.
"""

import hashlib
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F

from annotation.models import (
    Annotation,
    AnnotationEdit,
    Assignment,
    ControlKind,
    Item,
    Project,
    ProjectStatus,
)
from annotation.schemas import SchemaError
from annotation.services.enrolment import _active_enrolment
from annotation.services.label_entropy import _item_entropy_refresh
from annotation.services.projects import project_schema
from core.db import atomic_with_retry
from core.errors import Conflict, NotFound, ValidationFailed
from core.models import User
from provenance.services import audit_record


@dataclass(frozen=True)
class SubmitResult:
    annotation: Annotation
    created: bool


def _clean_label(project: Project, value: Any) -> Any:
    """The value in canonical form if the project's label schema accepts it."""
    try:
        return project_schema(project).validate(value)
    except SchemaError as error:
        raise ValidationFailed(str(error), code="invalid_label") from error


def _clean_answer(
    project: Project, value: Any, confidence: object, rationale: str
) -> tuple[Any, int | None, str]:
    # ``confidence`` is typed ``object``: callers pass what a client sent, checked here.
    clean_value = _clean_label(project, value)
    clean_confidence: int | None = None
    if confidence is not None:
        if (
            isinstance(confidence, bool)
            or not isinstance(confidence, int)
            or not 1 <= confidence <= 5
        ):
            raise ValidationFailed(
                "Confidence must be an integer from 1 to 5.", code="invalid_confidence"
            )
        clean_confidence = confidence
    rationale = (rationale or "").strip()
    if len(rationale) > 5000:
        raise ValidationFailed(
            "Rationale is longer than 5000 characters.", code="invalid_rationale"
        )
    return clean_value, clean_confidence, rationale


@atomic_with_retry()
def annotation_submit(
    *,
    annotator: User,
    item: Item,
    value: Any,
    confidence: int | None = None,
    rationale: str = "",
    time_spent_ms: int | None = None,
) -> SubmitResult:
    """Store the annotator's label for an item assigned to them.

    Repeating an identical submission is an idempotent replay; a different one for the
    same item is a conflict (edit the annotation instead).
    """
    project = Project.objects.get(pk=item.project_id)
    if project.status != ProjectStatus.OPEN:
        raise Conflict("This project is not open for labeling.", code="project_not_open")
    # Locking the enrolment serialises this annotator's submissions and their withdrawal.
    enrolment = _active_enrolment(project, annotator, lock=True)
    clean_value, confidence, rationale = _clean_answer(project, value, confidence, rationale)
    raw_time_spent: object = time_spent_ms  # checked as sent, whatever the annotation says
    if raw_time_spent is not None and (
        isinstance(raw_time_spent, bool)
        or not isinstance(raw_time_spent, int)
        or raw_time_spent < 0
    ):
        raise ValidationFailed("time_spent_ms must be a non-negative integer.")

    existing = Annotation.objects.filter(item=item, annotator=annotator).first()
    if existing is not None:
        return _replay_or_conflict(existing, clean_value, confidence, rationale)

    assignment = (
        Assignment.objects.select_for_update().filter(item=item, annotator=annotator).first()
    )
    if assignment is None or assignment.status in (
        Assignment.Status.CANCELLED,
        Assignment.Status.SKIPPED,
    ):
        raise Conflict("This item is not assigned to you.", code="not_assigned")
    if assignment.status == Assignment.Status.EXPIRED:
        # A regular item's slot went back to the pool: take one again if any is left.
        # Control items take no slot, so a late answer to one needs none.
        retaken = Item.objects.filter(
            pk=item.pk, control=ControlKind.NONE, slots_taken__lt=project.annotations_per_item
        ).update(slots_taken=F("slots_taken") + 1)
        if not retaken and not _is_control_item(item.pk):
            raise Conflict(
                "Your assignment expired and the item is now fully labeled.",
                code="assignment_expired",
            )
    try:
        with transaction.atomic():
            annotation = Annotation.objects.create(
                project=project,
                item=item,
                annotator=annotator,
                consent_id=enrolment.consent_id,
                value=clean_value,
                confidence=confidence,
                rationale=rationale,
                time_spent_ms=min(time_spent_ms, 86_400_000) if time_spent_ms else time_spent_ms,
            )
    except IntegrityError:
        existing = Annotation.objects.get(item=item, annotator=annotator)
        return _replay_or_conflict(existing, clean_value, confidence, rationale)
    Assignment.objects.filter(pk=assignment.pk).update(status=Assignment.Status.SUBMITTED)
    # Before the audit record: that takes the log's global lock, which must come last.
    _item_entropy_refresh([item.pk])
    audit_record(
        actor=annotator,
        action="annotation.submit",
        obj=annotation,
        payload={
            "project": project.pk,
            "item": item.pk,
            "pseudonym": annotator.pseudonym,
            "consent_version": enrolment.consent.text_version,
        },
    )
    return SubmitResult(annotation, True)


def _replay_or_conflict(
    existing: Annotation, value: Any, confidence: int | None, rationale: str
) -> SubmitResult:
    if (existing.value, existing.confidence, existing.rationale) == (value, confidence, rationale):
        return SubmitResult(existing, False)
    raise Conflict(
        "You already labeled this item; edit your annotation instead.",
        code="already_labeled",
        extra={"annotation": existing.pk},
    )


@atomic_with_retry()
def annotation_update(
    *,
    annotation: Annotation,
    annotator: User,
    value: Any,
    confidence: int | None = None,
    rationale: str | None = None,
) -> Annotation:
    """Let the author change their label until the project closes; keep the old one.

    Audited as ``annotation.edit`` with the old and new value and confidence (free-text
    answers as their sha256, and the rationale only as changed or not: the audit log is
    never erased, so no free text an annotator wrote goes into it).
    """
    current = Annotation.objects.select_related("project").filter(pk=annotation.pk).first()
    if current is None or current.annotator_id != annotator.pk:
        raise NotFound("No such annotation.")
    if current.withdrawn:
        raise Conflict("This annotation was withdrawn.", code="withdrawn")
    project = current.project
    if project.status != ProjectStatus.OPEN:
        raise Conflict("The project is closed; labels can no longer change.", code="project_closed")
    # The enrolment first, as submit and withdraw lock it: one lock order, no deadlock.
    enrolment = _active_enrolment(project, annotator, lock=True)
    locked = Annotation.objects.select_for_update().get(pk=annotation.pk)
    if locked.withdrawn:
        raise Conflict("This annotation was withdrawn.", code="withdrawn")
    clean_value, clean_confidence, clean_rationale = _clean_answer(
        project,
        value,
        confidence,
        locked.rationale if rationale is None else rationale,
    )
    if (clean_value, clean_confidence, clean_rationale) == (
        locked.value,
        locked.confidence,
        locked.rationale,
    ):
        return locked
    AnnotationEdit.objects.create(
        annotation=locked,
        previous_value=locked.value,
        previous_confidence=locked.confidence,
        previous_rationale=locked.rationale,
    )
    free_text = project_schema(project).kind == "free_text"
    payload = {
        "project": project.pk,
        "item": locked.item_id,
        "pseudonym": annotator.pseudonym,
        "value": {
            "old": _audited_value(locked.value, free_text=free_text),
            "new": _audited_value(clean_value, free_text=free_text),
        },
        "confidence": {"old": locked.confidence, "new": clean_confidence},
        "rationale_changed": clean_rationale != locked.rationale,
        "consent_version": enrolment.consent.text_version,
    }
    locked.value = clean_value
    locked.confidence = clean_confidence
    locked.rationale = clean_rationale
    locked.consent_id = enrolment.consent_id
    locked.save(update_fields=["value", "confidence", "rationale", "consent", "updated_at"])
    _item_entropy_refresh([locked.item_id])
    audit_record(actor=annotator, action="annotation.edit", obj=locked, payload=payload)
    return locked


def _audited_value(value: Any, *, free_text: bool) -> Any:
    if free_text:
        return {"sha256": hashlib.sha256(str(value).encode()).hexdigest()}
    return value


def _is_control_item(item_id: int) -> bool:
    return Item.objects.filter(pk=item_id).exclude(control=ControlKind.NONE).exists()
