"""Consent that means something: a change of the terms annotators agreed to asks each of
them to consent again, shows them what changed, and keeps every label linked to the
consent it was given under (``annotation.consent`` and the services that ask it)."""

import json
from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from annotation.consent import consent_changes, project_consent_text, project_consent_version
from annotation.forms import ProjectForm
from annotation.models import Annotation, CompensationUnit, Enrolment, Project
from annotation.services import (
    annotation_submit,
    annotation_update,
    assignment_next,
    enrolment_create,
    project_update,
)
from core.errors import Conflict
from core.models import User
from provenance.models import AuditEvent, ConsentRecord
from tests.annotation.factories import make_enrolled_annotator, make_open_project

pytestmark = pytest.mark.django_db

PAY_CUT = {"compensation_amount": Decimal("6.00"), "compensation_unit": CompensationUnit.PER_HOUR}


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


def _project_with_label() -> tuple[Project, User, Annotation]:
    project = make_open_project(6, k=2, compensation_amount="12.00", compensation_unit="per_hour")
    annotator = make_enrolled_annotator(project)
    assignment = assignment_next(project=project, annotator=annotator)
    assert assignment is not None
    annotation = annotation_submit(
        annotator=annotator, item=assignment.item, value="hateful"
    ).annotation
    return project, annotator, annotation


def _cut_pay_and_add_risk(project: Project) -> Project:
    return project_update(
        project=project,
        actor=project.owner,
        data={**PAY_CUT, "risk_disclosure": project.risk_disclosure + " You may see violence."},
        confirm_reconsent=True,
    )


def test_project_update_material_change_unconfirmed_refused_with_count_nothing_saved() -> None:
    project, _, _ = _project_with_label()
    make_enrolled_annotator(project)
    before = Project.objects.get(pk=project.pk)
    updates = len(_events("project.update"))

    with pytest.raises(Conflict) as caught:
        project_update(project=project, actor=project.owner, data=PAY_CUT)

    assert caught.value.code == "reconsent_unconfirmed"
    assert caught.value.extra["annotators_to_reconsent"] == 2
    assert caught.value.extra["material_fields"] == ["compensation_amount"]
    stored = Project.objects.get(pk=project.pk)
    assert (stored.compensation_amount, stored.compensation_unit) == (
        before.compensation_amount,
        before.compensation_unit,
    )
    assert len(_events("project.update")) == updates


def test_project_update_title_change_needs_no_reconsent() -> None:
    project, annotator, _ = _project_with_label()

    project_update(project=project, actor=project.owner, data={"title": "A clearer title"})

    assert assignment_next(project=project, annotator=annotator) is not None


def test_project_update_pay_cut_blocks_next_item_and_submit_until_reconsent() -> None:
    project, annotator, _ = _project_with_label()
    held = assignment_next(project=project, annotator=annotator)
    assert held is not None

    _cut_pay_and_add_risk(project)

    with pytest.raises(Conflict) as on_next:
        assignment_next(project=project, annotator=annotator)
    with pytest.raises(Conflict) as on_submit:
        annotation_submit(annotator=annotator, item=held.item, value="hateful")
    assert on_next.value.code == on_submit.value.code == "reconsent_required"


def test_enrolment_reconsent_new_record_old_kept_labels_stay_linked_to_their_version() -> None:
    project, annotator, first_label = _project_with_label()
    first_consent = first_label.consent
    assert first_consent is not None

    _cut_pay_and_add_risk(project)
    enrolment = enrolment_create(project=project, annotator=annotator, method="web-form")
    assignment = assignment_next(project=project, annotator=annotator)
    assert assignment is not None
    second_label = annotation_submit(
        annotator=annotator, item=assignment.item, value="neither"
    ).annotation

    assert enrolment.consent_id != first_consent.pk
    assert enrolment.consent.text_version == project_consent_version(project)
    assert "6.00 EUR per hour" in enrolment.consent.text
    assert ConsentRecord.objects.filter(subject=annotator).count() == 2
    assert Annotation.objects.get(pk=first_label.pk).consent_id == first_consent.pk
    assert second_label.consent_id == enrolment.consent_id
    (event,) = _events("enrolment.reconsent")
    assert event.payload["previous_consent_version"] == first_consent.text_version
    assert event.payload["consent_version"] == enrolment.consent.text_version


def test_enrolment_create_stale_version_refused_nothing_recorded() -> None:
    project, annotator, _ = _project_with_label()
    read_version = project_consent_version(project)
    _cut_pay_and_add_risk(project)

    with pytest.raises(Conflict) as caught:
        enrolment_create(project=project, annotator=annotator, consent_version=read_version)

    assert caught.value.code == "consent_version_stale"
    assert ConsentRecord.objects.filter(subject=annotator).count() == 1


def test_project_update_audit_records_old_and_new_of_changed_fields_only() -> None:
    project, _, _ = _project_with_label()
    # A browser sends the untouched instructions back with CRLF line endings.
    resent = project.instructions.replace("\n", "\r\n")

    _cut_pay_and_add_risk(project)
    project_update(
        project=project, actor=project.owner, data={"instructions": resent, "title": "T2"}
    )

    cut, retitled = _events("project.update")[-2:]
    # The unit was sent unchanged (per hour): not logged.
    assert set(cut.payload["fields"]) == {"compensation_amount", "risk_disclosure"}
    assert cut.payload["fields"]["compensation_amount"] == {"old": "12.00", "new": "6.00"}
    assert cut.payload["annotators_to_reconsent"] == 1
    assert set(retitled.payload["fields"]) == {"title"}


