"""Writes for the annotation campaign: projects, consent, assignment, labels, withdrawal."""

import hashlib
from datetime import timedelta

import pytest
from django.db.models.functions import Now
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
from annotation.schemas import HATE_SPEECH_SCHEMA, PRESETS, PRIVACY_SCHEMA
from annotation.selectors import (
    annotation_list_for,
    annotations_for_analysis,
    assignment_current,
    project_progress,
)
from annotation.services import (
    CONSENT_PURPOSES,
    annotation_submit,
    annotation_update,
    assignment_next,
    assignment_skip,
    assignments_expire,
    enrolment_create,
    enrolment_survey_submit,
    enrolment_withdraw,
    project_consent_text,
    project_create,
    project_transition,
    project_update,
)
from annotation.surveys import DEFAULT_SURVEY, PREFER_NOT_TO_SAY
from core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from core.models import Role, User
from provenance.models import AuditEvent, ConsentRecord
from provenance.services import audit_chain_verify
from tests.annotation.factories import (
    HATEFUL,
    NEITHER,
    OFFENSIVE,
    add_text_items,
    make_enrolled_annotator,
    make_open_project,
    make_project,
)
from tests.core.factories import make_user

pytestmark = pytest.mark.django_db


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


def label(project: Project, annotator: User, value: str = NEITHER) -> Annotation:
    """Ask for the next item and label it; the test fails if none is offered."""
    assignment = assignment_next(project=project, annotator=annotator)
    assert assignment is not None
    return annotation_submit(annotator=annotator, item=assignment.item, value=value).annotation


def label_all(project: Project, annotator: User, value: str = NEITHER) -> list[int]:
    item_ids = []
    while (assignment := assignment_next(project=project, annotator=annotator)) is not None:
        annotation_submit(annotator=annotator, item=assignment.item, value=value)
        item_ids.append(assignment.item_id)
    return item_ids


def slots(item_id: int) -> int:
    return Item.objects.get(pk=item_id).slots_taken


# ---------------------------------------------------------------- projects


@pytest.mark.parametrize("preset", ["privacy_alert", "hate_speech"])
def test_project_create_with_preset_fills_modality_schema_and_instructions(preset: str) -> None:
    owner = make_user(Role.RESEARCHER)
    project = project_create(
        owner=owner,
        preset=preset,
        title="Campaign",
        risk_disclosure="Some content may upset you.",
        data_use_statement="Published as a research dataset.",
    )
    chosen = PRESETS[preset]
    project.refresh_from_db()
    assert project.status == ProjectStatus.DRAFT
    assert project.modality == chosen.modality
    assert project.label_schema == chosen.schema.to_json()
    assert project.instructions == chosen.instructions
    (event,) = events("project.create")
    assert (event.actor_id, event.object_id) == (owner.pk, str(project.pk))


def test_project_create_privacy_preset_stores_four_ordered_choices() -> None:
    project = make_project(preset="privacy_alert")
    assert [c["value"] for c in project.label_schema["choices"]] == list(PRIVACY_SCHEMA.values)
    assert project.label_schema["kind"] == "ordinal"


def test_project_create_explicit_fields_override_preset() -> None:
    project = make_project(preset="hate_speech", instructions="Our own words.")
    assert project.instructions == "Our own words."


def test_project_create_unknown_field_rejected() -> None:
    owner = make_user(Role.RESEARCHER)
    with pytest.raises(ValidationFailed, match="owner_id|status"):
        make_project(owner, status=ProjectStatus.OPEN, owner_id=owner.pk)
    assert not Project.objects.exists()


def test_project_create_unknown_preset_rejected() -> None:
    with pytest.raises(ValidationFailed) as caught:
        make_project(preset="sentiment")
    assert caught.value.code == "unknown_preset"


def test_project_create_invalid_schema_rejected_with_field_errors() -> None:
    owner = make_user(Role.RESEARCHER)
    with pytest.raises(ValidationFailed) as caught:
        project_create(
            owner=owner,
            title="Bad",
            modality="text",
            instructions="x",
            label_schema={"kind": "nominal", "choices": [{"value": "a"}, {"value": "a"}]},
            risk_disclosure="r",
            data_use_statement="d",
        )
    assert "label_schema" in caught.value.extra["fields"]
    assert not Project.objects.exists()


def test_project_create_invalid_survey_and_k_rejected() -> None:
    with pytest.raises(ValidationFailed) as caught:
        make_project(k=0, survey=[{"key": "x", "text": "t", "options": ["only"]}])
    assert {"survey", "annotations_per_item"} <= set(caught.value.extra["fields"])


@pytest.mark.parametrize("role", [Role.ANNOTATOR, Role.AUDITOR])
def test_project_create_by_non_researcher_denied(role: str) -> None:
    with pytest.raises(PermissionDenied):
        make_project(make_user(role))
    assert not Project.objects.exists()


