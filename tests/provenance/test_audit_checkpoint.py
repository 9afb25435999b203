"""The audit chain's checkpoint: checks start after it, and only a full check sees behind it."""

from io import StringIO
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from config.celery import app as celery_app
from provenance.models import AuditChainCheckpoint, AuditChainHead, AuditEvent
from provenance.services import (
    audit_chain_checkpoint_advance,
    audit_chain_verify,
    audit_record,
)
from provenance.tasks import audit_chain_checkpoint_advance_task
from tests.provenance.test_audit import N_EVENTS, record_events, rehash

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("audit_tampering")]

N_NEW = 7


def record_more(n: int = N_NEW) -> None:
    for i in range(n):
        audit_record(actor=None, action="test.later", object_type="thing", object_id=f"l{i}")


def checkpoint() -> AuditChainCheckpoint:
    return AuditChainCheckpoint.objects.get(pk=1)


def test_audit_chain_checkpoint_advance_intact_chain_moves_checkpoint_to_head() -> None:
    record_events()

    report = audit_chain_checkpoint_advance()

    assert report.ok and report.full
    head = AuditChainHead.objects.get(pk=1)
    assert (checkpoint().seq, checkpoint().hash) == (head.last_seq, head.last_hash)
    assert checkpoint().verified_at is not None


def test_audit_chain_verify_after_checkpoint_checks_only_new_events() -> None:
    record_events()
    audit_chain_checkpoint_advance()
    record_more()

    report = audit_chain_verify()

    assert report.ok, report.reason
    assert report.events_checked == N_NEW
    assert not report.full
    assert report.checked_after_seq == N_EVENTS


def test_audit_chain_verify_checkpoint_at_head_checks_no_event() -> None:
    record_events()
    audit_chain_checkpoint_advance()

    report = audit_chain_verify()

    assert report.ok
    assert report.events_checked == 0


def test_audit_chain_verify_full_walks_every_event_despite_checkpoint() -> None:
    record_events()
    audit_chain_checkpoint_advance()
    record_more()

    report = audit_chain_verify(full=True)

    assert report.ok and report.full
    assert report.events_checked == N_EVENTS + N_NEW


def test_audit_chain_verify_new_event_tampered_after_checkpoint_detected() -> None:
    record_events()
    audit_chain_checkpoint_advance()
    record_more()
    AuditEvent.objects.filter(seq=N_EVENTS + 2).update(payload={"forged": True})

    report = audit_chain_verify()

    assert not report.ok
    assert report.first_broken_seq == N_EVENTS + 2
    assert report.events_checked == 1


def test_audit_chain_verify_old_event_tampered_before_checkpoint_found_by_full_check_only() -> None:
    record_events()
    audit_chain_checkpoint_advance()
    record_more()
    AuditEvent.objects.filter(seq=3).update(payload={"forged": True})

    incremental = audit_chain_verify()
    full = audit_chain_verify(full=True)

    # The documented limit of an incremental check: an event it already passed is not
    # looked at again.
    assert incremental.ok
    assert not full.ok
    assert full.first_broken_seq == 3


def test_audit_chain_verify_checkpoint_event_edited_and_rehashed_detected() -> None:
    record_events()
    audit_chain_checkpoint_advance()
    record_more()
    AuditEvent.objects.filter(seq=N_EVENTS).update(payload={"forged": True})
    rehash(N_EVENTS)

    report = audit_chain_verify()

    assert not report.ok
    assert report.first_broken_seq == N_EVENTS


def test_audit_chain_verify_events_and_head_rolled_back_behind_checkpoint_detected() -> None:
    record_events()
    audit_chain_checkpoint_advance()
    AuditEvent.objects.filter(seq__gt=3).delete()
    AuditChainHead.objects.filter(pk=1).update(
        last_seq=3, last_hash=AuditEvent.objects.get(seq=3).hash
    )

    report = audit_chain_verify()

    assert not report.ok
    assert report.first_broken_seq == 4


def test_audit_chain_checkpoint_advance_incremental_failure_keeps_checkpoint() -> None:
    record_events()
    audit_chain_checkpoint_advance()
    record_more()
    AuditEvent.objects.filter(seq=N_EVENTS + 1).update(payload={"forged": True})
    before = AuditChainCheckpoint.objects.values().get(pk=1)

    report = audit_chain_checkpoint_advance()

    assert not report.ok
    assert AuditChainCheckpoint.objects.values().get(pk=1) == before


def test_audit_chain_checkpoint_advance_full_check_failed_records_it_and_resets_checkpoint() -> (
    None
):
    record_events()
    audit_chain_checkpoint_advance()
    record_more()
    AuditEvent.objects.filter(seq=2).update(payload={"forged": True})

    report = audit_chain_checkpoint_advance(full=True)

    assert not report.ok
    stored = checkpoint()
    assert (stored.full_check_ok, stored.full_check_broken_seq) == (False, 2)
    assert stored.full_check_events == 1
    assert "hash" in stored.full_check_reason
    assert (stored.seq, stored.hash) == (0, "")
    # With the checkpoint withdrawn, the everyday check walks from the first event again.
    after = audit_chain_verify()
    assert not after.ok and after.full and after.first_broken_seq == 2


def test_audit_chain_checkpoint_advance_full_check_intact_records_it() -> None:
    record_events()

    audit_chain_checkpoint_advance(full=True)

    stored = checkpoint()
    assert stored.full_check_ok is True
    assert stored.full_check_events == N_EVENTS
    assert stored.full_check_at is not None
    assert stored.full_check_broken_seq is None
    assert stored.seq == N_EVENTS


def test_audit_chain_checkpoint_advance_incremental_run_does_not_count_as_full_check() -> None:
    record_events()
    audit_chain_checkpoint_advance(full=True)
    recorded = checkpoint().full_check_at
    record_more()

    report = audit_chain_checkpoint_advance()

    assert report.ok and not report.full
    assert report.events_checked == N_NEW
    assert checkpoint().full_check_at == recorded
    assert checkpoint().seq == N_EVENTS + N_NEW


def test_audit_chain_checkpoint_advance_task_moves_checkpoint() -> None:
    record_events()

    assert audit_chain_checkpoint_advance_task.delay().get() is True

    assert checkpoint().seq == N_EVENTS


def test_verify_audit_chain_command_records_full_check() -> None:
    record_events()
    audit_chain_checkpoint_advance()
    AuditEvent.objects.filter(seq=2).update(payload={"forged": True})

    with pytest.raises(CommandError, match="#2"):
        call_command("verify_audit_chain", stdout=StringIO())

    assert checkpoint().full_check_ok is False
    assert checkpoint().full_check_broken_seq == 2


def test_audit_chain_beat_schedule_advances_and_runs_full_check_with_registered_task() -> None:
    schedule: dict[str, dict[str, Any]] = settings.CELERY_BEAT_SCHEDULE
    entries = [
        entry
        for entry in schedule.values()
        if entry["task"] == audit_chain_checkpoint_advance_task.name
    ]

    assert audit_chain_checkpoint_advance_task.name in celery_app.tasks
    assert sorted(entry.get("kwargs", {}).get("full", False) for entry in entries) == [False, True]
