"""Pages for quality control: the controls page, the project form's new settings, and the
labeling page's blindness to control items."""

import random
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from annotation.models import Item, Project, ProjectStatus
from annotation.services import (
    annotation_submit,
    assignment_next,
    project_transition,
)
from core.models import Role
from provenance.models import AuditEvent
from tests.annotation.factories import (
    HATEFUL,
    NEITHER,
    add_control_items,
    add_text_items,
    make_enrolled_annotator,
    make_project,
)
from tests.core.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded_random() -> Iterator[None]:
    state = random.getstate()
    random.seed(11)
    yield
    random.setstate(state)


def controls_url(project: Project) -> str:
    return reverse("research-project-controls", args=[project.pk])


@pytest.fixture
def project() -> Project:
    """A draft with three regular items, t0..t2, and one gold item."""
    project = make_project(k=2)
    add_text_items(project, 3)
    add_control_items(project, 1, expected_value=HATEFUL)
    return project


def state(project: Project, external_id: str) -> tuple[str, object]:
    item = Item.objects.get(project=project, external_id=external_id)
    return item.control, item.expected_value


def test_controls_page_owner_sees_items_accuracy_and_form(project: Project, signed_in) -> None:
    response = signed_in(project.owner).get(controls_url(project))

    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="control-form"' in html
    assert "t10000" in html and "Gold item" in html and "Hateful" in html
    assert "No control item answered yet." in html


def test_controls_page_post_marks_item_by_external_id(project: Project, signed_in) -> None:
    response = signed_in(project.owner).post(
        controls_url(project),
        {"external_id": "t1", "control": "attention", "expected_value": NEITHER},
    )

    assert response.status_code == 302
    assert state(project, "t1") == ("attention", NEITHER)
    assert AuditEvent.objects.filter(action="item.control_set").count() == 2


def test_controls_page_post_unmarks_item_ignoring_answer(project: Project, signed_in) -> None:
    response = signed_in(project.owner).post(
        controls_url(project), {"external_id": "t10000", "control": "", "expected_value": NEITHER}
    )

    assert response.status_code == 302
    assert state(project, "t10000") == ("", None)


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        ({"external_id": "nope", "control": "gold", "expected_value": HATEFUL}, 404, "external id"),
        ({"external_id": "t1", "control": "gold"}, 400, "expected answer"),
        ({"external_id": "t1", "control": "gold", "expected_value": "maybe"}, 400, "valid choice"),
    ],
)
def test_controls_page_post_bad_input_shows_error_and_changes_nothing(
    project: Project, data: dict[str, str], status: int, message: str, signed_in
) -> None:
    response = signed_in(project.owner).post(controls_url(project), data)

    assert response.status_code == status
    assert message in response.content.decode()
    assert state(project, "t1") == ("", None)


def test_controls_page_accuracy_lists_pseudonyms_only(seeded_random: None, signed_in) -> None:
    project = make_project(k=1, control_rate=0.5)
    add_text_items(project, 10)
    (gold,) = add_control_items(project, 1, expected_value=HATEFUL)
    project_transition(project=project, actor=project.owner, status=ProjectStatus.OPEN)
    annotator = make_enrolled_annotator(project)
    while (assignment := assignment_next(project=project, annotator=annotator)) is not None:
        annotation_submit(annotator=annotator, item=assignment.item, value=HATEFUL)
    assert gold.annotations.exists()

    html = signed_in(make_user(Role.AUDITOR)).get(controls_url(project)).content.decode()

    row = re.search(r'<table id="control-accuracy">.*?</table>', html, re.S)
    assert row is not None and annotator.pseudonym in row.group(0)
    assert "100%" in row.group(0)
    assert annotator.username not in html and annotator.email not in html


def test_controls_page_auditor_reads_without_form_and_cannot_post(
    project: Project, signed_in
) -> None:
    auditor = signed_in(make_user(Role.AUDITOR))

    page = auditor.get(controls_url(project))
    post = auditor.post(
        controls_url(project), {"external_id": "t1", "control": "gold", "expected_value": HATEFUL}
    )

    assert page.status_code == 200 and 'id="control-form"' not in page.content.decode()
    assert post.status_code == 403
    assert state(project, "t1") == ("", None)


