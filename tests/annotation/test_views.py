"""The server-rendered pages: roles, scoping, blindness, escaping and the annotator flow."""

import re
from datetime import timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest
from django.contrib.admin.sites import site as admin_site
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models.functions import Now
from django.test import RequestFactory
from django.urls import reverse

from annotation.admin import ProjectAdmin
from annotation.models import (
    Annotation,
    AnnotationEdit,
    Assignment,
    Enrolment,
    Item,
    Project,
    ProjectStatus,
)
from annotation.services import (
    annotation_submit,
    assignment_next,
    enrolment_create,
    enrolment_survey_submit,
    project_consent_text,
    project_transition,
)
from annotation.surveys import DEFAULT_SURVEY, PREFER_NOT_TO_SAY
from core.admin import ChorusUserAdmin
from core.models import Role, User
from provenance.models import AuditEvent, ConsentRecord
from provenance.services import consent_text_version
from tests.annotation.factories import (
    add_text_items,
    make_enrolled_annotator,
    make_open_project,
    make_project,
)
from tests.core.factories import make_user

pytestmark = pytest.mark.django_db

SCRIPT_BREAKOUT = "</script><script>alert(1)</script>"
MULTI_SURVEY = [
    {"key": "langs", "text": "Languages you read", "kind": "multi", "options": ["en", "fr"]},
    {"key": "job", "text": "Your job", "kind": "text"},
]


def claim(project, annotator: User) -> Assignment:
    assignment = assignment_next(project=project, annotator=annotator)
    assert assignment is not None
    return assignment


def label_post_data(assignment: Assignment, value: str, **extra) -> dict:
    return {
        "assignment": assignment.pk,
        "item": assignment.item_id,
        "value": value,
        "shown_at": "",
        **extra,
    }


@pytest.fixture
def owner() -> User:
    return make_user(Role.RESEARCHER)


@pytest.fixture
def project(owner):
    return make_open_project(4, k=2, owner=owner)


@pytest.fixture
def annotator(project) -> User:
    return make_enrolled_annotator(project)


@pytest.fixture
def auditor() -> User:
    return make_user(Role.AUDITOR)


# ---------------------------------------------------------------- home and roles


def test_home_anonymous_redirects_to_login(client):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(
    ("role", "staff", "target"),
    [
        (Role.ANNOTATOR, False, "annotator-home"),
        (Role.RESEARCHER, False, "research-projects"),
        (Role.AUDITOR, False, "auditor-projects"),
        (Role.ANNOTATOR, True, "research-projects"),
    ],
)
def test_home_each_role_redirects_to_its_start_page(role, staff, target, signed_in):
    user = make_user(role, is_staff=staff)
    response = signed_in(user).get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"] == reverse(target)


