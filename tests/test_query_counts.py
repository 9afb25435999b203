"""Query counts of every page and list endpoint: they must not grow with the rows.

Each case builds a small and a large world through the real services (the large one holds
several times the rows the page or endpoint lists or counts), requests the route in both,
and holds both to the same bound; the large world must also take exactly as many queries
as the small one. Every page route and every paginated API endpoint has a case
(``test_query_count_cases_cover_every_page_route_and_list_endpoint``), except those in
``COUNTED_ELSEWHERE``, whose owners keep their own query-count tests.
"""

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, reverse
from rest_framework.test import APIClient

from annotation.api.urls import urlpatterns as annotation_api_routes
from annotation.ingest import import_batch_create, import_batch_run
from annotation.models import (
    Annotation,
    Enrolment,
    ImportBatch,
    Item,
    Project,
    ProjectStatus,
    SubjectConsent,
    TakedownRequest,
)
from annotation.services import (
    annotation_submit,
    annotation_update,
    assignment_next,
    assignment_skip,
    enrolment_create,
    enrolment_withdraw,
    item_subject_consent_set,
    project_transition,
    project_update,
    takedown_decide,
    takedown_file,
)
from annotation.urls import urlpatterns as annotation_page_routes
from core.models import Role, User
from core.urls import urlpatterns as core_page_routes
from provenance.api.urls import urlpatterns as provenance_api_routes
from provenance.urls import urlpatterns as provenance_page_routes
from tests.annotation.factories import (
    add_control_items,
    add_text_items,
    make_enrolled_annotator,
    make_open_project,
    make_project,
)
from tests.core.factories import make_user

pytestmark = pytest.mark.django_db

SMALL, LARGE = 2, 12
# Agreement analysis pages and endpoints, and the audit log page: counted in their own tests.
COUNTED_ELSEWHERE = frozenset(
    {
        "research-analysis",
        "research-analysis-items",
        "research-analysis-refresh",
        "audit-log",
        "api-project-agreement",
        "api-project-items-disagreement",
        "api-project-annotators-agreement",
        "api-project-group-disagreement",
    }
)
SURVEY = [{"key": "region", "text": "Where you live", "kind": "single", "options": ["n", "s"]}]
_rows = itertools.count(1)


