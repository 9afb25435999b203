"""Fixtures for the provenance tests."""

from collections.abc import Iterator

import pytest
from django.db import connection

APPEND_ONLY_TRIGGER = "provenance_auditevent_no_update_delete"


@pytest.fixture
def audit_tampering(db: None) -> Iterator[None]:
    """Play a database owner who switches the append-only trigger off to forge the log.

    On PostgreSQL the trigger refuses UPDATE and DELETE on audit rows; only the table's
    owner can disable it. The chain check must still catch what such a person changes.
    The DDL runs inside the test's transaction, so it is rolled back with it.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"ALTER TABLE provenance_auditevent DISABLE TRIGGER {APPEND_ONLY_TRIGGER}"
            )
    yield
