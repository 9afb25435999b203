"""Takedowns, tombstones, the re-import guard and data subjects' consent, end to end."""

from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from annotation.ingest import items_import, read_upload
from annotation.models import Assignment, Item, SubjectConsent, TakedownRequest
from annotation.selectors import consent_report, takedown_list_for
from annotation.services import (
    assignment_next,
    enrolment_withdraw,
    item_subject_consent_set,
    takedown_decide,
    takedown_file,
)
from core.errors import Conflict, PermissionDenied, TooManyRequests, ValidationFailed
from core.models import Role
from core.services import rate_limit_hit
from provenance.models import AuditEvent, ConsentRecord, Tombstone
from provenance.services import audit_chain_verify
from tests.annotation.conftest import csv_bytes, png_bytes, zip_bytes
from tests.annotation.factories import make_enrolled_annotator, make_open_project, make_project
from tests.core.factories import make_user

pytestmark = pytest.mark.django_db


def _import_images(project, members: dict[str, bytes], manifest: str):
    data = zip_bytes({"manifest.csv": manifest.encode(), **members})
    return items_import(
        project=project, actor=project.owner, source=read_upload(data=data, filename="a.zip")
    )


def _import_texts(project, rows: list[list[str]]):
    data = csv_bytes("external_id,text,license,creator", *(",".join(row) for row in rows))
    return items_import(
        project=project, actor=project.owner, source=read_upload(data=data, filename="t.csv")
    )


def _actions() -> list[str]:
    return list(AuditEvent.objects.order_by("seq").values_list("action", flat=True))


@pytest.fixture
def image_item(image_project) -> Item:
    manifest = "external_id,file,license,creator\nphoto1,p1.png,CC-BY-4.0,Ana\n"
    (item,) = _import_images(image_project, {"p1.png": png_bytes((64, 48))}, manifest)
    return item


def test_takedown_file_by_item_id_creates_open_request_and_audits(image_item):
    (request,) = takedown_file(reference=str(image_item.pk), kind="privacy", reason="It is me.")

    assert request.item == image_item
    assert request.project == image_item.project
    assert request.status == TakedownRequest.Status.OPEN
    assert _actions()[-1] == "takedown.file"


def test_takedown_file_by_sha256_matches_every_project_holding_the_content(researcher):
    first = make_project(researcher)
    second = make_project(researcher)
    _import_texts(first, [["a", "the same words", "CC0-1.0", ""]])
    _import_texts(second, [["b", "the same words", "CC0-1.0", ""]])
    sha = Item.objects.get(project=first).sha256

    requests = takedown_file(reference=sha.upper(), kind="copyright", reason="Mine.")

    assert {r.project_id for r in requests} == {first.pk, second.pk}


def test_takedown_file_unknown_reference_kept_for_staff_without_project():
    (request,) = takedown_file(reference="no-such-thing", kind="other", reason="Please check.")

    assert request.item is None
    assert request.project is None


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"reference": " ", "kind": "privacy", "reason": "x"}, "invalid_reference"),
        ({"reference": "1", "kind": "bogus", "reason": "x"}, "invalid_kind"),
        ({"reference": "1", "kind": "privacy", "reason": "  "}, "invalid_reason"),
    ],
)
def test_takedown_file_bad_input_refused_with_code(fields, code):
    with pytest.raises(ValidationFailed) as excinfo:
        takedown_file(**fields)
    assert excinfo.value.code == code
    assert not TakedownRequest.objects.exists()


def test_takedown_accept_tombstones_item_deletes_content_and_audits(
    image_item, django_capture_on_commit_callbacks
):
    stored = image_item.image.name
    assert default_storage.exists(stored)
    (request,) = takedown_file(reference=str(image_item.pk), kind="privacy", reason="It is me.")

    with django_capture_on_commit_callbacks(execute=True):
        decided = takedown_decide(
            request=request,
            actor=image_item.project.owner,
            accept=True,
            reason="Shows the requester.",
        )

    item = Item.objects.get(pk=image_item.pk)
    assert decided.status == TakedownRequest.Status.ACCEPTED
    assert decided.decided_by == image_item.project.owner
    assert item.tombstoned_at is not None
    assert not item.image and item.text == "" and item.metadata == {}
    assert not default_storage.exists(stored)
    tombstone = Tombstone.objects.get()
    assert (tombstone.sha256, tombstone.phash) == (image_item.sha256, image_item.phash)
    assert _actions()[-3:] == ["takedown.file", "item.tombstone", "takedown.accept"]
    assert audit_chain_verify().ok


