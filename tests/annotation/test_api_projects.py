"""API: projects (list, create, detail, update, transition, progress, consent)."""

from typing import Any

import pytest

from annotation.models import Project, ProjectStatus
from annotation.services import annotation_submit, assignment_next, project_consent_text
from core.models import Role
from provenance.models import AuditEvent
from provenance.services import consent_text_version
from tests.annotation.factories import make_enrolled_annotator, make_open_project, make_project
from tests.core.factories import make_user

pytestmark = pytest.mark.django_db

PROJECTS_URL = "/api/v1/projects/"


def new_project_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "preset": "privacy_alert",
        "title": "Photo privacy",
        "risk_disclosure": "Some photos show people in private settings.",
        "data_use_statement": "Labels are published as a research dataset.",
        "compensation_amount": "0.12",
    }
    body.update(overrides)
    return body


def test_project_create_researcher_with_preset_returns_201_draft(client_for) -> None:
    researcher = make_user(Role.RESEARCHER)

    response = client_for(researcher).post(PROJECTS_URL, new_project_body(), format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "draft"
    assert body["modality"] == "image"
    assert [c["value"] for c in body["label_schema"]["choices"]] == [
        "clearly_private",
        "private",
        "public",
        "clearly_public",
    ]
    assert body["owner_pseudonym"] == researcher.pseudonym
    assert Project.objects.get(pk=body["id"]).owner == researcher


def test_project_create_annotator_returns_403_and_nothing_created(client_for) -> None:
    annotator = make_user(Role.ANNOTATOR)

    response = client_for(annotator).post(PROJECTS_URL, new_project_body(), format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "researcher_only"
    assert not Project.objects.exists()


def test_project_create_unknown_preset_returns_400(client_for) -> None:
    response = client_for(make_user(Role.RESEARCHER)).post(
        PROJECTS_URL, new_project_body(preset="astrology"), format="json"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "preset" in response.json()["extra"]["fields"]


def test_project_create_without_preset_or_schema_returns_400_with_field_errors(client_for) -> None:
    body = new_project_body()
    del body["preset"]

    response = client_for(make_user(Role.RESEARCHER)).post(PROJECTS_URL, body, format="json")

    assert response.status_code == 400
    assert "label_schema" in response.json()["extra"]["fields"]
    assert not Project.objects.exists()


def test_project_create_null_character_in_schema_returns_400(client_for) -> None:
    schema = {"kind": "nominal", "choices": [{"value": "a\u0000"}, {"value": "b"}]}
    body = new_project_body(label_schema=schema, modality="text")

    response = client_for(make_user(Role.RESEARCHER)).post(PROJECTS_URL, body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "nul_character"
    assert response.json()["extra"] == {"field": "label_schema.choices[0].value"}
    assert not Project.objects.exists()


def test_project_list_researcher_sees_only_own_projects(
    django_assert_max_num_queries: Any,
    client_for,
) -> None:
    mine = [make_project() for _ in range(3)]
    owner = mine[0].owner
    for project in mine[1:]:
        Project.objects.filter(pk=project.pk).update(owner=owner)
    make_project()  # someone else's

    with django_assert_max_num_queries(3):
        response = client_for(owner).get(PROJECTS_URL)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    assert {p["id"] for p in body["results"]} == {p.pk for p in mine}


def test_project_list_annotator_sees_open_projects_not_drafts(client_for) -> None:
    open_project = make_open_project(2)
    make_project()  # draft

    response = client_for(make_user(Role.ANNOTATOR)).get(PROJECTS_URL)

    assert [p["id"] for p in response.json()["results"]] == [open_project.pk]


def test_project_list_page_size_paginates_with_links(client_for) -> None:
    owner = make_user(Role.RESEARCHER)
    for _ in range(5):
        make_project(owner)

    first = client_for(owner).get(PROJECTS_URL, {"page_size": 2})
    last = client_for(owner).get(PROJECTS_URL, {"page_size": 2, "page": 3})
    beyond = client_for(owner).get(PROJECTS_URL, {"page_size": 2, "page": 4})

    assert first.json()["count"] == 5
    assert len(first.json()["results"]) == 2
    assert "page=2" in first.json()["next"]
    assert first.json()["previous"] is None
    assert len(last.json()["results"]) == 1
    assert last.json()["next"] is None
    assert beyond.status_code == 404
    assert beyond.json()["code"] == "not_found"


def test_project_payload_carries_no_user_ids_or_usernames(client_for) -> None:
    project = make_project()
    owner = project.owner

    body = client_for(owner).get(f"{PROJECTS_URL}{project.pk}/").content.decode()

    assert owner.username not in body
    assert owner.email not in body
    assert '"owner"' not in body
    assert owner.pseudonym in body


def test_project_update_owner_changes_title_and_audits(client_for) -> None:
    project = make_project()
    events = AuditEvent.objects.count()

    response = client_for(project.owner).patch(
        f"{PROJECTS_URL}{project.pk}/", {"title": "Renamed"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["title"] == "Renamed"
    project.refresh_from_db()
    assert project.title == "Renamed"
    assert AuditEvent.objects.count() == events + 1


def test_project_update_other_researcher_returns_404_and_project_unchanged(client_for) -> None:
    project = make_project(title="Original")

    response = client_for(make_user(Role.RESEARCHER)).patch(
        f"{PROJECTS_URL}{project.pk}/", {"title": "Hijacked"}, format="json"
    )

    assert response.status_code == 404
    project.refresh_from_db()
    assert project.title == "Original"


def test_project_update_schema_after_open_returns_409(client_for) -> None:
    project = make_open_project(1)

    response = client_for(project.owner).patch(
        f"{PROJECTS_URL}{project.pk}/", {"annotations_per_item": 7}, format="json"
    )

    assert response.status_code == 409
    assert response.json()["code"] == "project_frozen_field"


def test_project_transition_owner_opens_then_invalid_move_returns_409(client_for) -> None:
    project = make_open_project(1)
    url = f"{PROJECTS_URL}{project.pk}/transition/"
    client = client_for(project.owner)

    closed = client.post(url, {"status": "closed"}, format="json")
    reopened = client.post(url, {"status": "open"}, format="json")

    assert closed.status_code == 200
    assert closed.json()["status"] == "closed"
    assert reopened.status_code == 409
    assert reopened.json()["code"] == "invalid_transition"
    project.refresh_from_db()
    assert project.status == ProjectStatus.CLOSED


def test_project_transition_unknown_status_returns_400(client_for) -> None:
    project = make_project()

    response = client_for(project.owner).post(
        f"{PROJECTS_URL}{project.pk}/transition/", {"status": "archived"}, format="json"
    )

    assert response.status_code == 400
    assert "status" in response.json()["extra"]["fields"]


def test_project_progress_owner_sees_counts(client_for) -> None:
    project = make_open_project(2, k=1)
    annotator = make_enrolled_annotator(project)
    assignment = assignment_next(project=project, annotator=annotator)
    assert assignment is not None
    annotation_submit(annotator=annotator, item=assignment.item, value="hateful")

    response = client_for(project.owner).get(f"{PROJECTS_URL}{project.pk}/progress/")

    assert response.status_code == 200
    body = response.json()
    assert body["items"] == 2
    assert body["items_complete"] == 1
    assert body["labels"] == 1
    assert body["annotators_active"] == 1
    assert body["labels_per_item"] == {"0": 1, "1": 1}


def test_project_progress_annotator_returns_404(client_for) -> None:
    project = make_open_project(2)
    annotator = make_enrolled_annotator(project)

    response = client_for(annotator).get(f"{PROJECTS_URL}{project.pk}/progress/")

    assert response.status_code == 404


def test_project_consent_returns_exact_text_and_version(client_for) -> None:
    project = make_open_project(1)

    response = client_for(make_user(Role.ANNOTATOR)).get(f"{PROJECTS_URL}{project.pk}/consent/")

    assert response.status_code == 200
    text = project_consent_text(project)
    assert response.json()["text"] == text
    assert response.json()["version"] == consent_text_version(text)


def test_project_consent_draft_project_hidden_from_annotators(client_for) -> None:
    project = make_project()

    response = client_for(make_user(Role.ANNOTATOR)).get(f"{PROJECTS_URL}{project.pk}/consent/")

    assert response.status_code == 404
