"""API: the audit log and its chain check, read-only, for auditors and staff."""

from typing import Any

import pytest

from core.models import Role
from provenance.models import AuditChainCheckpoint, AuditEvent
from provenance.services import audit_chain_checkpoint_advance
from tests.annotation.factories import make_enrolled_annotator, make_open_project
from tests.core.factories import make_user

pytestmark = pytest.mark.django_db

EVENTS_URL = "/api/v1/audit/events/"
VERIFY_URL = "/api/v1/audit/verify/"
EVENT_FIELDS = {
    "seq",
    "created_at",
    "actor_pseudonym",
    "action",
    "object_type",
    "object_id",
    "payload",
    "prev_hash",
    "hash",
}


def test_audit_events_auditor_lists_newest_first_in_bounded_queries(
    django_assert_max_num_queries: Any,
    client_for,
) -> None:
    make_open_project(2)
    auditor = make_user(Role.AUDITOR)

    with django_assert_max_num_queries(2):
        response = client_for(auditor).get(EVENTS_URL, {"page_size": 3})

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == AuditEvent.objects.count()
    seqs = [event["seq"] for event in body["results"]]
    assert seqs == sorted(seqs, reverse=True)
    assert all(set(event) == EVENT_FIELDS for event in body["results"])


def test_audit_events_never_show_user_ids_usernames_or_emails(client_for) -> None:
    project = make_open_project(1)
    annotator = make_enrolled_annotator(project)
    auditor = make_user(Role.AUDITOR)

    response = client_for(auditor).get(EVENTS_URL, {"page_size": 500})

    text = response.content.decode()
    for person in (project.owner, annotator, auditor):
        assert person.username not in text
        assert person.email not in text
    for event in response.json()["results"]:
        assert "actor" not in event and "actor_id" not in event
        if event["object_type"] == "core.user":
            assert event["object_id"] == "" or event["object_id"].startswith("pseudonym:")
    assert annotator.pseudonym in text


def test_audit_events_filter_on_allowlisted_fields_only(client_for) -> None:
    project = make_open_project(1)
    annotator = make_enrolled_annotator(project)
    auditor = make_user(Role.AUDITOR)
    client = client_for(auditor)

    consent = client.get(EVENTS_URL, {"action": "enrolment.consent"}).json()
    by_actor = client.get(EVENTS_URL, {"actor_pseudonym": annotator.pseudonym}).json()
    traversal = client.get(EVENTS_URL, {"actor__username__startswith": "a"}).json()

    assert [e["actor_pseudonym"] for e in consent["results"]] == [annotator.pseudonym]
    assert {e["action"] for e in by_actor["results"]} == {"enrolment.consent"}
    assert traversal["count"] == AuditEvent.objects.count()


@pytest.mark.parametrize("role", [Role.ANNOTATOR, Role.RESEARCHER])
def test_audit_endpoints_non_auditor_returns_403(role: str, client_for) -> None:
    client = client_for(make_user(role))

    assert client.get(EVENTS_URL).json()["code"] == "auditor_only"
    assert client.get(VERIFY_URL).status_code == 403


def test_audit_endpoints_staff_reads(client_for) -> None:
    staff = make_user(Role.RESEARCHER, is_staff=True)

    assert client_for(staff).get(EVENTS_URL).status_code == 200
    assert client_for(staff).get(VERIFY_URL).status_code == 200


def test_audit_events_auditor_write_returns_403_and_log_unchanged(client_for) -> None:
    auditor = make_user(Role.AUDITOR)
    before = list(AuditEvent.objects.values_list("seq", "hash"))

    response = client_for(auditor).post(EVENTS_URL, {"action": "x"}, format="json")

    assert response.status_code == 403
    assert list(AuditEvent.objects.values_list("seq", "hash")) == before


def test_audit_verify_intact_chain_ok(client_for) -> None:
    make_open_project(1)

    response = client_for(make_user(Role.AUDITOR)).get(VERIFY_URL)

    assert response.json() == {
        "ok": True,
        "events_checked": AuditEvent.objects.count(),
        "first_broken_seq": None,
        "reason": "",
        "full": True,
        "checked_after_seq": 0,
        "last_full_check": None,
    }


@pytest.mark.usefixtures("audit_tampering")
def test_audit_verify_tampered_event_reports_first_broken_seq(client_for) -> None:
    make_open_project(1)
    auditor = make_user(Role.AUDITOR)
    AuditEvent.objects.filter(seq=2).update(payload={"title": "forged"})

    response = client_for(auditor).get(VERIFY_URL)

    assert response.json()["ok"] is False
    assert response.json()["first_broken_seq"] == 2


def test_audit_verify_after_checkpoint_checks_new_events_and_shows_last_full_check(
    client_for,
) -> None:
    make_open_project(1)
    audit_chain_checkpoint_advance(full=True)
    verified = AuditEvent.objects.count()
    auditor = make_user(Role.AUDITOR)  # user.create: one event after the checkpoint

    body = client_for(auditor).get(VERIFY_URL).json()

    assert (body["ok"], body["full"], body["events_checked"]) == (True, False, 1)
    assert body["checked_after_seq"] == verified
    last = body["last_full_check"]
    assert (last["ok"], last["events_checked"], last["first_broken_seq"]) == (True, verified, None)
    assert set(last) == {"at", "ok", "events_checked", "first_broken_seq", "reason"}


@pytest.mark.usefixtures("audit_tampering")
def test_audit_verify_full_finds_event_tampered_before_checkpoint_and_writes_nothing(
    client_for,
) -> None:
    make_open_project(1)
    audit_chain_checkpoint_advance()
    auditor = make_user(Role.AUDITOR)
    AuditEvent.objects.filter(seq=2).update(payload={"title": "forged"})
    before = list(AuditChainCheckpoint.objects.values())
    client = client_for(auditor)

    incremental = client.get(VERIFY_URL).json()
    full = client.get(VERIFY_URL, {"full": "1"}).json()

    assert incremental["ok"] is True
    assert (full["ok"], full["full"], full["first_broken_seq"]) == (False, True, 2)
    assert list(AuditChainCheckpoint.objects.values()) == before


@pytest.mark.parametrize("role", [Role.ANNOTATOR, Role.RESEARCHER])
def test_audit_verify_full_non_auditor_returns_403(role: str, client_for) -> None:
    response = client_for(make_user(role)).get(VERIFY_URL, {"full": "1"})

    assert response.status_code == 403


def test_audit_verify_full_staff_reads(client_for) -> None:
    staff = make_user(Role.RESEARCHER, is_staff=True)

    body = client_for(staff).get(VERIFY_URL, {"full": "1"}).json()

    assert body["ok"] is True and body["full"] is True


def test_audit_verify_full_not_a_boolean_returns_400(client_for) -> None:
    response = client_for(make_user(Role.AUDITOR)).get(VERIFY_URL, {"full": "maybe"})

    assert response.status_code == 400
    assert set(response.json()) == {"code", "message", "extra"}
