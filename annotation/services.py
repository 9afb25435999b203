"""Writes for the annotation campaign: projects, enrolment, assignment, annotations.

Every governance action (project state change, consent, withdrawal, import, role change,
label submission) appends to the tamper-evident audit log in the same transaction.
"""

import hashlib
import json
import math
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Case, Exists, F, FloatField, OuterRef, QuerySet, Value, When
from django.utils import timezone
from django.utils.crypto import salted_hmac

from annotation.consent import (
    MATERIAL_FIELDS,
    enrolments_to_reconsent,
    project_consent_text,
    project_consent_version,
)
from annotation.models import (
    Annotation,
    AnnotationEdit,
    Assignment,
    AssignmentStrategy,
    ControlKind,
    Enrolment,
    Item,
    Project,
    ProjectStatus,
    SubjectConsent,
    TakedownRequest,
)
from annotation.schemas import PRESETS, LabelSchema, SchemaError
from annotation.surveys import SurveyError, parse_definition, validate_answers
from core.db import atomic_with_retry, supports_skip_locked
from core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from core.models import Role, User
from core.services import api_tokens_revoke, rate_limit_hit
from provenance.models import ConsentRecord
from provenance.services import (
    audit_record,
    consent_record_create,
    consent_record_withdraw,
    tombstone_create,
)

CANDIDATE_POOL = 8
# "Most contested first" draws the next item at random among this many top candidates.
CONTESTED_CANDIDATES = 10
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
        api_tokens_revoke(user=user)
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
    "assignment_strategy",
    "control_rate",
)
# Once labeling has started these would change the meaning of existing labels.
PROJECT_FROZEN_AFTER_DRAFT = ("modality", "label_schema", "annotations_per_item")


def _check_manages(project: Project, actor: User, what: str) -> None:
    """Refuse unless ``actor`` manages the project (``Project.is_managed_by``).

    Every service that changes a project or decides about its items calls this; views may
    ask earlier (a 404 instead of a 403), never instead.
    """
    if not project.is_managed_by(actor):
        raise PermissionDenied(f"Only the project's owner or staff can {what}.", code="not_owner")


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


# Text fields compared and stored with one line ending: a browser sends CRLF, which must
# not count as an edit of text nobody touched.
PROJECT_TEXT_FIELDS = (
    "title",
    "description",
    "instructions",
    "risk_disclosure",
    "data_use_statement",
)


def _project_field_value(name: str, value: Any) -> Any:
    """A field's value in the form stored and compared: one line ending, canonical schema."""
    if name in PROJECT_TEXT_FIELDS and isinstance(value, str):
        return value.replace("\r\n", "\n").replace("\r", "\n")
    if name == "label_schema":
        try:
            return LabelSchema.from_json(value).to_json()
        except SchemaError:
            return value  # reported by _validate_project
    return value


def project_update(
    *, project: Project, actor: User, data: dict[str, Any], confirm_reconsent: bool = False
) -> Project:
    """Change a project's fields; audited with the old and new value of each changed field.

    On an open project a change of its material terms (``annotation.consent.MATERIAL_FIELDS``)
    makes a new consent version: every enrolled annotator must consent again before their
    next item. Unless ``confirm_reconsent``, such a change is refused with the number of
    annotators it would ask (code ``reconsent_unconfirmed``), so the researcher is told
    before anything is saved.
    """
    _check_manages(project, actor, "change this project")
    unknown = set(data) - set(PROJECT_EDITABLE_FIELDS)
    if unknown:
        raise ValidationFailed(f"Unknown project fields: {', '.join(sorted(unknown))}.")
    if project.status == ProjectStatus.CLOSED:
        raise Conflict("A closed project cannot be edited.", code="project_closed")
    clean = {name: _project_field_value(name, value) for name, value in data.items()}
    previous = {name: getattr(project, name) for name in clean}
    changed = [name for name, value in clean.items() if previous[name] != value]
    frozen = [name for name in changed if name in PROJECT_FROZEN_AFTER_DRAFT]
    if frozen and project.status != ProjectStatus.DRAFT:
        raise Conflict(
            f"{', '.join(frozen)} cannot change once the project has opened.",
            code="project_frozen_field",
        )
    if not changed:
        return project
    for name in changed:
        setattr(project, name, clean[name])
    _validate_project(project)
    if "label_schema" in changed:
        _check_control_answers_fit(project)
    material = [name for name in changed if name in MATERIAL_FIELDS]
    reconsent = (
        enrolments_to_reconsent(project=project, version=project_consent_version(project))
        if material
        else 0
    )
    if reconsent and not confirm_reconsent:
        for name in changed:
            setattr(project, name, previous[name])
        raise Conflict(
            f"Saving changes the terms annotators agreed to ({', '.join(material)}): "
            f"{reconsent} enrolled annotator{'s' if reconsent != 1 else ''} must consent "
            "again before their next item. Confirm to save.",
            code="reconsent_unconfirmed",
            extra={"annotators_to_reconsent": reconsent, "material_fields": material},
        )
    with transaction.atomic():
        project.save()
        audit_record(
            actor=actor,
            action="project.update",
            obj=project,
            payload={
                "fields": {
                    name: {"old": previous[name], "new": getattr(project, name)} for name in changed
                },
                "annotators_to_reconsent": reconsent,
            },
        )
    return project


