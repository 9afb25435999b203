"""API: agreement summary, per-item disagreement (JSON and CSV), annotators, groups, and
the refresh POST (reading never computes)."""

import csv
import io

import pytest

from annotation.analysis import analysis_compute
from annotation.models import AgreementAnalysis, Item, ItemDisagreement
from annotation.services import annotation_update
from annotation.tasks import agreement_analysis_task
from core.models import Role
from tests.annotation.analysis_data import HATE, make_labelled_project
from tests.core.factories import make_user

pytestmark = pytest.mark.django_db


def urls(project_id: int) -> dict[str, str]:
    base = f"/api/v1/projects/{project_id}"
    return {
        "agreement": f"{base}/agreement/",
        "items": f"{base}/items/disagreement/",
        "annotators": f"{base}/annotators/agreement/",
        "groups": f"{base}/groups/age_group/",
    }


@pytest.fixture
def labelled():
    return make_labelled_project()


@pytest.fixture
def computed(labelled):
    """The labelled project with its analysis computed (as its owner's refresh would)."""
    analysis_compute(project=labelled.project, filters={})
    return labelled


def refresh_url(project_id: int) -> str:
    return f"/api/v1/projects/{project_id}/agreement/refresh/"


def stored_rows() -> list[tuple]:
    """Every analysis row and per-item row as stored, to prove that a GET wrote nothing."""
    return [
        *AgreementAnalysis.objects.order_by("pk").values_list(
            "pk", "status", "fingerprint", "updated_at", "computed_at", "summary", "figures"
        ),
        *ItemDisagreement.objects.order_by("pk").values_list("pk", "analysis_id", "entropy"),
    ]


def make_stale(data) -> None:
    annotator = data.annotators[0]
    annotation = annotator.annotations.order_by("pk").first()
    annotation_update(
        annotation=annotation, annotator=annotator, value=annotation.value, confidence=2
    )


def test_agreement_owner_gets_summary_status_and_count(computed, client_for):
    response = client_for(computed.project.owner).get(urls(computed.project.pk)["agreement"])

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "done"
    assert body["stale"] is False
    assert body["annotation_count"] == 24
    assert body["computed_at"]
    assert body["filters"] == {}
    assert body["summary"]["n_annotators"] == 4
    assert body["summary"]["level"] == "nominal"
    assert isinstance(body["summary"]["alpha"], float)


def test_agreement_filters_from_query_and_bad_filter_400_error_shape(labelled, client_for):
    analysis_compute(
        project=labelled.project, filters={"question": "age_group", "since": "2000-01-01"}
    )
    client = client_for(labelled.project.owner)
    url = urls(labelled.project.pk)["agreement"]

    filtered = client.get(url, {"question": "age_group", "since": "2000-01-01"})
    unknown = client.get(url, {"question": "shoe_size"})
    bad_date = client.get(url, {"since": "soon"})

    assert filtered.status_code == 200
    assert filtered.json()["filters"] == {"question": "age_group", "since": "2000-01-01"}
    assert filtered.json()["summary"]["n_annotators"] == 3
    assert unknown.status_code == 400
    assert unknown.json()["code"] == "unknown_question"
    assert bad_date.status_code == 400
    assert set(bad_date.json()) == {"code", "message", "extra"}


def test_analysis_endpoints_annotator_of_the_project_gets_404_everywhere(labelled, client_for):
    annotator = labelled.annotators[0]

    for url in urls(labelled.project.pk).values():
        for query in ({}, {"format": "csv"}):
            response = client_for(annotator).get(url, query)
            assert response.status_code == 404, url
            assert response.json()["code"] == "not_found"
    assert not AgreementAnalysis.objects.exists()


def test_analysis_endpoints_other_researcher_404_anonymous_refused(labelled, client_for):
    stranger = make_user(Role.RESEARCHER)

    for url in urls(labelled.project.pk).values():
        assert client_for(stranger).get(url).status_code == 404
        assert client_for(None).get(url).status_code in (401, 403)


def test_analysis_endpoints_auditor_and_staff_read(labelled, client_for):
    auditor = make_user(Role.AUDITOR)
    staff = make_user(Role.RESEARCHER, is_staff=True)

    for user in (auditor, staff):
        for url in urls(labelled.project.pk).values():
            assert client_for(user).get(url).status_code == 200, url


def test_analysis_endpoints_name_annotators_by_pseudonym_only(computed, client_for):
    client = client_for(computed.project.owner)
    bodies = "".join(client.get(url).content.decode() for url in urls(computed.project.pk).values())

    for annotator in computed.annotators:
        assert annotator.username not in bodies
        assert annotator.email not in bodies
    assert computed.annotators[0].pseudonym in bodies


