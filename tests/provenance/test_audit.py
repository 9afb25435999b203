"""The tamper-evident audit log: the chain verifies, and any edit, deletion or reordering shows."""

import datetime as dt
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.models import Role
from provenance.models import AuditChainHead, AuditEvent
from provenance.selectors import audit_event_list
from provenance.services import (
    GENESIS_HASH,
    audit_chain_verify,
    audit_event_hash,
    audit_record,
)
from tests.core.factories import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("audit_tampering")]

N_EVENTS = 5


def record_events(n: int = N_EVENTS) -> list[AuditEvent]:
    actor = make_user(Role.RESEARCHER)  # user.create is itself one event
    return [
        audit_record(
            actor=actor,
            action="test.event",
            object_type="thing",
            object_id=str(i),
            payload={"n": i, "note": f"event {i}"},
        )
        for i in range(n - 1)
    ]


def rehash(seq: int) -> str:
    """Recompute a stored row's own hash, as a forger who knows the algorithm would."""
    event = AuditEvent.objects.get(seq=seq)
    digest = audit_event_hash(
        seq=event.seq,
        created_at=event.created_at,
        actor_id=event.actor_id,
        actor_pseudonym=event.actor_pseudonym,
        action=event.action,
        object_type=event.object_type,
        object_id=event.object_id,
        payload=event.payload,
        prev_hash=event.prev_hash,
    )
    AuditEvent.objects.filter(seq=seq).update(hash=digest)
    return digest


def test_audit_chain_verify_empty_log_is_intact() -> None:
    report = audit_chain_verify()
    assert report.ok
    assert report.events_checked == 0


def test_audit_record_links_each_event_to_the_previous_hash() -> None:
    record_events()
    events = list(AuditEvent.objects.order_by("seq"))
    assert [event.seq for event in events] == list(range(1, N_EVENTS + 1))
    assert events[0].prev_hash == GENESIS_HASH
    for previous, event in zip(events, events[1:], strict=False):
        assert event.prev_hash == previous.hash
    head = AuditChainHead.objects.get(pk=1)
    assert (head.last_seq, head.last_hash) == (N_EVENTS, events[-1].hash)


def test_audit_chain_verify_several_events_intact() -> None:
    record_events()
    report = audit_chain_verify(batch_size=2)
    assert report.ok, report.reason
    assert report.events_checked == N_EVENTS
    assert report.first_broken_seq is None


def test_audit_record_actor_stored_by_pseudonym() -> None:
    actor = make_user(Role.ANNOTATOR)
    event = audit_record(actor=actor, action="test.event", obj=actor)
    assert event.actor_pseudonym == actor.pseudonym
    assert (event.object_type, event.object_id) == ("core.user", str(actor.pk))


def test_audit_record_non_json_payload_values_still_verify() -> None:
    audit_record(
        actor=None,
        action="test.types",
        payload={
            "amount": Decimal("0.10"),
            "at": dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC),
            "nested": {"b": [1, 2.5, None, True], "a": "é</script>"},
        },
    )
    assert audit_chain_verify().ok


def test_audit_record_float_payloads_verify_after_database_round_trip() -> None:
    # jsonb normalises numbers (1e16 comes back as 10000000000000000): the hash must not
    # depend on how the database spells a number.
    audit_record(actor=None, action="test.floats", payload={"big": 1e16, "one": 1.0, "x": 0.1})
    assert audit_chain_verify().ok


# JSON as services produce it; NUL and lone surrogates are excluded: PostgreSQL text cannot
# hold them and DRF's CharField refuses them at the door.
_json_text = st.text(
    alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), max_size=12
)
_json_payloads = st.dictionaries(
    _json_text,
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | _json_text,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_json_text, inner, max_size=3),
        max_leaves=8,
    ),
    max_size=4,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=_json_payloads)
def test_audit_record_any_json_payload_verifies(payload: dict) -> None:
    audit_record(actor=None, action="test.property", payload=payload)
    report = audit_chain_verify()
    assert report.ok, report.reason


def test_audit_record_rolled_back_with_its_transaction_leaves_chain_intact() -> None:
    record_events(3)
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_record(actor=None, action="test.rolled_back")
        raise RuntimeError("the governance action failed")
    assert not AuditEvent.objects.filter(action="test.rolled_back").exists()
    event = audit_record(actor=None, action="test.after")
    assert event.seq == 4
    assert audit_chain_verify().ok


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"payload": {"n": 999, "note": "forged"}}, id="payload"),
        pytest.param({"action": "test.other"}, id="action"),
        pytest.param({"object_id": "42"}, id="object-id"),
        pytest.param({"actor_pseudonym": "a-someoneelse"}, id="actor"),
        pytest.param({"created_at": dt.datetime(2000, 1, 1, tzinfo=dt.UTC)}, id="time"),
    ],
)
def test_audit_chain_verify_row_edited_bypassing_service_detected(change: dict) -> None:
    record_events()
    AuditEvent.objects.filter(seq=3).update(**change)
    report = audit_chain_verify()
    assert not report.ok
    assert report.first_broken_seq == 3
    assert report.events_checked == 2
    assert "hash" in report.reason