def _check_control_answers_fit(project: Project) -> None:
    """A draft's new schema must still accept every control item's expected answer."""
    schema = LabelSchema.from_json(project.label_schema)
    misfits = []
    controls = Item.objects.filter(project=project).exclude(control=ControlKind.NONE)
    for external_id, expected in controls.values_list("external_id", "expected_value"):
        try:
            schema.validate(expected)
        except SchemaError:
            misfits.append(external_id)
    if misfits:
        message = (
            "The new schema does not accept the expected answer of control items "
            f"{', '.join(sorted(misfits)[:10])}; change or unmark them first."
        )
        raise ValidationFailed(
            message, code="control_answers_misfit", extra={"fields": {"label_schema": [message]}}
        )


ALLOWED_TRANSITIONS = {
    ProjectStatus.DRAFT: {ProjectStatus.OPEN},
    ProjectStatus.OPEN: {ProjectStatus.CLOSED},
    ProjectStatus.CLOSED: set(),
}


def project_transition(*, project: Project, actor: User, status: str) -> Project:
    with transaction.atomic():
        locked = Project.objects.select_for_update().get(pk=project.pk)
        _check_manages(locked, actor, "change this project's status")
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


# ---------------------------------------------------------------- enrolment


def enrolment_create(
    *,
    project: Project,
    annotator: User,
    method: str = "web-form",
    consent_version: str | None = None,
) -> Enrolment:
    """Record the annotator's consent to the project's current consent text.

    ``consent_version``, when given, is the version of the text the annotator read: consent
    is never recorded to a text they did not see. An active enrolment whose consent is to
    an older version consents again (``enrolment.reconsent``); one that is current is
    returned as it is (a double click).
    """
    if not annotator.is_annotator:
        raise PermissionDenied("Only annotators can enrol in a project.", code="not_annotator")
    if project.status != ProjectStatus.OPEN:
        raise Conflict("This project is not open for labeling.", code="project_not_open")
    current = project_consent_version(project)
    if consent_version is not None and consent_version != current:
        raise Conflict(
            "The project's terms changed while you read them. Please read them again.",
            code="consent_version_stale",
            extra={"consent_version": current},
        )
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
    if existing.consent.text_version != current:
        return _enrolment_reconsent(enrolment=existing, method=method)
    return existing


def _annotator_consent(*, project: Project, annotator: User, method: str) -> ConsentRecord:
    return consent_record_create(
        subject=annotator,
        subject_kind=ConsentRecord.SubjectKind.ANNOTATOR,
        scope=f"project:{project.pk}",
        text=project_consent_text(project),
        purposes=CONSENT_PURPOSES,
        method=method,
    )


def _enrolment_record(*, project: Project, annotator: User, method: str) -> Enrolment:
    with transaction.atomic():
        consent = _annotator_consent(project=project, annotator=annotator, method=method)
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