@pytest.fixture(autouse=True)
def _media_root(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path


# ---------------------------------------------------------------- world building blocks


@dataclass(frozen=True)
class Scene:
    """Who asks for which URL; a POST when ``body`` is given."""

    user: User | None
    url: str
    body: dict[str, Any] | None = None


def _label_up_to(project: Project, annotator: User, n: int) -> list[Annotation]:
    labels = []
    for _ in range(n):
        assignment = assignment_next(project=project, annotator=annotator)
        if assignment is None:
            break
        labels.append(
            annotation_submit(annotator=annotator, item=assignment.item, value="neither").annotation
        )
    return labels


def _import(project: Project, lines: list[str]) -> ImportBatch:
    """A CSV import run through the real ingest: every line a row (good or bad)."""
    header = "external_id,text,license,source,creator,attribution"
    content = "\n".join([header, *lines]).encode()
    batch = import_batch_create(
        project=project, actor=project.owner, upload=SimpleUploadedFile("items.csv", content)
    )
    return import_batch_run(batch_id=batch.pk)


def _import_items(project: Project, n: int) -> ImportBatch:
    """``n`` text items from a few sources, under various licenses (and none)."""
    rows = []
    for _ in range(n):
        i = next(_rows)
        license_ = ("CC-BY-4.0", "CC0-1.0", "", "CC-BY-SA-4.0")[i % 4]
        rows.append(f"r{i},text number {i},{license_},source {i % 3},creator {i},")
    batch = _import(project, rows)
    assert (batch.status, batch.item_count) == (ImportBatch.Status.DONE, n), batch.errors
    return batch


def _labeled_project(n: int, *, k: int = 2, annotators: int = 2) -> tuple[Project, list[User]]:
    """An open project of ``n`` items, each labeled by ``annotators`` annotators."""
    project = make_open_project(n, k=k)
    people = [make_enrolled_annotator(project) for _ in range(annotators)]
    for person in people:
        _label_up_to(project, person, n)
    return project, people


def _takedowns(n: int, *, owner: User | None = None) -> list[TakedownRequest]:
    """``n`` requests over ``n`` open projects' items (of ``owner``, or each of its own
    researcher): open, accepted and rejected, and one naming no item."""
    requests = []
    for i in range(n):
        project = make_project(owner)
        item, _ = add_text_items(project, 2, start=next(_rows) * 10)
        project_transition(project=project, actor=project.owner, status=ProjectStatus.OPEN)
        (request,) = takedown_file(
            reference=str(item.pk), kind="privacy", reason="It shows me.", contact="me@example.net"
        )
        if i % 3:
            request = takedown_decide(
                request=request, actor=project.owner, accept=i % 3 == 1, reason="Checked."
            )
        requests.append(request)
    takedown_file(reference="nothing-matches", kind="other", reason="Unclear.")
    return requests


def _annotator_in_projects(n: int) -> User:
    """An annotator seeing ``n`` open projects in every state: not joined, joined with labels
    and a skip, withdrawn, asked to consent again, and joined then closed."""
    annotator = make_user(Role.ANNOTATOR)
    for i in range(n):
        project = make_open_project(4, k=2, survey=SURVEY if i % 2 else [])
        state = i % 5
        if state == 0:
            continue
        enrolment = enrolment_create(project=project, annotator=annotator)
        if state == 1:
            _label_up_to(project, annotator, 1)
            held = assignment_next(project=project, annotator=annotator)
            assert held is not None
            assignment_skip(assignment=held, annotator=annotator)
        elif state == 2:
            enrolment_withdraw(enrolment=enrolment, actor=annotator)
        elif state == 3:
            project_update(
                project=project,
                actor=project.owner,
                data={"instructions": f"New instructions {i}."},
                confirm_reconsent=True,
            )
        else:
            project_transition(project=project, actor=project.owner, status=ProjectStatus.CLOSED)
    return annotator


# ---------------------------------------------------------------- pages


def _home(n: int) -> Scene:
    owner = make_user(Role.RESEARCHER)
    for _ in range(n):
        make_project(owner)
    return Scene(owner, reverse("home"))


def _annotator_home(n: int) -> Scene:
    return Scene(_annotator_in_projects(n), reverse("annotator-home"))


def _consent(n: int) -> Scene:
    project = make_open_project(n)
    for _ in range(n):
        make_enrolled_annotator(project)
    return Scene(make_user(Role.ANNOTATOR), reverse("annotate-consent", args=[project.pk]))


def _consent_again(n: int) -> Scene:
    project, (annotator, *_) = _labeled_project(n)
    project_update(
        project=project,
        actor=project.owner,
        data={"instructions": "Changed instructions."},
        confirm_reconsent=True,
    )
    return Scene(annotator, reverse("annotate-consent", args=[project.pk]))


def _survey(n: int) -> Scene:
    project = make_open_project(n, survey=SURVEY)
    annotators = [make_enrolled_annotator(project) for _ in range(n)]
    return Scene(annotators[0], reverse("annotate-survey", args=[project.pk]))


def _annotator_with_labels(n: int) -> tuple[Project, User, list[Annotation]]:
    """An annotator who labeled ``n`` of ``2n`` items, next to another who labeled ``n``."""
    project = make_open_project(2 * n, k=2)
    annotator, other = make_enrolled_annotator(project), make_enrolled_annotator(project)
    labels = _label_up_to(project, annotator, n)
    _label_up_to(project, other, n)
    return project, annotator, labels


def _label(n: int) -> Scene:
    project, annotator, _ = _annotator_with_labels(n)
    return Scene(annotator, reverse("annotate-label", args=[project.pk]))


def _skip(n: int) -> Scene:
    project, annotator, _ = _annotator_with_labels(n)
    held = assignment_next(project=project, annotator=annotator)
    assert held is not None
    return Scene(annotator, reverse("annotate-skip", args=[project.pk]), {"assignment": held.pk})


def _label_next(n: int) -> Scene:
    project, annotator, _ = _annotator_with_labels(n)
    return Scene(annotator, reverse("annotate-next", args=[project.pk]), {})


def _withdraw(n: int) -> Scene:
    project, annotator, _ = _annotator_with_labels(n)
    return Scene(annotator, reverse("annotate-withdraw", args=[project.pk]))


def _my_labels(n: int) -> Scene:
    project, annotator, _ = _annotator_with_labels(n)
    return Scene(annotator, reverse("annotate-my-labels", args=[project.pk]))


def _label_edit(n: int) -> Scene:
    _, annotator, labels = _annotator_with_labels(n)
    edited = annotation_update(annotation=labels[0], annotator=annotator, value="hateful")
    return Scene(annotator, reverse("annotate-label-edit", args=[edited.pk]))


def _research_projects(n: int) -> Scene:
    owner = make_user(Role.RESEARCHER)
    for i in range(n):
        project = make_project(owner)
        if i % 2:
            add_text_items(project, 1)
            project_transition(project=project, actor=owner, status=ProjectStatus.OPEN)
    return Scene(owner, reverse("research-projects"))


def _research_projects_staff(n: int) -> Scene:
    for _ in range(n):
        make_project()
    return Scene(make_user(Role.RESEARCHER, is_staff=True), reverse("research-projects"))


def _project_new(n: int) -> Scene:
    owner = make_user(Role.RESEARCHER)
    for _ in range(n):
        make_project(owner)
    return Scene(owner, reverse("research-project-new"))


def _project_detail(n: int) -> Scene:
    project, _ = _labeled_project(n)
    for _ in range(n):
        _import_items(project, 1)
    return Scene(project.owner, reverse("research-project", args=[project.pk]))


def _project_edit(n: int) -> Scene:
    project, _ = _labeled_project(n, annotators=n)
    return Scene(project.owner, reverse("research-project-edit", args=[project.pk]))


def _project_status(n: int) -> Scene:
    project = make_open_project(n, k=2)
    for _ in range(n):
        assignment_next(project=project, annotator=make_enrolled_annotator(project))
    return Scene(
        project.owner,
        reverse("research-project-status", args=[project.pk]),
        {"status": ProjectStatus.CLOSED},
    )


def _project_import(n: int) -> Scene:
    project = make_project()
    for _ in range(n):
        _import_items(project, 1)
    return Scene(project.owner, reverse("research-project-import", args=[project.pk]))


def _import_batch(n: int) -> Scene:
    project = make_project()
    # Rows without a text: every one is an error of the batch.
    batch = _import(project, [f"bad{next(_rows)},,CC0-1.0,,," for _ in range(n)])
    assert batch.status == ImportBatch.Status.FAILED
    return Scene(project.owner, reverse("research-import-batch", args=[project.pk, batch.pk]))


def _controls(n: int) -> Scene:
    project = make_open_project(n, k=2, control_rate=0.5)
    add_control_items(project, n, expected_value="hateful", start=next(_rows) * 1000)
    for _ in range(2):
        _label_up_to(project, make_enrolled_annotator(project), 2 * n)
    return Scene(project.owner, reverse("research-project-controls", args=[project.pk]))


def _takedown_public(n: int) -> Scene:
    _takedowns(n)
    return Scene(None, reverse("takedown"))


def _takedown_list(n: int) -> Scene:
    _takedowns(n)
    return Scene(make_user(Role.AUDITOR), reverse("takedown-list") + "?status=all")


def _takedown_list_owner(n: int) -> Scene:
    owner = make_user(Role.RESEARCHER)
    _takedowns(n, owner=owner)
    _takedowns(n)  # other researchers' requests, not shown
    return Scene(owner, reverse("takedown-list") + "?status=all")


def _takedown_detail(n: int) -> Scene:
    requests = _takedowns(n)
    project = requests[0].project
    assert project is not None
    return Scene(project.owner, reverse("takedown-detail", args=[requests[0].pk]))


def _report_licenses(n: int) -> Scene:
    project = make_project()
    _import_items(project, n)
    return Scene(make_user(Role.AUDITOR), reverse("report-licenses", args=[project.pk]))


def _report_consent(n: int) -> Scene:
    project = make_project()
    _import_items(project, n)
    project_transition(project=project, actor=project.owner, status=ProjectStatus.OPEN)
    items = list(Item.objects.filter(project=project).order_by("pk"))
    for item in items[::2]:
        item_subject_consent_set(
            item=item,
            actor=project.owner,
            status=SubjectConsent.OBTAINED,
            consent_text="I agree to be shown.",
            purposes=["research"],
            evidence="Signed release in the archive.",
        )
    annotators = [make_enrolled_annotator(project) for _ in range(n)]
    enrolment_withdraw(
        enrolment=Enrolment.objects.get(project=project, annotator=annotators[0]),
        actor=annotators[0],
    )
    for item in items[1::2]:
        takedown_file(reference=str(item.pk), kind="privacy", reason="It shows me.")
    return Scene(make_user(Role.AUDITOR), reverse("report-consent", args=[project.pk]))


def _item_subject_consent(n: int) -> Scene:
    project = make_project()
    _import_items(project, n)
    item = Item.objects.filter(project=project).order_by("pk")[0]
    return Scene(project.owner, reverse("item-subject-consent", args=[item.pk]))


def _auditor_projects(n: int) -> Scene:
    for i in range(n):
        project, annotators = _labeled_project(3)
        if i % 2:
            enrolment_withdraw(
                enrolment=Enrolment.objects.get(project=project, annotator=annotators[0]),
                actor=annotators[0],
            )
    return Scene(make_user(Role.AUDITOR), reverse("auditor-projects"))


def _login(n: int) -> Scene:
    for _ in range(n):
        make_user(Role.ANNOTATOR)
    return Scene(None, reverse("login"))


def _logout(n: int) -> Scene:
    owner = make_user(Role.RESEARCHER)
    for _ in range(n):
        make_project(owner)
    return Scene(owner, reverse("logout"), {})


# ---------------------------------------------------------------- list endpoints


def _api_projects_researcher(n: int) -> Scene:
    owner = make_user(Role.RESEARCHER)
    for _ in range(n):
        make_project(owner)
    return Scene(owner, reverse("api-projects"))


def _api_projects_annotator(n: int) -> Scene:
    return Scene(_annotator_in_projects(n), reverse("api-projects"))


def _api_projects_auditor(n: int) -> Scene:
    for _ in range(n):
        make_open_project(1)
    return Scene(make_user(Role.AUDITOR), reverse("api-projects"))


def _api_items(n: int) -> Scene:
    project = make_project()
    _import_items(project, n)
    return Scene(project.owner, reverse("api-project-items", args=[project.pk]))


def _api_imports(n: int) -> Scene:
    project = make_project()
    for _ in range(n):
        _import_items(project, 1)
    return Scene(project.owner, reverse("api-project-imports", args=[project.pk]))


def _api_assignments(n: int) -> Scene:
    project, annotator, _ = _annotator_with_labels(n)
    held = assignment_next(project=project, annotator=annotator)
    assert held is not None
    assignment_skip(assignment=held, annotator=annotator)
    assignment_next(project=project, annotator=annotator)
    return Scene(annotator, reverse("api-assignments", args=[project.pk]))


def _api_annotations_owner(n: int) -> Scene:
    project, _ = _labeled_project(n)
    return Scene(project.owner, reverse("api-project-annotations", args=[project.pk]))


def _api_annotations_annotator(n: int) -> Scene:
    project, annotator, _ = _annotator_with_labels(n)
    return Scene(annotator, reverse("api-project-annotations", args=[project.pk]))


def _api_takedowns_auditor(n: int) -> Scene:
    _takedowns(n)
    return Scene(make_user(Role.AUDITOR), reverse("api-takedowns"))


def _api_takedowns_staff(n: int) -> Scene:
    _takedowns(n)
    return Scene(make_user(Role.RESEARCHER, is_staff=True), reverse("api-takedowns"))


def _api_audit_events(n: int) -> Scene:
    for _ in range(n):
        make_open_project(1)
    return Scene(make_user(Role.AUDITOR), reverse("api-audit-events"))


# ---------------------------------------------------------------- the cases


@dataclass(frozen=True)
class Case:
    """A route, how to build a world of a given size for it, and its query bound."""

    id: str
    route: str
    build: Callable[[int], Scene]
    max_queries: int
    status: int = 200
    api: bool = False
    # Whether the large world must take exactly the small one's count, not only the bound.
    exact: bool = True

    def client(self, scene: Scene) -> Client | APIClient:
        """Signed in before counting: the sign-in's own queries are not the route's."""
        if self.api:
            api_client = APIClient()
            if scene.user is not None:
                api_client.force_authenticate(scene.user)
            return api_client
        client = Client()
        if scene.user is not None:
            client.force_login(scene.user)
        return client

    @staticmethod
    def request(client: Client | APIClient, scene: Scene) -> Any:
        if scene.body is not None:
            return client.post(scene.url, scene.body)
        return client.get(scene.url)


CASES = [
    Case("home", "home", _home, 2, status=302),
    Case("annotator-home", "annotator-home", _annotator_home, 6),
    Case("annotate-consent", "annotate-consent", _consent, 4),
    Case("annotate-consent-again", "annotate-consent", _consent_again, 6),
    Case("annotate-survey", "annotate-survey", _survey, 6),
    Case("annotate-label", "annotate-label", _label, 8),
    Case("annotate-skip", "annotate-skip", _skip, 22, status=302, exact=False),
    Case("annotate-next", "annotate-next", _label_next, 21, status=302, exact=False),
    Case("annotate-withdraw", "annotate-withdraw", _withdraw, 4),
    Case("annotate-my-labels", "annotate-my-labels", _my_labels, 5),
    Case("annotate-label-edit", "annotate-label-edit", _label_edit, 4),
    Case("research-projects", "research-projects", _research_projects, 4),
    Case("research-projects-staff", "research-projects", _research_projects_staff, 4),
    Case("research-project-new", "research-project-new", _project_new, 2),
    Case("research-project", "research-project", _project_detail, 8),
    Case("research-project-edit", "research-project-edit", _project_edit, 4),
    Case("research-project-status", "research-project-status", _project_status, 12, status=302),
    Case("research-project-import", "research-project-import", _project_import, 4),
    Case("research-import-batch", "research-import-batch", _import_batch, 4),
    Case("research-project-controls", "research-project-controls", _controls, 6),
    Case("takedown", "takedown", _takedown_public, 0),
    Case("takedown-list", "takedown-list", _takedown_list, 4),
    Case("takedown-list-owner", "takedown-list", _takedown_list_owner, 4),
    Case("takedown-detail", "takedown-detail", _takedown_detail, 3),
    Case("report-licenses", "report-licenses", _report_licenses, 5),
    Case("report-consent", "report-consent", _report_consent, 8),
    Case("item-subject-consent", "item-subject-consent", _item_subject_consent, 3),
    Case("auditor-projects", "auditor-projects", _auditor_projects, 8),
    Case("login", "login", _login, 0),
    Case("logout", "logout", _logout, 5, status=302),
    Case("api-projects-researcher", "api-projects", _api_projects_researcher, 2, api=True),
    Case("api-projects-annotator", "api-projects", _api_projects_annotator, 2, api=True),
    Case("api-projects-auditor", "api-projects", _api_projects_auditor, 2, api=True),
    Case("api-project-items", "api-project-items", _api_items, 3, api=True),
    Case("api-project-imports", "api-project-imports", _api_imports, 3, api=True),
    Case("api-assignments", "api-assignments", _api_assignments, 3, api=True),
    Case(
        "api-project-annotations-owner",
        "api-project-annotations",
        _api_annotations_owner,
        3,
        api=True,
    ),
    Case(
        "api-project-annotations-annotator",
        "api-project-annotations",
        _api_annotations_annotator,
        3,
        api=True,
    ),
    Case("api-takedowns-auditor", "api-takedowns", _api_takedowns_auditor, 2, api=True),
    Case("api-takedowns-staff", "api-takedowns", _api_takedowns_staff, 2, api=True),
    Case("api-audit-events", "api-audit-events", _api_audit_events, 2, api=True),
]


def _route_names(routes: Sequence[URLPattern | URLResolver]) -> set[str]:
    return {str(route.name) for route in routes if isinstance(route, URLPattern)}


def _list_endpoint_names(routes: Sequence[URLPattern | URLResolver]) -> set[str]:
    """API routes whose view paginates a GET: the list endpoints."""
    names = set()
    for route in routes:
        view_class = getattr(getattr(route, "callback", None), "view_class", None)
        if getattr(view_class, "pagination_class", None) and hasattr(view_class, "get"):
            names.add(str(getattr(route, "name", "")))
    return names


def test_query_count_cases_cover_every_page_route_and_list_endpoint() -> None:
    pages = (
        _route_names(annotation_page_routes)
        | _route_names(core_page_routes)
        | _route_names(provenance_page_routes)
    )
    lists = _list_endpoint_names(annotation_api_routes) | _list_endpoint_names(
        provenance_api_routes
    )
    covered = {case.route for case in CASES}

    assert (pages | lists) - COUNTED_ELSEWHERE == covered
    assert {"api-projects", "api-project-items", "api-audit-events"} <= lists


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_query_count_small_and_large_world_same_bound(
    case: Case, django_assert_max_num_queries: Any
) -> None:
    small_scene = case.build(SMALL)
    small_client = case.client(small_scene)
    with django_assert_max_num_queries(case.max_queries) as small:
        small_response = case.request(small_client, small_scene)
    large_scene = case.build(LARGE)
    large_client = case.client(large_scene)
    with django_assert_max_num_queries(case.max_queries) as large:
        large_response = case.request(large_client, large_scene)

    assert small_response.status_code == case.status, small_response.content[:300]
    assert large_response.status_code == case.status, large_response.content[:300]
    if case.exact:
        assert len(large) == len(small), [query["sql"] for query in large.captured_queries]
