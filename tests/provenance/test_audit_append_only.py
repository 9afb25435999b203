"""The application's database role cannot change or delete audit rows: the log is
append-only even for the code that writes it."""

import pytest
from django.db import DatabaseError, connection, transaction

from core.models import Role
from provenance.models import AuditEvent
from provenance.services import audit_chain_verify, audit_record
from tests.core.factories import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def record(n: int = 3) -> None:
    actor = make_user(Role.RESEARCHER)
    for i in range(n):
        audit_record(actor=actor, action="test.event", object_type="thing", object_id=str(i))


def test_audit_event_update_through_orm_refused_by_database() -> None:
    record()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(seq=2).update(payload={"forged": True})
    assert AuditEvent.objects.get(seq=2).payload == {}
    assert audit_chain_verify().ok


def test_audit_event_delete_through_orm_refused_by_database() -> None:
    record()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(seq=3).delete()
    assert AuditEvent.objects.filter(seq=3).exists()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE provenance_auditevent SET action = 'forged' WHERE seq = 1",
        "UPDATE provenance_auditevent SET seq = seq + 100",
        "DELETE FROM provenance_auditevent WHERE seq = 1",
        "DELETE FROM provenance_auditevent",
    ],
)
def test_audit_event_raw_sql_change_refused_by_database(statement: str) -> None:
    record()
    count = AuditEvent.objects.count()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(statement)
    assert AuditEvent.objects.count() == count
    assert audit_chain_verify().ok


def test_audit_record_append_still_allowed_with_trigger_in_place() -> None:
    record(5)
    assert audit_chain_verify().ok
    assert AuditEvent.objects.count() >= 5