def test_takedown_accept_cancels_open_assignments_and_leaves_pool():
    project = make_open_project(1, k=2)
    item = project.items.get()
    annotator = make_enrolled_annotator(project)
    assignment = assignment_next(project=project, annotator=annotator)
    assert assignment is not None
    (request,) = takedown_file(reference=str(item.pk), kind="copyright", reason="Mine.")

    takedown_decide(request=request, actor=project.owner, accept=True, reason="Valid claim.")

    assert Assignment.objects.get(pk=assignment.pk).status == Assignment.Status.CANCELLED
    other = make_enrolled_annotator(project)
    assert assignment_next(project=project, annotator=other) is None


def test_takedown_accepted_image_reimport_refused_even_resized(image_item, image_project):
    (request,) = takedown_file(reference=str(image_item.pk), kind="privacy", reason="It is me.")
    takedown_decide(request=request, actor=image_project.owner, accept=True, reason="Agreed.")
    manifest = "external_id,file,license\nagain,p.png,CC0-1.0\nresized,r.png,CC0-1.0\n"
    resized = png_bytes((128, 96))

    with pytest.raises(ValidationFailed) as excinfo:
        _import_images(image_project, {"p.png": png_bytes((64, 48)), "r.png": resized}, manifest)

    errors = excinfo.value.extra["errors"]
    assert {(e["line"], e["code"]) for e in errors} == {(2, "taken_down"), (3, "taken_down")}
    assert "taken down" in errors[0]["message"]
    assert Item.objects.filter(project=image_project).count() == 1


def test_takedown_accepted_text_reimport_into_another_project_refused(researcher):
    project = make_project(researcher)
    (item,) = _import_texts(project, [["a", "a private story", "CC0-1.0", ""]])
    (request,) = takedown_file(reference=item.sha256, kind="erasure", reason="My data.")
    takedown_decide(request=request, actor=researcher, accept=True, reason="Art. 17 applies.")

    with pytest.raises(ValidationFailed) as excinfo:
        _import_texts(make_project(researcher), [["b", "a private story", "CC0-1.0", ""]])

    assert excinfo.value.extra["errors"][0]["code"] == "taken_down"


def test_takedown_reject_keeps_item_and_records_reason(image_item):
    (request,) = takedown_file(reference=str(image_item.pk), kind="copyright", reason="Mine.")

    takedown_decide(
        request=request, actor=image_item.project.owner, accept=False, reason="CC-BY, credited."
    )

    request.refresh_from_db()
    assert request.status == TakedownRequest.Status.REJECTED
    assert request.decision_reason == "CC-BY, credited."
    assert Item.objects.get(pk=image_item.pk).tombstoned_at is None
    assert not Tombstone.objects.exists()
    assert _actions()[-1] == "takedown.reject"


def test_takedown_decide_twice_conflicts(image_item):
    (request,) = takedown_file(reference=str(image_item.pk), kind="copyright", reason="Mine.")
    owner = image_item.project.owner
    takedown_decide(request=request, actor=owner, accept=False, reason="No.")

    with pytest.raises(Conflict):
        takedown_decide(request=request, actor=owner, accept=True, reason="Changed my mind.")


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.ANNOTATOR, Role.RESEARCHER])
def test_takedown_decide_not_owner_refused_and_nothing_changes(image_item, role):
    (request,) = takedown_file(reference=str(image_item.pk), kind="copyright", reason="Mine.")
    actor = make_user(role)
    events = AuditEvent.objects.count()

    with pytest.raises(PermissionDenied):
        takedown_decide(request=request, actor=actor, accept=True, reason="x")

    request.refresh_from_db()
    assert request.status == TakedownRequest.Status.OPEN
    assert AuditEvent.objects.count() == events