def test_annotator_pages_anonymous_redirect_to_login(client, project):
    response = client.get(reverse("annotate-label", args=[project.pk]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_researcher_pages_annotator_gets_403(project, annotator, signed_in):
    client = signed_in(annotator)
    for url in (
        reverse("research-projects"),
        reverse("research-project", args=[project.pk]),
        reverse("research-project-new"),
    ):
        assert client.get(url).status_code == 403, url


def test_annotator_pages_researcher_gets_403(project, owner, signed_in):
    client = signed_in(owner)
    assert client.get(reverse("annotator-home")).status_code == 403
    assert client.get(reverse("annotate-label", args=[project.pk])).status_code == 403


def test_audit_pages_researcher_gets_403(owner, signed_in):
    client = signed_in(owner)
    assert client.get(reverse("audit-log")).status_code == 403
    assert client.get(reverse("auditor-projects")).status_code == 403


# ---------------------------------------------------------------- security headers, host, CSRF


def test_pages_unknown_host_header_returns_400(client):
    response = client.get(reverse("login"), HTTP_HOST="evil.example")
    assert response.status_code == 400


def test_pages_carry_x_frame_options_deny(client, project, annotator, signed_in):
    assert client.get(reverse("login"))["X-Frame-Options"] == "DENY"
    response = signed_in(annotator).get(reverse("annotate-label", args=[project.pk]))
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"


def test_label_post_without_csrf_token_returns_403_and_saves_nothing(project, annotator, signed_in):
    assignment = claim(project, annotator)
    client = signed_in(annotator, enforce_csrf_checks=True)
    response = client.post(
        reverse("annotate-label", args=[project.pk]), label_post_data(assignment, "hateful")
    )
    assert response.status_code == 403
    assert not Annotation.objects.exists()


def test_forms_carry_csrf_token(project, annotator, signed_in):
    response = signed_in(annotator).get(reverse("annotate-label", args=[project.pk]))
    html = response.content.decode()
    assert html.count("<form") == html.count('name="csrfmiddlewaretoken"')


# ---------------------------------------------------------------- auditors are read-only


def test_auditor_post_anywhere_returns_403_and_changes_nothing(project, auditor, signed_in):
    draft = make_project(project.owner)
    add_text_items(draft, 1)
    client = signed_in(auditor)
    events_before = AuditEvent.objects.count()
    urls = [
        reverse("annotate-consent", args=[project.pk]),
        reverse("annotate-survey", args=[project.pk]),
        reverse("annotate-label", args=[project.pk]),
        reverse("annotate-skip", args=[project.pk]),
        reverse("annotate-withdraw", args=[project.pk]),
        reverse("research-project-new"),
        reverse("research-project-edit", args=[draft.pk]),
        reverse("research-project-status", args=[draft.pk]),
        reverse("research-project-import", args=[draft.pk]),
        reverse("audit-log"),
        reverse("auditor-projects"),
    ]
    for url in urls:
        response = client.post(url, {"status": "open", "consent": "on", "title": "x"})
        assert response.status_code == 403, url
    draft.refresh_from_db()
    assert draft.status == ProjectStatus.DRAFT
    assert not Enrolment.objects.filter(annotator=auditor).exists()
    assert AuditEvent.objects.count() == events_before


def test_auditor_pages_list_all_projects_with_progress(project, auditor, annotator, signed_in):
    other = make_open_project(2)
    response = signed_in(auditor).get(reverse("auditor-projects"))
    assert response.status_code == 200
    html = response.content.decode()
    assert project.title in html and other.title in html
    assert project.owner.pseudonym in html
    assert project.owner.username not in html
    assert 'method="post"' not in html.split("</header>", 1)[1]


def test_audit_log_shows_events_filters_and_chain_check(project, auditor, annotator, signed_in):
    client = signed_in(auditor)
    response = client.get(reverse("audit-log"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Hash chain intact" in html
    assert "enrolment.consent" in html and "project.status_change" in html
    assert annotator.pseudonym in html
    assert annotator.username not in html

    filtered = client.get(reverse("audit-log"), {"action": "enrolment.consent"}).content.decode()
    assert "enrolment.consent" in filtered
    assert "project.status_change</td>" not in filtered


# ---------------------------------------------------------------- annotator: home, consent, survey


def test_annotator_home_lists_open_projects_and_progress(project, annotator, signed_in):
    draft = make_project(title="Draft project not shown")
    response = signed_in(annotator).get(reverse("annotator-home"))
    assert response.status_code == 200
    html = response.content.decode()
    assert project.title in html
    assert draft.title not in html
    assert "Your progress: 0 labeled" in html
    assert f'action="{reverse("annotate-next", args=[project.pk])}"' in html


def test_consent_page_draft_project_returns_404(project, signed_in):
    draft = make_project(project.owner)
    annotator = make_user(Role.ANNOTATOR)
    response = signed_in(annotator).get(reverse("annotate-consent", args=[draft.pk]))
    assert response.status_code == 404


def test_consent_page_shows_terms_and_sanitised_markdown(owner, signed_in):
    project = make_open_project(
        1,
        owner=owner,
        instructions='Read **carefully**.\n\n<script>alert("steal")</script>\n\n'
        '<a href="javascript:alert(1)" onclick="evil()">link</a>',
        risk_disclosure="Texts may upset you.",
    )
    response = signed_in(make_user(Role.ANNOTATOR)).get(
        reverse("annotate-consent", args=[project.pk])
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "<strong>carefully</strong>" in html
    assert 'alert("steal")' not in html and "<script>alert" not in html
    assert "javascript:" not in html and "onclick" not in html
    assert "Texts may upset you." in html
    assert "0.10 EUR per item" in html
    assert 'type="checkbox"' in html and "I consent" in html


def test_consent_post_records_web_form_consent_and_redirects_to_survey(owner, signed_in):
    project = make_open_project(1, owner=owner, survey=DEFAULT_SURVEY)
    annotator = make_user(Role.ANNOTATOR)
    version = consent_text_version(project_consent_text(project))
    response = signed_in(annotator).post(
        reverse("annotate-consent", args=[project.pk]),
        {"consent": "on", "consent_version": version},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("annotate-survey", args=[project.pk])
    enrolment = Enrolment.objects.get(project=project, annotator=annotator)
    consent = ConsentRecord.objects.get(pk=enrolment.consent_id)
    assert consent.method == "web-form"
    assert consent.text_version == version


def test_consent_post_without_checkbox_returns_400_and_records_nothing(project, signed_in):
    annotator = make_user(Role.ANNOTATOR)
    version = consent_text_version(project_consent_text(project))
    response = signed_in(annotator).post(
        reverse("annotate-consent", args=[project.pk]), {"consent_version": version}
    )
    assert response.status_code == 400
    assert not Enrolment.objects.filter(annotator=annotator).exists()


def test_consent_post_for_changed_terms_returns_409_and_records_nothing(project, signed_in):
    annotator = make_user(Role.ANNOTATOR)
    response = signed_in(annotator).post(
        reverse("annotate-consent", args=[project.pk]),
        {"consent": "on", "consent_version": consent_text_version("older text")},
    )
    assert response.status_code == 409
    assert not Enrolment.objects.filter(annotator=annotator).exists()


def test_survey_page_every_question_offers_prefer_not_to_say(owner, signed_in):
    project = make_open_project(1, owner=owner, survey=DEFAULT_SURVEY + MULTI_SURVEY)
    annotator = make_enrolled_annotator(project)
    response = signed_in(annotator).get(reverse("annotate-survey", args=[project.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("Prefer not to say</label>") == len(DEFAULT_SURVEY) + len(MULTI_SURVEY)
    assert "Skip the survey" in html


def test_survey_post_saves_answers_and_page_shows_them_for_editing(owner, signed_in):
    project = make_open_project(1, owner=owner, survey=DEFAULT_SURVEY + MULTI_SURVEY)
    annotator = make_enrolled_annotator(project)
    client = signed_in(annotator)
    url = reverse("annotate-survey", args=[project.pk])
    response = client.post(
        url,
        {
            "age_group": "25-34",
            "gender": PREFER_NOT_TO_SAY,
            "langs": ["en", "fr"],
            "job__prefer_not_to_say": "on",
        },
    )
    assert response.status_code == 302
    enrolment = Enrolment.objects.get(project=project, annotator=annotator)
    assert enrolment.survey_answers == {
        "age_group": "25-34",
        "gender": PREFER_NOT_TO_SAY,
        "langs": ["en", "fr"],
        "job": PREFER_NOT_TO_SAY,
    }
    html = client.get(url).content.decode()
    assert re.search(r'value="25-34"[^>]*checked', html)


def test_survey_post_prefer_not_to_say_with_other_answers_returns_400(owner, signed_in):
    project = make_open_project(1, owner=owner, survey=MULTI_SURVEY)
    annotator = make_enrolled_annotator(project)
    response = signed_in(annotator).post(
        reverse("annotate-survey", args=[project.pk]), {"langs": ["en", PREFER_NOT_TO_SAY]}
    )
    assert response.status_code == 400
    assert Enrolment.objects.get(annotator=annotator).survey_answered_at is None


# ---------------------------------------------------------------- annotator: labeling


def test_label_page_not_enrolled_redirects_to_consent(project, signed_in):
    response = signed_in(make_user(Role.ANNOTATOR)).get(
        reverse("annotate-label", args=[project.pk])
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("annotate-consent", args=[project.pk])


def test_label_page_shows_item_choices_shortcuts_and_progress(project, annotator, signed_in):
    response = open_label_page(signed_in(annotator), project)
    assert response.status_code == 200
    html = response.content.decode()
    assignment = Assignment.objects.get(annotator=annotator)
    assert assignment.item.text in html
    for number, label in enumerate(["Hateful", "Offensive but not hateful", "Neither"], 1):
        assert f'data-shortcut="{number}"' in html
        assert label in html
    assert "Attacks or demeans people for who they are." in html
    assert "annotation/label.js" in html
    assert 'name="shown_at"' in html
    assert "<progress" in html and "Skip this item" in html
    assert '<meta name="viewport"' in html


def test_label_script_binds_number_keys():
    from django.contrib.staticfiles import finders

    path = finders.find("annotation/label.js")
    assert path is not None
    source = open(path, encoding="utf-8").read()
    assert "keydown" in source and "data-shortcut" in source


def test_label_page_escapes_item_text_containing_script(owner, signed_in):
    project = make_project(owner)
    Item.objects.create(
        project=project,
        external_id="x",
        kind="text",
        text=SCRIPT_BREAKOUT,
        sha256="f" * 64,
        license="CC0-1.0",
    )
    project_transition(project=project, actor=owner, status=ProjectStatus.OPEN)
    annotator = make_enrolled_annotator(project)
    html = open_label_page(signed_in(annotator), project).content.decode()
    assert SCRIPT_BREAKOUT not in html
    assert "alert(1)" in html  # shown, as text
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_label_page_image_item_uses_api_image_endpoint(owner, signed_in):
    project = make_project(owner, preset="privacy_alert")
    item = Item.objects.create(
        project=project, external_id="img", kind="image", sha256="e" * 64, license="CC0-1.0"
    )
    project_transition(project=project, actor=owner, status=ProjectStatus.OPEN)
    annotator = make_enrolled_annotator(project)
    html = open_label_page(signed_in(annotator), project).content.decode()
    assert f'src="/api/v1/items/{item.pk}/image/"' in html
    assert "Clearly private" in html and 'data-shortcut="4"' in html


def test_label_post_saves_annotation_and_redirects(project, annotator, signed_in):
    client = signed_in(annotator)
    open_label_page(client, project)
    assignment = Assignment.objects.get(annotator=annotator)
    response = client.post(
        reverse("annotate-label", args=[project.pk]),
        label_post_data(assignment, "offensive", confidence="4", rationale="rude words")
        | {"shown_at": str(int(assignment.created_at.timestamp() * 1000))},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("annotate-label", args=[project.pk])
    annotation = Annotation.objects.get(annotator=annotator)
    assert annotation.value == "offensive"
    assert annotation.confidence == 4
    assert annotation.rationale == "rude words"
    assert annotation.time_spent_ms is not None and annotation.time_spent_ms >= 0
    assignment.refresh_from_db()
    assert assignment.status == Assignment.Status.SUBMITTED


def test_label_post_value_outside_schema_returns_400_and_saves_nothing(
    project, annotator, signed_in
):
    assignment = claim(project, annotator)
    response = signed_in(annotator).post(
        reverse("annotate-label", args=[project.pk]), label_post_data(assignment, "bogus")
    )
    assert response.status_code == 400
    assert not Annotation.objects.exists()


def test_label_post_other_annotators_assignment_returns_404(project, annotator, signed_in):
    other = make_enrolled_annotator(project)
    theirs = claim(project, other)
    claim(project, annotator)
    response = signed_in(annotator).post(
        reverse("annotate-label", args=[project.pk]), label_post_data(theirs, "hateful")
    )
    assert response.status_code == 404
    assert not Annotation.objects.exists()


def test_label_post_changing_a_submitted_label_returns_409(project, annotator, signed_in):
    assignment = claim(project, annotator)
    annotation_submit(annotator=annotator, item=assignment.item, value="hateful")
    response = signed_in(annotator).post(
        reverse("annotate-label", args=[project.pk]), label_post_data(assignment, "neither")
    )
    assert response.status_code == 409
    assert "edit your annotation" in response.content.decode()
    assert Annotation.objects.get(annotator=annotator).value == "hateful"


def open_label_page(client, project):
    """The label page as an annotator reaches it: by the button that claims their item."""
    response = client.post(reverse("annotate-next", args=[project.pk]), follow=True)
    assert response.redirect_chain == [(reverse("annotate-label", args=[project.pk]), 302)]
    return response


def test_label_page_get_claims_nothing_and_offers_to_start(project, annotator, signed_in):
    response = signed_in(annotator).get(reverse("annotate-label", args=[project.pk]))

    assert response.status_code == 200
    assert not Assignment.objects.filter(annotator=annotator).exists()
    html = response.content.decode()
    assert f'action="{reverse("annotate-next", args=[project.pk])}"' in html
    assert "Start labeling" in html and 'id="label-form"' not in html


def test_label_next_post_claims_one_item_and_a_second_post_keeps_it(project, annotator, signed_in):
    client = signed_in(annotator)

    open_label_page(client, project)
    open_label_page(client, project)

    assert Assignment.objects.filter(annotator=annotator).count() == 1


def test_label_post_claims_the_next_item_and_says_so_only_when_there_is_one(owner, signed_in):
    project = make_open_project(2, k=1, owner=owner)
    annotator = make_enrolled_annotator(project)
    client = signed_in(annotator)
    messages_seen = []
    for _ in range(2):
        assignment = Assignment.objects.filter(
            annotator=annotator, status=Assignment.Status.OPEN
        ).first() or claim(project, annotator)
        response = client.post(
            reverse("annotate-label", args=[project.pk]),
            label_post_data(assignment, "neither"),
            follow=True,
        )
        messages_seen.append([str(m) for m in response.context["messages"]])

    assert messages_seen == [["Saved. Here is the next one."], ["Saved."]]
    assert "All done" in response.content.decode()


def test_label_page_nothing_left_shows_all_done(owner, signed_in):
    project = make_open_project(1, k=1, owner=owner)
    first = make_enrolled_annotator(project)
    assignment = claim(project, first)
    annotation_submit(annotator=first, item=assignment.item, value="neither")
    late = make_enrolled_annotator(project)
    response = signed_in(late).get(reverse("annotate-label", args=[project.pk]))
    assert response.status_code == 200
    assert "All done" in response.content.decode()
    assert 'id="label-form"' not in response.content.decode()


def test_label_page_items_held_by_others_says_when_to_come_back(owner, signed_in, host_clock):
    project = make_open_project(1, k=1, owner=owner)
    held = claim(project, make_enrolled_annotator(project))
    Assignment.objects.filter(pk=held.pk).update(expires_at=Now() + timedelta(minutes=10))
    held.refresh_from_db()
    late = make_enrolled_annotator(project)
    client = signed_in(late)
    host_clock(timedelta(seconds=40))  # the page reads the database's clock, not this host's

    # Asking for an item finds none free, and the page says when to come back.
    response = client.post(reverse("annotate-next", args=[project.pk]), follow=True)

    html = response.content.decode()
    assert response.status_code == 200
    assert (
        "All items are being labeled by others right now. Come back in about 10 minutes "
        f'(at <time datetime="{held.expires_at.isoformat()}">'
        f"{held.expires_at:%H:%M}</time> UTC)."
    ) in html
    assert "All done" not in html and 'id="label-form"' not in html
    assert f'action="{reverse("annotate-next", args=[project.pk])}"' in html
    assert not Assignment.objects.filter(annotator=late).exists()


def test_label_page_held_item_runs_out_then_check_again_gives_it(owner, signed_in):
    project = make_open_project(1, k=1, owner=owner)
    held = claim(project, make_enrolled_annotator(project))
    late = make_enrolled_annotator(project)
    client = signed_in(late)
    waiting = client.get(reverse("annotate-label", args=[project.pk])).content.decode()
    assert 'id="come-back"' in waiting
    Assignment.objects.filter(pk=held.pk).update(expires_at=Now() - timedelta(seconds=1))

    response = client.post(reverse("annotate-next", args=[project.pk]), follow=True)

    assert 'id="label-form"' in response.content.decode()
    assert Assignment.objects.get(annotator=late).item_id == held.item_id


def test_label_pages_never_show_another_annotators_label(owner, signed_in):
    project = make_open_project(1, k=3, owner=owner)
    first = make_enrolled_annotator(project)
    assignment = claim(project, first)
    annotation_submit(
        annotator=first, item=assignment.item, value="hateful", rationale="FIRST-SECRET-REASON"
    )
    second = make_enrolled_annotator(project)
    client = signed_in(second)
    pages = [
        open_label_page(client, project),
        client.get(reverse("annotate-my-labels", args=[project.pk])),
        client.get(reverse("annotator-home")),
    ]
    for response in pages:
        assert response.status_code == 200
        html = response.content.decode()
        assert "FIRST-SECRET-REASON" not in html
        assert first.pseudonym not in html
        assert first.username not in html
    # The item is shown to the second annotator, but with no trace of the first label.
    assert assignment.item.text in pages[0].content.decode()
    mine = client.get(reverse("annotate-my-labels", args=[project.pk])).content.decode()
    assert "Hateful" not in mine


def test_label_edit_other_annotators_label_returns_404(project, annotator, signed_in):
    other = make_enrolled_annotator(project)
    assignment = claim(project, other)
    theirs = annotation_submit(annotator=other, item=assignment.item, value="hateful").annotation
    client = signed_in(annotator)
    url = reverse("annotate-label-edit", args=[theirs.pk])
    assert client.get(url).status_code == 404
    assert client.post(url, {"value": "neither"}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.value == "hateful"


def test_skip_post_marks_assignment_skipped_and_redirects(project, annotator, signed_in):
    assignment = claim(project, annotator)
    response = signed_in(annotator).post(
        reverse("annotate-skip", args=[project.pk]), {"assignment": assignment.pk}
    )
    assert response.status_code == 302
    assignment.refresh_from_db()
    assert assignment.status == Assignment.Status.SKIPPED


def test_my_labels_edit_updates_label_and_keeps_previous(project, annotator, signed_in):
    assignment = claim(project, annotator)
    annotation = annotation_submit(
        annotator=annotator, item=assignment.item, value="hateful"
    ).annotation
    client = signed_in(annotator)
    listing = client.get(reverse("annotate-my-labels", args=[project.pk])).content.decode()
    assert "Hateful" in listing and reverse("annotate-label-edit", args=[annotation.pk]) in listing
    response = client.post(
        reverse("annotate-label-edit", args=[annotation.pk]),
        {"value": "neither", "confidence": "2", "rationale": "changed my mind"},
    )
    assert response.status_code == 302
    annotation.refresh_from_db()
    assert (annotation.value, annotation.confidence) == ("neither", 2)
    assert AnnotationEdit.objects.get(annotation=annotation).previous_value == "hateful"


def test_label_edit_closed_project_returns_409_and_changes_nothing(project, annotator, signed_in):
    assignment = claim(project, annotator)
    annotation = annotation_submit(
        annotator=annotator, item=assignment.item, value="hateful"
    ).annotation
    project_transition(project=project, actor=project.owner, status=ProjectStatus.CLOSED)
    response = signed_in(annotator).post(
        reverse("annotate-label-edit", args=[annotation.pk]), {"value": "neither"}
    )
    assert response.status_code == 409
    annotation.refresh_from_db()
    assert annotation.value == "hateful"


def test_withdraw_flow_explains_then_withdraws_and_blocks_labeling(project, annotator, signed_in):
    assignment = claim(project, annotator)
    annotation_submit(annotator=annotator, item=assignment.item, value="hateful")
    client = signed_in(annotator)
    url = reverse("annotate-withdraw", args=[project.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert "left out of every later analysis and dataset export" in page.content.decode()
    response = client.post(url)
    assert response.status_code == 302
    assert response["Location"] == reverse("annotator-home")
    assert Enrolment.objects.get(annotator=annotator).withdrawn_at is not None
    assert Annotation.objects.get(annotator=annotator).withdrawn is True
    assert client.get(reverse("annotate-label", args=[project.pk])).status_code == 403
    assert "You withdrew" in client.get(reverse("annotator-home")).content.decode()


def test_withdraw_not_enrolled_returns_404(project, signed_in):
    response = signed_in(make_user(Role.ANNOTATOR)).post(
        reverse("annotate-withdraw", args=[project.pk])
    )
    assert response.status_code == 404


# ---------------------------------------------------------------- researchers


def test_research_list_shows_only_own_projects(owner, project, signed_in):
    other = make_open_project(1)
    html = signed_in(owner).get(reverse("research-projects")).content.decode()
    assert project.title in html
    assert other.title not in html


def test_research_pages_other_owners_project_return_404_and_change_nothing(project, signed_in):
    stranger = make_user(Role.RESEARCHER)
    client = signed_in(stranger)
    for name in (
        "research-project",
        "research-project-edit",
        "research-project-import",
    ):
        assert client.get(reverse(name, args=[project.pk])).status_code == 404, name
    response = client.post(
        reverse("research-project-status", args=[project.pk]), {"status": "closed"}
    )
    assert response.status_code == 404
    response = client.post(reverse("research-project-edit", args=[project.pk]), {"title": "mine"})
    assert response.status_code == 404
    project.refresh_from_db()
    assert project.status == ProjectStatus.OPEN
    assert project.title != "mine"


def test_project_new_page_prefills_default_survey_and_presets(owner, signed_in):
    response = signed_in(owner).get(reverse("research-project-new"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "age_group" in html and "privacy_alert" in html and "hate_speech" in html


def project_form_data(**overrides) -> dict:
    data = {
        "preset": "privacy_alert",
        "title": "Holiday photos",
        "description": "",
        "instructions": "",
        "modality": "",
        "label_schema": "",
        "annotations_per_item": "3",
        "compensation_amount": "0.12",
        "compensation_currency": "EUR",
        "compensation_unit": "per_item",
        "risk_disclosure": "Some photos show people.",
        "data_use_statement": "Published as a research dataset.",
        "survey": "[]",
        "assignment_ttl_seconds": "1800",
        "assignment_strategy": "least_labeled",
        "control_rate": "0",
    }
    return data | overrides


def test_project_new_with_preset_creates_draft(owner, signed_in):
    response = signed_in(owner).post(reverse("research-project-new"), project_form_data())
    assert response.status_code == 302
    project = owner.owned_projects.get(title="Holiday photos")
    assert project.status == ProjectStatus.DRAFT
    assert project.modality == "image"
    assert project.label_schema["kind"] == "ordinal"
    assert response["Location"] == reverse("research-project", args=[project.pk])


def test_project_new_invalid_json_returns_400_with_message(owner, signed_in):
    response = signed_in(owner).post(
        reverse("research-project-new"),
        project_form_data(preset="custom", modality="text", instructions="x", label_schema="{"),
    )
    assert response.status_code == 400
    assert "Not valid JSON" in response.content.decode()
    assert not owner.owned_projects.exists()


def test_project_new_invalid_schema_shows_service_error(owner, signed_in):
    response = signed_in(owner).post(
        reverse("research-project-new"),
        project_form_data(
            preset="custom",
            modality="text",
            instructions="x",
            label_schema='{"kind": "ordinal", "choices": [{"value": "only"}]}',
        ),
    )
    assert response.status_code == 400
    assert "at least two choices" in response.content.decode()
    assert not owner.owned_projects.exists()


def test_project_edit_updates_and_freezes_schema_once_open(owner, project, signed_in):
    client = signed_in(owner)
    url = reverse("research-project-edit", args=[project.pk])
    page = client.get(url).content.decode()
    assert re.search(r'name="label_schema"[^>]*disabled', page)
    data = project_form_data(
        title="Renamed",
        instructions=project.instructions,
        modality="image",  # disabled field: ignored, the stored value is kept
        label_schema='{"kind": "free_text"}',
    )
    data.pop("preset")
    response = client.post(url, data)
    assert response.status_code == 302
    project.refresh_from_db()
    assert project.title == "Renamed"
    assert project.modality == "text"
    assert project.label_schema["kind"] == "nominal"


def test_project_detail_shows_progress_with_pseudonyms_only(owner, project, annotator, signed_in):
    assignment = claim(project, annotator)
    annotation_submit(annotator=annotator, item=assignment.item, value="hateful")
    response = signed_in(owner).get(reverse("research-project", args=[project.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Items fully labeled: 0 of 4" in html
    assert "1 active" in html
    assert "Labels per item" in html
    assert annotator.username not in html and annotator.email not in html


def test_project_status_open_empty_project_returns_409_and_close_works(owner, project, signed_in):
    client = signed_in(owner)
    empty = make_project(owner)
    response = client.post(reverse("research-project-status", args=[empty.pk]), {"status": "open"})
    assert response.status_code == 409
    assert "Import items before opening" in response.content.decode()
    empty.refresh_from_db()
    assert empty.status == ProjectStatus.DRAFT

    response = client.post(
        reverse("research-project-status", args=[project.pk]), {"status": "closed"}
    )
    assert response.status_code == 302
    project.refresh_from_db()
    assert project.status == ProjectStatus.CLOSED


def test_import_page_explains_expected_columns(owner, project, signed_in):
    html = signed_in(owner).get(reverse("research-project-import", args=[project.pk])).content
    for column in (b"external_id", b"license", b"source_url", b"attribution", b"metadata"):
        assert column in html


def test_import_csv_creates_items_and_shows_batch(
    owner, django_capture_on_commit_callbacks, signed_in
):
    project = make_project(owner)
    upload = SimpleUploadedFile(
        "items.csv", b"external_id,text,license\na,first text,CC-BY-4.0\nb,second,MIT\n"
    )
    client = signed_in(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("research-project-import", args=[project.pk]), {"upload": upload}
        )
    assert response.status_code == 302
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert Item.objects.filter(project=project).count() == 2
    assert "2 items imported" in page.content.decode()


def test_import_csv_with_bad_rows_lists_every_error_with_line(
    owner, django_capture_on_commit_callbacks, signed_in
):
    project = make_project(owner)
    upload = SimpleUploadedFile(
        "items.csv",
        b"external_id,text,license\na,fine,CC-BY-4.0\nb,bad license,Not-A-License\n,no id,MIT\n",
    )
    client = signed_in(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("research-project-import", args=[project.pk]), {"upload": upload}
        )
    assert response.status_code == 302
    html = client.get(response["Location"]).content.decode()
    assert not Item.objects.filter(project=project).exists()
    assert "nothing was imported" in html
    assert "<td>3</td>" in html and "<td>4</td>" in html


def test_import_batch_of_another_project_returns_404(owner, project, signed_in):
    other = make_open_project(1)
    response = signed_in(owner).get(reverse("research-import-batch", args=[other.pk, 1]))
    assert response.status_code == 404


# ---------------------------------------------------------------- admin


def test_admin_user_role_change_goes_through_audited_service():
    staff = make_user(Role.RESEARCHER, is_staff=True, is_superuser=True)
    target = make_user(Role.ANNOTATOR)
    request = RequestFactory().post("/admin/")
    request.user = staff
    target.role = Role.AUDITOR
    ChorusUserAdmin(User, admin_site).save_model(
        request, target, cast(Any, SimpleNamespace(changed_data=["role"])), change=True
    )
    target.refresh_from_db()
    assert target.role == Role.AUDITOR
    event = AuditEvent.objects.get(action="user.role_change", object_id=str(target.pk))
    assert event.payload["from"] == Role.ANNOTATOR and event.payload["to"] == Role.AUDITOR
    assert event.actor_id == staff.pk


def test_admin_project_edit_goes_through_audited_update_and_nothing_is_deletable(project):
    staff = make_user(Role.RESEARCHER, is_staff=True, is_superuser=True)
    request = RequestFactory().post("/admin/")
    request.user = staff
    project_admin = ProjectAdmin(Project, admin_site)
    project.title = "Renamed by staff"
    form = SimpleNamespace(changed_data=["title"], cleaned_data={"title": "Renamed by staff"})
    project_admin.save_model(request, project, cast(Any, form), change=True)
    project.refresh_from_db()
    assert project.title == "Renamed by staff"
    assert AuditEvent.objects.filter(action="project.update", object_id=str(project.pk)).exists()
    assert not project_admin.has_delete_permission(request, project)
    assert not project_admin.has_add_permission(request)
    project_transition(project=project, actor=project.owner, status=ProjectStatus.CLOSED)
    assert not project_admin.has_change_permission(request, project)


def test_admin_changelists_render_for_staff_with_pseudonyms(project, annotator, signed_in):
    assignment = claim(project, annotator)
    annotation_submit(annotator=annotator, item=assignment.item, value="hateful")
    staff = make_user(Role.RESEARCHER, is_staff=True, is_superuser=True)
    client = signed_in(staff)
    for model in ("project", "item", "importbatch", "enrolment", "assignment", "annotation"):
        response = client.get(reverse(f"admin:annotation_{model}_changelist"))
        assert response.status_code == 200, model
    html = client.get(reverse("admin:annotation_annotation_changelist")).content.decode()
    assert annotator.pseudonym in html
    user_page = client.get(reverse("admin:core_user_change", args=[annotator.pk]))
    assert user_page.status_code == 200
    assert annotator.pseudonym in user_page.content.decode()


def test_enrolment_survey_answers_prefilled_from_service(owner, signed_in):
    project = make_open_project(1, owner=owner, survey=DEFAULT_SURVEY)
    annotator = make_user(Role.ANNOTATOR)
    enrolment = enrolment_create(project=project, annotator=annotator)
    enrolment_survey_submit(enrolment=enrolment, answers={"region": "Europe"})
    html = signed_in(annotator).get(reverse("annotate-survey", args=[project.pk])).content
    assert re.search(rb'value="Europe"[^>]*checked', html)


def test_label_post_multi_label_and_free_text_schemas_are_saved(owner, signed_in):
    multi = make_project(
        owner,
        preset="",
        modality="text",
        instructions="Tick all that apply.",
        label_schema={
            "kind": "multi_label",
            "choices": [{"value": "a"}, {"value": "b"}, {"value": "c"}],
            "min_selected": 1,
        },
    )
    free = make_project(
        owner,
        preset="",
        modality="text",
        instructions="Describe.",
        label_schema={"kind": "free_text"},
    )
    for project in (multi, free):
        add_text_items(project, 1)
        project_transition(project=project, actor=owner, status=ProjectStatus.OPEN)
    annotator = make_user(Role.ANNOTATOR)
    client = signed_in(annotator)
    for project, value, stored in (
        (multi, ["c", "a"], ["a", "c"]),
        (free, " calm text ", "calm text"),
    ):
        enrolment_create(project=project, annotator=annotator)
        page = open_label_page(client, project).content.decode()
        assert f'data-kind="{project.label_schema["kind"]}"' in page
        assignment = Assignment.objects.get(project=project, annotator=annotator)
        response = client.post(
            reverse("annotate-label", args=[project.pk]),
            {"assignment": assignment.pk, "item": assignment.item_id, "value": value},
        )
        assert response.status_code == 302
        assert Annotation.objects.get(project=project, annotator=annotator).value == stored


def test_label_post_multi_label_nothing_ticked_returns_400(owner, signed_in):
    project = make_project(
        owner,
        preset="",
        modality="text",
        instructions="Tick all that apply.",
        label_schema={"kind": "multi_label", "choices": [{"value": "a"}, {"value": "b"}]},
    )
    add_text_items(project, 1)
    project_transition(project=project, actor=owner, status=ProjectStatus.OPEN)
    annotator = make_enrolled_annotator(project)
    assignment = claim(project, annotator)
    response = signed_in(annotator).post(
        reverse("annotate-label", args=[project.pk]),
        {"assignment": assignment.pk, "item": assignment.item_id},
    )
    assert response.status_code == 400
    assert not Annotation.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "model", ["project", "item", "importbatch", "enrolment", "assignment", "annotation"]
)
def test_admin_changelist_with_data_renders_pseudonyms_only(client, model: str) -> None:
    project = make_open_project(2)
    annotator = make_enrolled_annotator(project)
    staff = make_user(Role.RESEARCHER, is_staff=True, is_superuser=True)
    client.force_login(staff)

    response = client.get(f"/admin/annotation/{model}/")

    assert response.status_code == 200
    assert annotator.username not in response.content.decode()