@atomic_with_retry()
def _enrolment_reconsent(*, enrolment: Enrolment, method: str) -> Enrolment:
    """Consent again to changed terms. The earlier record is kept, and so is the link from
    each label to the consent it was given under."""
    locked = (
        Enrolment.objects.select_for_update()
        .select_related("consent", "project")
        .get(pk=enrolment.pk)
    )
    if locked.withdrawn_at is not None:
        raise Conflict("You withdrew from this project.", code="withdrawn")
    project = locked.project
    if locked.consent.text_version == project_consent_version(project):
        return locked
    previous = locked.consent
    locked.consent = _annotator_consent(project=project, annotator=locked.annotator, method=method)
    locked.save(update_fields=["consent", "updated_at"])
    audit_record(
        actor=locked.annotator,
        action="enrolment.reconsent",
        obj=locked,
        payload={
            "project": project.pk,
            "pseudonym": locked.annotator.pseudonym,
            "consent_version": locked.consent.text_version,
            "previous_consent_version": previous.text_version,
            "method": method,
        },
    )
    return locked


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
    # Released slots let other annotators label these items again (control items hold none).
    Item.objects.filter(pk__in=open_items + labeled_items, control=ControlKind.NONE).update(
        slots_taken=F("slots_taken") - 1
    )
    _item_entropy_refresh(labeled_items)
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
    """The annotator's enrolment, if it is active and consented to the current terms."""
    queryset = Enrolment.objects.filter(project=project, annotator=annotator).select_related(
        "consent"
    )
    if lock:
        queryset = queryset.select_for_update(of=("self",))
    enrolment = queryset.first()
    if enrolment is None:
        raise PermissionDenied("Give your consent before labeling.", code="not_enrolled")
    if enrolment.withdrawn_at is not None:
        raise PermissionDenied("You withdrew from this project.", code="withdrawn")
    if enrolment.consent.text_version != project_consent_version(project):
        raise Conflict(
            "The project's terms changed since you consented. Read the changes and consent "
            "again, or withdraw.",
            code="reconsent_required",
            extra={"consent_version": project_consent_version(project)},
        )
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
            Item.objects.filter(pk=item_id, control=ControlKind.NONE).update(
                slots_taken=F("slots_taken") - 1
            )
            expired += 1
    return expired


def _seen_by(annotator: User) -> Exists:
    """The item was given to this annotator (an expired assignment may be given again)."""
    return Exists(
        Assignment.objects.filter(item=OuterRef("pk"), annotator=annotator).exclude(
            status=Assignment.Status.EXPIRED
        )
    )


def _open_items(project: Project, annotator: User) -> QuerySet[Item]:
    """Regular items this annotator may still take: a free slot, not seen, not taken down."""
    return Item.objects.filter(
        project=project,
        control=ControlKind.NONE,
        slots_taken__lt=project.annotations_per_item,
        tombstoned_at__isnull=True,
    ).filter(~_seen_by(annotator))


def _candidate_items(
    project: Project, annotator: User, *, skip_locked: bool, limit: int
) -> list[int]:
    """Regular items this annotator may still take, in the project's strategy's order.

    Least-labeled first: fewest slots taken first, from a random point in the shuffle
    order within each fill level. Most contested first: see ``_most_contested_items``.

    With ``skip_locked`` the returned rows are locked and rows that other transactions
    hold (they are claiming them right now) are passed over, moving on to the next fill
    level if a whole level is held. Without it nothing is locked.
    """
    k = project.annotations_per_item
    pool = _open_items(project, annotator)
    if project.assignment_strategy == AssignmentStrategy.MOST_CONTESTED:
        return _most_contested_items(pool, skip_locked=skip_locked, limit=limit)
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


def _most_contested_items(pool: QuerySet[Item], *, skip_locked: bool, limit: int) -> list[int]:
    """A random draw from the ``CONTESTED_CANDIDATES`` most contested items of the pool.

    The order: highest label entropy first, then fewest slots taken, then the shuffle order
    read from a random point. Handing out the very first of that order would tell each
    annotator "others disagreed on this one" (the first items they see would be exactly
    the contested ones), so the items come in random order from the top candidates.

    One ordered query: rows other transactions hold are skipped (``skip_locked``) and the
    next ones in the same order come instead.
    """
    pivot = random.random()  # noqa: S311 - load spreading, not security
    rotated_shuffle_key = Case(
        When(shuffle_key__gte=pivot, then=F("shuffle_key") - Value(pivot)),
        default=F("shuffle_key") - Value(pivot) + Value(1.0),
        output_field=FloatField(),
    )
    queryset = pool.order_by("-label_entropy", "slots_taken", rotated_shuffle_key)
    if skip_locked:
        queryset = queryset.select_for_update(skip_locked=True, of=("self",))
    candidates = list(queryset.values_list("pk", flat=True)[: max(limit, CONTESTED_CANDIDATES)])
    top = candidates[:CONTESTED_CANDIDATES]
    random.shuffle(top)
    return (top + candidates[CONTESTED_CANDIDATES:])[:limit]