def test_takedown_decide_unmatched_request_only_staff_may_reject():
    (request,) = takedown_file(reference="nothing", kind="other", reason="?")
    staff = make_user(Role.RESEARCHER, is_staff=True)
    with pytest.raises(Conflict):
        takedown_decide(request=request, actor=staff, accept=True, reason="x")

    takedown_decide(request=request, actor=staff, accept=False, reason="Names no item.")

    request.refresh_from_db()
    assert request.status == TakedownRequest.Status.REJECTED


def test_takedown_list_for_scoped_to_owner_auditor_and_staff(image_item):
    takedown_file(reference=str(image_item.pk), kind="privacy", reason="It is me.")
    takedown_file(reference="nothing", kind="other", reason="?")

    assert takedown_list_for(user=image_item.project.owner).count() == 1
    assert takedown_list_for(user=make_user(Role.RESEARCHER)).count() == 0
    assert takedown_list_for(user=make_user(Role.AUDITOR)).count() == 2
    assert takedown_list_for(user=make_user(Role.ANNOTATOR)).count() == 0


def test_item_subject_consent_obtained_creates_data_subject_record(image_item):
    item = item_subject_consent_set(
        item=image_item,
        actor=image_item.project.owner,
        status=SubjectConsent.OBTAINED,
        consent_text="I agree that this photo is used for research.",
        purposes=["research"],
        evidence="release form R-17, cabinet 3",
    )

    record = item.subject_consent_record
    assert record is not None
    assert record.subject_kind == ConsentRecord.SubjectKind.DATA_SUBJECT
    assert record.scope == f"item:{item.pk}"
    assert record.evidence == "release form R-17, cabinet 3"
    assert _actions()[-1] == "item.subject_consent"


def test_item_subject_consent_obtained_without_evidence_refused(image_item):
    with pytest.raises(ValidationFailed) as excinfo:
        item_subject_consent_set(
            item=image_item,
            actor=image_item.project.owner,
            status=SubjectConsent.OBTAINED,
            consent_text="I agree.",
            purposes=["research"],
        )
    assert excinfo.value.code == "consent_incomplete"


def test_ingest_subject_consent_defaults_by_modality_and_obtained_needs_record(
    image_project, text_project
):
    (photo,) = _import_images(
        image_project, {"p.png": png_bytes()}, "external_id,file,license\nphoto,p.png,CC0-1.0\n"
    )
    (text,) = _import_texts(text_project, [["t", "words", "", ""]])
    assert photo.subject_consent == SubjectConsent.UNKNOWN
    assert text.subject_consent == SubjectConsent.NOT_APPLICABLE

    manifest = "external_id,file,license,subject_consent\nx,p.png,CC0-1.0,obtained\n"
    with pytest.raises(ValidationFailed) as excinfo:
        _import_images(image_project, {"p.png": png_bytes((30, 30))}, manifest)
    assert excinfo.value.extra["errors"][0]["code"] == "consent_needs_record"


def test_ingest_attribution_generated_tasl_when_missing(text_project):
    (item,) = _import_texts(text_project, [["post-7", "words", "CC-BY-4.0", "Ana Diaz"]])

    assert "Ana Diaz" in item.attribution
    assert "CC-BY-4.0" in item.attribution
    assert "post-7" in item.attribution


def test_consent_report_counts_lists_findings_and_pseudonyms_only(image_project):
    manifest = (
        "external_id,file,license,subject_consent\n"
        "a,a.png,,not_obtained\nb,b.png,,\nc,c.png,,not_applicable\n"
    )
    _import_images(
        image_project,
        {n: png_bytes((20 + i, 20)) for i, n in enumerate(["a.png", "b.png", "c.png"])},
        manifest,
    )
    from annotation.services import project_transition

    project_transition(project=image_project, actor=image_project.owner, status="open")
    annotator = make_enrolled_annotator(image_project)
    withdrawn = make_enrolled_annotator(image_project)
    enrolment_withdraw(enrolment=withdrawn.enrolments.get(), actor=withdrawn)
    item_a = Item.objects.get(external_id="a")
    takedown_file(reference=str(item_a.pk), kind="privacy", reason="It is me.")

    report = consent_report(project=image_project)

    assert report.subject_consent == {
        "not_applicable": 1,
        "obtained": 0,
        "not_obtained": 1,
        "unknown": 1,
    }
    assert [item.external_id for item in report.items_without_consent] == ["a", "b"]
    assert {row.pseudonym for row in report.annotators} == {
        annotator.pseudonym,
        withdrawn.pseudonym,
    }
    assert report.annotators_withdrawn == 1
    assert [r.item_id for r in report.open_takedowns] == [item_a.pk]


