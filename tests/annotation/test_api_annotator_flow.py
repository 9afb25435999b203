"""API: the annotator's path: consent, survey, next item, submit, skip, edit, withdraw."""

from datetime import timedelta
from typing import Any

import pytest
from django.db.models.functions import Now
from django.utils.dateparse import parse_datetime
from rest_framework.test import APIClient

from annotation.models import Annotation, AnnotationEdit, Assignment, Enrolment, Project
from annotation.services import annotation_submit, assignment_next, project_update
from annotation.surveys import DEFAULT_SURVEY
from core.models import Role
from tests.annotation.factories import make_enrolled_annotator, make_open_project
from tests.core.factories import make_user

pytestmark = pytest.mark.django_db


def project_url(project: Project, suffix: str = "") -> str:
    return f"/api/v1/projects/{project.pk}/{suffix}"


def next_item(client: APIClient, project: Project) -> dict[str, Any]:
    response = client.post(project_url(project, "next/"))
    assert response.status_code == 200, response.content
    return dict(response.json())


def test_enrolment_create_with_consent_returns_201_then_200_recorded_as_api(client_for) -> None:
    project = make_open_project(2)
    annotator = make_user(Role.ANNOTATOR)
    client = client_for(annotator)

    first = client.post(project_url(project, "enrolment/"), {"consent": True}, format="json")
    again = client.post(project_url(project, "enrolment/"), {"consent": True}, format="json")

    assert first.status_code == 201, first.json()
    assert again.status_code == 200
    assert first.json()["consent_method"] == "api"
    assert first.json()["is_active"] is True
    assert first.json()["progress"] == {"labeled": 0, "skipped": 0, "remaining": 2}
    assert Enrolment.objects.filter(project=project, annotator=annotator).count() == 1


def test_enrolment_create_without_consent_returns_400_nothing_recorded(client_for) -> None:
    project = make_open_project(1)
    annotator = make_user(Role.ANNOTATOR)

    response = client_for(annotator).post(
        project_url(project, "enrolment/"), {"consent": False}, format="json"
    )

    assert response.status_code == 400
    assert "consent" in response.json()["extra"]["fields"]
    assert not Enrolment.objects.exists()


def test_enrolment_get_not_enrolled_returns_404_not_enrolled(client_for) -> None:
    project = make_open_project(1)

    response = client_for(make_user(Role.ANNOTATOR)).get(project_url(project, "enrolment/"))

    assert response.status_code == 404
    assert response.json()["code"] == "not_enrolled"


def test_enrolment_survey_put_valid_answers_stored_invalid_returns_400(client_for) -> None:
    project = make_open_project(1)
    project_update(project=project, actor=project.owner, data={"survey": DEFAULT_SURVEY})
    annotator = make_enrolled_annotator(project)
    client = client_for(annotator)
    url = project_url(project, "enrolment/survey/")

    valid = client.put(
        url, {"answers": {"age_group": "25-34", "gender": "prefer_not_to_say"}}, format="json"
    )
    invalid = client.put(url, {"answers": {"age_group": "120"}}, format="json")

    assert valid.status_code == 200, valid.json()
    assert valid.json()["survey_answers"] == {"age_group": "25-34", "gender": "prefer_not_to_say"}
    assert invalid.status_code == 400
    assert invalid.json()["code"] == "invalid_survey"


def test_assignment_next_returns_assignment_with_item_content_only(client_for) -> None:
    project = make_open_project(2)
    client = client_for(make_enrolled_annotator(project))

    body = next_item(client, project)

    assert set(body) == {"id", "expires_at", "item"}
    assert set(body["item"]) == {"id", "kind", "text", "image_url"}
    assert body["item"]["kind"] == "text"
    assert body["item"]["image_url"] is None


def test_assignment_next_nothing_left_returns_204(client_for) -> None:
    project = make_open_project(1, k=1)
    annotator = make_enrolled_annotator(project)
    client = client_for(annotator)
    item = next_item(client, project)["item"]
    client.post("/api/v1/annotations/", {"item": item["id"], "value": "neither"}, format="json")

    response = client.post(project_url(project, "next/"))

    assert response.status_code == 204
    assert response.content == b""


