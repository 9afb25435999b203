"""The audit log page's chain check: only events after the checkpoint, a full check on demand,
and a GET that writes nothing and costs the same queries however long the log."""

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from core.models import Role, User
from provenance.models import AuditChainCheckpoint, AuditChainHead, AuditEvent
from provenance.services import audit_chain_checkpoint_advance, audit_record
from tests.core.factories import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("audit_tampering")]

# Session, user, filter menu, page count and rows, and the chain check's fixed reads (the
# newest event, the head, the checkpoint twice, its event, the walk): none per event.
PAGE_QUERY_BOUND = 11


def record(n: int, *, action: str = "test.event") -> None:
    for i in range(n):
        audit_record(actor=None, action=action, object_type="thing", object_id=str(i))


def page_for(user: User, **params: str) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(reverse("audit-log"), params)
    assert response.status_code == 200
    return response.content.decode()


def chain_status(html: str) -> str:
    start = html.index('id="chain-status"')
    return html[start : html.index("</p>", start)]


def full_check_line(html: str) -> str:
    start = html.index('id="chain-full-check"')
    return " ".join(html[start : html.index("</p>", start)].split())


def database_state() -> tuple[list[Any], ...]:
    return (
        list(AuditChainCheckpoint.objects.order_by("pk").values()),
        list(AuditChainHead.objects.order_by("pk").values()),
        list(AuditEvent.objects.order_by("seq").values("seq", "hash")),
    )


def test_audit_log_page_after_checkpoint_checks_only_new_events() -> None:
    auditor = make_user(Role.AUDITOR)
    record(4)
    audit_chain_checkpoint_advance(full=True)
    verified = AuditEvent.objects.count()
    record(3)

    html = page_for(auditor)

    status = chain_status(html)
    assert "Hash chain intact: 3 events verified just now" in status
    assert f"after event #{verified}" in status
    assert "Last full check" in full_check_line(html)
    assert f"intact, {verified} events" in full_check_line(html)
    assert "Run a full check" in html


def test_audit_log_page_no_checkpoint_checks_from_first_event_without_full_check_link() -> None:
    auditor = make_user(Role.AUDITOR)
    record(4)

    html = page_for(auditor)

    assert "5 events verified just now, from the first event" in chain_status(html)
    assert "No full check recorded yet" in full_check_line(html)
    assert "Run a full check" not in html


def test_audit_log_page_new_event_tampered_after_checkpoint_shows_broken() -> None:
    auditor = make_user(Role.AUDITOR)
    record(4)
    audit_chain_checkpoint_advance()
    record(3, action="test.later")
    tampered = AuditEvent.objects.filter(action="test.later").order_by("seq")[1].seq
    AuditEvent.objects.filter(seq=tampered).update(payload={"forged": True})

    status = chain_status(page_for(auditor))

    assert f"Hash chain broken at event #{tampered}" in status
    assert "does not match its hash" in status


def test_audit_log_page_full_check_finds_old_event_tampered_before_checkpoint() -> None:
    auditor = make_user(Role.AUDITOR)
    record(4)
    audit_chain_checkpoint_advance()
    AuditEvent.objects.filter(seq=2).update(payload={"forged": True})

    quick = chain_status(page_for(auditor))
    full = chain_status(page_for(auditor, full="1"))

    assert "Hash chain intact" in quick
    assert "Hash chain broken at event #2" in full


def test_audit_log_page_failed_full_check_recorded_shows_broken_on_every_view() -> None:
    auditor = make_user(Role.AUDITOR)
    record(4)
    audit_chain_checkpoint_advance()
    AuditEvent.objects.filter(seq=2).update(payload={"forged": True})
    audit_chain_checkpoint_advance(full=True)

    html = page_for(auditor)

    assert "Hash chain broken at event #2" in chain_status(html)
    assert "broken at event #2" in full_check_line(html)


@pytest.mark.parametrize("params", [{}, {"full": "1"}], ids=["incremental", "full"])
@pytest.mark.parametrize("checked_before", [False, True], ids=["no-checkpoint", "checkpoint"])
def test_audit_log_page_get_writes_nothing(params: dict[str, str], checked_before: bool) -> None:
    auditor = make_user(Role.AUDITOR)
    record(4)
    if checked_before:
        audit_chain_checkpoint_advance()
        record(2)
    before = database_state()

    page_for(auditor, **params)

    assert database_state() == before


@pytest.mark.parametrize("n_events", [30, 300])
def test_audit_log_page_query_count_does_not_grow_with_events(
    n_events: int, django_assert_max_num_queries: Any
) -> None:
    auditor = make_user(Role.AUDITOR)
    record(n_events // 2)
    audit_chain_checkpoint_advance()
    record(n_events - n_events // 2, action="test.later")
    client = Client()
    client.force_login(auditor)

    with django_assert_max_num_queries(PAGE_QUERY_BOUND):
        response = client.get(reverse("audit-log"))

    assert "Hash chain intact" in chain_status(response.content.decode())


def test_audit_log_page_paging_links_do_not_repeat_full_check() -> None:
    auditor = make_user(Role.AUDITOR)
    record(60)
    audit_chain_checkpoint_advance()
    record(1)

    html = page_for(auditor, full="1", action="test.event")

    assert "from the first event" in chain_status(html)
    assert "page=2" in html
    assert "full=1" not in html.split("</section>", 1)[1]
