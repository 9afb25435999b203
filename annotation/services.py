"""Writes for the annotation campaign: projects, enrolment, assignment, annotations.

Every governance action (project state change, consent, withdrawal, import, role change,
label submission) appends to the tamper-evident audit log in the same transaction.
"""

import random
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from annotation.models import (
    Annotation,
    AnnotationEdit,
    Assignment,
    Enrolment,
    Item,
    Project,
    ProjectStatus,
)
from annotation.schemas import PRESETS, LabelSchema, SchemaError
from annotation.surveys import SurveyError, parse_definition, validate_answers
from core.db import atomic_with_retry, supports_skip_locked
from core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from core.models import Role, User
from provenance.models import ConsentRecord
from provenance.services import audit_record, consent_record_create, consent_record_withdraw

CANDIDATE_POOL = 8
MAX_CLAIM_ROUNDS = 20
CONSENT_PURPOSES = ["annotation", "research-publication", "dataset-release-pseudonymised"]


# ---------------------------------------------------------------- users


def user_create(
    *, username: str, password: str, role: str, email: str = "", actor: User | None = None
) -> User:
    if role not in Role.values:
        raise ValidationFailed(f"Unknown role {role!r}.", code="invalid_role")
    user = User(username=username, email=email, role=role)
    user.set_password(password)
    try:
        user.full_clean()
    except DjangoValidationError as error:
        raise ValidationFailed("Invalid user.", extra={"fields": error.message_dict}) from error
    with transaction.atomic():
        user.save()
        audit_record(actor=actor, action="user.create", obj=user, payload={"role": role})
    return user


def user_role_set(*, user: User, role: str, actor: User | None) -> User:
    if role not in Role.values:
        raise ValidationFailed(f"Unknown role {role!r}.", code="invalid_role")
    if user.role == role:
        return user
    with transaction.atomic():
        previous = user.role
        user.role = role
        user.save(update_fields=["role"])
        audit_record(
            actor=actor,
            action="user.role_change",
            obj=user,
            payload={"pseudonym": user.pseudonym, "from": previous, "to": role},
        )
    return user


# ---------------------------------------------------------------- projects

PROJECT_EDITABLE_FIELDS = (
    "title",
    "description",
    "instructions",
    "modality",
    "label_schema",
    "annotations_per_item",
    "compensation_amount",
    "compensation_currency",
    "compensation_unit",
    "risk_disclosure",
    "data_use_statement",
    "survey",
    "assignment_ttl_seconds",
)
# Once labeling has started these would change the meaning of existing labels.
PROJECT_FROZEN_AFTER_DRAFT = ("modality", "label_schema", "annotations_per_item")


def _validate_project(project: Project) -> None:
    errors: dict[str, list[str]] = {}
    try:
        schema = LabelSchema.from_json(project.label_schema)
        project.label_schema = schema.to_json()
    except SchemaError as error:
        errors["label_schema"] = [str(error)]
    try:
        parse_definition(project.survey)
    except SurveyError as error:
        errors["survey"] = [str(error)]
    try:
        project.full_clean()
    except DjangoValidationError as error:
        for key, messages in error.message_dict.items():
            errors.setdefault(key, []).extend(messages)
    if errors:
        first = next(iter(errors.items()))
        raise ValidationFailed(f"{first[0]}: {first[1][0]}", extra={"fields": errors})


def project_create(*, owner: User, preset: str | None = None, **fields: Any) -> Project:
    """Create a draft project; a preset fills modality, schema and instructions."""
    if not (owner.is_researcher or owner.is_staff):
        raise PermissionDenied("Only researchers create projects.")
    unknown = set(fields) - set(PROJECT_EDITABLE_FIELDS)
    if unknown:
        raise ValidationFailed(f"Unknown project fields: {', '.join(sorted(unknown))}.")
    if preset:
        if preset not in PRESETS:
            raise ValidationFailed(f"Unknown preset {preset!r}.", code="unknown_preset")
        chosen = PRESETS[preset]
        fields.setdefault("modality", chosen.modality)
        fields.setdefault("label_schema", chosen.schema.to_json())
        fields.setdefault("instructions", chosen.instructions)
    project = Project(owner=owner, **fields)
    _validate_project(project)
    with transaction.atomic():
        project.save()
        audit_record(
            actor=owner, action="project.create", obj=project, payload={"title": project.title}
        )
    return project


