"""Audit log output: actors appear by pseudonym only, never by user id or username."""

from typing import Any

from rest_framework import serializers

from provenance.models import AuditEvent

# Audit events about a user account carry that user's primary key as their object id; the
# API shows such events' object by the pseudonym in their payload instead (or hides it).
USER_OBJECT_TYPE = "core.user"


class AuditEventSerializer(serializers.Serializer[Any]):
    seq = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    actor_pseudonym = serializers.CharField()
    action = serializers.CharField()
    object_type = serializers.CharField()
    object_id = serializers.SerializerMethodField()
    payload = serializers.JSONField()
    prev_hash = serializers.CharField()
    hash = serializers.CharField()

    def get_object_id(self, event: AuditEvent) -> str:
        if event.object_type == USER_OBJECT_TYPE:
            pseudonym = event.payload.get("pseudonym") if isinstance(event.payload, dict) else None
            return f"pseudonym:{pseudonym}" if isinstance(pseudonym, str) else ""
        return event.object_id


class LastFullCheckSerializer(serializers.Serializer[Any]):
    """The last full check recorded by the schedule or the command (``AuditChainCheckpoint``)."""

    at = serializers.DateTimeField(source="full_check_at")
    ok = serializers.BooleanField(source="full_check_ok")
    events_checked = serializers.IntegerField(source="full_check_events")
    first_broken_seq = serializers.IntegerField(source="full_check_broken_seq", allow_null=True)
    reason = serializers.CharField(source="full_check_reason", allow_blank=True)


class ChainReportSerializer(serializers.Serializer[Any]):
    """This request's check (``full``: from the first event; otherwise the events after
    ``checked_after_seq``, the checkpoint) and the last recorded full check, if any."""

    ok = serializers.BooleanField()
    events_checked = serializers.IntegerField()
    first_broken_seq = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField(allow_blank=True)
    full = serializers.BooleanField()
    checked_after_seq = serializers.IntegerField()
    last_full_check = LastFullCheckSerializer(allow_null=True)
