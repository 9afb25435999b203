"""API permission matrix: every role against every endpoint it must not use.

Cross-project access by id is 404, annotators never see each other's labels, auditors never
write, and identities appear as pseudonyms only. Anonymous callers are refused
everywhere (401/403) except where filing a takedown request, which anyone may do; an object
outside the caller's scope answers 404 (its existence is not confirmed); an auditor's write
is 403. For every refused request every table is compared before and after: nothing may
change, not even the audit log. Every API route must appear here
(``test_api_permission_matrix_covers_every_api_route``).
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLPattern, URLResolver, resolve
from rest_framework.test import APIClient

from annotation.api.urls import urlpatterns as annotation_api_routes
from annotation.models import Assignment, TakedownRequest
from annotation.services import annotation_submit, assignment_next
from ml.api.urls import urlpatterns as ml_api_routes
from provenance.api.urls import urlpatterns as provenance_api_routes
from tests.annotation.factories import make_enrolled_annotator
from tests.permission_world import ROLES, World, db_state, world_build, world_user

# Database-agnostic and large (every role x every route): run once, on SQLite.
pytestmark = [pytest.mark.django_db, pytest.mark.matrix]


@pytest.fixture(autouse=True)
def _media_root(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def world() -> World:
    return world_build()


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
    return {"file": SimpleUploadedFile("t.csv", b"external_id,text,license\nq1,hi,CC0-1.0\n")}


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
        Endpoint(
            "import_get",
            "get",
            lambda w: f"/api/v1/projects/{w.draft.pk}/imports/{w.batch.pk}/",
        ),
        # Governance: takedowns, data subjects' consent, reports
        Endpoint("takedowns_list", "get", lambda w: "/api/v1/takedowns/"),
        Endpoint(
            "takedowns_create",
            "post",
            lambda w: "/api/v1/takedowns/",
            lambda w: {"reference": str(w.item.pk), "kind": "privacy", "reason": "It shows me."},
        ),
        Endpoint("takedown_get", "get", lambda w: f"/api/v1/takedowns/{w.takedown.pk}/"),
        Endpoint(
            "takedown_decide",
            "post",
            lambda w: f"/api/v1/takedowns/{w.takedown.pk}/decision/",
            lambda w: {"accept": True, "reason": "The person is identifiable."},
        ),
        Endpoint(
            "item_subject_consent",
            "put",
            lambda w: f"/api/v1/items/{w.item.pk}/subject-consent/",
            lambda w: {"status": "not_applicable"},
        ),
        Endpoint(
            "item_control",
            "patch",
            lambda w: f"/api/v1/items/{w.spare_item.pk}/control/",
            lambda w: {"control": "gold", "expected_value": "hateful"},
        ),
        Endpoint(
            "license_report", "get", lambda w: f"/api/v1/projects/{w.project.pk}/reports/licenses/"
        ),
        Endpoint(
            "license_report_csv",
            "get",
            lambda w: f"/api/v1/projects/{w.project.pk}/reports/licenses/?format=csv",
        ),
        Endpoint(
            "consent_report", "get", lambda w: f"/api/v1/projects/{w.project.pk}/reports/consent/"
        ),
        # Agreement analysis
        Endpoint("agreement", "get", lambda w: f"/api/v1/projects/{w.project.pk}/agreement/"),
        Endpoint(
            "agreement_refresh",
            "post",
            lambda w: f"/api/v1/projects/{w.project.pk}/agreement/refresh/",
            lambda w: {},
        ),
        Endpoint(
            "items_disagreement",
            "get",
            lambda w: f"/api/v1/projects/{w.project.pk}/items/disagreement/",
        ),
        Endpoint(
            "annotators_agreement",
            "get",
            lambda w: f"/api/v1/projects/{w.project.pk}/annotators/agreement/",
        ),
        Endpoint(
            "group_disagreement",
            "get",
            lambda w: f"/api/v1/projects/{w.project.pk}/groups/{w.question}/",
        ),
        # Dataset versions
        Endpoint("datasets_list", "get", lambda w: f"/api/v1/projects/{w.project.pk}/datasets/"),
        Endpoint(
            "datasets_create",
            "post",
            lambda w: f"/api/v1/projects/{w.project.pk}/datasets/",
            lambda w: {"recipe": {}},
        ),
        Endpoint(
            "datasets_dry_run",
            "post",
            lambda w: f"/api/v1/projects/{w.project.pk}/datasets/dry-run/",
            lambda w: {"recipe": {"min_labels": 1}},
        ),
        Endpoint("dataset_get", "get", lambda w: f"/api/v1/datasets/{w.dataset.pk}/"),
        Endpoint("dataset_download", "get", lambda w: f"/api/v1/datasets/{w.dataset.pk}/download/"),
        Endpoint(
            "dataset_manifest",
            "get",
            lambda w: f"/api/v1/datasets/{w.dataset.pk}/files/manifest.json",
        ),
        Endpoint(
            "dataset_compare",
            "get",
            lambda w: f"/api/v1/datasets/{w.dataset.pk}/compare/{w.dataset.pk}/",
        ),
        Endpoint("dataset_rebuild", "post", lambda w: f"/api/v1/datasets/{w.dataset.pk}/rebuild/"),
        Endpoint(
            "dataset_retry", "post", lambda w: f"/api/v1/datasets/{w.failed_dataset.pk}/retry/"
        ),
        # Training runs
        Endpoint(
            "training_runs_list",
            "get",
            lambda w: f"/api/v1/projects/{w.project.pk}/training-runs/",
        ),
        Endpoint(
            "dataset_training_runs",
            "get",
            lambda w: f"/api/v1/datasets/{w.dataset.pk}/training-runs/",
        ),
        Endpoint(
            "training_runs_create",
            "post",
            lambda w: f"/api/v1/datasets/{w.dataset.pk}/training-runs/",
            lambda w: {"params": {"max_epochs": 1}},
        ),
        Endpoint("training_run_get", "get", lambda w: f"/api/v1/training-runs/{w.run.pk}/"),
        Endpoint(
            "training_run_cancel",
            "post",
            lambda w: f"/api/v1/training-runs/{w.pending_run.pk}/cancel/",
        ),
        Endpoint(
            "training_run_download", "get", lambda w: f"/api/v1/training-runs/{w.run.pk}/download/"
        ),
        Endpoint(
            "training_run_metrics",
            "get",
            lambda w: f"/api/v1/training-runs/{w.run.pk}/files/metrics.json",
        ),
        Endpoint(
            "training_run_weights",
            "get",
            lambda w: f"/api/v1/training-runs/{w.run.pk}/files/weights.pt",
        ),
    ]
}
# Anyone may file a takedown request, signed in or not, auditors included: it asks the
# deciders for something and changes no data (see test_api_takedown_filing_*).
PUBLIC = ("takedowns_create",)
# Routes outside this matrix, with where their access is tested.
UNLISTED_ROUTES = {
    ("api-token", "post"): "public sign-in, locked out like the page: tests/core/test_api_auth.py",
    ("api-token", "delete"): "any signed-in user ends their own token: tests/core/test_api_auth.py",
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
OWNER_ONLY = (
    "project_patch",
    "project_transition",
    "imports_create",
    "agreement_refresh",
    "datasets_create",
    "datasets_dry_run",
    "dataset_rebuild",
    "dataset_retry",
    # Auditors read a version's manifest and counts, not its data.
    "dataset_download",
    "training_runs_create",
    "training_run_cancel",
    # ... and a run's metrics and plots, not its weights or predictions.
    "training_run_download",
    "training_run_weights",
)
# Behind IsResearcherOrStaff: annotators are refused by role before any lookup.
RESEARCHER_WRITES = ("takedown_decide", "item_subject_consent", "item_control")
GOVERNANCE_READS = (
    "project_progress",
    "project_items",
    "imports_list",
    "import_get",
    "license_report",
    "license_report_csv",
    "consent_report",
    "agreement",
    "items_disagreement",
    "annotators_agreement",
    "group_disagreement",
    "datasets_list",
    "dataset_get",
    "dataset_manifest",
    "dataset_compare",
    "training_runs_list",
    "dataset_training_runs",
    "training_run_get",
    "training_run_metrics",
)
AUTHOR_ONLY = ("annotation_get", "annotation_patch")
AUDIT = ("audit_events", "audit_verify")

# (role, endpoint) -> the refusal expected. 403 for a role that may never call the
# endpoint; 404 where the endpoint is theirs to call but the object is outside their scope.
DENIED: dict[tuple[str, str], int] = {}
for _name in ENDPOINTS:
    if _name not in PUBLIC:
        DENIED[("anonymous", _name)] = 403
for _role in ("annotator_not_enrolled", "annotator_enrolled"):
    DENIED[(_role, "projects_create")] = 403
    DENIED[(_role, "draft_get")] = 404
    DENIED[(_role, "takedown_get")] = 404
    for _name in OWNER_ONLY + GOVERNANCE_READS:
        DENIED[(_role, _name)] = 404
    for _name in AUDIT + RESEARCHER_WRITES:
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
    "takedown_get",
    *OWNER_ONLY,
    *RESEARCHER_WRITES,
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
    if _endpoint.writes and _name not in PUBLIC:
        DENIED[("auditor", _name)] = 403  # auditors never write, whatever the endpoint
DENIED[("auditor", "dataset_download")] = 403
DENIED[("auditor", "training_run_download")] = 403
DENIED[("auditor", "training_run_weights")] = 403


# A demoted owner is an annotator who never enrolled: the ownership record grants nothing.
for (_role, _name), _status in list(DENIED.items()):
    if _role == "annotator_not_enrolled":
        DENIED[("demoted_owner", _name)] = _status


def call(world: World, role: str, endpoint: Endpoint) -> Any:
    client = APIClient()
    user = world_user(world, role)
    if user is not None:
        client.force_authenticate(user)
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
    world_user(world, role)
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
    if not endpoint.writes
    and (role, name) not in DENIED
    # Streamed files: their bodies are checked in their own tests.
    and name
    not in (
        "item_image",
        "dataset_download",
        "dataset_manifest",
        "training_run_download",
        "training_run_metrics",
        "training_run_weights",
    )
]


@pytest.mark.parametrize(("role", "endpoint_name"), ALLOWED_READS)
def test_api_permission_allowed_read_succeeds_and_shows_no_identity(
    world: World, role: str, endpoint_name: str
) -> None:
    response = call(world, role, ENDPOINTS[endpoint_name])

    assert response.status_code == 200, response.content
    text = response.content.decode()
    for user in world.users.values():
        # A whole word: CSV downloads carry names unquoted.
        assert not re.search(rf"\b{re.escape(user.username)}\b", text), user.username
        assert user.email not in text
    for forbidden_key in ('"username"', '"email"', '"annotator_id"', '"actor_id"', '"owner_id"'):
        assert forbidden_key not in text


def _api_routes(patterns: list[URLPattern | URLResolver]) -> set[tuple[str, str]]:
    """(route name, method) for every operation the API's views define."""
    found: set[tuple[str, str]] = set()
    for pattern in patterns:
        assert isinstance(pattern, URLPattern), pattern
        view_class = getattr(pattern.callback, "view_class", None)
        assert view_class is not None, pattern
        for method in ("get", "post", "put", "patch", "delete"):
            if hasattr(view_class, method):
                found.add((str(pattern.name), method))
    return found