def test_item_disagreement_list_paginated_sorted_in_bounded_queries(
    computed, django_assert_max_num_queries, client_for
):
    client = client_for(computed.project.owner)
    url = urls(computed.project.pk)["items"]

    with django_assert_max_num_queries(6):
        response = client.get(url, {"page_size": "4", "ordering": "-entropy"})

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 6
    assert len(body["results"]) == 4
    row = body["results"][0]
    assert set(row) == {
        "item",
        "external_id",
        "n_labels",
        "entropy",
        "majority",
        "soft_label",
        "ds_label",
        "ds_confidence",
        "ds_posterior",
    }
    entropies = [r["entropy"] for r in body["results"]]
    assert entropies == sorted(entropies, reverse=True)


@pytest.mark.parametrize(
    "ordering", ["annotator__password", "item__project__owner__password", "-id", "entropy,item"]
)
def test_item_disagreement_list_unlisted_ordering_400_error_shape(labelled, ordering, client_for):
    response = client_for(labelled.project.owner).get(
        urls(labelled.project.pk)["items"], {"ordering": ordering}
    )

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_ordering"
    assert set(body) == {"code", "message", "extra"}
    assert "-entropy" in body["extra"]["allowed"]


@pytest.mark.parametrize("how", ["query", "accept"])
def test_item_disagreement_csv_download_every_item_cells_defused(computed, how, client_for):
    labelled = computed
    first = Item.objects.filter(project=labelled.project).order_by("pk")[0]
    Item.objects.filter(pk=first.pk).update(external_id='=HYPERLINK("http://evil","x")')
    client = client_for(labelled.project.owner)
    url = urls(labelled.project.pk)["items"]

    if how == "query":
        response = client.get(url, {"format": "csv"})
    else:
        response = client.get(url, HTTP_ACCEPT="text/csv")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == (
        f'attachment; filename="project-{labelled.project.pk}-item-disagreement.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 6
    assert {f"p_{c}" for c in HATE} <= set(rows[0])
    hostile = next(r for r in rows if r["item"] == str(first.pk))
    assert hostile["external_id"] == '\'=HYPERLINK("http://evil","x")'
    assert not any(cell.startswith(("=", "+", "@")) for r in rows for cell in r.values())


def test_item_disagreement_csv_error_answered_in_json(labelled, client_for):
    response = client_for(make_user(Role.RESEARCHER)).get(
        urls(labelled.project.pk)["items"], {"format": "csv"}
    )

    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["code"] == "not_found"


def test_annotator_agreement_lists_pseudonyms_with_control_accuracy(computed, client_for):
    response = client_for(computed.project.owner).get(urls(computed.project.pk)["annotators"])

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 4
    assert {r["pseudonym"] for r in body["results"]} == {a.pseudonym for a in computed.annotators}
    assert {"majority_agreement", "alpha_without", "gold_accuracy", "attention_accuracy"} <= set(
        body["results"][0]
    )


def test_group_disagreement_known_question_groups_and_pairs(computed, client_for):
    response = client_for(computed.project.owner).get(urls(computed.project.pk)["groups"])

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "done"
    assert body["analysis_status"] == "done"
    assert {g["group"] for g in body["groups"]} == {"18-24", "25-34", "prefer_not_to_say"}
    assert len(body["pairs"]) == 3
    assert body["n_permutations"] == 1000


def test_group_disagreement_unanswered_question_skipped_with_message(computed, client_for):
    response = client_for(computed.project.owner).get(
        f"/api/v1/projects/{computed.project.pk}/groups/gender/"
    )

    assert response.status_code == 200
    assert response.json()["status"] == "skipped"
    assert response.json()["message"]
    assert "groups" not in response.json()


def test_group_disagreement_unknown_question_404_error_shape(labelled, client_for):
    response = client_for(labelled.project.owner).get(
        f"/api/v1/projects/{labelled.project.pk}/groups/shoe_size/"
    )

    assert response.status_code == 404
    assert response.json() == {
        "code": "unknown_question",
        "message": "This project's survey has no such question.",
        "extra": {},
    }


def test_agreement_multi_label_project_400_unsupported_schema(labelled, client_for):
    project = labelled.project
    project.label_schema = {
        "kind": "multi_label",
        "choices": [{"value": "a", "label": "A"}, {"value": "b", "label": "B"}],
    }
    project.save()

    response = client_for(project.owner).get(urls(project.pk)["agreement"])

    assert response.status_code == 400
    assert response.json()["code"] == "unsupported_schema"


@pytest.mark.parametrize("role", ["owner", "auditor"])
def test_analysis_endpoints_stale_get_answers_stored_result_and_writes_nothing(
    computed, role, client_for
):
    make_stale(computed)
    user = computed.project.owner if role == "owner" else make_user(Role.AUDITOR)
    before = stored_rows()

    responses = {name: client_for(user).get(url) for name, url in urls(computed.project.pk).items()}

    assert stored_rows() == before
    assert {name: r.status_code for name, r in responses.items()} == dict.fromkeys(responses, 200)
    body = responses["agreement"].json()
    assert (body["status"], body["stale"]) == ("done", True)
    assert body["summary"]["n_labels"] == 24
    assert responses["groups"].json()["status"] == "done"


def test_analysis_endpoints_before_first_computation_say_so_and_store_nothing(labelled, client_for):
    client = client_for(labelled.project.owner)
    responses = {name: client.get(url) for name, url in urls(labelled.project.pk).items()}

    assert not AgreementAnalysis.objects.exists()
    agreement = responses["agreement"].json()
    assert (agreement["status"], agreement["stale"], agreement["summary"]) == (
        "not_computed",
        True,
        None,
    )
    assert responses["items"].json()["count"] == 0
    assert responses["annotators"].json()["count"] == 0
    assert responses["groups"].json()["analysis_status"] == "not_computed"
    assert responses["groups"].json()["status"] == "pending"


def test_agreement_refresh_small_computed_in_request_200_then_fresh(labelled, client_for):
    client = client_for(labelled.project.owner)

    response = client.post(refresh_url(labelled.project.pk), {}, format="json")
    again = client.post(refresh_url(labelled.project.pk), {}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["stale"], body["annotation_count"]) == ("done", False, 24)
    assert again.status_code == 200
    assert again.json()["computed_at"] == body["computed_at"]  # fresh: not recomputed
    assert AgreementAnalysis.objects.get().figures["entropy"].startswith("<svg")


def test_agreement_refresh_filters_in_body_bad_filter_400(labelled, client_for):
    client = client_for(labelled.project.owner)

    filtered = client.post(
        refresh_url(labelled.project.pk), {"question": "age_group"}, format="json"
    )
    bad = client.post(refresh_url(labelled.project.pk), {"since": "soon"}, format="json")

    assert filtered.status_code == 200
    assert filtered.json()["filters"] == {"question": "age_group"}
    assert bad.status_code == 400
    assert set(bad.json()) == {"code", "message", "extra"}


def test_agreement_refresh_large_stale_queued_202_previous_result_meanwhile(
    computed, settings, django_capture_on_commit_callbacks, monkeypatch, client_for
):
    queued: list[int] = []
    monkeypatch.setattr(
        agreement_analysis_task, "apply_async", lambda args, **options: queued.append(args[0])
    )
    make_stale(computed)
    settings.CHORUS_ANALYSIS_INLINE_LIMIT = 1
    client = client_for(computed.project.owner)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(refresh_url(computed.project.pk), {}, format="json")
    polled = client.get(urls(computed.project.pk)["agreement"]).json()

    assert response.status_code == 202
    assert queued == [AgreementAnalysis.objects.get().pk]
    for body in (response.json(), polled):
        assert (body["status"], body["stale"]) == ("pending", False)
        assert body["summary"]["n_labels"] == 24


def test_agreement_refresh_auditor_403_annotator_and_stranger_404_nothing_written(
    computed, client_for
):
    make_stale(computed)
    before = stored_rows()
    url = refresh_url(computed.project.pk)

    statuses = [
        client_for(user).post(url, {}, format="json").status_code
        for user in (make_user(Role.AUDITOR), computed.annotators[0], make_user(Role.RESEARCHER))
    ]

    assert statuses == [403, 404, 404]
    assert stored_rows() == before


def test_item_disagreement_options_with_csv_format_answered_in_json(labelled, client_for):
    response = client_for(labelled.project.owner).options(
        urls(labelled.project.pk)["items"] + "?format=csv"
    )

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")


def test_annotator_agreement_fresh_analysis_in_bounded_queries(
    computed, django_assert_max_num_queries, client_for
):
    client = client_for(computed.project.owner)
    url = urls(computed.project.pk)["annotators"]

    with django_assert_max_num_queries(4):
        response = client.get(url, {"page_size": "2"})

    assert response.status_code == 200
    assert response.json()["count"] == 4
    assert len(response.json()["results"]) == 2