def test_project_update_draft_may_change_schema() -> None:
    project = make_project()
    project_update(
        project=project,
        actor=project.owner,
        data={"label_schema": PRIVACY_SCHEMA.to_json(), "annotations_per_item": 5},
    )
    project.refresh_from_db()
    assert project.label_schema == PRIVACY_SCHEMA.to_json()
    assert project.annotations_per_item == 5
    assert events("project.update")[-1].payload == {
        "fields": {
            "label_schema": {"old": HATE_SPEECH_SCHEMA.to_json(), "new": PRIVACY_SCHEMA.to_json()},
            "annotations_per_item": {"old": 3, "new": 5},
        },
        "annotators_to_reconsent": 0,
    }


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"label_schema": PRIVACY_SCHEMA.to_json()}, id="schema"),
        pytest.param({"annotations_per_item": 5}, id="k"),
        pytest.param({"modality": "image"}, id="modality"),
    ],
)
def test_project_update_open_project_frozen_field_conflict(data: dict) -> None:
    project = make_open_project()
    before = Project.objects.values().get(pk=project.pk)
    with pytest.raises(Conflict) as caught:
        project_update(project=project, actor=project.owner, data=data)
    assert caught.value.code == "project_frozen_field"
    assert caught.value.status_code == 409
    assert Project.objects.values().get(pk=project.pk) == before


def test_project_update_open_project_unchanged_frozen_value_and_title_allowed() -> None:
    project = make_open_project()
    project_update(
        project=project,
        actor=project.owner,
        data={"title": "Renamed", "label_schema": project.label_schema},
    )
    project.refresh_from_db()
    assert project.title == "Renamed"


def test_project_update_closed_project_conflict() -> None:
    project = make_open_project()
    project_transition(project=project, actor=project.owner, status=ProjectStatus.CLOSED)
    with pytest.raises(Conflict) as caught:
        project_update(project=project, actor=project.owner, data={"title": "Late"})
    assert caught.value.code == "project_closed"


def test_project_update_unknown_field_rejected() -> None:
    project = make_project()
    with pytest.raises(ValidationFailed):
        project_update(project=project, actor=project.owner, data={"owner": 1})


def test_project_transition_draft_open_closed_audited() -> None:
    project = make_project()
    add_text_items(project, 2)
    project_transition(project=project, actor=project.owner, status=ProjectStatus.OPEN)
    assert Project.objects.get(pk=project.pk).status == ProjectStatus.OPEN
    project_transition(project=project, actor=project.owner, status=ProjectStatus.CLOSED)
    assert Project.objects.get(pk=project.pk).status == ProjectStatus.CLOSED
    assert [e.payload for e in events("project.status_change")] == [
        {"from": "draft", "to": "open"},
        {"from": "open", "to": "closed"},
    ]


@pytest.mark.parametrize(
    ("path", "target"),
    [
        pytest.param([], ProjectStatus.CLOSED, id="draft-to-closed"),
        pytest.param([], ProjectStatus.DRAFT, id="draft-to-draft"),
        pytest.param([ProjectStatus.OPEN], ProjectStatus.DRAFT, id="open-to-draft"),
        pytest.param([ProjectStatus.OPEN], ProjectStatus.OPEN, id="open-to-open"),
        pytest.param([ProjectStatus.OPEN, ProjectStatus.CLOSED], ProjectStatus.OPEN, id="reopen"),
        pytest.param([], "archived", id="unknown-status"),
    ],
)
def test_project_transition_invalid_conflict_and_unchanged(path: list[str], target: str) -> None:
    project = make_project()
    add_text_items(project, 1)
    for status in path:
        project_transition(project=project, actor=project.owner, status=status)
    before = Project.objects.get(pk=project.pk).status
    count = AuditEvent.objects.count()
    with pytest.raises(Conflict) as caught:
        project_transition(project=project, actor=project.owner, status=target)
    assert caught.value.code == "invalid_transition"
    assert Project.objects.get(pk=project.pk).status == before
    assert AuditEvent.objects.count() == count


def test_project_transition_empty_project_cannot_open() -> None:
    project = make_project()
    with pytest.raises(Conflict) as caught:
        project_transition(project=project, actor=project.owner, status=ProjectStatus.OPEN)
    assert caught.value.code == "project_empty"
    assert Project.objects.get(pk=project.pk).status == ProjectStatus.DRAFT


# ---------------------------------------------------------------- enrolment and consent


def test_enrolment_create_stores_versioned_consent_record_and_audits() -> None:
    project = make_open_project()
    annotator = make_user(Role.ANNOTATOR)
    before = timezone.now()
    enrolment = enrolment_create(project=project, annotator=annotator, method="api")
    consent = ConsentRecord.objects.get(pk=enrolment.consent_id)
    text = project_consent_text(project)
    assert consent.text == text
    assert consent.text_version == hashlib.sha256(text.encode()).hexdigest()
    assert consent.purposes == CONSENT_PURPOSES
    assert consent.method == "api"
    assert consent.subject_id == annotator.pk
    assert consent.subject_kind == ConsentRecord.SubjectKind.ANNOTATOR
    assert consent.scope == f"project:{project.pk}"
    assert consent.given_at >= before and consent.withdrawn_at is None
    (event,) = events("enrolment.consent")
    assert event.actor_id == annotator.pk
    assert event.payload["consent_version"] == consent.text_version
    assert event.payload["method"] == "api"