def test_rate_limit_hit_refuses_after_limit_in_window():
    for _ in range(3):
        rate_limit_hit(key="takedown:1.2.3.4", limit=3, window_seconds=60)
    with pytest.raises(TooManyRequests):
        rate_limit_hit(key="takedown:1.2.3.4", limit=3, window_seconds=60)
    rate_limit_hit(key="takedown:5.6.7.8", limit=3, window_seconds=60)


# ---------------------------------------------------------------- API and pages


def test_api_takedown_anonymous_file_same_answer_whether_or_not_it_matches(image_item):
    client = APIClient()
    matched = client.post(
        "/api/v1/takedowns/",
        {"reference": str(image_item.pk), "kind": "privacy", "reason": "Me."},
        format="json",
    )
    unmatched = client.post(
        "/api/v1/takedowns/",
        {"reference": "999999", "kind": "privacy", "reason": "Me."},
        format="json",
    )

    assert matched.status_code == unmatched.status_code == 202
    assert matched.json() == unmatched.json()
    assert TakedownRequest.objects.count() == 2


def test_api_takedown_anonymous_flood_throttled(settings):
    settings.CHORUS_TAKEDOWN_MAX_PER_HOUR = 2
    client = APIClient()
    body = {"reference": "1", "kind": "other", "reason": "x"}
    codes = [client.post("/api/v1/takedowns/", body, format="json").status_code for _ in range(3)]

    assert codes == [202, 202, 429]
    assert TakedownRequest.objects.count() == 2


# Behind nginx (CHORUS_TRUSTED_PROXY_COUNT): REMOTE_ADDR is nginx's for every client.
NGINX = "172.18.0.5"
TAKEDOWN_BODY = {"reference": "1", "kind": "other", "reason": "x"}


def _api_file_proxied(forwarded_for: str) -> int:
    response = APIClient().post(
        "/api/v1/takedowns/",
        TAKEDOWN_BODY,
        format="json",
        REMOTE_ADDR=NGINX,
        HTTP_X_FORWARDED_FOR=forwarded_for,
    )
    return response.status_code


def _page_file_proxied(forwarded_for: str) -> int:
    response = Client().post(
        reverse("takedown"), TAKEDOWN_BODY, REMOTE_ADDR=NGINX, HTTP_X_FORWARDED_FOR=forwarded_for
    )
    return response.status_code


def _filers() -> list[str]:
    events = AuditEvent.objects.filter(action="takedown.file").order_by("seq")
    return list(events.values_list("actor_pseudonym", flat=True))


def test_takedown_behind_trusted_proxy_clients_get_separate_limits_and_filers(settings):
    settings.CHORUS_TAKEDOWN_MAX_PER_HOUR = 2
    settings.CHORUS_TRUSTED_PROXY_COUNT = 1

    flood = [_api_file_proxied("203.0.113.7") for _ in range(3)]
    other_api = _api_file_proxied("198.51.100.2")
    other_page = _page_file_proxied("198.51.100.2")

    assert flood == [202, 202, 429]
    assert (other_api, other_page) == (202, 200)
    first, second, third, fourth = _filers()
    assert first == second != third == fourth


def test_takedown_behind_trusted_proxy_forged_forwarded_for_keyed_by_real_address(settings):
    settings.CHORUS_TAKEDOWN_MAX_PER_HOUR = 2
    settings.CHORUS_TRUSTED_PROXY_COUNT = 1

    codes = [_api_file_proxied(f"1.2.3.{n}, 203.0.113.7") for n in range(2)]
    forged_page = _page_file_proxied("1.2.3.9, 203.0.113.7")

    assert codes == [202, 202]
    assert forged_page == 429
    assert _api_file_proxied("198.51.100.2") == 202
    first, second, other = _filers()
    assert first == second != other


