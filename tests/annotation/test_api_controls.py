"""API for quality control: marking control items, the new project settings, and blindness
(an annotator's responses never tell a control item from a regular one)."""

import random
from collections.abc import Iterator
from typing import Any

import pytest

from annotation.models import Annotation, Item, Project, ProjectStatus
from annotation.services import project_transition
from core.models import Role
from provenance.models import AuditEvent
from tests.annotation.factories import (
    HATEFUL,
    NEITHER,
    OFFENSIVE,
    add_control_items,
    add_text_items,
    make_enrolled_annotator,
    make_open_project,
    make_project,
)
from tests.core.factories import make_user

pytestmark = pytest.mark.django_db

# Keys that would give a control item away.
CONTROL_KEYS = {"control", "expected_value"}


@pytest.fixture
def seeded_random() -> Iterator[None]:
    state = random.getstate()
    random.seed(7)
    yield
    random.setstate(state)


def control_url(item: Item) -> str:
    return f"/api/v1/items/{item.pk}/control/"


def item_state(item: Item) -> tuple[str, Any]:
    stored = Item.objects.get(pk=item.pk)
    return stored.control, stored.expected_value


def keys(value: Any) -> set[str]:
    """Every object key anywhere in a JSON document."""
    if isinstance(value, dict):
        return set(value) | {key for inner in value.values() for key in keys(inner)}
    if isinstance(value, list):
        return {key for inner in value for key in keys(inner)}
    return set()


# ---------------------------------------------------------------- PATCH /items/{id}/control/


def test_item_control_api_owner_marks_corrects_and_unmarks_item(client_for) -> None:
    project = make_project()
    (item,) = add_text_items(project, 1)
    client = client_for(project.owner)

    marked = client.patch(
        control_url(item), {"control": "gold", "expected_value": HATEFUL}, format="json"
    )
    corrected = client.patch(control_url(item), {"expected_value": OFFENSIVE}, format="json")
    assert item_state(item) == ("gold", OFFENSIVE)
    unmarked = client.patch(control_url(item), {"control": ""}, format="json")

    assert marked.status_code == 200, marked.content
    assert marked.json() == {"item": item.pk, "control": "gold", "expected_value": HATEFUL}
    assert corrected.json()["expected_value"] == OFFENSIVE
    assert unmarked.json() == {"item": item.pk, "control": "", "expected_value": None}
    assert item_state(item) == ("", None)
    assert AuditEvent.objects.filter(action="item.control_set").count() == 3


def test_item_control_api_staff_may_mark_any_projects_item(client_for) -> None:
    project = make_project()
    (item,) = add_text_items(project, 1)
    staff = make_user(Role.RESEARCHER, is_staff=True)

    response = client_for(staff).patch(
        control_url(item), {"control": "attention", "expected_value": NEITHER}, format="json"
    )

    assert response.status_code == 200, response.content
    assert item_state(item) == ("attention", NEITHER)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"control": "gold", "expected_value": "maybe"}, "invalid_label"),
        ({"control": "gold"}, "expected_value_required"),
        ({"control": "gold", "expected_value": None}, "expected_value_required"),
        ({"control": "", "expected_value": HATEFUL}, "unexpected_expected_value"),
        ({"control": "trap", "expected_value": HATEFUL}, "invalid"),
        ({"control": "gold", "expected_value": "a\x00b"}, "nul_character"),
    ],
)
def test_item_control_api_bad_input_400_in_error_shape_and_unchanged(
    body: dict[str, Any], code: str, client_for
) -> None:
    project = make_project()
    (item,) = add_text_items(project, 1)

    response = client_for(project.owner).patch(control_url(item), body, format="json")

    assert response.status_code == 400, response.content
    assert set(response.json()) == {"code", "message", "extra"}
    assert response.json()["code"] == code
    assert item_state(item) == ("", None)


def test_item_control_api_labeled_item_409(client_for) -> None:
    project = make_open_project(1, k=2)
    annotator = make_enrolled_annotator(project)
    assignment = client_for(annotator).post(f"/api/v1/projects/{project.pk}/next/").json()
    client_for(annotator).post(
        "/api/v1/annotations/", {"item": assignment["item"]["id"], "value": NEITHER}, format="json"
    )
    item = Item.objects.get(project=project)

    response = client_for(project.owner).patch(
        control_url(item), {"control": "gold", "expected_value": NEITHER}, format="json"
    )

    assert response.status_code == 409
    assert response.json()["code"] == "item_in_use"


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("annotator", 403),
        ("assigned_annotator", 403),
        ("auditor", 403),
        ("other_researcher", 404),
        ("anonymous", 401),
    ],
)
def test_item_control_api_refused_roles_change_nothing(role: str, status: int, client_for) -> None:
    project = make_open_project(2, k=2)
    assigned = make_enrolled_annotator(project)
    assignment = client_for(assigned).post(f"/api/v1/projects/{project.pk}/next/").json()
    item = Item.objects.get(pk=assignment["item"]["id"])
    users = {
        "annotator": make_user(Role.ANNOTATOR),
        "assigned_annotator": assigned,
        "auditor": make_user(Role.AUDITOR),
        "other_researcher": make_user(Role.RESEARCHER),
        "anonymous": None,
    }
    audit_before = AuditEvent.objects.count()

    response = client_for(users[role]).patch(
        control_url(item), {"control": "gold", "expected_value": NEITHER}, format="json"
    )

    assert response.status_code in ((401, 403) if role == "anonymous" else (status,))
    assert set(response.json()) == {"code", "message", "extra"}
    assert item_state(item) == ("", None)
    assert AuditEvent.objects.count() == audit_before


