"""Project writes: create, update, status transitions, and who may change a project.

Invariants:
- Only whoever manages a project (``Project.is_managed_by``: its owner or staff) changes
  it or decides about its items. ``_check_manages`` asks that, for this module and for the
  services of the others (control items, subjects' consent); views may ask earlier.
- The status moves only along ``ALLOWED_TRANSITIONS`` (draft, open, closed), under a row
  lock; a project opens only once it has items.
- ``PROJECT_FROZEN_AFTER_DRAFT`` fields never change once the project has opened, and a
  draft's new label schema must still accept every control item's expected answer.
- A change of an open project's material terms that would ask enrolled annotators to
  consent again is refused unless confirmed, before anything is saved.
- Every write is audited in the same transaction, with the old and new value of each field.
"""

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction

from annotation.consent import MATERIAL_FIELDS, enrolments_to_reconsent, project_consent_version
from annotation.models import ControlKind, Item, Project, ProjectStatus
from annotation.schemas import PRESETS, LabelSchema, SchemaError
from annotation.surveys import SurveyError, parse_definition
from core.errors import Conflict, PermissionDenied, ValidationFailed
from core.models import User
from provenance.services import audit_record

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