def test_api_permission_matrix_covers_every_api_route(world: World) -> None:
    routes = _api_routes([*annotation_api_routes, *provenance_api_routes, *ml_api_routes])
    covered = {
        (str(resolve(urlsplit(endpoint.path(world)).path).url_name), endpoint.method)
        for endpoint in ENDPOINTS.values()
    }

    missing = routes - covered - set(UNLISTED_ROUTES)

    assert not missing, f"API operations without a permission case: {sorted(missing)}"
    assert covered <= routes


# A role each write endpoint is meant for, to show the matrix's bodies are valid requests:
# what refuses them elsewhere is the permission check, not bad input.
WRITE_CALLERS = ("owner", "annotator_not_enrolled", "annotator_enrolled")
# Accepted without a change: the annotator is handed the assignment they already hold.
UNCHANGED_WHEN_ACCEPTED = ("next", "datasets_dry_run")


@pytest.mark.parametrize(
    "endpoint_name",
    [name for name, endpoint in ENDPOINTS.items() if endpoint.writes and name not in PUBLIC],
)
def test_api_permission_write_body_accepted_for_a_role_it_is_meant_for(
    world: World, endpoint_name: str
) -> None:
    role = next(r for r in WRITE_CALLERS if (r, endpoint_name) not in DENIED)
    before = db_state()

    response = call(world, role, ENDPOINTS[endpoint_name])

    assert 200 <= response.status_code < 300, (role, response.content)
    assert (db_state() == before) == (endpoint_name in UNCHANGED_WHEN_ACCEPTED)


