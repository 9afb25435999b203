"""Trust defects of the review (issue: consent, ownership, audit, counts): each test failed
on the code before its fix. The permission matrices carry the demoted owner through every
route (``tests/test_api_permissions.py``, ``tests/test_page_permissions.py``)."""

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from annotation.models import Item, Project, ProjectStatus, TakedownRequest
from annotation.selectors import annotator_progress, project_progress
from annotation.services import (
    annotation_submit,
    assignment_next,
    project_transition,
    project_update,
    takedown_decide,
    takedown_file,
    takedown_throttle,
)
from core.errors import PermissionDenied
from core.models import Role, User
from core.services import user_role_set
from provenance.models import AuditEvent
from tests.annotation.factories import make_enrolled_annotator, make_open_project
from tests.core.factories import make_user

pytestmark = pytest.mark.django_db


def _demoted(project: Project, role: str = Role.ANNOTATOR) -> User:
    staff = make_user(Role.RESEARCHER, is_staff=True)
    return user_role_set(user=project.owner, role=role, actor=staff)


# ---------------------------------------------------------------- one ownership rule


@pytest.mark.parametrize("role", [Role.ANNOTATOR, Role.AUDITOR])
def test_project_update_demoted_owner_refused_project_unchanged(role: str) -> None:
    project = make_open_project(2)
    owner = _demoted(project, role)

    with pytest.raises(PermissionDenied):
        project_update(project=project, actor=owner, data={"title": "Hijacked"})

    assert Project.objects.get(pk=project.pk).title != "Hijacked"


def test_project_transition_demoted_owner_refused_project_stays_open() -> None:
    project = make_open_project(2)
    owner = _demoted(project)

    with pytest.raises(PermissionDenied):
        project_transition(project=project, actor=owner, status=ProjectStatus.CLOSED)

    assert Project.objects.get(pk=project.pk).status == ProjectStatus.OPEN


def test_takedown_decide_demoted_owner_refused() -> None:
    project = make_open_project(2)
    item = Item.objects.filter(project=project).first()
    assert item is not None
    (request,) = takedown_file(reference=str(item.pk), kind="privacy", reason="Me.")
    owner = _demoted(project)

    with pytest.raises(PermissionDenied):
        takedown_decide(request=request, actor=owner, accept=True, reason="ok")

    assert TakedownRequest.objects.get(pk=request.pk).status == TakedownRequest.Status.OPEN


def test_api_demoted_owner_patch_and_transition_refused_nothing_changes() -> None:
    project = make_open_project(2)
    client = APIClient()
    client.force_authenticate(_demoted(project))

    patched = client.patch(f"/api/v1/projects/{project.pk}/", {"title": "X"}, format="json")
    moved = client.post(
        f"/api/v1/projects/{project.pk}/transition/", {"status": "closed"}, format="json"
    )

    assert (patched.status_code, moved.status_code) == (404, 404)
    stored = Project.objects.get(pk=project.pk)
    assert (stored.title, stored.status) == (project.title, ProjectStatus.OPEN)


@pytest.mark.parametrize(
    "who",
    ["owner", "demoted_owner", "other_researcher", "staff", "auditor", "annotator"],
)
def test_project_managed_by_queryset_mirrors_is_managed_by(who: str) -> None:
    project = make_open_project(1)
    users = {
        "owner": project.owner,
        "other_researcher": make_user(Role.RESEARCHER),
        "staff": make_user(Role.AUDITOR, is_staff=True),
        "auditor": make_user(Role.AUDITOR),
        "annotator": make_user(Role.ANNOTATOR),
    }
    user = _demoted(project) if who == "demoted_owner" else users[who]

    in_queryset = Project.objects.managed_by(user).filter(pk=project.pk).exists()

    assert in_queryset == project.is_managed_by(user)
    assert in_queryset == (who in ("owner", "staff"))


def test_page_analysis_back_link_only_for_who_manages_it() -> None:
    project = make_open_project(2)
    link = reverse("research-project", args=[project.pk])
    pages = {}
    for name, user in (("owner", project.owner), ("auditor", make_user(Role.AUDITOR))):
        client = Client()
        client.force_login(user)
        pages[name] = client.get(reverse("research-analysis", args=[project.pk])).content.decode()

    assert f'href="{link}"' in pages["owner"]
    assert f'href="{link}"' not in pages["auditor"]


# ---------------------------------------------------------------- taken-down items leave counts


def test_project_progress_tombstoned_item_and_its_labels_leave_every_count() -> None:
    project = make_open_project(3, k=1)
    annotator = make_enrolled_annotator(project)
    labeled = []
    for _ in range(3):
        assignment = assignment_next(project=project, annotator=annotator)
        assert assignment is not None
        annotation_submit(annotator=annotator, item=assignment.item, value="hateful")
        labeled.append(assignment.item)
    (request,) = takedown_file(reference=str(labeled[0].pk), kind="privacy", reason="Me.")
    takedown_decide(request=request, actor=project.owner, accept=True, reason="Identifiable.")

    progress = project_progress(project=project)

    assert (progress.items, progress.items_complete, progress.labels) == (2, 2, 2)
    assert progress.labels_per_item == {1: 2}


def test_annotator_progress_tombstoned_item_not_remaining() -> None:
    project = make_open_project(3, k=1)
    annotator = make_enrolled_annotator(project)
    item = Item.objects.filter(project=project).first()
    assert item is not None
    (request,) = takedown_file(reference=str(item.pk), kind="privacy", reason="Me.")
    takedown_decide(request=request, actor=project.owner, accept=True, reason="Identifiable.")

    assert annotator_progress(project=project, annotator=annotator).remaining == 2


# ---------------------------------------------------------------- public takedown filings


def test_takedown_file_anonymous_audited_as_public_filing_with_keyed_hash() -> None:
    project = make_open_project(1)
    item = Item.objects.get(project=project)

    filer = takedown_throttle(address="203.0.113.7")
    takedown_file(reference=str(item.pk), kind="privacy", reason="Me.", filer=filer)

    event = AuditEvent.objects.get(action="takedown.file")
    assert event.actor_id is None
    assert event.actor_pseudonym == filer
    assert filer.startswith("public:") and len(filer) == len("public:") + 16
    assert "203.0.113.7" not in filer
    assert takedown_throttle(address="203.0.113.7") == filer  # the same filer, recognisable
    assert takedown_throttle(address="203.0.113.8") != filer


def test_page_audit_log_shows_public_filing_not_system() -> None:
    project = make_open_project(1)
    item = Item.objects.get(project=project)
    Client().post(
        reverse("takedown"), {"reference": str(item.pk), "kind": "privacy", "reason": "Me."}
    )
    client = Client()
    client.force_login(make_user(Role.AUDITOR))

    html = client.get(reverse("audit-log") + "?action=takedown.file").content.decode()

    assert "public filing" in html