def test_takedown_no_trusted_proxy_forwarded_for_ignored(settings):
    settings.CHORUS_TAKEDOWN_MAX_PER_HOUR = 2
    settings.CHORUS_TRUSTED_PROXY_COUNT = 0

    codes = [_api_file_proxied(address) for address in ("203.0.113.7", "198.51.100.2")]
    third = _page_file_proxied("192.0.2.1")

    # All three came from REMOTE_ADDR (here nginx's): one address, one limit, one filer.
    assert codes == [202, 202]
    assert third == 429
    assert len(set(_filers())) == 1


def test_api_takedown_decision_owner_accepts_auditor_refused(image_item):
    (request,) = takedown_file(reference=str(image_item.pk), kind="privacy", reason="Me.")
    auditor = APIClient()
    auditor.force_authenticate(make_user(Role.AUDITOR))
    url = f"/api/v1/takedowns/{request.pk}/decision/"

    refused = auditor.post(url, {"accept": True, "reason": "x"}, format="json")
    listed = auditor.get("/api/v1/takedowns/")

    assert refused.status_code == 403
    assert listed.status_code == 200
    assert listed.json()["results"][0]["contact"] == ""
    owner = APIClient()
    owner.force_authenticate(image_item.project.owner)
    accepted = owner.post(url, {"accept": True, "reason": "Shows them."}, format="json")
    assert accepted.status_code == 200
    assert accepted.json()["status"] == "accepted"


def test_api_item_subject_consent_other_researcher_404(image_item):
    client = APIClient()
    client.force_authenticate(make_user(Role.RESEARCHER))

    response = client.put(
        f"/api/v1/items/{image_item.pk}/subject-consent/",
        {"status": "not_obtained"},
        format="json",
    )

    assert response.status_code == 404
    assert Item.objects.get(pk=image_item.pk).subject_consent == SubjectConsent.UNKNOWN


def test_page_takedown_public_form_anonymous_files_request(client, image_item):
    assert client.get(reverse("takedown")).status_code == 200

    response = client.post(
        reverse("takedown"),
        {"reference": str(image_item.pk), "kind": "privacy", "reason": "It is me."},
    )

    assert response.status_code == 200
    assert "takedown-received" in response.content.decode()
    assert TakedownRequest.objects.get().item == image_item


def test_page_takedown_detail_owner_accepts(client, image_item):
    (request,) = takedown_file(reference=str(image_item.pk), kind="privacy", reason="Me.")
    client.force_login(image_item.project.owner)
    url = reverse("takedown-detail", args=[request.pk])

    response = client.post(url, {"decision": "accept", "reason": "Shows them."})

    assert response.status_code == 302
    assert Item.objects.get(pk=image_item.pk).tombstoned_at is not None


def test_page_takedown_detail_auditor_post_refused(client, image_item):
    (request,) = takedown_file(reference=str(image_item.pk), kind="privacy", reason="Me.")
    client.force_login(make_user(Role.AUDITOR))
    url = reverse("takedown-detail", args=[request.pk])

    assert client.get(url).status_code == 200
    assert client.post(url, {"decision": "accept", "reason": "x"}).status_code == 403
    request.refresh_from_db()
    assert request.status == TakedownRequest.Status.OPEN


def test_page_consent_report_auditor_reads_annotator_forbidden(client, image_item):
    url = reverse("report-consent", args=[image_item.project_id])
    client.force_login(make_user(Role.AUDITOR))
    html = client.get(url).content.decode()
    assert "photo1" in html
    client.force_login(make_user(Role.ANNOTATOR))
    assert client.get(url).status_code == 403


def test_page_item_subject_consent_owner_records_status(client, image_item, tmp_path: Path):
    client.force_login(image_item.project.owner)
    url = reverse("item-subject-consent", args=[image_item.pk])

    response = client.post(url, {"status": "not_applicable", "lawful_basis": "consent"})

    assert response.status_code == 302
    assert Item.objects.get(pk=image_item.pk).subject_consent == SubjectConsent.NOT_APPLICABLE