def test_audit_chain_verify_edited_row_with_recomputed_hash_detected_at_next_link() -> None:
    record_events()
    AuditEvent.objects.filter(seq=3).update(payload={"n": 999})
    rehash(3)
    report = audit_chain_verify()
    assert not report.ok
    assert report.first_broken_seq == 4


def test_audit_chain_verify_last_row_edited_with_recomputed_hash_detected_by_head() -> None:
    record_events()
    AuditEvent.objects.filter(seq=N_EVENTS).update(payload={"n": 999})
    rehash(N_EVENTS)
    report = audit_chain_verify()
    assert not report.ok
    assert report.first_broken_seq == N_EVENTS + 1


def test_audit_chain_verify_middle_row_deleted_detected() -> None:
    record_events()
    AuditEvent.objects.filter(seq=3).delete()
    report = audit_chain_verify()
    assert not report.ok
    assert report.first_broken_seq == 3
    assert "missing" in report.reason


def test_audit_chain_verify_first_row_deleted_detected() -> None:
    record_events()
    AuditEvent.objects.filter(seq=1).delete()
    report = audit_chain_verify()
    assert not report.ok
    assert report.first_broken_seq == 1


def test_audit_chain_verify_last_row_deleted_detected_by_chain_head() -> None:
    record_events()
    AuditEvent.objects.filter(seq=N_EVENTS).delete()
    report = audit_chain_verify()
    assert not report.ok
    assert report.first_broken_seq == N_EVENTS
    assert report.events_checked == N_EVENTS - 1


def test_audit_chain_verify_rows_reordered_detected() -> None:
    record_events()
    # Swap seq 2 and 3 (through a free value: seq is unique).
    AuditEvent.objects.filter(seq=2).update(seq=-1)
    AuditEvent.objects.filter(seq=3).update(seq=2)
    AuditEvent.objects.filter(seq=-1).update(seq=3)
    report = audit_chain_verify()
    assert not report.ok
    assert report.first_broken_seq == 2


def test_audit_chain_verify_renumbered_after_deletion_detected() -> None:
    record_events()
    AuditEvent.objects.filter(seq=3).delete()
    for seq in range(4, N_EVENTS + 1):
        AuditEvent.objects.filter(seq=seq).update(seq=seq - 1)
    report = audit_chain_verify()
    assert not report.ok
    assert report.first_broken_seq == 3


def test_audit_chain_verify_event_appended_without_moving_head_detected() -> None:
    record_events()
    fields: dict[str, Any] = {
        "seq": N_EVENTS + 1,
        "created_at": dt.datetime(2024, 5, 1, tzinfo=dt.UTC),
        "actor_id": None,
        "actor_pseudonym": "",
        "action": "test.forged",
        "object_type": "thing",
        "object_id": "x",
        "payload": {},
        "prev_hash": AuditEvent.objects.get(seq=N_EVENTS).hash,
    }
    AuditEvent.objects.create(**fields, hash=audit_event_hash(**fields))

    report = audit_chain_verify()

    assert not report.ok
    assert report.first_broken_seq == N_EVENTS + 1
    assert "beyond the recorded end" in report.reason


def test_verify_audit_chain_command_intact_exits_zero_and_says_intact() -> None:
    record_events()
    out = StringIO()
    call_command("verify_audit_chain", stdout=out)
    assert "intact" in out.getvalue()
    assert str(N_EVENTS) in out.getvalue()


def test_verify_audit_chain_command_tampered_raises_command_error_naming_seq() -> None:
    record_events()
    AuditEvent.objects.filter(seq=4).update(payload={"forged": True})
    with pytest.raises(CommandError, match="#4"):
        call_command("verify_audit_chain", stdout=StringIO())


def test_audit_event_list_newest_first_and_filters_allowlisted_fields_only(
    django_assert_num_queries,
) -> None:
    record_events()
    with django_assert_num_queries(1):
        events = list(audit_event_list())
    assert [event.seq for event in events] == list(range(N_EVENTS, 0, -1))
    assert [e.object_id for e in audit_event_list(filters={"object_id": "2"})] == ["2"]
    # A field outside the allowlist (here one reaching into the user table) is ignored.
    assert len(audit_event_list(filters={"actor__password__startswith": "x"})) == N_EVENTS
