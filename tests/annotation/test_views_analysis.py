"""Agreement pages: who may read them, what they show, escaping, and that reading them
never computes (stale, pending and not-yet-computed states; the owner's refresh POST)."""

import pytest
from django.test import Client
from django.urls import reverse

from annotation.analysis import analysis_compute, plots
from annotation.models import AgreementAnalysis, Annotation, Item, ItemDisagreement
from annotation.services import annotation_update
from core.models import Role
from tests.annotation.analysis_data import HATE, Labelled, make_labelled_project
from tests.core.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def labelled():
    """A labelled project whose analysis was computed (as the owner's refresh or a job would)."""
    data = make_labelled_project()
    analysis_compute(project=data.project, filters={})
    return data


def page_urls(project_id: int) -> list[str]:
    return [
        reverse("research-analysis", args=[project_id]),
        reverse("research-analysis-items", args=[project_id]),
    ]


def refresh_url(project_id: int) -> str:
    return reverse("research-analysis-refresh", args=[project_id])


def stored_rows() -> list[tuple]:
    """Every analysis row and per-item row as stored, to prove that a page wrote nothing."""
    return [
        *AgreementAnalysis.objects.order_by("pk").values_list(
            "pk", "status", "fingerprint", "updated_at", "computed_at", "summary", "figures"
        ),
        *ItemDisagreement.objects.order_by("pk").values_list("pk", "analysis_id", "entropy"),
    ]


def make_stale(data: Labelled) -> None:
    """A label changed through the service after the analysis was computed."""
    annotator = data.annotators[1]
    annotation = Annotation.objects.filter(annotator=annotator).order_by("pk")[0]
    other_value = next(value for value in HATE if value != annotation.value)
    annotation_update(
        annotation=annotation, annotator=annotator, value=other_value, confidence=None
    )


def test_analysis_page_owner_sees_figures_explanations_plots_and_tables(labelled, signed_in):
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


def test_analysis_pages_auditor_and_staff_read_annotator_refused_stranger_404(labelled, signed_in):
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


def test_analysis_page_auditor_post_refused(labelled, signed_in):
    response = signed_in(make_user(Role.AUDITOR)).post(page_urls(labelled.project.pk)[0])

    assert response.status_code == 403


def test_analysis_page_linked_from_project_and_auditor_pages(labelled, signed_in):
    url = page_urls(labelled.project.pk)[0]

    project_page = signed_in(labelled.project.owner).get(
        reverse("research-project", args=[labelled.project.pk])
    )
    auditor_page = signed_in(make_user(Role.AUDITOR)).get(reverse("auditor-projects"))

    assert url in project_page.content.decode()
    assert url in auditor_page.content.decode()


def test_analysis_page_hostile_names_escaped_everywhere(labelled, signed_in):
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
    analysis_compute(project=project, filters={})  # the stored plots now carry the label

    html = signed_in(project.owner).get(page_urls(project.pk)[0]).content.decode()

    assert hostile not in html
    assert "<img src=x" not in html
    assert "&lt;/script&gt;&lt;svg onload=f&gt;" in html
    plot = html[html.index('id="group-age_group"') :]
    assert "&lt;/script&gt;&lt;svg onload=f&gt;" in plot[: plot.index("</section>")]


def test_analysis_page_filters_applied_and_bad_filter_400(labelled, signed_in):
    analysis_compute(project=labelled.project, filters={"question": "age_group"})
    client = signed_in(labelled.project.owner)
    url = page_urls(labelled.project.pk)[0]

    filtered = client.get(url, {"question": "age_group", "since": "", "until": ""})
    bad = client.get(url, {"since": "not-a-date"})

    assert filtered.status_code == 200
    assert filtered.context["analysis"].filters == {"question": "age_group"}
    assert filtered.context["summary"]["n_annotators"] == 3
    assert bad.status_code == 400


def test_analysis_page_not_enough_labels_says_so(signed_in):
    data = make_labelled_project(n_annotators=1)
    analysis_compute(project=data.project, filters={})

    response = signed_in(data.project.owner).get(page_urls(data.project.pk)[0])

    assert response.status_code == 200
    assert "Not enough labels yet" in response.content.decode()


def test_analysis_page_stored_figures_shown_without_drawing(labelled, monkeypatch, signed_in):
    def no_drawing(**kwargs):
        raise AssertionError("a page drew a plot")

    for name in ("entropy_histogram_svg", "group_distribution_svg", "xrr_heatmap_svg"):
        monkeypatch.setattr(plots, name, no_drawing)

    response = signed_in(labelled.project.owner).get(page_urls(labelled.project.pk)[0])

    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("<svg") == 3  # entropy histogram, group bars, xRR heat map
    figures = AgreementAnalysis.objects.get().figures
    assert figures["entropy"] in html
    assert figures["groups"]["age_group"]["heatmap"] in html


