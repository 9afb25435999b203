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


class ChainReportSerializer(serializers.Serializer[Any]):
    ok = serializers.BooleanField()
    events_checked = serializers.IntegerField()
    first_broken_seq = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField(allow_blank=True)