def test_assignment_next_items_held_by_others_returns_409_items_held_with_retry_after(
    client_for, host_clock
) -> None:
    project = make_open_project(1, k=1)
    holder = make_enrolled_annotator(project)
    held = assignment_next(project=project, annotator=holder)
    assert held is not None
    Assignment.objects.filter(pk=held.pk).update(expires_at=Now() + timedelta(minutes=10))
    held.refresh_from_db()
    late = make_enrolled_annotator(project)
    host_clock(timedelta(seconds=40))  # the answer is the database's time, not this host's

    response = client_for(late).post(project_url(project, "next/"))

    assert response.status_code == 409, response.content
    body = response.json()
    assert body["code"] == "items_held"
    assert body["message"] == (
        "All items are being labeled by others right now. Come back in about 10 minutes."
    )
    assert set(body["extra"]) == {"retry_at", "retry_after_seconds"}
    assert parse_datetime(body["extra"]["retry_at"]) == held.expires_at
    assert 590 <= body["extra"]["retry_after_seconds"] <= 600
    assert response["Retry-After"] == str(body["extra"]["retry_after_seconds"])
    assert not Assignment.objects.filter(annotator=late).exists()


def test_assignment_next_held_item_runs_out_then_given_and_once_done_204(client_for) -> None:
    project = make_open_project(1, k=1)
    held = assignment_next(project=project, annotator=make_enrolled_annotator(project))
    assert held is not None
    late = make_enrolled_annotator(project)
    client = client_for(late)
    assert client.post(project_url(project, "next/")).status_code == 409
    Assignment.objects.filter(pk=held.pk).update(expires_at=Now() - timedelta(seconds=1))

    item = next_item(client, project)["item"]
    labeled = client.post(
        "/api/v1/annotations/", {"item": item["id"], "value": "neither"}, format="json"
    )
    done = client.post(project_url(project, "next/"))

    assert item["id"] == held.item_id
    assert labeled.status_code == 201, labeled.content
    assert done.status_code == 204
    assert "Retry-After" not in done


def test_assignment_next_schema_documents_items_held_and_retry_after(client_for) -> None:
    schema = client_for(None).get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/v1/projects/{project_id}/next/"]["post"]

    conflict = operation["responses"]["409"]
    assert "items_held" in conflict["description"]
    assert "retry_after_seconds" in conflict["description"]
    assert "Retry-After" in conflict["headers"]
    assert "204" in operation["responses"]


def test_assignment_next_not_enrolled_returns_403_not_enrolled(client_for) -> None:
    project = make_open_project(1)

    response = client_for(make_user(Role.ANNOTATOR)).post(project_url(project, "next/"))

    assert response.status_code == 403
    assert response.json()["code"] == "not_enrolled"
    assert not Assignment.objects.exists()


def test_annotation_submit_replay_returns_200_different_value_returns_409(client_for) -> None:
    project = make_open_project(1)
    annotator = make_enrolled_annotator(project)
    client = client_for(annotator)
    item_id = next_item(client, project)["item"]["id"]
    body = {"item": item_id, "value": "offensive", "confidence": 4, "rationale": "rude"}

    created = client.post("/api/v1/annotations/", body, format="json")
    replay = client.post("/api/v1/annotations/", body, format="json")
    changed = client.post("/api/v1/annotations/", {**body, "value": "neither"}, format="json")

    assert created.status_code == 201
    assert replay.status_code == 200
    assert replay.json()["id"] == created.json()["id"]
    assert changed.status_code == 409
    assert changed.json()["code"] == "already_labeled"
    stored = Annotation.objects.get(item_id=item_id, annotator=annotator)
    assert stored.value == "offensive"