def project_update(*, project: Project, actor: User, data: dict[str, Any]) -> Project:
    unknown = set(data) - set(PROJECT_EDITABLE_FIELDS)
    if unknown:
        raise ValidationFailed(f"Unknown project fields: {', '.join(sorted(unknown))}.")
    if project.status == ProjectStatus.CLOSED:
        raise Conflict("A closed project cannot be edited.", code="project_closed")
    changed = [name for name, value in data.items() if getattr(project, name) != value]
    frozen = [name for name in changed if name in PROJECT_FROZEN_AFTER_DRAFT]
    if frozen and project.status != ProjectStatus.DRAFT:
        raise Conflict(
            f"{', '.join(frozen)} cannot change once the project has opened.",
            code="project_frozen_field",
        )
    for name in changed:
        setattr(project, name, data[name])
    _validate_project(project)
    with transaction.atomic():
        project.save()
        audit_record(actor=actor, action="project.update", obj=project, payload={"fields": changed})
    return project


ALLOWED_TRANSITIONS = {
    ProjectStatus.DRAFT: {ProjectStatus.OPEN},
    ProjectStatus.OPEN: {ProjectStatus.CLOSED},
    ProjectStatus.CLOSED: set(),
}


def project_transition(*, project: Project, actor: User, status: str) -> Project:
    with transaction.atomic():
        locked = Project.objects.select_for_update().get(pk=project.pk)
        current = ProjectStatus(locked.status)
        if status not in ALLOWED_TRANSITIONS[current]:
            raise Conflict(
                f"A {current.label.lower()} project cannot become {status}.",
                code="invalid_transition",
                extra={"from": current.value, "to": status},
            )
        if status == ProjectStatus.OPEN and not locked.items.exists():
            raise Conflict("Import items before opening the project.", code="project_empty")
        locked.status = status
        locked.save(update_fields=["status", "updated_at"])
        audit_record(
            actor=actor,
            action="project.status_change",
            obj=locked,
            payload={"from": current.value, "to": status},
        )
    project.status = status
    return project


def project_schema(project: Project) -> LabelSchema:
    return LabelSchema.from_json(project.label_schema)


def project_consent_text(project: Project) -> str:
    """The exact text an annotator consents to; its hash is the consent version."""
    unit = "item" if project.compensation_unit == "per_item" else "hour"
    amount = Decimal(project.compensation_amount).quantize(Decimal("0.01"))
    return "\n\n".join(
        [
            f"Project: {project.title}",
            f"Risks: {project.risk_disclosure.strip()}",
            f"Pay: {amount} {project.compensation_currency} per {unit}.",
            f"How your data will be used: {project.data_use_statement.strip()}",
            "Your labels are stored under a random pseudonym. Your survey answers are "
            "optional and self-reported. You can withdraw at any time; your labels are then "
            "excluded from every later analysis and export.",
        ]
    )


# ---------------------------------------------------------------- enrolment


def enrolment_create(*, project: Project, annotator: User, method: str = "web-form") -> Enrolment:
    """Record the annotator's consent to the project's current consent text."""
    if not annotator.is_annotator:
        raise PermissionDenied("Only annotators can enrol in a project.", code="not_annotator")
    if project.status != ProjectStatus.OPEN:
        raise Conflict("This project is not open for labeling.", code="project_not_open")
    existing = Enrolment.objects.filter(project=project, annotator=annotator).first()
    if existing is None:
        try:
            return _enrolment_record(project=project, annotator=annotator, method=method)
        except IntegrityError:
            # A concurrent request (a double click) enrolled first: its consent stands and
            # this one's consent record was rolled back with the failed insert.
            existing = Enrolment.objects.get(project=project, annotator=annotator)
    if existing.withdrawn_at is not None:
        raise Conflict("You withdrew from this project; you cannot rejoin it.", code="withdrawn")
    return existing