def test_project_consent_text_shows_risks_pay_and_data_use() -> None:
    project = make_open_project(
        risk_disclosure="You will read insults.",
        data_use_statement="Released under CC-BY.",
        compensation_amount="0.5",
    )
    text = project_consent_text(project)
    assert "You will read insults." in text
    assert "Released under CC-BY." in text
    assert "0.50 EUR per item" in text
    assert "withdraw" in text


def test_enrolment_create_consent_version_follows_shown_text() -> None:
    project = make_open_project()
    first = enrolment_create(project=project, annotator=make_user(Role.ANNOTATOR))
    project_update(
        project=project,
        actor=project.owner,
        data={"risk_disclosure": "New risks."},
        confirm_reconsent=True,
    )
    second = enrolment_create(project=project, annotator=make_user(Role.ANNOTATOR))
    assert first.consent.text_version != second.consent.text_version
    assert "New risks." in second.consent.text
    assert "New risks." not in ConsentRecord.objects.get(pk=first.consent_id).text


def test_enrolment_create_twice_returns_same_enrolment() -> None:
    project = make_open_project()
    annotator = make_user(Role.ANNOTATOR)
    first = enrolment_create(project=project, annotator=annotator)
    second = enrolment_create(project=project, annotator=annotator)
    assert first.pk == second.pk
    assert ConsentRecord.objects.filter(subject=annotator).count() == 1
    assert len(events("enrolment.consent")) == 1


@pytest.mark.parametrize("role", [Role.RESEARCHER, Role.AUDITOR])
def test_enrolment_create_non_annotator_denied(role: str) -> None:
    project = make_open_project()
    with pytest.raises(PermissionDenied) as caught:
        enrolment_create(project=project, annotator=make_user(role))
    assert caught.value.code == "not_annotator"
    assert not Enrolment.objects.exists()
    assert not ConsentRecord.objects.exists()


@pytest.mark.parametrize("status", [ProjectStatus.DRAFT, ProjectStatus.CLOSED])
def test_enrolment_create_project_not_open_conflict(status: str) -> None:
    project = make_project()
    add_text_items(project, 1)
    if status == ProjectStatus.CLOSED:
        project_transition(project=project, actor=project.owner, status=ProjectStatus.OPEN)
        project_transition(project=project, actor=project.owner, status=ProjectStatus.CLOSED)
    with pytest.raises(Conflict) as caught:
        enrolment_create(project=project, annotator=make_user(Role.ANNOTATOR))
    assert caught.value.code == "project_not_open"


def test_enrolment_create_after_withdrawal_conflict() -> None:
    project = make_open_project()
    annotator = make_enrolled_annotator(project)
    enrolment = Enrolment.objects.get(project=project, annotator=annotator)
    enrolment_withdraw(enrolment=enrolment, actor=annotator)
    with pytest.raises(Conflict) as caught:
        enrolment_create(project=project, annotator=annotator)
    assert caught.value.code == "withdrawn"
    assert Enrolment.objects.get(pk=enrolment.pk).withdrawn_at is not None
    assert ConsentRecord.objects.filter(subject=annotator).count() == 1


def test_enrolment_survey_submit_stores_and_answers_are_editable() -> None:
    project = make_open_project(survey=DEFAULT_SURVEY)
    annotator = make_enrolled_annotator(project)
    enrolment = Enrolment.objects.get(project=project, annotator=annotator)
    enrolment_survey_submit(enrolment=enrolment, answers={"age_group": "25-34", "gender": "woman"})
    enrolment_survey_submit(
        enrolment=enrolment, answers={"age_group": PREFER_NOT_TO_SAY, "region": "Europe"}
    )
    enrolment.refresh_from_db()
    assert enrolment.survey_answers == {"age_group": PREFER_NOT_TO_SAY, "region": "Europe"}
    assert enrolment.survey_answered_at is not None


@pytest.mark.parametrize(
    "answers",
    [
        pytest.param({"income": "high"}, id="unknown-key"),
        pytest.param({"age_group": "12-17"}, id="not-an-option"),
        pytest.param(["25-34"], id="not-an-object"),
    ],
)
def test_enrolment_survey_submit_invalid_answers_rejected_and_kept(answers: object) -> None:
    project = make_open_project(survey=DEFAULT_SURVEY)
    annotator = make_enrolled_annotator(project)
    enrolment = Enrolment.objects.get(project=project, annotator=annotator)
    enrolment_survey_submit(enrolment=enrolment, answers={"gender": "man"})
    with pytest.raises(ValidationFailed) as caught:
        enrolment_survey_submit(enrolment=enrolment, answers=answers)  # type: ignore[arg-type]
    assert caught.value.code == "invalid_survey"
    assert Enrolment.objects.get(pk=enrolment.pk).survey_answers == {"gender": "man"}


def test_enrolment_survey_submit_after_withdrawal_conflict() -> None:
    project = make_open_project(survey=DEFAULT_SURVEY)
    annotator = make_enrolled_annotator(project)
    enrolment = enrolment_withdraw(
        enrolment=Enrolment.objects.get(project=project, annotator=annotator), actor=annotator
    )
    with pytest.raises(Conflict):
        enrolment_survey_submit(enrolment=enrolment, answers={"gender": "man"})


