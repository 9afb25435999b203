"""Enrolment writes: consent (and consent again to changed terms), the survey, withdrawal.

Invariants:
- Consent is recorded only to the text version the annotator read, as a versioned
  consent record for ``CONSENT_PURPOSES``; a re-consent keeps the earlier record, and each
  label keeps its link to the consent it was given under.
- One enrolment per project and annotator; a withdrawn annotator cannot rejoin.
- Withdrawal is one transaction: open assignments cancelled, labels kept but marked
  withdrawn (out of every later analysis and export), their slots released, the items'
  label entropy refreshed, the consent record withdrawn.
- ``_active_enrolment`` is the gate to labeling, asked by the assignment and annotation
  services: enrolled, not withdrawn, consented to the current terms.
"""

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from annotation.consent import project_consent_text, project_consent_version
from annotation.models import (
    Annotation,
    Assignment,
    ControlKind,
    Enrolment,
    Item,
    Project,
    ProjectStatus,
)
from annotation.services.label_entropy import _item_entropy_refresh
from annotation.signals import labels_withdrawn
from annotation.surveys import SurveyError, parse_definition, validate_answers
from core.db import atomic_with_retry
from core.errors import Conflict, PermissionDenied, ValidationFailed
from core.models import User
from provenance.models import ConsentRecord
from provenance.services import audit_record, consent_record_create, consent_record_withdraw

CONSENT_PURPOSES = ["annotation", "research-publication", "dataset-release-pseudonymised"]


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
    labels_withdrawn.send(
        sender=Enrolment,
        project_id=locked.project_id,
        annotator_id=locked.annotator_id,
        item_ids=labeled_items,
        actor=actor,
    )
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