def _enrolment_record(*, project: Project, annotator: User, method: str) -> Enrolment:
    with transaction.atomic():
        consent = consent_record_create(
            subject=annotator,
            subject_kind=ConsentRecord.SubjectKind.ANNOTATOR,
            scope=f"project:{project.pk}",
            text=project_consent_text(project),
            purposes=CONSENT_PURPOSES,
            method=method,
        )
        enrolment = Enrolment.objects.create(project=project, annotator=annotator, consent=consent)
        audit_record(
            actor=annotator,
            action="enrolment.consent",
            obj=enrolment,
            payload={
                "project": project.pk,
                "pseudonym": annotator.pseudonym,
                "consent_version": consent.text_version,
                "method": method,
            },
        )
    return enrolment


def enrolment_survey_submit(*, enrolment: Enrolment, answers: dict[str, Any]) -> Enrolment:
    if enrolment.withdrawn_at is not None:
        raise Conflict("You withdrew from this project.", code="withdrawn")
    try:
        clean = validate_answers(parse_definition(enrolment.project.survey), answers)
    except SurveyError as error:
        raise ValidationFailed(str(error), code="invalid_survey") from error
    enrolment.survey_answers = clean
    enrolment.survey_answered_at = timezone.now()
    enrolment.save(update_fields=["survey_answers", "survey_answered_at", "updated_at"])
    return enrolment


@atomic_with_retry()
def enrolment_withdraw(*, enrolment: Enrolment, actor: User) -> Enrolment:
    """Withdraw in one step: labels kept but excluded, open work released, consent withdrawn."""
    locked = Enrolment.objects.select_for_update().select_related("consent").get(pk=enrolment.pk)
    if locked.withdrawn_at is not None:
        return locked
    now = timezone.now()
    open_items = list(
        Assignment.objects.filter(
            project_id=locked.project_id,
            annotator_id=locked.annotator_id,
            status=Assignment.Status.OPEN,
        ).values_list("item_id", flat=True)
    )
    Assignment.objects.filter(
        project_id=locked.project_id,
        annotator_id=locked.annotator_id,
        status=Assignment.Status.OPEN,
    ).update(status=Assignment.Status.CANCELLED)
    labeled_items = list(
        Annotation.objects.filter(
            project_id=locked.project_id, annotator_id=locked.annotator_id, withdrawn=False
        ).values_list("item_id", flat=True)
    )
    withdrawn_labels = Annotation.objects.filter(
        project_id=locked.project_id, annotator_id=locked.annotator_id, withdrawn=False
    ).update(withdrawn=True, withdrawn_at=now)
    # Released slots let other annotators label these items again.
    Item.objects.filter(pk__in=open_items + labeled_items).update(slots_taken=F("slots_taken") - 1)
    locked.withdrawn_at = now
    locked.save(update_fields=["withdrawn_at", "updated_at"])
    consent_record_withdraw(record=locked.consent)
    audit_record(
        actor=actor,
        action="enrolment.withdraw",
        obj=locked,
        payload={
            "project": locked.project_id,
            "pseudonym": locked.annotator.pseudonym,
            "labels_withdrawn": withdrawn_labels,
        },
    )
    return locked


def _active_enrolment(project: Project, annotator: User, *, lock: bool) -> Enrolment:
    queryset = Enrolment.objects.filter(project=project, annotator=annotator)
    if lock:
        queryset = queryset.select_for_update()
    enrolment = queryset.first()
    if enrolment is None:
        raise PermissionDenied("Give your consent before labeling.", code="not_enrolled")
    if enrolment.withdrawn_at is not None:
        raise PermissionDenied("You withdrew from this project.", code="withdrawn")
    return enrolment


# ---------------------------------------------------------------- assignment