# ---------------------------------------------------------------- assignment


def test_assignment_next_least_labeled_items_first() -> None:
    project = make_open_project(6, k=3)
    first_round = {label(project, make_enrolled_annotator(project)).item_id for _ in range(6)}
    # Six annotators, six items: each got an item nobody had yet.
    assert len(first_round) == 6
    # The next ones go to items with one label before any item gets a third.
    second_round = [label(project, make_enrolled_annotator(project)).item_id for _ in range(6)]
    assert sorted(Item.objects.values_list("slots_taken", flat=True)) == [2] * 6
    assert len(set(second_round)) == 6


def test_assignment_next_prefers_item_with_fewer_slots() -> None:
    project = make_open_project(2, k=3)
    busy, quiet = Item.objects.filter(project=project).order_by("id")
    Item.objects.filter(pk=busy.pk).update(slots_taken=2)
    for _ in range(5):
        annotator = make_enrolled_annotator(project)
        assignment = assignment_next(project=project, annotator=annotator)
        assert assignment is not None and assignment.item_id == quiet.pk
        assignment_skip(assignment=assignment, annotator=annotator)


def test_assignment_next_never_same_item_twice_and_none_when_exhausted() -> None:
    project = make_open_project(7, k=2)
    annotator = make_enrolled_annotator(project)
    labeled = label_all(project, annotator)
    assert sorted(labeled) == sorted(
        Item.objects.filter(project=project).values_list("pk", flat=True)
    )
    assert assignment_next(project=project, annotator=annotator) is None
    assert Annotation.objects.filter(annotator=annotator).count() == 7


def test_assignment_next_all_slots_filled_returns_none_for_newcomer() -> None:
    project = make_open_project(3, k=1)
    label_all(project, make_enrolled_annotator(project))
    assert assignment_next(project=project, annotator=make_enrolled_annotator(project)) is None


def test_assignment_next_skipped_item_not_offered_again() -> None:
    project = make_open_project(4, k=3)
    annotator = make_enrolled_annotator(project)
    first = assignment_next(project=project, annotator=annotator)
    assert first is not None
    skipped = assignment_skip(assignment=first, annotator=annotator)
    assert skipped.status == Assignment.Status.SKIPPED
    assert slots(first.item_id) == 0
    labeled = label_all(project, annotator)
    assert first.item_id not in labeled
    assert len(labeled) == 3


def test_assignment_next_open_assignments_count_towards_k() -> None:
    project = make_open_project(1, k=2)
    holders = [make_enrolled_annotator(project) for _ in range(2)]
    for holder in holders:
        assert assignment_next(project=project, annotator=holder) is not None
    # Nobody has submitted, yet both slots are taken.
    assert assignment_next(project=project, annotator=make_enrolled_annotator(project)) is None
    assert Item.objects.get(project=project).slots_taken == 2


def test_assignment_next_resume_returns_same_open_assignment() -> None:
    project = make_open_project(5)
    annotator = make_enrolled_annotator(project)
    first = assignment_next(project=project, annotator=annotator)
    again = assignment_next(project=project, annotator=annotator)
    assert first is not None and again is not None
    assert again.pk == first.pk
    assert Assignment.objects.filter(annotator=annotator).count() == 1
    assert slots(first.item_id) == 1


