"""Page permission matrix: every role against every page route of ``annotation.urls`` and
``provenance.urls``, and ``core.urls``' home page.

The same rules as the API matrix (404 across projects, blind annotators, read-only auditors,
pseudonyms only), for the server-rendered pages. Anonymous
visitors are sent to sign in everywhere but the public takedown form; a page for another
role is 403; an object outside the caller's scope is 404; an auditor's POST is 403 on every
page (filing a takedown, open to anyone, aside). For every refused request every table is
compared before and after: nothing may change, not even the audit log. Every route must
have a row in ``PAGES`` (``test_page_permission_matrix_covers_every_page_route``), and each
row's methods and POST body are checked against the page itself
(``test_page_permission_page_serves_its_own_role``).
"""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, reverse

from annotation.forms import ProjectForm
from annotation.models import AssignmentStrategy, CompensationUnit, TakedownRequest
from annotation.services import project_consent_text
from annotation.urls import urlpatterns as annotation_page_routes
from core.urls import urlpatterns as core_page_routes
from ml.urls import urlpatterns as ml_page_routes
from provenance.services import consent_text_version
from provenance.urls import urlpatterns as provenance_page_routes
from tests.permission_world import ROLES, World, db_state, world_build, world_user

# Database-agnostic and large (every role x every route): run once, on SQLite.
pytestmark = [pytest.mark.django_db, pytest.mark.matrix]

GET_ONLY = ("get",)
GET_POST = ("get", "post")
POST_ONLY = ("post",)
OTHER_UNSAFE = ("put", "patch", "delete")  # no page takes them
LOGIN = "login"  # the expected outcome "redirected to the sign-in page"


