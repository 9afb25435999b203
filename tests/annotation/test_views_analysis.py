"""Agreement pages: who may read them, what they show, escaping and the pending state."""

import pytest
from django.test import Client
from django.urls import reverse

from annotation.models import AgreementAnalysis, Item
from annotation.services import annotation_update
from core.models import Role, User
from tests.annotation.analysis_data import make_labelled_project
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def labelled():
    return make_labelled_project()


def page_urls(project_id: int) -> list[str]:
    return [
        reverse("research-analysis", args=[project_id]),
        reverse("research-analysis-items", args=[project_id]),
    ]


def test_analysis_page_owner_sees_figures_explanations_plots_and_tables(labelled):
    response = signed_in(labelled.project.owner).get(page_urls(labelled.project.pk)[0])

    assert response.status_code == 200
    html = response.content.decode()
    assert "Krippendorff" in html and "0.667" in html and "0.8" in html
    assert "subjective" in html
    assert 'id="alpha"' in html
    assert html.count("<svg") >= 3  # entropy histogram, group bars, xRR heat map
    assert 'id="entropy-plot"' in html
    assert 'id="contested"' in html and 'id="annotators"' in html
    assert "Your age group" in html and "Prefer not to say" in html
    for annotator in labelled.annotators:
        assert annotator.pseudonym in html
        assert annotator.username not in html


def test_analysis_pages_auditor_and_staff_read_annotator_refused_stranger_404(labelled):
    auditor = make_user(Role.AUDITOR)
    staff = make_user(Role.RESEARCHER, is_staff=True)
    stranger = make_user(Role.RESEARCHER)

    for url in page_urls(labelled.project.pk):
        assert signed_in(auditor).get(url).status_code == 200, url
        assert signed_in(staff).get(url).status_code == 200, url
        assert signed_in(labelled.annotators[0]).get(url).status_code == 403, url
        assert signed_in(stranger).get(url).status_code == 404, url
        anonymous = Client().get(url)
        assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]


def test_analysis_page_auditor_post_refused(labelled):
    response = signed_in(make_user(Role.AUDITOR)).post(page_urls(labelled.project.pk)[0])

    assert response.status_code == 403


def test_analysis_page_linked_from_project_and_auditor_pages(labelled):
    url = page_urls(labelled.project.pk)[0]

    project_page = signed_in(labelled.project.owner).get(
        reverse("research-project", args=[labelled.project.pk])
    )
    auditor_page = signed_in(make_user(Role.AUDITOR)).get(reverse("auditor-projects"))

    assert url in project_page.content.decode()
    assert url in auditor_page.content.decode()


def test_analysis_page_hostile_names_escaped_everywhere(labelled):
    project = labelled.project
    hostile = "</script><svg onload=f>"
    project.label_schema = {
        **project.label_schema,
        "choices": [
            {**choice, "label": hostile} if index == 0 else choice
            for index, choice in enumerate(project.label_schema["choices"])
        ],
    }
    project.save()
    Item.objects.filter(project=project).update(text="<img src=x onerror=f()>")

    html = signed_in(project.owner).get(page_urls(project.pk)[0]).content.decode()

    assert hostile not in html
    assert "<img src=x" not in html
    assert "&lt;/script&gt;&lt;svg onload=f&gt;" in html


def test_analysis_page_filters_applied_and_bad_filter_400(labelled):
    client = signed_in(labelled.project.owner)
    url = page_urls(labelled.project.pk)[0]

    filtered = client.get(url, {"question": "age_group", "since": "", "until": ""})
    bad = client.get(url, {"since": "not-a-date"})

    assert filtered.status_code == 200
    assert filtered.context["analysis"].filters == {"question": "age_group"}
    assert filtered.context["summary"]["n_annotators"] == 3
    assert bad.status_code == 400


def test_analysis_page_not_enough_labels_says_so():
    data = make_labelled_project(n_annotators=1)

    response = signed_in(data.project.owner).get(page_urls(data.project.pk)[0])

    assert response.status_code == 200
    assert "Not enough labels yet" in response.content.decode()


def test_analysis_page_large_stale_project_says_being_recomputed(labelled, settings):
    client = signed_in(labelled.project.owner)
    client.get(page_urls(labelled.project.pk)[0])
    annotator = labelled.annotators[1]
    annotation = annotator.annotations.order_by("pk").first()
    annotation_update(
        annotation=annotation, annotator=annotator, value=annotation.value, confidence=2
    )
    settings.CHORUS_ANALYSIS_INLINE_LIMIT = 1

    response = client.get(page_urls(labelled.project.pk)[0])

    assert response.status_code == 200
    assert "Being recomputed" in response.content.decode()
    assert AgreementAnalysis.objects.get().status == AgreementAnalysis.Status.PENDING


def test_analysis_items_page_paginated_by_entropy_with_csv_link(labelled, settings):
    response = signed_in(labelled.project.owner).get(page_urls(labelled.project.pk)[1])

    assert response.status_code == 200
    html = response.content.decode()
    csv_url = reverse("api-project-items-disagreement", args=[labelled.project.pk])
    assert f"{csv_url}?format=csv" in html
    rows = response.context["rows"]
    assert len(rows) == 6
    entropies = [row["row"].entropy for row in rows]
    assert entropies == sorted(entropies, reverse=True)
    assert all(
        sum(s["percent"] for s in row["segments"]) == pytest.approx(100, abs=0.5) for row in rows
    )