def test_assignment_next_expired_assignment_returns_slot_to_pool() -> None:
    project = make_open_project(1, k=1)
    slow, other = make_enrolled_annotator(project), make_enrolled_annotator(project)
    abandoned = assignment_next(project=project, annotator=slow)
    assert abandoned is not None
    assert assignment_next(project=project, annotator=other) is None
    Assignment.objects.filter(pk=abandoned.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    taken = assignment_next(project=project, annotator=other)
    assert taken is not None and taken.item_id == abandoned.item_id
    assert Assignment.objects.get(pk=abandoned.pk).status == Assignment.Status.EXPIRED
    assert slots(abandoned.item_id) == 1
    # The late annotator's submission cannot over-fill the item.
    with pytest.raises(Conflict) as caught:
        annotation_submit(annotator=slow, item=abandoned.item, value=NEITHER)
    assert caught.value.code == "assignment_expired"
    assert slots(abandoned.item_id) == 1
    annotation_submit(annotator=other, item=taken.item, value=NEITHER)
    assert Annotation.objects.filter(item=abandoned.item).count() == 1


def test_assignment_next_uses_project_ttl() -> None:
    project = make_open_project(1, k=1, assignment_ttl_seconds=60)
    before = timezone.now()
    assignment = assignment_next(project=project, annotator=make_enrolled_annotator(project))
    assert assignment is not None
    assert before + timedelta(seconds=59) <= assignment.expires_at
    assert assignment.expires_at <= timezone.now() + timedelta(seconds=60)


def test_assignment_next_expired_but_unclaimed_may_still_submit() -> None:
    project = make_open_project(1, k=1)
    annotator = make_enrolled_annotator(project)
    assignment = assignment_next(project=project, annotator=annotator)
    assert assignment is not None
    Assignment.objects.filter(pk=assignment.pk).update(expires_at=timezone.now())
    Assignment.objects.filter(pk=assignment.pk).update(status=Assignment.Status.EXPIRED)
    Item.objects.filter(pk=assignment.item_id).update(slots_taken=0)
    result = annotation_submit(annotator=annotator, item=assignment.item, value=HATEFUL)
    assert result.created
    assert slots(assignment.item_id) == 1


def test_assignment_next_host_clock_ahead_valid_assignment_kept_and_submit_accepted(
    host_clock,
) -> None:
    # The reported case: a web server 40 s ahead of the database expired an assignment
    # with 20 s left, gave its item away, and answered its holder's in-time submit 409.
    project = make_open_project(1, k=1)
    holder, other = make_enrolled_annotator(project), make_enrolled_annotator(project)
    held = assignment_next(project=project, annotator=holder)
    assert held is not None
    Assignment.objects.filter(pk=held.pk).update(expires_at=Now() + timedelta(seconds=20))
    host_clock(timedelta(seconds=40))

    given_away = assignment_next(project=project, annotator=other)
    still_current = assignment_current(project=project, annotator=holder)
    result = annotation_submit(annotator=holder, item=held.item, value=NEITHER)

    assert result.created
    assert given_away is None
    assert still_current == held
    assert Assignment.objects.get(pk=held.pk).status == Assignment.Status.SUBMITTED
    assert not Assignment.objects.filter(annotator=other).exists()
    assert slots(held.item_id) == 1


def test_assignment_next_host_clock_behind_deadline_counted_from_database_clock(
    host_clock,
) -> None:
    project = make_open_project(1, k=1, assignment_ttl_seconds=600)
    annotator = make_enrolled_annotator(project)
    real_before = timezone.now()
    host_clock(-timedelta(hours=1))

    assignment = assignment_next(project=project, annotator=annotator)

    assert assignment is not None
    # Stamped by the database: an hour-slow host would have handed out a past deadline.
    assert real_before + timedelta(seconds=599) <= assignment.expires_at
    assert assignment.expires_at <= real_before + timedelta(seconds=660)
    assert assignment_current(project=project, annotator=annotator) == assignment


def test_assignment_next_own_expired_item_given_again_with_new_database_deadline(
    host_clock,
) -> None:
    project = make_open_project(1, k=1, assignment_ttl_seconds=600)
    annotator = make_enrolled_annotator(project)
    first = assignment_next(project=project, annotator=annotator)
    assert first is not None
    Assignment.objects.filter(pk=first.pk).update(expires_at=Now() - timedelta(seconds=1))
    real_before = timezone.now()
    host_clock(-timedelta(hours=1))

    again = assignment_next(project=project, annotator=annotator)

    # The same row, reopened by an UPDATE that the database stamps with its own clock.
    assert again is not None and again.pk == first.pk
    assert again.status == Assignment.Status.OPEN
    assert real_before + timedelta(seconds=599) <= again.expires_at
    assert again.expires_at <= real_before + timedelta(seconds=660)
    assert slots(first.item_id) == 1


def test_assignments_expire_host_clock_ahead_expires_only_past_database_deadlines(
    host_clock,
) -> None:
    project = make_open_project(2, k=1)
    late, in_time = make_enrolled_annotator(project), make_enrolled_annotator(project)
    abandoned = assignment_next(project=project, annotator=late)
    held = assignment_next(project=project, annotator=in_time)
    assert abandoned is not None and held is not None
    Assignment.objects.filter(pk=abandoned.pk).update(expires_at=Now() - timedelta(seconds=1))
    Assignment.objects.filter(pk=held.pk).update(expires_at=Now() + timedelta(seconds=20))
    host_clock(timedelta(minutes=5))

    assert assignments_expire(project_id=project.pk) == 1

    assert Assignment.objects.get(pk=abandoned.pk).status == Assignment.Status.EXPIRED
    assert Assignment.objects.get(pk=held.pk).status == Assignment.Status.OPEN
    assert (slots(abandoned.item_id), slots(held.item_id)) == (0, 1)


def test_assignment_next_not_enrolled_denied() -> None:
    project = make_open_project()
    with pytest.raises(PermissionDenied) as caught:
        assignment_next(project=project, annotator=make_user(Role.ANNOTATOR))
    assert caught.value.code == "not_enrolled"
    assert not Assignment.objects.exists()


def test_assignment_next_closed_project_conflict() -> None:
    project = make_open_project()
    annotator = make_enrolled_annotator(project)
    project_transition(project=project, actor=project.owner, status=ProjectStatus.CLOSED)
    with pytest.raises(Conflict) as caught:
        assignment_next(project=project, annotator=annotator)
    assert caught.value.code == "project_not_open"


def test_assignment_skip_other_annotators_assignment_not_found() -> None:
    project = make_open_project()
    owner_of_it = make_enrolled_annotator(project)
    assignment = assignment_next(project=project, annotator=owner_of_it)
    assert assignment is not None
    with pytest.raises(NotFound):
        assignment_skip(assignment=assignment, annotator=make_enrolled_annotator(project))
    assert Assignment.objects.get(pk=assignment.pk).status == Assignment.Status.OPEN
    assert slots(assignment.item_id) == 1


# ---------------------------------------------------------------- submission


def test_annotation_submit_stores_label_marks_assignment_and_audits() -> None:
    project = make_open_project()
    annotator = make_enrolled_annotator(project)
    assignment = assignment_next(project=project, annotator=annotator)
    assert assignment is not None
    result = annotation_submit(
        annotator=annotator,
        item=assignment.item,
        value=OFFENSIVE,
        confidence=4,
        rationale="  rude, not identity-based  ",
        time_spent_ms=5300,
    )
    assert result.created
    stored = Annotation.objects.get(pk=result.annotation.pk)
    assert (stored.value, stored.confidence, stored.rationale, stored.time_spent_ms) == (
        OFFENSIVE,
        4,
        "rude, not identity-based",
        5300,
    )
    assert Assignment.objects.get(pk=assignment.pk).status == Assignment.Status.SUBMITTED
    assert slots(assignment.item_id) == 1
    (event,) = events("annotation.submit")
    assert event.payload["item"] == assignment.item_id
    assert event.actor_pseudonym == annotator.pseudonym


@pytest.mark.parametrize("value", ["spam", "", None, 2, ["hateful"], "Hateful"])
def test_annotation_submit_value_outside_schema_invalid_label(value: object) -> None:
    project = make_open_project()
    annotator = make_enrolled_annotator(project)
    assignment = assignment_next(project=project, annotator=annotator)
    assert assignment is not None
    with pytest.raises(ValidationFailed) as caught:
        annotation_submit(annotator=annotator, item=assignment.item, value=value)
    assert caught.value.code == "invalid_label"
    assert caught.value.status_code == 400
    assert not Annotation.objects.exists()
    assert Assignment.objects.get(pk=assignment.pk).status == Assignment.Status.OPEN


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        pytest.param({"confidence": 0}, "invalid_confidence", id="confidence-low"),
        pytest.param({"confidence": 6}, "invalid_confidence", id="confidence-high"),
        pytest.param({"confidence": True}, "invalid_confidence", id="confidence-bool"),
        pytest.param({"rationale": "x" * 5001}, "invalid_rationale", id="rationale-long"),
        pytest.param({"time_spent_ms": -1}, "invalid", id="time-negative"),
    ],
)
def test_annotation_submit_invalid_extras_rejected(extra: dict, code: str) -> None:
    project = make_open_project()
    annotator = make_enrolled_annotator(project)
    assignment = assignment_next(project=project, annotator=annotator)
    assert assignment is not None
    with pytest.raises(ValidationFailed) as caught:
        annotation_submit(annotator=annotator, item=assignment.item, value=NEITHER, **extra)
    assert caught.value.code == code
    assert not Annotation.objects.exists()