@pytest.mark.parametrize("method", ["get", "post"])
def test_controls_page_other_researcher_404_annotator_403(
    project: Project, method: str, signed_in
) -> None:
    data = {"external_id": "t1", "control": "gold", "expected_value": HATEFUL}
    other = getattr(signed_in(make_user(Role.RESEARCHER)), method)(controls_url(project), data)
    annotator = getattr(signed_in(make_user(Role.ANNOTATOR)), method)(controls_url(project), data)

    assert (other.status_code, annotator.status_code) == (404, 403)
    assert state(project, "t1") == ("", None)


def test_controls_page_closed_project_read_only(project: Project, signed_in) -> None:
    project_transition(project=project, actor=project.owner, status=ProjectStatus.OPEN)
    project_transition(project=project, actor=project.owner, status=ProjectStatus.CLOSED)
    owner = signed_in(project.owner)

    page = owner.get(controls_url(project))
    post = owner.post(
        controls_url(project), {"external_id": "t1", "control": "gold", "expected_value": HATEFUL}
    )

    assert 'id="control-form"' not in page.content.decode()
    assert post.status_code == 409
    assert state(project, "t1") == ("", None)


def test_project_detail_links_controls_and_shows_quality_settings(
    project: Project, signed_in
) -> None:
    html = signed_in(project.owner).get(reverse("research-project", args=[project.pk])).content

    assert controls_url(project).encode() in html
    assert b"Least-labeled first" in html
    assert b"1 control item" in html


def _post_project_edit(client: Client, project: Project, **changes: str) -> Any:
    """Post the project's edit form as shown to ``client``, with ``changes`` applied."""
    url = reverse("research-project-edit", args=[project.pk])
    form = client.get(url).context["form"]
    data = {name: form[name].value() for name in form.fields}
    data.update(
        label_schema=form["label_schema"].field.prepare_value(project.label_schema),
        survey="[]",
        **changes,
    )
    return client.post(url, data)


def test_project_edit_saves_strategy_and_control_rate(project: Project, signed_in) -> None:
    response = _post_project_edit(
        signed_in(project.owner), project, assignment_strategy="most_contested", control_rate="0.3"
    )

    assert response.status_code == 302, response.content
    stored = Project.objects.get(pk=project.pk)
    assert (stored.assignment_strategy, stored.control_rate) == ("most_contested", 0.3)


def test_project_edit_control_rate_above_half_returns_400(project: Project, signed_in) -> None:
    response = _post_project_edit(signed_in(project.owner), project, control_rate="0.9")

    assert response.status_code == 400
    assert Project.objects.get(pk=project.pk).control_rate == 0.0


def test_label_page_for_control_item_looks_like_any_item(seeded_random: None, signed_in) -> None:
    project = make_project(k=1, control_rate=0.5)
    add_text_items(project, 10)
    (gold,) = add_control_items(project, 1, expected_value=HATEFUL)
    project_transition(project=project, actor=project.owner, status=ProjectStatus.OPEN)
    annotator = make_enrolled_annotator(project)
    client = signed_in(annotator)
    url = reverse("annotate-label", args=[project.pk])
    pages = {}
    client.post(reverse("annotate-next", args=[project.pk]))  # each label POST claims the next
    while (response := client.get(url)).context["assignment"] is not None:
        assignment = response.context["assignment"]
        pages[assignment.item_id] = response.content.decode()
        client.post(
            url,
            {
                "assignment": assignment.pk,
                "item": assignment.item_id,
                "value": NEITHER,
                "shown_at": "",
            },
        )
    my_labels = client.get(reverse("annotate-my-labels", args=[project.pk])).content.decode()

    assert gold.pk in pages
    for html in [*pages.values(), my_labels]:
        lowered = html.lower()
        assert "gold" not in lowered and "attention" not in lowered
        assert "expected_value" not in lowered and "expected answer" not in lowered
        assert "control" not in lowered
        assert "t10000" not in html  # the researcher's own id for it