@pytest.fixture(autouse=True)
def _media_root(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def world() -> World:
    return world_build()


def _none(world: World) -> tuple[int, ...]:
    return ()


def _project(world: World) -> tuple[int, ...]:
    return (world.project.pk,)


def _draft(world: World) -> tuple[int, ...]:
    return (world.draft.pk,)


@dataclass(frozen=True)
class Page:
    """A page route, a role it is for, the methods it accepts and, for POST, a body that
    role's request succeeds with (so a refusal elsewhere is the permission check's doing)."""

    name: str
    user: str
    args: Callable[[World], tuple[int, ...]] = _none
    methods: tuple[str, ...] = GET_ONLY
    body: Callable[[World], dict[str, Any]] | None = None

    def url(self, world: World) -> str:
        return reverse(self.name, args=self.args(world))


def _consent_body(world: World) -> dict[str, Any]:
    version = consent_text_version(project_consent_text(world.project))
    return {"consent": "on", "consent_version": version}


def _label_body(world: World) -> dict[str, Any]:
    return {
        "assignment": world.assignment.pk,
        "item": world.assignment.item_id,
        "value": "hateful",
        "confidence": "",
        "rationale": "",
        "shown_at": "",
    }


def _new_project_body(world: World) -> dict[str, Any]:
    return {
        "preset": "hate_speech",
        "title": "New",
        "annotations_per_item": "3",
        "compensation_amount": "0.10",
        "compensation_currency": "EUR",
        "compensation_unit": CompensationUnit.PER_ITEM,
        "risk_disclosure": "Some texts are offensive.",
        "data_use_statement": "Published as a research dataset.",
        "survey": "[]",
        "assignment_ttl_seconds": "1800",
        "assignment_strategy": AssignmentStrategy.LEAST_LABELED,
        "control_rate": "0",
    }


def _edit_body(world: World) -> dict[str, Any]:
    """The edit form as the owner gets it, with a new title."""
    initial = ProjectForm(project=world.draft).initial
    fields = {
        name: json.dumps(value) if isinstance(value, dict | list) else value
        for name, value in initial.items()
        if value is not None
    }
    return fields | {"title": "Edited"}


def _upload_body(world: World) -> dict[str, Any]:
    return {"upload": SimpleUploadedFile("t.csv", b"external_id,text,license\nq2,hello,CC0-1.0\n")}


def _control_body(world: World) -> dict[str, Any]:
    return {
        "external_id": world.spare_item.external_id,
        "control": "gold",
        "expected_value": "hateful",
    }


def _takedown_body(world: World) -> dict[str, Any]:
    return {"reference": str(world.item.pk), "kind": "privacy", "reason": "It shows me."}


def _subject_consent_body(world: World) -> dict[str, Any]:
    return {"status": "not_applicable", "purposes": "", "lawful_basis": "", "expires_at": ""}


def _train_body(world: World) -> dict[str, Any]:
    """The training form's defaults (a text project), one epoch."""
    return {
        "target": "majority",
        "encoder": "minilm",
        "seed": "0",
        "device": "cpu",
        "min_group_size": "30",
        "max_epochs": "1",
        "patience": "5",
        "batch_size": "64",
        "learning_rate": "0.001",
        "weight_decay": "0.01",
        "dropout": "0.1",
        "head": "linear",
        "hidden": "256",
    }


def _build_body(world: World) -> dict[str, Any]:
    """The builder's defaults: build (the dry run is in tests/ml/test_pages.py)."""
    return {
        "build": "1",
        "min_labels": "1",
        "targets": ["majority", "soft"],
        "license_use": "research",
        "consent": "standard",
        "train": "0.8",
        "validation": "0.1",
        "test": "0.1",
        "seed": "0",
        "strategy": "random",
        "group_key": "",
        "text_threshold": "0.8",
        "image_max_distance": "6",
    }


PAGES = {
    page.name: page
    for page in [
        Page("home", "owner"),
        # Annotators
        Page("annotator-home", "annotator_enrolled"),
        Page("annotate-consent", "annotator_not_enrolled", _project, GET_POST, _consent_body),
        Page(
            "annotate-survey",
            "annotator_enrolled",
            _project,
            GET_POST,
            lambda w: {w.question: "north"},
        ),
        Page("annotate-label", "annotator_enrolled", _project, GET_POST, _label_body),
        Page("annotate-next", "annotator_enrolled", _project, POST_ONLY, lambda w: {}),
        Page(
            "annotate-skip",
            "annotator_enrolled",
            _project,
            POST_ONLY,
            lambda w: {"assignment": w.assignment.pk},
        ),
        Page("annotate-withdraw", "annotator_enrolled", _project, GET_POST, lambda w: {}),
        Page("annotate-my-labels", "annotator_enrolled", _project),
        Page(
            "annotate-label-edit",
            "annotator_enrolled",
            lambda w: (w.annotation.pk,),
            GET_POST,
            lambda w: {"value": "neither", "confidence": "", "rationale": ""},
        ),
        # Researchers
        Page("research-projects", "owner"),
        Page("research-project-new", "owner", _none, GET_POST, _new_project_body),
        Page("research-project", "owner", _project),
        Page("research-project-edit", "owner", _draft, GET_POST, _edit_body),
        Page(
            "research-project-status",
            "owner",
            _project,
            POST_ONLY,
            lambda w: {"status": "closed"},
        ),
        Page("research-project-import", "owner", _draft, GET_POST, _upload_body),
        Page("research-import-batch", "owner", lambda w: (w.draft.pk, w.batch.pk)),
        # Analysis and quality control: owners, auditors (read-only) and staff
        Page("research-analysis", "auditor", _project),
        Page("research-analysis-items", "auditor", _project),
        Page("research-analysis-refresh", "owner", _project, POST_ONLY, lambda w: {}),
        Page("research-project-controls", "owner", _project, GET_POST, _control_body),
        # Governance
        Page("takedown", "anonymous", _none, GET_POST, _takedown_body),
        Page("takedown-list", "auditor"),
        Page(
            "takedown-detail",
            "owner",
            lambda w: (w.takedown.pk,),
            GET_POST,
            lambda w: {"decision": "accept", "reason": "The person is identifiable."},
        ),
        Page("report-licenses", "auditor", _project),
        Page("report-consent", "auditor", _project),
        Page(
            "item-subject-consent",
            "owner",
            lambda w: (w.item.pk,),
            GET_POST,
            _subject_consent_body,
        ),
        # Dataset versions: owners build, auditors read
        Page("dataset-list", "auditor", _project),
        Page("dataset-new", "owner", _project, GET_POST, _build_body),
        Page("dataset-detail", "auditor", lambda w: (w.dataset.pk,)),
        Page("dataset-rebuild", "owner", lambda w: (w.dataset.pk,), POST_ONLY, lambda w: {}),
        Page("dataset-retry", "owner", lambda w: (w.failed_dataset.pk,), POST_ONLY, lambda w: {}),
        # Training runs: owners train, auditors read
        Page("training-list", "auditor", _project),
        Page("training-new", "owner", lambda w: (w.dataset.pk,), GET_POST, _train_body),
        Page("training-detail", "auditor", lambda w: (w.run.pk,)),
        Page("training-cancel", "owner", lambda w: (w.pending_run.pk,), POST_ONLY, lambda w: {}),
        # Auditors
        Page("audit-log", "auditor"),
        Page("auditor-projects", "auditor"),
    ]
}

ANNOTATORS = ("annotator_not_enrolled", "annotator_enrolled")
PUBLIC_PAGES = ("takedown",)
ANNOTATOR_PAGES = tuple(name for name in PAGES if name.startswith(("annotate", "annotator")))
RESEARCHER_PAGES = (
    "research-projects",
    "research-project-new",
    "research-project",
    "research-project-edit",
    "research-project-status",
    "research-project-import",
    "research-import-batch",
    "research-analysis-refresh",
    "dataset-new",
    "dataset-rebuild",
    "dataset-retry",
    "training-new",
    "training-cancel",
)
# Researcher pages about one project: another researcher's answer is 404.
PROJECT_PAGES = RESEARCHER_PAGES[2:]
# Read by the project's owner, auditors and staff (the controls and takedown pages also
# take the owner's POST).
GOVERNANCE_READS = (
    "research-analysis",
    "research-analysis-items",
    "research-project-controls",
    "takedown-detail",
    "report-licenses",
    "report-consent",
    "dataset-list",
    "dataset-detail",
    "training-list",
    "training-detail",
)
AUDITOR_PAGES = ("audit-log", "auditor-projects")

# (role, page, method) -> the refusal expected: a status, or LOGIN.
DENIED: dict[tuple[str, str, str], int | str] = {}
for _name in PAGES:
    if _name not in PUBLIC_PAGES:
        for _method in GET_POST:
            DENIED[("anonymous", _name, _method)] = LOGIN
# A page for another role is refused whatever the method (the role check runs first).
for _method in GET_POST:
    for _role in ("other_researcher", "owner", "auditor", "staff"):
        for _name in ANNOTATOR_PAGES:
            DENIED[(_role, _name, _method)] = 403
    for _role in (*ANNOTATORS, "auditor"):
        for _name in RESEARCHER_PAGES:
            DENIED[(_role, _name, _method)] = 403
        DENIED[(_role, "item-subject-consent", _method)] = 403
    for _role in (*ANNOTATORS, "other_researcher", "owner"):
        for _name in AUDITOR_PAGES:
            DENIED[(_role, _name, _method)] = 403
    for _role in ANNOTATORS:
        for _name in (*GOVERNANCE_READS, "takedown-list"):
            DENIED[(_role, _name, _method)] = 403
# Scoping: the page is theirs to use, the object is not.
for _name in (*PROJECT_PAGES, *GOVERNANCE_READS, "item-subject-consent"):
    for _method in PAGES[_name].methods:
        DENIED[("other_researcher", _name, _method)] = 404
for _name in ("annotate-label-edit", "annotate-skip", "annotate-withdraw"):
    for _method in PAGES[_name].methods:
        DENIED[("annotator_not_enrolled", _name, _method)] = 404
# Auditors never write: 403 on every page, whatever the unsafe method and whether or not
# the page takes it at all. The home page refuses them from everyone (405) before asking who
# is calling; the public takedown form takes an auditor's POST like anyone's.
for _name in PAGES:
    for _method in ("post", *OTHER_UNSAFE):
        if (_name, _method) != ("takedown", "post"):
            _refusal = 405 if _name in ("home", *PUBLIC_PAGES) else 403
            DENIED[("auditor", _name, _method)] = _refusal


# A demoted owner is an annotator who never enrolled: the ownership record grants nothing.
for (_role, _name, _method), _expected in list(DENIED.items()):
    if _role == "annotator_not_enrolled":
        DENIED[("demoted_owner", _name, _method)] = _expected


# Accepted without a change: the annotator is shown the item they already hold.
UNCHANGED_WHEN_ACCEPTED = ("annotate-next",)


def client_for(world: World, role: str) -> Client:
    client = Client()
    user = world_user(world, role)
    if user is not None:
        client.force_login(user)
    return client


def visit(client: Client, world: World, page: Page, method: str) -> Any:
    if method == "post":
        return client.post(page.url(world), page.body(world) if page.body else {})
    return getattr(client, method)(page.url(world))


def test_page_permission_matrix_covers_every_page_route() -> None:
    page_routes = [*annotation_page_routes, *provenance_page_routes, *ml_page_routes]
    assert all(isinstance(route, URLPattern) for route in page_routes)
    # Of core's pages only the home router: sign-in and sign-out are for everyone.
    home = [route for route in core_page_routes if route.name == "home"]
    routes = {str(route.name) for route in [*page_routes, *home] if isinstance(route, URLPattern)}

    assert routes == set(PAGES), (
        f"pages without a permission case: {sorted(routes - set(PAGES))}; "
        f"cases for no page: {sorted(set(PAGES) - routes)}"
    )


@pytest.mark.parametrize(
    ("role", "page_name", "method", "expected"),
    [(role, name, method, expected) for (role, name, method), expected in sorted(DENIED.items())],
)
def test_page_permission_denied_role_gets_refused_and_nothing_changes(
    world: World, role: str, page_name: str, method: str, expected: int | str
) -> None:
    client = client_for(world, role)
    before = db_state()

    response = visit(client, world, PAGES[page_name], method)

    if expected == LOGIN:
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
    else:
        assert response.status_code == expected, response.content[:500]
    assert db_state() == before


@pytest.mark.parametrize(("page_name", "method"), [(n, m) for n in PAGES for m in GET_POST])
def test_page_permission_page_serves_its_own_role(
    world: World, page_name: str, method: str
) -> None:
    page = PAGES[page_name]
    # Auditors POST nowhere: staff shows which methods their pages take.
    role = "staff" if (page.user, page_name, method) in DENIED else page.user
    assert (role, page_name, method) not in DENIED
    client = client_for(world, role)
    before = db_state()

    response = visit(client, world, page, method)

    if method not in page.methods:
        assert response.status_code == 405
    elif method == "get":
        assert response.status_code == (302 if page_name == "home" else 200)
    else:
        # A form that worked redirects; the public takedown form answers with a receipt.
        assert response.status_code == (200 if page_name in PUBLIC_PAGES else 302)
        assert (db_state() == before) == (page_name in UNCHANGED_WHEN_ACCEPTED)


def _shows_no_other_identity(world: World, viewer: str, html: str) -> None:
    for role, user in world.users.items():
        assert user.email not in html, role
        if role != viewer:  # the page header names whoever is signed in
            assert not re.search(rf"\b{re.escape(user.username)}\b", html), role


@pytest.mark.parametrize("role", ["owner", "auditor", "staff"])
@pytest.mark.parametrize("page_name", [*GOVERNANCE_READS, "takedown-list"])
def test_page_governance_read_owner_auditor_staff_200_pseudonyms_only(
    world: World, page_name: str, role: str
) -> None:
    response = visit(client_for(world, role), world, PAGES[page_name], "get")

    assert response.status_code == 200
    html = response.content.decode()
    _shows_no_other_identity(world, role, html)
    if role == "auditor":  # the requester's contact is for those who answer them
        assert world.takedown.contact not in html


def test_page_takedown_list_other_researcher_sees_only_their_projects_requests(
    world: World,
) -> None:
    link = reverse("takedown-detail", args=[world.takedown.pk])
    page = PAGES["takedown-list"]

    theirs = visit(client_for(world, "other_researcher"), world, page, "get")
    owners = visit(client_for(world, "owner"), world, page, "get")

    assert theirs.status_code == owners.status_code == 200
    assert link not in theirs.content.decode()
    assert link in owners.content.decode()


def test_page_takedown_public_for_every_role_then_rate_limited(world: World, settings: Any) -> None:
    settings.CHORUS_TAKEDOWN_MAX_PER_HOUR = len(ROLES)
    page = PAGES["takedown"]
    filed = TakedownRequest.objects.count()

    for role in ROLES:
        client = client_for(world, role)
        assert visit(client, world, page, "get").status_code == 200, role
        assert visit(client, world, page, "post").status_code == 200, role
    flooded = visit(client_for(world, "auditor"), world, page, "post")

    assert flooded.status_code == 429
    assert TakedownRequest.objects.count() == filed + len(ROLES)