def test_annotation_submit_multi_label_stored_in_canonical_order() -> None:
    schema = {
        "kind": "multi_label",
        "choices": [{"value": v} for v in ("face", "document", "screen")],
        "max_selected": 3,
    }
    project = make_open_project(1, label_schema=schema)
    annotator = make_enrolled_annotator(project)
    assignment = assignment_next(project=project, annotator=annotator)
    assert assignment is not None
    item = assignment.item
    result = annotation_submit(annotator=annotator, item=item, value=["screen", "face"])
    assert Annotation.objects.get(pk=result.annotation.pk).value == ["face", "screen"]
    # The same answer in another order is a replay, not a conflict.
    replay = annotation_submit(annotator=annotator, item=item, value=["face", "screen"])
    assert not replay.created


def test_annotation_submit_not_enrolled_forbidden() -> None:
    project = make_open_project()
    item = Item.objects.filter(project=project).first()
    assert item is not None
    with pytest.raises(PermissionDenied) as caught:
        annotation_submit(annotator=make_user(Role.ANNOTATOR), item=item, value=NEITHER)
    assert caught.value.status_code == 403
    assert caught.value.code == "not_enrolled"
    assert not Annotation.objects.exists()


def test_annotation_submit_enrolled_in_other_project_forbidden() -> None:
    project, other = make_open_project(), make_open_project()
    annotator = make_enrolled_annotator(other)
    item = Item.objects.filter(project=project).first()
    assert item is not None
    with pytest.raises(PermissionDenied):
        annotation_submit(annotator=annotator, item=item, value=NEITHER)


def test_annotation_submit_without_assignment_not_assigned() -> None:
    project = make_open_project()
    annotator = make_enrolled_annotator(project)
    item = Item.objects.filter(project=project).first()
    assert item is not None
    with pytest.raises(Conflict) as caught:
        annotation_submit(annotator=annotator, item=item, value=NEITHER)
    assert caught.value.code == "not_assigned"
    assert caught.value.status_code == 409
    assert not Annotation.objects.exists()
    assert slots(item.pk) == 0


def test_annotation_submit_skipped_item_not_assigned() -> None:
    project = make_open_project()
    annotator = make_enrolled_annotator(project)
    assignment = assignment_next(project=project, annotator=annotator)
    assert assignment is not None
    assignment_skip(assignment=assignment, annotator=annotator)
    with pytest.raises(Conflict) as caught:
        annotation_submit(annotator=annotator, item=assignment.item, value=NEITHER)
    assert caught.value.code == "not_assigned"