def _claim(project: Project, item_id: int) -> bool:
    """Take one slot if the item still has one: evaluated by the database on the locked row.

    Only regular items have slots: an item made a control item meanwhile is not taken.
    """
    return bool(
        Item.objects.filter(
            pk=item_id, control=ControlKind.NONE, slots_taken__lt=project.annotations_per_item
        ).update(slots_taken=F("slots_taken") + 1)
    )


def _unseen_control_items(project: Project, annotator: User, *, limit: int) -> list[int]:
    """Control items this annotator was never given, from a random point in shuffle order.

    Unlike a regular item, one whose assignment expired is not given again: each control
    item is shown to each annotator once at most.
    """
    given = Assignment.objects.filter(item=OuterRef("pk"), annotator=annotator)
    pool = (
        Item.objects.filter(project=project, tombstoned_at__isnull=True)
        .exclude(control=ControlKind.NONE)
        .filter(~Exists(given))
    )
    pivot = random.random()  # noqa: S311 - picks a control item, not security
    ids = list(
        pool.filter(shuffle_key__gte=pivot)
        .order_by("shuffle_key")
        .values_list("pk", flat=True)[:limit]
    )
    if len(ids) < limit:
        ids.extend(
            pool.filter(shuffle_key__lt=pivot)
            .order_by("shuffle_key")
            .values_list("pk", flat=True)[: limit - len(ids)]
        )
    return ids


def _claim_control(item_id: int) -> bool:
    """Lock a control item's row, checking it still is one. Control items take no slot.

    The no-op UPDATE serialises this with ``item_control_set``: either that sees this
    assignment (and refuses to change the kind), or this sees the new kind.
    """
    return bool(
        Item.objects.filter(pk=item_id, tombstoned_at__isnull=True)
        .exclude(control=ControlKind.NONE)
        .update(control=F("control"))
    )


def _assign(project: Project, annotator: User, item_id: int, expires_at: datetime) -> Assignment:
    # An expired assignment of the same pair is reused (one row per item and annotator).
    assignment, _ = Assignment.objects.update_or_create(
        item_id=item_id,
        annotator=annotator,
        defaults={"project": project, "status": Assignment.Status.OPEN, "expires_at": expires_at},
    )
    return Assignment.objects.select_related("item").get(pk=assignment.pk)


def _mixed_in_control(project: Project, annotator: User, expires_at: datetime) -> Assignment | None:
    """With probability ``control_rate``, a control item the annotator has not seen.

    Only between regular items: once no regular item is left for this annotator, none is
    given, so nobody is kept busy with control items alone. (Checked without locking: a
    regular item may fill up meanwhile, which at worst gives one control item last.)
    """
    if not random.random() < project.control_rate:  # noqa: S311 - sampling, not security
        return None
    if not _open_items(project, annotator).exists():
        return None
    for item_id in _unseen_control_items(project, annotator, limit=CANDIDATE_POOL):
        if _claim_control(item_id):
            return _assign(project, annotator, item_id, expires_at)
    return None