def test_api_takedown_filing_public_for_every_role_then_rate_limited(
    world: World, settings: Any
) -> None:
    settings.CHORUS_TAKEDOWN_MAX_PER_HOUR = len(ROLES)
    endpoint = ENDPOINTS["takedowns_create"]
    filed = TakedownRequest.objects.count()

    for role in ROLES:
        response = call(world, role, endpoint)

        assert response.status_code == 202, (role, response.content)
        assert response.json()["status"] == "received"
    flooded = call(world, "auditor", endpoint)

    assert flooded.status_code == 429
    assert flooded.json()["code"] == "rate_limited"
    assert TakedownRequest.objects.count() == filed + len(ROLES)


def test_api_takedowns_list_scoped_in_selector_contact_for_deciders_only(world: World) -> None:
    seen = {
        role: call(world, role, ENDPOINTS["takedowns_list"]).json()["results"]
        for role in ROLES
        if role != "anonymous"
    }

    for role in ("annotator_not_enrolled", "annotator_enrolled", "other_researcher"):
        assert seen[role] == [], role
    assert seen["demoted_owner"] == []
    for role in ("owner", "auditor", "staff"):
        assert [request["id"] for request in seen[role]] == [world.takedown.pk], role
    assert seen["owner"][0]["contact"] == seen["staff"][0]["contact"] == "requester@example.net"
    assert seen["auditor"][0]["contact"] == ""


def test_api_auditor_any_unsafe_method_on_any_route_refused_and_nothing_changes(
    world: World,
) -> None:
    """Also the methods a route does not take: the auditor check runs before DRF's 405."""
    client = APIClient()
    client.force_authenticate(world.users["auditor"])
    paths = sorted({endpoint.path(world) for endpoint in ENDPOINTS.values()})
    public = {(ENDPOINTS[name].path(world), ENDPOINTS[name].method) for name in PUBLIC}
    before = db_state()

    for path in paths:
        for method in ("post", "put", "patch", "delete"):
            if (path, method) not in public:
                response = getattr(client, method)(path, {}, format="json")
                assert response.status_code == 403, (method, path)
                assert response.json()["code"] == "auditor_read_only", (method, path)

    assert db_state() == before


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