def test_annotation_submit_identical_replay_idempotent() -> None:
    project = make_open_project()
    annotator = make_enrolled_annotator(project)
    assignment = assignment_next(project=project, annotator=annotator)
    assert assignment is not None
    first = annotation_submit(
        annotator=annotator, item=assignment.item, value=HATEFUL, confidence=3
    )
    again = annotation_submit(
        annotator=annotator, item=assignment.item, value=HATEFUL, confidence=3
    )
    assert first.created and not again.created
    assert again.annotation.pk == first.annotation.pk
    assert Annotation.objects.count() == 1
    assert len(events("annotation.submit")) == 1
    assert slots(assignment.item_id) == 1


@pytest.mark.parametrize(
    "change",
    [{"value": NEITHER}, {"value": HATEFUL, "confidence": 5}, {"value": HATEFUL, "rationale": "x"}],
)
def test_annotation_submit_different_replay_already_labeled(change: dict) -> None:
    project = make_open_project()
    annotator = make_enrolled_annotator(project)
    assignment = assignment_next(project=project, annotator=annotator)
    assert assignment is not None
    first = annotation_submit(annotator=annotator, item=assignment.item, value=HATEFUL)
    with pytest.raises(Conflict) as caught:
        annotation_submit(annotator=annotator, item=assignment.item, **change)
    assert caught.value.code == "already_labeled"
    assert caught.value.extra == {"annotation": first.annotation.pk}
    assert Annotation.objects.get().value == HATEFUL


def test_annotation_submit_closed_project_conflict() -> None:
    project = make_open_project()
    annotator = make_enrolled_annotator(project)
    assignment = assignment_next(project=project, annotator=annotator)
    assert assignment is not None
    project_transition(project=project, actor=project.owner, status=ProjectStatus.CLOSED)
    with pytest.raises(Conflict) as caught:
        annotation_submit(annotator=annotator, item=assignment.item, value=NEITHER)
    assert caught.value.code == "project_not_open"
    assert not Annotation.objects.exists()


# ---------------------------------------------------------------- editing


def test_annotation_update_records_previous_state() -> None:
    project = make_open_project()
    annotator = make_enrolled_annotator(project)
    annotation = label(project, annotator, HATEFUL)
    updated = annotation_update(
        annotation=annotation, annotator=annotator, value=OFFENSIVE, confidence=2, rationale="hm"
    )
    assert (updated.value, updated.confidence, updated.rationale) == (OFFENSIVE, 2, "hm")
    assert Annotation.objects.get(pk=annotation.pk).value == OFFENSIVE
    (edit,) = AnnotationEdit.objects.filter(annotation=annotation)
    assert (edit.previous_value, edit.previous_confidence, edit.previous_rationale) == (
        HATEFUL,
        None,
        "",
    )


def test_annotation_update_same_answer_records_no_edit() -> None:
    project = make_open_project()
    annotator = make_enrolled_annotator(project)
    annotation = label(project, annotator, HATEFUL)
    annotation_update(annotation=annotation, annotator=annotator, value=HATEFUL)
    assert not AnnotationEdit.objects.exists()


def test_annotation_update_invalid_value_rejected_and_unchanged() -> None:
    project = make_open_project()
    annotator = make_enrolled_annotator(project)
    annotation = label(project, annotator, HATEFUL)
    with pytest.raises(ValidationFailed) as caught:
        annotation_update(annotation=annotation, annotator=annotator, value="nonsense")
    assert caught.value.code == "invalid_label"
    assert Annotation.objects.get(pk=annotation.pk).value == HATEFUL


def test_annotation_update_after_close_conflict() -> None:
    project = make_open_project()
    annotator = make_enrolled_annotator(project)
    annotation = label(project, annotator, HATEFUL)
    project_transition(project=project, actor=project.owner, status=ProjectStatus.CLOSED)
    with pytest.raises(Conflict) as caught:
        annotation_update(annotation=annotation, annotator=annotator, value=NEITHER)
    assert caught.value.code == "project_closed"
    assert Annotation.objects.get(pk=annotation.pk).value == HATEFUL
    assert not AnnotationEdit.objects.exists()


@pytest.mark.parametrize("role", [Role.ANNOTATOR, Role.RESEARCHER, Role.AUDITOR])
def test_annotation_update_by_another_user_not_found(role: str) -> None:
    project = make_open_project()
    author = make_enrolled_annotator(project)
    annotation = label(project, author, HATEFUL)
    intruder = make_enrolled_annotator(project) if role == Role.ANNOTATOR else make_user(role)
    with pytest.raises(NotFound):
        annotation_update(annotation=annotation, annotator=intruder, value=NEITHER)
    assert Annotation.objects.get(pk=annotation.pk).value == HATEFUL


def test_annotation_update_after_withdrawal_conflict() -> None:
    project = make_open_project()
    annotator = make_enrolled_annotator(project)
    annotation = label(project, annotator, HATEFUL)
    enrolment_withdraw(
        enrolment=Enrolment.objects.get(project=project, annotator=annotator), actor=annotator
    )
    with pytest.raises(Conflict) as caught:
        annotation_update(annotation=annotation, annotator=annotator, value=NEITHER)
    assert caught.value.code == "withdrawn"