# ---------------------------------------------------------------- license report


def _licensed_project(researcher):
    project = make_project(researcher)
    rows = [
        ["a", "one", "CC-BY-4.0", "Ana"],
        ["b", "two", "CC-BY-SA-4.0", "Bo"],
        ["c", "three", "CC-BY-NC-4.0", "Cy"],
        ["d", "four", "CC-BY-ND-4.0", "Di"],
        ["e", "five", "NOASSERTION", ""],
        ["f", "six", "", ""],
        ["g", "seven", "CC0-1.0", ""],
        ["h", "=HYPERLINK(evil)", "CC-BY-4.0", ""],
    ]
    _import_texts(project, rows)
    return project


def test_license_report_counts_findings_and_blocking_items(researcher):
    from annotation.selectors import license_report

    report = license_report(project=_licensed_project(researcher))

    assert dict(report.by_license)["CC-BY-4.0"] == 2
    assert report.by_use == {
        "commercial": 5,
        "non-commercial": 1,
        "academic-only": 0,
        "unspecified": 2,
    }
    assert [i.external_id for i in report.missing_license] == ["f"]
    assert {i.external_id for i in report.unknown_license} == {"e"}
    assert [i.external_id for i in report.missing_attribution] == ["h"]
    answers = {answer.intended_use: answer for answer in report.answers}
    assert not answers["commercial"].allowed
    commercial_blockers = {b.expression: items for b, items in answers["commercial"].blocking}
    assert commercial_blockers["CC-BY-NC-4.0"] == ["c"]
    train = {b.rule for b, _ in answers["train-model"].blocking}
    assert {"no-derivatives", "share-alike-use-conflict", "use-unspecified"} <= train


def test_license_report_tombstoned_items_excluded(researcher):
    from annotation.selectors import license_report

    project = _licensed_project(researcher)
    item = Item.objects.get(project=project, external_id="c")
    (request,) = takedown_file(reference=str(item.pk), kind="copyright", reason="Mine.")
    takedown_decide(request=request, actor=researcher, accept=True, reason="Agreed.")

    report = license_report(project=project)

    assert "c" not in {i.external_id for i in report.items}
    assert report.by_use["non-commercial"] == 0


def test_api_license_report_csv_cells_defused_and_json_answers(researcher):
    project = _licensed_project(researcher)
    Item.objects.filter(project=project, external_id="h").update(creator="=cmd|' /C calc'!A0")
    client = APIClient()
    client.force_authenticate(make_user(Role.AUDITOR))
    url = f"/api/v1/projects/{project.pk}/reports/licenses/"

    data = client.get(url).json()
    csv_body = client.get(url, {"format": "csv"}).content.decode()

    assert data["items"] == 8
    assert {a["intended_use"]: a["allowed"] for a in data["answers"]}["commercial"] is False
    assert "'=cmd|" in csv_body
    assert "\n=cmd" not in csv_body and ",=cmd" not in csv_body


def test_page_license_report_auditor_sees_findings_and_csv(client, researcher):
    project = _licensed_project(researcher)
    client.force_login(make_user(Role.AUDITOR))
    url = reverse("report-licenses", args=[project.pk])

    html = client.get(url).content.decode()
    csv_response = client.get(url, {"format": "csv"})

    assert "not allowed" in html and "CC-BY-NC-4.0" in html
    assert csv_response["Content-Type"].startswith("text/csv")
    assert csv_response.content.decode().splitlines()[0].startswith("item_id,external_id")


def test_page_license_report_other_researcher_404(client, researcher):
    project = _licensed_project(researcher)
    client.force_login(make_user(Role.RESEARCHER))

    assert client.get(reverse("report-licenses", args=[project.pk])).status_code == 404


def test_api_consent_report_auditor_reads_pseudonyms_only():
    project = make_open_project(2)
    annotator = make_enrolled_annotator(project)
    client = APIClient()
    client.force_authenticate(make_user(Role.AUDITOR))

    response = client.get(f"/api/v1/projects/{project.pk}/reports/consent/")

    assert response.status_code == 200
    body = response.content.decode()
    assert annotator.pseudonym in body
    assert annotator.username not in body and annotator.email not in body
