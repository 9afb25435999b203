"""API permission matrix: every role against every endpoint it must not use.

Rows 11, 13, 14 and 15 of the security checklist. Anonymous callers are refused
everywhere (401/403); an object outside the caller's scope answers 404 (its existence is
not confirmed); an auditor's write is 403. For every refused request the database is
compared before and after: nothing may change, not even the audit log.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from annotation.models import (
    Annotation,
    AnnotationEdit,
    Assignment,
    Enrolment,
    ImportBatch,
    Item,
    Project,
)
from annotation.services import annotation_submit, assignment_next
from core.models import Role, User
from provenance.models import AuditEvent, ConsentRecord
from tests.factories import make_enrolled_annotator, make_open_project, make_project, make_user

pytestmark = pytest.mark.django_db

ROLES = (
    "anonymous",
    "annotator_not_enrolled",
    "annotator_enrolled",
    "other_researcher",
    "owner",
    "auditor",
    "staff",
)


@dataclass
class World:
    """One open project with an enrolled annotator who has labeled one item and holds
    another assignment; a draft project of the same owner; a second researcher's project."""

    users: dict[str, User]
    project: Project
    draft: Project
    foreign: Project
    item: Item
    assignment: Assignment
    annotation: Annotation


@pytest.fixture(autouse=True)
def _media_root(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def world() -> World:
    project = make_open_project(4, k=2, survey=[])
    owner = project.owner
    draft = make_project(owner)
    foreign = make_open_project(2)
    enrolled = make_enrolled_annotator(project)
    labeled = assignment_next(project=project, annotator=enrolled)
    assert labeled is not None
    annotation = annotation_submit(
        annotator=enrolled, item=labeled.item, value="hateful", rationale="SECRET-RATIONALE"
    ).annotation
    held = assignment_next(project=project, annotator=enrolled)
    assert held is not None
    users = {
        "annotator_not_enrolled": make_user(Role.ANNOTATOR),
        "annotator_enrolled": enrolled,
        "other_researcher": foreign.owner,
        "owner": owner,
        "auditor": make_user(Role.AUDITOR),
        "staff": make_user(Role.RESEARCHER, is_staff=True),
    }
    return World(users, project, draft, foreign, held.item, held, annotation)


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: Callable[[World], str]
    body: Callable[[World], Any] | None = None
    multipart: bool = False

    @property
    def writes(self) -> bool:
        return self.method != "get"


def _upload(world: World) -> dict[str, Any]:
    return {"file": SimpleUploadedFile("t.csv", b"external_id,text\nq1,hi\n")}


ENDPOINTS = {
    e.name: e
    for e in [
        Endpoint("projects_list", "get", lambda w: "/api/v1/projects/"),
        Endpoint(
            "projects_create",
            "post",
            lambda w: "/api/v1/projects/",
            lambda w: {
                "preset": "hate_speech",
                "title": "New",
                "risk_disclosure": "r",
                "data_use_statement": "d",
            },
        ),
        Endpoint("project_get", "get", lambda w: f"/api/v1/projects/{w.project.pk}/"),
        Endpoint("draft_get", "get", lambda w: f"/api/v1/projects/{w.draft.pk}/"),
        Endpoint(
            "project_patch",
            "patch",
            lambda w: f"/api/v1/projects/{w.project.pk}/",
            lambda w: {"title": "Hijacked"},
        ),
        Endpoint(
            "project_transition",
            "post",
            lambda w: f"/api/v1/projects/{w.project.pk}/transition/",
            lambda w: {"status": "closed"},
        ),
        Endpoint("project_progress", "get", lambda w: f"/api/v1/projects/{w.project.pk}/progress/"),
        Endpoint("project_consent", "get", lambda w: f"/api/v1/projects/{w.project.pk}/consent/"),
        Endpoint("project_items", "get", lambda w: f"/api/v1/projects/{w.project.pk}/items/"),
        Endpoint("item_get", "get", lambda w: f"/api/v1/items/{w.item.pk}/"),
        Endpoint("item_image", "get", lambda w: f"/api/v1/items/{w.item.pk}/image/"),
        Endpoint("imports_list", "get", lambda w: f"/api/v1/projects/{w.project.pk}/imports/"),
        Endpoint(
            "imports_create",
            "post",
            lambda w: f"/api/v1/projects/{w.project.pk}/imports/",
            _upload,
            multipart=True,
        ),
        Endpoint("enrolment_get", "get", lambda w: f"/api/v1/projects/{w.project.pk}/enrolment/"),
        Endpoint(
            "enrolment_create",
            "post",
            lambda w: f"/api/v1/projects/{w.project.pk}/enrolment/",
            lambda w: {"consent": True},
        ),
        Endpoint(
            "enrolment_survey",
            "put",
            lambda w: f"/api/v1/projects/{w.project.pk}/enrolment/survey/",
            lambda w: {"answers": {}},
        ),
        Endpoint(
            "enrolment_withdraw",
            "post",
            lambda w: f"/api/v1/projects/{w.project.pk}/enrolment/withdraw/",
        ),
        Endpoint("next", "post", lambda w: f"/api/v1/projects/{w.project.pk}/next/"),
        Endpoint(
            "assignments_list", "get", lambda w: f"/api/v1/projects/{w.project.pk}/assignments/"
        ),
        Endpoint(
            "assignment_skip", "post", lambda w: f"/api/v1/assignments/{w.assignment.pk}/skip/"
        ),
        Endpoint(
            "annotation_create",
            "post",
            lambda w: "/api/v1/annotations/",
            lambda w: {"item": w.item.pk, "value": "neither"},
        ),
        Endpoint(
            "project_annotations",
            "get",
            lambda w: f"/api/v1/projects/{w.project.pk}/annotations/",
        ),
        Endpoint("annotation_get", "get", lambda w: f"/api/v1/annotations/{w.annotation.pk}/"),
        Endpoint(
            "annotation_patch",
            "patch",
            lambda w: f"/api/v1/annotations/{w.annotation.pk}/",
            lambda w: {"value": "neither"},
        ),
        Endpoint("audit_events", "get", lambda w: "/api/v1/audit/events/"),
        Endpoint("audit_verify", "get", lambda w: "/api/v1/audit/verify/"),
    ]
}

ANNOTATOR_ONLY = (
    "enrolment_get",
    "enrolment_create",
    "enrolment_survey",
    "enrolment_withdraw",
    "next",
    "assignments_list",
    "assignment_skip",
    "annotation_create",
)
OWNER_ONLY = ("project_patch", "project_transition", "imports_create")
GOVERNANCE_READS = ("project_progress", "project_items", "imports_list")
AUTHOR_ONLY = ("annotation_get", "annotation_patch")
AUDIT = ("audit_events", "audit_verify")

# (role, endpoint) -> the refusal expected. 403 for a role that may never call the
# endpoint; 404 where the endpoint is theirs to call but the object is outside their scope.
DENIED: dict[tuple[str, str], int] = {}
for _name in ENDPOINTS:
    DENIED[("anonymous", _name)] = 403
for _role in ("annotator_not_enrolled", "annotator_enrolled"):
    DENIED[(_role, "projects_create")] = 403
    DENIED[(_role, "draft_get")] = 404
    for _name in OWNER_ONLY + GOVERNANCE_READS:
        DENIED[(_role, _name)] = 404
    for _name in AUDIT:
        DENIED[(_role, _name)] = 403
for _name in ("item_get", "item_image", "annotation_get", "annotation_patch", "assignment_skip"):
    DENIED[("annotator_not_enrolled", _name)] = 404
DENIED[("annotator_not_enrolled", "enrolment_get")] = 404
DENIED[("annotator_not_enrolled", "enrolment_survey")] = 404
DENIED[("annotator_not_enrolled", "enrolment_withdraw")] = 404
DENIED[("annotator_not_enrolled", "next")] = 403
DENIED[("annotator_not_enrolled", "annotation_create")] = 404
for _name in (
    "project_get",
    "draft_get",
    "project_consent",
    "item_get",
    "item_image",
    "project_annotations",
    *OWNER_ONLY,
    *GOVERNANCE_READS,
    *AUTHOR_ONLY,
):
    DENIED[("other_researcher", _name)] = 404
for _role in ("other_researcher", "owner", "staff", "auditor"):
    for _name in ANNOTATOR_ONLY:
        DENIED[(_role, _name)] = 403
for _role in ("owner", "staff", "auditor"):
    for _name in AUTHOR_ONLY:
        DENIED[(_role, _name)] = 404
for _role in ("other_researcher", "owner"):
    for _name in AUDIT:
        DENIED[(_role, _name)] = 403
for _name, _endpoint in ENDPOINTS.items():
    if _endpoint.writes:
        DENIED[("auditor", _name)] = 403  # auditors never write, whatever the endpoint


def db_state() -> dict[str, Any]:
    """Everything a refused request could have touched."""
    return {
        "projects": sorted(Project.objects.values_list("pk", "title", "status", "updated_at")),
        "items": Item.objects.count(),
        "batches": ImportBatch.objects.count(),
        "enrolments": sorted(
            Enrolment.objects.values_list("pk", "withdrawn_at", "survey_answered_at")
        ),
        "consents": ConsentRecord.objects.count(),
        "assignments": sorted(Assignment.objects.values_list("pk", "status")),
        "annotations": sorted(Annotation.objects.values_list("pk", "value", "withdrawn")),
        "edits": AnnotationEdit.objects.count(),
        "audit": AuditEvent.objects.count(),
    }


def call(world: World, role: str, endpoint: Endpoint) -> Any:
    client = APIClient()
    if role != "anonymous":
        client.force_authenticate(world.users[role])
    body = endpoint.body(world) if endpoint.body else None
    kwargs: dict[str, Any] = {"format": "multipart" if endpoint.multipart else "json"}
    return getattr(client, endpoint.method)(endpoint.path(world), body, **kwargs)


@pytest.mark.parametrize(
    ("role", "endpoint_name", "status"),
    [(role, name, status) for (role, name), status in sorted(DENIED.items())],
)
def test_api_permission_denied_role_gets_refused_and_nothing_changes(
    world: World, role: str, endpoint_name: str, status: int
) -> None:
    endpoint = ENDPOINTS[endpoint_name]
    before = db_state()

    response = call(world, role, endpoint)

    if role == "anonymous":
        assert response.status_code in (401, 403), response.content
        assert response.json()["code"] == "not_authenticated"
    else:
        assert response.status_code == status, response.content
    assert set(response.json()) == {"code", "message", "extra"}
    assert db_state() == before


ALLOWED_READS = [
    (role, name)
    for role in ROLES
    for name, endpoint in ENDPOINTS.items()
    if not endpoint.writes and (role, name) not in DENIED and name != "item_image"
]


@pytest.mark.parametrize(("role", "endpoint_name"), ALLOWED_READS)
def test_api_permission_allowed_read_succeeds_and_shows_no_identity(
    world: World, role: str, endpoint_name: str
) -> None:
    response = call(world, role, ENDPOINTS[endpoint_name])

    assert response.status_code == 200, response.content
    text = response.content.decode()
    for user in world.users.values():
        assert f'"{user.username}"' not in text
        assert user.email not in text
    for forbidden_key in ('"username"', '"email"', '"annotator_id"', '"actor_id"', '"owner_id"'):
        assert forbidden_key not in text


BLIND_ENDPOINTS = (
    "projects_list",
    "project_get",
    "project_consent",
    "item_get",
    "enrolment_get",
    "assignments_list",
    "project_annotations",
    "project_progress",
    "project_items",
    "audit_events",
    "imports_list",
)


def test_api_blind_annotator_never_sees_another_annotators_labels_or_pseudonym(
    world: World,
) -> None:
    other = make_enrolled_annotator(world.project)
    theirs = assignment_next(project=world.project, annotator=other)
    assert theirs is not None
    annotation_submit(
        annotator=other, item=theirs.item, value="offensive", rationale="OTHER-SECRET"
    )
    for name in BLIND_ENDPOINTS:
        response = call(world, "annotator_enrolled", ENDPOINTS[name])
        text = response.content.decode()
        assert other.pseudonym not in text, name
        assert "OTHER-SECRET" not in text, name
        assert '"slots_taken"' not in text, name
    own = call(world, "annotator_enrolled", ENDPOINTS["project_annotations"]).json()
    assert [a["annotator_pseudonym"] for a in own["results"]] == [
        world.users["annotator_enrolled"].pseudonym
    ]


def test_api_blind_other_annotators_label_not_reachable_by_id(world: World) -> None:
    other = make_enrolled_annotator(world.project)
    theirs = assignment_next(project=world.project, annotator=other)
    assert theirs is not None
    annotation = annotation_submit(annotator=other, item=theirs.item, value="offensive").annotation
    client = APIClient()
    client.force_authenticate(world.users["annotator_enrolled"])

    read = client.get(f"/api/v1/annotations/{annotation.pk}/")
    skip = client.post(f"/api/v1/assignments/{theirs.pk}/skip/")

    assert read.status_code == 404
    assert skip.status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == Assignment.Status.SUBMITTED