# ---------------------------------------------------------------- withdrawal


def withdraw_scenario() -> tuple[Project, User, list[Annotation], Assignment]:
    """An annotator with two labels and one open assignment, on a k=1 project."""
    project = make_open_project(4, k=1)
    annotator = make_enrolled_annotator(project)
    labels = [label(project, annotator, HATEFUL), label(project, annotator, OFFENSIVE)]
    open_assignment = assignment_next(project=project, annotator=annotator)
    assert open_assignment is not None
    return project, annotator, labels, open_assignment


def test_enrolment_withdraw_marks_labels_cancels_work_releases_slots_and_audits() -> None:
    project, annotator, labels, open_assignment = withdraw_scenario()
    enrolment = Enrolment.objects.get(project=project, annotator=annotator)
    before = timezone.now()
    enrolment_withdraw(enrolment=enrolment, actor=annotator)

    enrolment.refresh_from_db()
    assert enrolment.withdrawn_at is not None and enrolment.withdrawn_at >= before
    for annotation in labels:
        annotation.refresh_from_db()
        # Kept, but marked.
        assert annotation.withdrawn
        assert annotation.withdrawn_at == enrolment.withdrawn_at
    assert Assignment.objects.get(pk=open_assignment.pk).status == Assignment.Status.CANCELLED
    assert (
        list(Item.objects.filter(project=project).values_list("slots_taken", flat=True)) == [0] * 4
    )
    consent = ConsentRecord.objects.get(pk=enrolment.consent_id)
    assert consent.withdrawn_at is not None
    (event,) = events("enrolment.withdraw")
    assert event.actor_id == annotator.pk
    assert event.payload == {
        "project": project.pk,
        "pseudonym": annotator.pseudonym,
        "labels_withdrawn": 2,
    }
    assert audit_chain_verify().ok


def test_enrolment_withdraw_twice_is_one_withdrawal() -> None:
    project, annotator, _labels, _open = withdraw_scenario()
    enrolment = Enrolment.objects.get(project=project, annotator=annotator)
    first = enrolment_withdraw(enrolment=enrolment, actor=annotator)
    second = enrolment_withdraw(enrolment=enrolment, actor=annotator)
    assert first.withdrawn_at == second.withdrawn_at
    assert len(events("enrolment.withdraw")) == 1
    # Slots are released once, never below zero.
    assert set(Item.objects.filter(project=project).values_list("slots_taken", flat=True)) == {0}


def test_enrolment_withdraw_released_slots_go_to_other_annotators() -> None:
    project, annotator, labels, _open = withdraw_scenario()
    enrolment_withdraw(
        enrolment=Enrolment.objects.get(project=project, annotator=annotator), actor=annotator
    )
    newcomer = make_enrolled_annotator(project)
    relabeled = label_all(project, newcomer)
    assert {a.item_id for a in labels} <= set(relabeled)
    assert len(relabeled) == 4


def test_enrolment_withdraw_then_assignment_and_submit_refused() -> None:
    project, annotator, _labels, open_assignment = withdraw_scenario()
    enrolment_withdraw(
        enrolment=Enrolment.objects.get(project=project, annotator=annotator), actor=annotator
    )
    with pytest.raises(PermissionDenied) as caught:
        assignment_next(project=project, annotator=annotator)
    assert caught.value.code == "withdrawn"
    with pytest.raises(PermissionDenied):
        annotation_submit(annotator=annotator, item=open_assignment.item, value=NEITHER)
    assert not Annotation.objects.filter(item=open_assignment.item).exists()


def test_enrolment_withdraw_labels_excluded_from_selectors() -> None:
    project = make_open_project(3, k=2)
    stays, leaves = make_enrolled_annotator(project), make_enrolled_annotator(project)
    kept = label_all(project, stays, HATEFUL)
    gone = label_all(project, leaves, NEITHER)
    assert len(kept) == len(gone) == 3
    auditor = make_user(Role.AUDITOR)
    assert annotations_for_analysis(project=project).count() == 6
    assert project_progress(project=project).items_complete == 3

    enrolment_withdraw(
        enrolment=Enrolment.objects.get(project=project, annotator=leaves), actor=leaves
    )

    analysed = list(annotations_for_analysis(project=project))
    assert len(analysed) == 3
    assert {a.annotator_id for a in analysed} == {stays.pk}
    for reader in (project.owner, auditor):
        listed = list(annotation_list_for(user=reader, project=project))
        assert {a.annotator_id for a in listed} == {stays.pk}
        assert len(listed) == 3
    progress = project_progress(project=project)
    assert progress.labels == 3
    assert progress.labels_withdrawn == 3
    assert progress.items_complete == 0
    assert progress.labels_per_item == {1: 3}
    assert progress.annotators_active == 1
    assert progress.annotators_withdrawn == 1
    # The withdrawn annotator still sees their own labels, marked as withdrawn.
    own = list(annotation_list_for(user=leaves, project=project))
    assert len(own) == 3 and all(a.withdrawn for a in own)