def test_annotation_submit_invalid_label_returns_400_invalid_label(client_for) -> None:
    project = make_open_project(1)
    client = client_for(make_enrolled_annotator(project))
    item_id = next_item(client, project)["item"]["id"]

    response = client.post(
        "/api/v1/annotations/", {"item": item_id, "value": "maybe"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_label"
    assert not Annotation.objects.exists()


def test_annotation_submit_unassigned_item_returns_404(client_for) -> None:
    project = make_open_project(2)
    annotator = make_enrolled_annotator(project)
    item = project.items.first()
    assert item is not None

    response = client_for(annotator).post(
        "/api/v1/annotations/", {"item": item.pk, "value": "neither"}, format="json"
    )

    assert response.status_code == 404
    assert not Annotation.objects.exists()


def test_assignment_skip_own_returns_skipped_others_return_404(client_for) -> None:
    project = make_open_project(2)
    owner_of_assignment = make_enrolled_annotator(project)
    assignment_id = next_item(client_for(owner_of_assignment), project)["id"]
    other = make_enrolled_annotator(project)

    stolen = client_for(other).post(f"/api/v1/assignments/{assignment_id}/skip/")
    skipped = client_for(owner_of_assignment).post(f"/api/v1/assignments/{assignment_id}/skip/")

    assert stolen.status_code == 404
    assert skipped.status_code == 200
    assert skipped.json()["status"] == "skipped"


def test_assignment_list_returns_only_own_assignments(client_for) -> None:
    project = make_open_project(3)
    mine = make_enrolled_annotator(project)
    theirs = make_enrolled_annotator(project)
    my_assignment = next_item(client_for(mine), project)["id"]
    next_item(client_for(theirs), project)

    response = client_for(mine).get(project_url(project, "assignments/"))

    assert [a["id"] for a in response.json()["results"]] == [my_assignment]


def test_annotation_list_annotator_sees_own_researcher_sees_pseudonyms(client_for) -> None:
    project = make_open_project(1, k=2)
    first, second = make_enrolled_annotator(project), make_enrolled_annotator(project)
    for annotator, value in ((first, "hateful"), (second, "neither")):
        assignment = assignment_next(project=project, annotator=annotator)
        assert assignment is not None
        annotation_submit(annotator=annotator, item=assignment.item, value=value)
    url = project_url(project, "annotations/")

    own = client_for(first).get(url)
    everyone = client_for(project.owner).get(url)

    assert [a["value"] for a in own.json()["results"]] == ["hateful"]
    assert second.pseudonym not in own.content.decode()
    results = everyone.json()["results"]
    assert {a["annotator_pseudonym"] for a in results} == {first.pseudonym, second.pseudonym}
    for annotator in (first, second):
        assert annotator.username not in everyone.content.decode()
        assert annotator.email not in everyone.content.decode()
    assert all("annotator" not in a for a in results)


def test_annotation_update_author_edits_and_history_kept(client_for) -> None:
    project = make_open_project(1)
    annotator = make_enrolled_annotator(project)
    client = client_for(annotator)
    item_id = next_item(client, project)["item"]["id"]
    created = client.post(
        "/api/v1/annotations/",
        {"item": item_id, "value": "hateful", "confidence": 2},
        format="json",
    ).json()

    response = client.patch(
        f"/api/v1/annotations/{created['id']}/", {"value": "offensive"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["value"] == "offensive"
    assert response.json()["confidence"] == 2
    assert AnnotationEdit.objects.get().previous_value == "hateful"


def test_annotation_detail_other_annotator_and_researcher_get_404_unchanged(client_for) -> None:
    project = make_open_project(1, k=2)
    author = make_enrolled_annotator(project)
    assignment = assignment_next(project=project, annotator=author)
    assert assignment is not None
    annotation = annotation_submit(
        annotator=author, item=assignment.item, value="hateful"
    ).annotation
    url = f"/api/v1/annotations/{annotation.pk}/"
    other = client_for(make_enrolled_annotator(project))

    read = other.get(url)
    edit = other.patch(url, {"value": "neither"}, format="json")
    owner_read = client_for(project.owner).get(url)

    assert (read.status_code, edit.status_code, owner_read.status_code) == (404, 404, 404)
    annotation.refresh_from_db()
    assert annotation.value == "hateful"


def test_enrolment_withdraw_excludes_labels_and_blocks_next(client_for) -> None:
    project = make_open_project(2)
    annotator = make_enrolled_annotator(project)
    client = client_for(annotator)
    item_id = next_item(client, project)["item"]["id"]
    client.post("/api/v1/annotations/", {"item": item_id, "value": "hateful"}, format="json")

    withdrawn = client.post(project_url(project, "enrolment/withdraw/"))
    after = client.post(project_url(project, "next/"))
    researcher_view = client_for(project.owner).get(project_url(project, "annotations/"))

    assert withdrawn.status_code == 200
    assert withdrawn.json()["is_active"] is False
    assert withdrawn.json()["withdrawn_at"] is not None
    assert after.status_code == 403
    assert after.json()["code"] == "withdrawn"
    assert researcher_view.json()["count"] == 0


def test_annotation_and_assignment_lists_query_count_does_not_grow_with_rows(
    django_assert_max_num_queries: Any,
    client_for,
) -> None:
    project = make_open_project(6, k=3)
    annotators = [make_enrolled_annotator(project) for _ in range(3)]
    for annotator in annotators:
        for _ in range(2):
            assignment = assignment_next(project=project, annotator=annotator)
            assert assignment is not None
            annotation_submit(annotator=annotator, item=assignment.item, value="neither")
    researcher_client, annotator_client = client_for(project.owner), client_for(annotators[0])

    with django_assert_max_num_queries(4):
        labels = researcher_client.get(project_url(project, "annotations/"))
    with django_assert_max_num_queries(4):
        own = annotator_client.get(project_url(project, "assignments/"))

    assert labels.json()["count"] == 6
    assert own.json()["count"] == 2