@atomic_with_retry()
def assignment_next(*, project: Project, annotator: User) -> Assignment | None:
    """Give the annotator an item that still needs labels, or ``None`` when none is left.

    Never more than k slots per item: the slot is claimed by a conditional UPDATE that the
    database evaluates on the locked row, so concurrent callers cannot over-fill an item.
    ``None`` means none is left, not that the remaining ones were busy: rows other callers
    are claiming are first skipped (no waiting), then waited for before giving up, since
    such a row may still have a free slot once its holder commits.

    Control items (gold and attention checks) are mixed in at the project's
    ``control_rate``: each shown to an annotator once at most, taking no slot, and never
    once the annotator's regular items are exhausted.
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
    control = _mixed_in_control(project, annotator, expires_at)
    if control is not None:
        return control
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
                if _claim(project, item_id):
                    return _assign(project, annotator, item_id, expires_at)
    return None


@atomic_with_retry()
def assignment_skip(*, assignment: Assignment, annotator: User) -> Assignment:
    if assignment.annotator_id != annotator.pk:
        raise NotFound("No such assignment.")
    if Assignment.objects.filter(pk=assignment.pk, status=Assignment.Status.OPEN).update(
        status=Assignment.Status.SKIPPED
    ):
        Item.objects.filter(pk=assignment.item_id, control=ControlKind.NONE).update(
            slots_taken=F("slots_taken") - 1
        )
    assignment.refresh_from_db()
    return assignment


# ---------------------------------------------------------------- annotations


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


# ---------------------------------------------------------------- quality control


def _is_control_item(item_id: int) -> bool:
    return Item.objects.filter(pk=item_id).exclude(control=ControlKind.NONE).exists()


def _label_set_count(schema: LabelSchema) -> int:
    """How many answers a multi-label schema admits: every allowed number of ticked choices."""
    n = len(schema.values)
    most = n if schema.max_selected is None else min(schema.max_selected, n)
    return sum(math.comb(n, size) for size in range(schema.min_selected, most + 1))


def _label_entropy(values: Sequence[Any], schema: LabelSchema) -> float:
    """Normalised Shannon entropy of one item's labels, in [0, 1].

    ``H = -sum_c p_c ln p_c`` over the answers given, divided by ``ln K``. Single choice:
    the categories are the schema's choices. Multi-label: each distinct label set is one
    category and ``K`` is the number of sets the schema admits. Free text, and any item
    with fewer than two labels, has 0.
    """
    if schema.kind == "free_text" or len(values) < 2:
        return 0.0
    if schema.kind == "multi_label":
        answers = [json.dumps(sorted(value)) for value in values]
        n_categories = _label_set_count(schema)
    else:
        answers = [str(value) for value in values]
        n_categories = len(schema.values)
    if n_categories < 2:
        return 0.0
    total = len(answers)
    entropy = -sum(n / total * math.log(n / total) for n in Counter(answers).values())
    return max(0.0, entropy / math.log(n_categories))


def _item_entropy_refresh(item_ids: Iterable[int]) -> None:
    """Recompute ``label_entropy`` from the items' current non-withdrawn labels.

    Call it in the transaction that changed the labels. The item rows are locked first (in
    id order), so concurrent label changes to one item are counted one after the other and
    the last writer sees every committed label.
    """
    ids = sorted(set(item_ids))
    if not ids:
        return
    items = list(
        Item.objects.select_for_update()
        .filter(pk__in=ids)
        .order_by("pk")
        .only("pk", "project_id", "label_entropy")
    )
    schemas = {
        project.pk: LabelSchema.from_json(project.label_schema)
        for project in Project.objects.filter(pk__in={item.project_id for item in items})
    }
    values: dict[int, list[Any]] = defaultdict(list)
    for item_id, value in Annotation.objects.filter(item_id__in=ids, withdrawn=False).values_list(
        "item_id", "value"
    ):
        values[item_id].append(value)
    changed = []
    for item in items:
        entropy = _label_entropy(values[item.pk], schemas[item.project_id])
        if entropy != item.label_entropy:
            item.label_entropy = entropy
            changed.append(item)
    Item.objects.bulk_update(changed, ["label_entropy"])


@atomic_with_retry()
def item_control_set(*, item: Item, actor: User, control: str, expected_value: Any = None) -> Item:
    """Make an item a gold or attention-check item with its expected answer, or a regular
    item again (``control=""``, no expected answer).

    The project's owner or staff, while the project is a draft or open. The expected
    answer is checked against the label schema exactly like an annotator's answer. An item
    may change between regular and control only while nobody holds an assignment for it or
    has labeled it: its labels would otherwise move silently in or out of the analysis, and
    its slots in or out of the k count. The expected answer of a control item, and gold
    versus attention, may be corrected at any time before the project closes.
    """
    _check_manages(item.project, actor, "manage control items")
    if control not in ControlKind.values:
        raise ValidationFailed(
            f"control must be one of: {', '.join(repr(v) for v in ControlKind.values)}.",
            code="invalid_control",
        )
    locked = Item.objects.select_for_update().get(pk=item.pk)
    project = Project.objects.get(pk=locked.project_id)
    if project.status == ProjectStatus.CLOSED:
        raise Conflict(
            "The project is closed; its items can no longer change.", code="project_closed"
        )
    if locked.tombstoned_at is not None:
        raise Conflict("This item was taken down.", code="item_tombstoned")
    if control == ControlKind.NONE:
        if expected_value is not None:
            raise ValidationFailed(
                "A regular item has no expected answer.", code="unexpected_expected_value"
            )
        clean_value = None
    else:
        if expected_value is None:
            raise ValidationFailed(
                "A control item needs its expected answer.", code="expected_value_required"
            )
        clean_value = _clean_label(project, expected_value)
    previous = {"control": locked.control, "expected_value": locked.expected_value}
    if (locked.control, locked.expected_value) == (control, clean_value):
        return locked
    is_control, was_control = control != ControlKind.NONE, locked.control != ControlKind.NONE
    if is_control != was_control and (
        locked.annotations.exists()
        or locked.assignments.filter(status=Assignment.Status.OPEN).exists()
    ):
        raise Conflict(
            "This item is already being labeled; only items nobody holds or has labeled can "
            "become or stop being control items.",
            code="item_in_use",
        )
    locked.control = control
    locked.expected_value = clean_value
    locked.save(update_fields=["control", "expected_value", "updated_at"])
    audit_record(
        actor=actor,
        action="item.control_set",
        obj=locked,
        payload={
            "project": project.pk,
            "control": control,
            "expected_value": clean_value,
            "previous": previous,
        },
    )
    return locked


# ---------------------------------------------------------------- data subjects and takedowns

SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


@transaction.atomic
def item_subject_consent_set(
    *,
    item: Item,
    actor: User,
    status: str,
    consent_text: str = "",
    purposes: list[str] | None = None,
    lawful_basis: str = "consent",
    evidence: str = "",
    given_at: datetime | None = None,
    expires_at: datetime | None = None,
) -> Item:
    """Record whether the people an item shows consented, with the record when they did.

    ``obtained`` needs the consent text, at least one purpose and the evidence (where the
    signed release is kept); any other status clears the link to a record (records
    themselves are kept: they are evidence).
    """
    _check_manages(item.project, actor, "record a data subject's consent")
    if status not in SubjectConsent.values:
        raise ValidationFailed(
            f"Consent status must be one of {', '.join(SubjectConsent.values)}.",
            code="invalid_consent_status",
        )
    record: ConsentRecord | None = None
    if status == SubjectConsent.OBTAINED:
        if not consent_text.strip() or not purposes or not evidence.strip():
            raise ValidationFailed(
                "Obtained consent needs the consent text, its purposes and the evidence.",
                code="consent_incomplete",
            )
        record = consent_record_create(
            subject=None,
            subject_kind=ConsentRecord.SubjectKind.DATA_SUBJECT,
            scope=f"item:{item.pk}",
            text=consent_text.strip(),
            purposes=purposes,
            method="release-form",
            lawful_basis=lawful_basis,
            evidence=evidence.strip(),
            given_at=given_at,
            expires_at=expires_at,
        )
    item.subject_consent = status
    item.subject_consent_record = record
    item.save(update_fields=["subject_consent", "subject_consent_record", "updated_at"])
    audit_record(
        actor=actor,
        action="item.subject_consent",
        obj=item,
        payload={
            "project": item.project_id,
            "status": status,
            "consent_record": record.pk if record else None,
        },
    )
    return item


def _takedown_targets(reference: str) -> list[Item]:
    """The items a takedown reference names: an item id, or a content sha256 in any project."""
    text = reference.strip().lower()
    if text.isdigit() and len(text) < 19:
        return list(Item.objects.filter(pk=int(text)).select_related("project"))
    if SHA256_HEX.match(text):
        return list(Item.objects.filter(sha256=text).select_related("project").order_by("pk"))
    return []


def takedown_throttle(*, address: str) -> str:
    """Count one request from this client address; refuse it over the hourly limit.

    Returns the filer's public handle for the audit log: ``public:`` and a keyed hash of
    the throttle key (the address itself is never stored; an unkeyed hash of an IPv4
    address could be reversed by trying them all).
    """
    key = f"takedown:{address}"
    rate_limit_hit(key=key, limit=settings.CHORUS_TAKEDOWN_MAX_PER_HOUR, window_seconds=3600)
    return "public:" + salted_hmac("chorus.takedown.filer", key).hexdigest()[:16]


@transaction.atomic
def takedown_file(
    *, reference: str, kind: str, reason: str, contact: str = "", filer: str = "public"
) -> list[TakedownRequest]:
    """File a takedown or erasure request; anyone may, signed in or not.

    One request per item the reference names (the same content may sit in several
    projects, each with its own owner to decide); a reference that names nothing is still
    kept, for staff to triage. ``filer`` is the public handle ``takedown_throttle`` gave the
    requester; the audit log shows it as the actor. Callers must not tell the requester
    which items matched: that would answer "is my photo in this dataset?" to anyone who
    asks.
    """
    reference = reference.strip()
    reason = reason.strip()
    if not reference or len(reference) > 200:
        raise ValidationFailed(
            "Give the item's id or its sha256 (up to 200 characters).", code="invalid_reference"
        )
    if kind not in TakedownRequest.Kind.values:
        raise ValidationFailed(
            f"Kind must be one of {', '.join(TakedownRequest.Kind.values)}.", code="invalid_kind"
        )
    if not reason or len(reason) > 5000:
        raise ValidationFailed(
            "Say why the item should be taken down (up to 5000 characters).",
            code="invalid_reason",
        )
    targets: list[Item | None] = [*_takedown_targets(reference)] or [None]
    filed = []
    for item in targets:
        request = TakedownRequest(
            reference=reference,
            item=item,
            project=item.project if item is not None else None,
            kind=kind,
            reason=reason,
            contact=contact.strip()[:254],
        )
        request.full_clean()
        request.save()
        audit_record(
            actor=None,
            public_actor=filer,
            action="takedown.file",
            obj=request,
            payload={
                "kind": kind,
                "item": item.pk if item is not None else None,
                "project": request.project_id,
            },
        )
        filed.append(request)
    return filed


def _item_tombstone(*, item: Item, actor: User, reason: str, request: TakedownRequest) -> None:
    """Remove an item's content for good, keeping its hashes and provenance."""
    if item.tombstoned_at is not None:
        return
    stored_name = item.image.name if item.image else ""
    tombstone_create(
        sha256=item.sha256,
        phash=item.phash,
        object_type="annotation.item",
        object_id=str(item.pk),
        reason=f"takedown {request.pk}: {reason}"[:5000],
    )
    Assignment.objects.filter(item=item, status=Assignment.Status.OPEN).update(
        status=Assignment.Status.CANCELLED
    )
    item.text = ""
    item.image = ""
    item.metadata = {}
    item.tombstoned_at = timezone.now()
    item.save(update_fields=["text", "image", "metadata", "tombstoned_at", "updated_at"])
    if stored_name:
        # Only once the tombstone is committed: a rollback must not lose the content.
        transaction.on_commit(lambda: default_storage.delete(stored_name))
    audit_record(
        actor=actor,
        action="item.tombstone",
        obj=item,
        payload={"project": item.project_id, "takedown": request.pk, "sha256": item.sha256},
    )