def assignments_expire(*, project_id: int, limit: int = 500) -> int:
    """Return abandoned assignments' slots to the pool. Safe to run concurrently."""
    now = timezone.now()
    stale = list(
        Assignment.objects.filter(
            project_id=project_id, status=Assignment.Status.OPEN, expires_at__lt=now
        ).values_list("pk", "item_id")[:limit]
    )
    expired = 0
    for assignment_id, item_id in stale:
        # The conditional UPDATE is the claim: only one caller frees each slot.
        if Assignment.objects.filter(pk=assignment_id, status=Assignment.Status.OPEN).update(
            status=Assignment.Status.EXPIRED
        ):
            Item.objects.filter(pk=item_id).update(slots_taken=F("slots_taken") - 1)
            expired += 1
    return expired


def _candidate_items(
    project: Project, annotator: User, *, skip_locked: bool, limit: int
) -> list[int]:
    """Items this annotator may still take: least-labeled first, from a random point in
    the shuffle order within each fill level.

    With ``skip_locked`` the returned rows are locked and rows that other transactions
    hold (they are claiming them right now) are passed over, moving on to the next fill
    level if a whole level is held. Without it nothing is locked.
    """
    k = project.annotations_per_item
    seen = Assignment.objects.filter(item=OuterRef("pk"), annotator=annotator).exclude(
        status=Assignment.Status.EXPIRED
    )
    pool = Item.objects.filter(project=project, slots_taken__lt=k).filter(~Exists(seen))
    lowest = (
        pool.order_by("slots_taken", "shuffle_key").values_list("slots_taken", flat=True).first()
    )
    if lowest is None:
        return []
    pivot = random.random()  # noqa: S311 - load spreading, not security
    ids: list[int] = []
    for level in range(lowest, k):
        at_level = pool.filter(slots_taken=level)
        for part in (
            at_level.filter(shuffle_key__gte=pivot),
            at_level.filter(shuffle_key__lt=pivot),
        ):
            queryset = part.order_by("shuffle_key")
            if skip_locked:
                queryset = queryset.select_for_update(skip_locked=True, of=("self",))
            ids.extend(queryset.values_list("pk", flat=True)[: limit - len(ids)])
            if len(ids) >= limit:
                return ids
        if ids:
            return ids
    return ids


def _claim(project: Project, item_id: int) -> bool:
    """Take one slot if the item still has one: evaluated by the database on the locked row."""
    return bool(
        Item.objects.filter(pk=item_id, slots_taken__lt=project.annotations_per_item).update(
            slots_taken=F("slots_taken") + 1
        )
    )


@atomic_with_retry()
def assignment_next(*, project: Project, annotator: User) -> Assignment | None:
    """Give the annotator an item that still needs labels, or ``None`` when none is left.

    Never more than k slots per item: the slot is claimed by a conditional UPDATE that the
    database evaluates on the locked row, so concurrent callers cannot over-fill an item.
    ``None`` means none is left, not that the remaining ones were busy: rows other callers
    are claiming are first skipped (no waiting), then waited for before giving up, since
    such a row may still have a free slot once its holder commits.
    """
    project = Project.objects.get(pk=project.pk)
    if project.status != ProjectStatus.OPEN:
        raise Conflict("This project is not open for labeling.", code="project_not_open")
    _active_enrolment(project, annotator, lock=True)
    now = timezone.now()
    current = (
        Assignment.objects.filter(
            project=project, annotator=annotator, status=Assignment.Status.OPEN, expires_at__gt=now
        )
        .select_related("item")
        .first()
    )
    if current is not None:
        return current
    assignments_expire(project_id=project.pk)
    expires_at = now + timedelta(seconds=project.assignment_ttl_seconds)
    passes = (
        ((True, 1), (False, CANDIDATE_POOL))
        if supports_skip_locked()
        else ((False, CANDIDATE_POOL),)
    )
    for skip_locked, limit in passes:
        # Each failed claim means an item filled up meanwhile and leaves the pool, so a
        # few rounds suffice; the bound only guards against endless churn.
        for _round in range(MAX_CLAIM_ROUNDS):
            candidates = _candidate_items(project, annotator, skip_locked=skip_locked, limit=limit)
            if not candidates:
                break
            for item_id in candidates:
                if not _claim(project, item_id):
                    continue
                assignment, _ = Assignment.objects.update_or_create(
                    item_id=item_id,
                    annotator=annotator,
                    defaults={
                        "project": project,
                        "status": Assignment.Status.OPEN,
                        "expires_at": expires_at,
                    },
                )
                return Assignment.objects.select_related("item").get(pk=assignment.pk)
    return None