def test_annotation_update_audited_with_old_and_new_value() -> None:
    project, annotator, annotation = _project_with_label()

    annotation_update(
        annotation=annotation,
        annotator=annotator,
        value="offensive",
        confidence=4,
        rationale="SECRET-RATIONALE",
    )

    (event,) = _events("annotation.edit")
    assert event.object_id == str(annotation.pk)
    assert event.payload["value"] == {"old": "hateful", "new": "offensive"}
    assert event.payload["confidence"] == {"old": None, "new": 4}
    assert event.payload["rationale_changed"] is True
    assert "SECRET-RATIONALE" not in json.dumps(event.payload)


def test_consent_changes_lists_removed_and_added_lines() -> None:
    changes = consent_changes("Pay: 12 EUR\nSame", "Pay: 6 EUR\nSame")

    assert [(c.kind, c.text) for c in changes] == [
        ("removed", "Pay: 12 EUR"),
        ("added", "Pay: 6 EUR"),
        ("same", "Same"),
    ]
    assert consent_changes("same", "same") == []


# ---------------------------------------------------------------- pages and API


def test_page_label_after_terms_change_shows_diff_then_reconsent_continues(signed_in) -> None:
    project, annotator, _ = _project_with_label()
    old_text = project_consent_text(project)
    _cut_pay_and_add_risk(project)
    client = signed_in(annotator)

    label_page = client.get(reverse("annotate-label", args=[project.pk]))
    assert label_page.status_code == 302
    assert label_page["Location"] == reverse("annotate-consent", args=[project.pk])
    consent_page = client.get(label_page["Location"])
    html = consent_page.content.decode()
    assert "The terms changed" in html
    assert "12.00 EUR per hour" in html and "6.00 EUR per hour" in html
    assert "You may see violence." in html
    assert old_text != project_consent_text(project)

    version = project_consent_version(project)
    answer = client.post(
        reverse("annotate-consent", args=[project.pk]),
        {"consent": "on", "consent_version": version},
    )

    assert answer.status_code == 302
    claimed = client.post(reverse("annotate-next", args=[project.pk]), follow=True)
    assert 'id="label-form"' in claimed.content.decode()
    assert Enrolment.objects.get(project=project, annotator=annotator).consent.text_version == (
        version
    )


def test_page_annotator_home_says_terms_changed(signed_in) -> None:
    project, annotator, _ = _project_with_label()
    _cut_pay_and_add_risk(project)

    html = signed_in(annotator).get(reverse("annotator-home")).content.decode()

    assert "terms of this project changed" in html


def _edit_form_data(project: Project, **changes: Any) -> dict[str, Any]:
    initial = ProjectForm(project=project).initial
    data = {
        name: json.dumps(value) if isinstance(value, dict | list) else value
        for name, value in initial.items()
        if value is not None
    }
    return data | changes


def test_page_project_edit_material_change_asks_confirmation_with_count(signed_in) -> None:
    project, _, _ = _project_with_label()
    client = signed_in(project.owner)
    url = reverse("research-project-edit", args=[project.pk])

    asked = client.post(url, _edit_form_data(project, compensation_amount="6.00"))
    saved = client.post(
        url, _edit_form_data(project, compensation_amount="6.00", confirm_reconsent="yes")
    )

    assert asked.status_code == 409
    assert "1 enrolled annotator will see what changed" in asked.content.decode()
    assert saved.status_code == 302
    assert Project.objects.get(pk=project.pk).compensation_amount == Decimal("6.00")


def test_api_reconsent_flow_patch_409_then_enrolment_shows_changes_and_reconsents() -> None:
    project, annotator, _ = _project_with_label()
    owner = APIClient()
    owner.force_authenticate(project.owner)
    worker = APIClient()
    worker.force_authenticate(annotator)
    url = f"/api/v1/projects/{project.pk}/"

    refused = owner.patch(url, {"compensation_amount": "6.00"}, format="json")
    confirmed = owner.patch(
        url, {"compensation_amount": "6.00", "confirm_reconsent": True}, format="json"
    )
    enrolment = worker.get(f"{url}enrolment/").json()
    blocked = worker.post(f"{url}next/")
    consent = worker.get(f"{url}consent/").json()
    again = worker.post(
        f"{url}enrolment/", {"consent": True, "consent_version": consent["version"]}, format="json"
    )

    assert refused.status_code == 409
    assert refused.json()["code"] == "reconsent_unconfirmed"
    assert refused.json()["extra"]["annotators_to_reconsent"] == 1
    assert confirmed.status_code == 200
    assert enrolment["reconsent_required"] is True
    assert blocked.status_code == 409 and blocked.json()["code"] == "reconsent_required"
    kinds = {(change["kind"], change["text"]) for change in consent["changes_since_your_consent"]}
    assert ("added", "Pay: 6.00 EUR per hour.") in kinds
    assert again.status_code == 200
    assert again.json()["reconsent_required"] is False
    assert worker.post(f"{url}next/").status_code == 200