@atomic_with_retry()
def takedown_decide(
    *, request: TakedownRequest, actor: User, accept: bool, reason: str
) -> TakedownRequest:
    """Accept or reject a request, with a reason. Accepting tombstones the item.

    The item's owner or staff decide; a request that names no item is for staff only.
    """
    request = (
        TakedownRequest.objects.select_for_update(of=("self",))
        .select_related("project")
        .get(pk=request.pk)
    )
    if not request.is_decidable_by(actor):
        raise PermissionDenied(
            "Only the project's owner or staff can decide takedown requests.", code="not_owner"
        )
    if request.status != TakedownRequest.Status.OPEN:
        raise Conflict("This request was already decided.", code="takedown_decided")
    reason = reason.strip()
    if not reason:
        raise ValidationFailed("Give the reason for the decision.", code="reason_required")
    if accept and request.item is None:
        raise Conflict(
            "This request names no item; there is nothing to take down.",
            code="takedown_no_item",
        )
    request.status = TakedownRequest.Status.ACCEPTED if accept else TakedownRequest.Status.REJECTED
    request.decided_by = actor
    request.decided_at = timezone.now()
    request.decision_reason = reason[:5000]
    if accept and request.item_id is not None:
        item = Item.objects.select_for_update().get(pk=request.item_id)
        _item_tombstone(item=item, actor=actor, reason=reason, request=request)
    request.save()
    audit_record(
        actor=actor,
        action="takedown.accept" if accept else "takedown.reject",
        obj=request,
        payload={"item": request.item_id, "project": request.project_id, "reason": reason},
    )
    return request


__all__ = [
    "item_control_set",
    "item_subject_consent_set",
    "takedown_decide",
    "takedown_file",
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