@pytest.mark.parametrize("role", ["owner", "auditor"])
def test_analysis_pages_stale_get_shows_stored_result_and_writes_nothing(labelled, role, signed_in):
    computed = AgreementAnalysis.objects.get()
    make_stale(labelled)
    user = labelled.project.owner if role == "owner" else make_user(Role.AUDITOR)
    before = stored_rows()

    responses = [signed_in(user).get(url) for url in page_urls(labelled.project.pk)]

    assert stored_rows() == before
    assert [response.status_code for response in responses] == [200, 200]
    html = responses[0].content.decode()
    assert "Stale: the labels changed" in html
    assert computed.computed_at is not None
    assert computed.computed_at.strftime("%Y-%m-%d %H:%M") in html
    assert html.count("<svg") == 3  # the stored result, plots included, meanwhile
    assert responses[0].context["summary"] == computed.summary


def test_analysis_page_auditor_stale_offered_no_refresh_owner_is(labelled, signed_in):
    make_stale(labelled)
    url = page_urls(labelled.project.pk)[0]

    auditor_html = signed_in(make_user(Role.AUDITOR)).get(url).content.decode()
    owner_html = signed_in(labelled.project.owner).get(url).content.decode()

    assert refresh_url(labelled.project.pk) not in auditor_html
    assert "The project's researcher recomputes it." in auditor_html
    assert f'action="{refresh_url(labelled.project.pk)}"' in owner_html
    assert "Recompute now" in owner_html


def test_analysis_page_fresh_offers_no_refresh(labelled, signed_in):
    html = signed_in(labelled.project.owner).get(page_urls(labelled.project.pk)[0]).content
    assert refresh_url(labelled.project.pk) not in html.decode()


def test_analysis_page_first_view_owner_computes_with_one_post(signed_in):
    data = make_labelled_project()
    client = signed_in(data.project.owner)
    url = page_urls(data.project.pk)[0]

    first = client.get(url)
    assert "Not computed yet" in first.content.decode()
    assert "Compute now" in first.content.decode()
    assert not AgreementAnalysis.objects.exists()
    posted = client.post(refresh_url(data.project.pk), {"since": "", "until": "", "question": ""})
    shown = client.get(url)

    assert posted.status_code == 302 and posted["Location"] == url
    assert AgreementAnalysis.objects.get().status == AgreementAnalysis.Status.DONE
    assert shown.content.decode().count("<svg") == 3
    assert "Analysis computed from 24 labels." in shown.content.decode()


def test_analysis_refresh_post_keeps_filters_and_recomputes_stale(labelled, signed_in):
    make_stale(labelled)
    client = signed_in(labelled.project.owner)

    posted = client.post(refresh_url(labelled.project.pk), {"question": "age_group"})
    client.post(refresh_url(labelled.project.pk))

    assert posted["Location"] == page_urls(labelled.project.pk)[0] + "?question=age_group"
    assert AgreementAnalysis.objects.count() == 2
    assert not any(
        read.context["stale"]
        for read in (client.get(page_urls(labelled.project.pk)[0]), client.get(posted["Location"]))
    )


def test_analysis_refresh_auditor_403_other_researcher_404_nothing_written(labelled, signed_in):
    make_stale(labelled)
    before = stored_rows()

    auditor = signed_in(make_user(Role.AUDITOR)).post(refresh_url(labelled.project.pk))
    stranger = signed_in(make_user(Role.RESEARCHER)).post(refresh_url(labelled.project.pk))

    assert (auditor.status_code, stranger.status_code) == (403, 404)
    assert stored_rows() == before


def test_analysis_refresh_large_project_queued_page_says_being_recomputed(
    labelled, settings, django_capture_on_commit_callbacks, monkeypatch, signed_in
):
    from annotation.tasks import agreement_analysis_task

    queued: list[int] = []
    monkeypatch.setattr(
        agreement_analysis_task, "apply_async", lambda args, **options: queued.append(args[0])
    )
    make_stale(labelled)
    settings.CHORUS_ANALYSIS_INLINE_LIMIT = 1
    client = signed_in(labelled.project.owner)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(refresh_url(labelled.project.pk))
    response = client.get(page_urls(labelled.project.pk)[0])

    assert queued == [AgreementAnalysis.objects.get().pk]
    assert AgreementAnalysis.objects.get().status == AgreementAnalysis.Status.PENDING
    html = response.content.decode()
    assert "Being recomputed" in html and "Queued" in html
    assert html.count("<svg") == 3  # the previous result is shown meanwhile
    assert refresh_url(labelled.project.pk) not in html


def test_analysis_page_query_count_same_bound_for_few_and_many_items(
    django_assert_max_num_queries,
    signed_in,
):
    few = make_labelled_project(n_items=3, n_annotators=3)
    many = make_labelled_project(n_items=40, n_annotators=3)
    for data in (few, many):
        analysis_compute(project=data.project, filters={})

    for data in (few, many):
        client = signed_in(data.project.owner)
        client.get(page_urls(data.project.pk)[0])  # the session, once
        for url in page_urls(data.project.pk):
            # Session, user, project, analysis, the two fingerprint aggregates, the items
            # (and their count on the paginated page): none per item, group or annotator.
            with django_assert_max_num_queries(8):
                assert client.get(url).status_code == 200


def test_analysis_items_page_paginated_by_entropy_with_csv_link(labelled, settings, signed_in):
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