def test_item_control_api_unknown_item_404(client_for) -> None:
    owner = make_user(Role.RESEARCHER)

    response = client_for(owner).patch(
        "/api/v1/items/999999/control/", {"control": "gold", "expected_value": NEITHER}
    )

    assert response.status_code == 404


# ---------------------------------------------------------------- project settings


def test_project_api_create_and_patch_strategy_and_control_rate(client_for) -> None:
    owner = make_user(Role.RESEARCHER)
    client = client_for(owner)

    created = client.post(
        "/api/v1/projects/",
        {
            "preset": "hate_speech",
            "title": "Checked",
            "risk_disclosure": "r",
            "data_use_statement": "d",
            "assignment_strategy": "most_contested",
            "control_rate": 0.1,
        },
        format="json",
    )
    project_id = created.json()["id"]
    patched = client.patch(f"/api/v1/projects/{project_id}/", {"control_rate": 0.25}, format="json")

    assert created.status_code == 201, created.content
    assert created.json()["assignment_strategy"] == "most_contested"
    assert created.json()["control_rate"] == 0.1
    assert patched.json()["control_rate"] == 0.25
    assert Project.objects.get(pk=project_id).control_rate == 0.25


@pytest.mark.parametrize(
    "body", [{"control_rate": 0.51}, {"control_rate": -0.1}, {"assignment_strategy": "random"}]
)
def test_project_api_patch_bad_quality_settings_400(body: dict[str, Any], client_for) -> None:
    project = make_project()

    response = client_for(project.owner).patch(
        f"/api/v1/projects/{project.pk}/", body, format="json"
    )

    assert response.status_code == 400
    stored = Project.objects.get(pk=project.pk)
    assert (stored.control_rate, stored.assignment_strategy) == (0.0, "least_labeled")


def test_project_api_control_rate_shown_to_owner_and_auditor_hidden_from_annotator(
    client_for,
) -> None:
    project = make_open_project(2, control_rate=0.2)
    annotator = make_enrolled_annotator(project)
    url = f"/api/v1/projects/{project.pk}/"

    seen = {
        "owner": client_for(project.owner).get(url).json(),
        "auditor": client_for(make_user(Role.AUDITOR)).get(url).json(),
        "annotator": client_for(annotator).get(url).json(),
    }
    listed = client_for(annotator).get("/api/v1/projects/").json()["results"]

    assert seen["owner"]["control_rate"] == 0.2
    assert seen["auditor"]["control_rate"] == 0.2
    assert seen["annotator"]["control_rate"] is None
    assert [p["control_rate"] for p in listed] == [None]
    assert seen["annotator"]["assignment_strategy"] == "least_labeled"


def test_project_items_api_shows_control_kind_and_answer_to_owner(client_for) -> None:
    project = make_project()
    add_text_items(project, 1)
    (control,) = add_control_items(project, 1, expected_value=HATEFUL)

    body = client_for(project.owner).get(f"/api/v1/projects/{project.pk}/items/").json()

    rows = {row["id"]: row for row in body["results"]}
    assert (rows[control.pk]["control"], rows[control.pk]["expected_value"]) == ("gold", HATEFUL)
    assert {row["control"] for row in rows.values()} == {"", "gold"}
    assert all("label_entropy" in row for row in rows.values())


def test_project_progress_api_counts_control_items_apart(seeded_random: None, client_for) -> None:
    project = make_project(k=1, control_rate=0.5)
    add_text_items(project, 10)
    controls = add_control_items(project, 2, expected_value=HATEFUL)
    project_transition(project=project, actor=project.owner, status=ProjectStatus.OPEN)
    client = client_for(make_enrolled_annotator(project))
    while (response := client.post(f"/api/v1/projects/{project.pk}/next/")).status_code == 200:
        item_id = response.json()["item"]["id"]
        client.post("/api/v1/annotations/", {"item": item_id, "value": NEITHER}, format="json")
    answered = Annotation.objects.filter(item__in=controls).count()

    body = client_for(project.owner).get(f"/api/v1/projects/{project.pk}/progress/").json()

    assert answered > 0
    assert (body["items"], body["items_complete"], body["labels"]) == (10, 10, 10)
    assert (body["control_items"], body["control_labels"]) == (2, answered)


# ---------------------------------------------------------------- blindness


def test_annotator_api_responses_never_mention_control_items(
    seeded_random: None, client_for
) -> None:
    project = make_project(k=1, control_rate=0.5)
    add_text_items(project, 12)
    controls = add_control_items(project, 4, expected_value=HATEFUL)
    project_transition(project=project, actor=project.owner, status=ProjectStatus.OPEN)
    annotator = make_enrolled_annotator(project)
    client = client_for(annotator)
    bodies: list[Any] = []
    given: list[int] = []

    while (response := client.post(f"/api/v1/projects/{project.pk}/next/")).status_code == 200:
        body = response.json()
        item_id = body["item"]["id"]
        given.append(item_id)
        bodies.append(body)
        bodies.append(client.get(f"/api/v1/items/{item_id}/").json())
        submitted = client.post(
            "/api/v1/annotations/", {"item": item_id, "value": NEITHER}, format="json"
        )
        assert submitted.status_code == 201
        bodies.append(submitted.json())
    bodies.append(client.get(f"/api/v1/projects/{project.pk}/assignments/").json())
    bodies.append(client.get(f"/api/v1/projects/{project.pk}/annotations/").json())
    bodies.append(client.get(f"/api/v1/projects/{project.pk}/enrolment/").json())
    bodies.append(client.get(f"/api/v1/projects/{project.pk}/").json())

    assert {c.pk for c in controls} & set(given)  # control items were among them
    assert not any(keys(body) & CONTROL_KEYS for body in bodies)
    assert bodies[-1]["control_rate"] is None
    for body in bodies:
        text = str(body).lower()
        assert "gold" not in text and "attention" not in text