@atomic_with_retry()
def assignment_skip(*, assignment: Assignment, annotator: User) -> Assignment:
    if assignment.annotator_id != annotator.pk:
        raise NotFound("No such assignment.")
    if Assignment.objects.filter(pk=assignment.pk, status=Assignment.Status.OPEN).update(
        status=Assignment.Status.SKIPPED
    ):
        Item.objects.filter(pk=assignment.item_id).update(slots_taken=F("slots_taken") - 1)
    assignment.refresh_from_db()
    return assignment


# ---------------------------------------------------------------- annotations


@dataclass(frozen=True)
class SubmitResult:
    annotation: Annotation
    created: bool


def _clean_answer(
    project: Project, value: Any, confidence: object, rationale: str
) -> tuple[Any, int | None, str]:
    # ``confidence`` is typed ``object``: callers pass what a client sent, checked here.
    try:
        clean_value = project_schema(project).validate(value)
    except SchemaError as error:
        raise ValidationFailed(str(error), code="invalid_label") from error
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
    # Locking the enrolment serialises this annotator's submissions and their withdrawal.
    _active_enrolment(project, annotator, lock=True)
    if project.status != ProjectStatus.OPEN:
        raise Conflict("This project is not open for labeling.", code="project_not_open")
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
        retaken = Item.objects.filter(
            pk=item.pk, slots_taken__lt=project.annotations_per_item
        ).update(slots_taken=F("slots_taken") + 1)
        if not retaken:
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
                value=clean_value,
                confidence=confidence,
                rationale=rationale,
                time_spent_ms=min(time_spent_ms, 86_400_000) if time_spent_ms else time_spent_ms,
            )
    except IntegrityError:
        existing = Annotation.objects.get(item=item, annotator=annotator)
        return _replay_or_conflict(existing, clean_value, confidence, rationale)
    Assignment.objects.filter(pk=assignment.pk).update(status=Assignment.Status.SUBMITTED)
    audit_record(
        actor=annotator,
        action="annotation.submit",
        obj=annotation,
        payload={"project": project.pk, "item": item.pk, "pseudonym": annotator.pseudonym},
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
    """Let the author change their label until the project closes; keep the old one."""
    locked = Annotation.objects.select_for_update().select_related("project").get(pk=annotation.pk)
    if locked.annotator_id != annotator.pk:
        raise NotFound("No such annotation.")
    if locked.withdrawn:
        raise Conflict("This annotation was withdrawn.", code="withdrawn")
    if locked.project.status != ProjectStatus.OPEN:
        raise Conflict("The project is closed; labels can no longer change.", code="project_closed")
    clean_value, clean_confidence, clean_rationale = _clean_answer(
        locked.project,
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
    locked.value = clean_value
    locked.confidence = clean_confidence
    locked.rationale = clean_rationale
    locked.save(update_fields=["value", "confidence", "rationale", "updated_at"])
    return locked


__all__ = [
    "SubmitResult",
    "annotation_submit",
    "annotation_update",
    "assignment_next",
    "assignment_skip",
    "assignments_expire",
    "enrolment_create",
    "enrolment_survey_submit",
    "enrolment_withdraw",
    "project_consent_text",
    "project_create",
    "project_schema",
    "project_transition",
    "project_update",
    "user_create",
    "user_role_set",
]
