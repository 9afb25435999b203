"""Reads for provenance."""

from django.db.models import QuerySet

from provenance.models import AuditEvent

AUDIT_FILTER_FIELDS = ("action", "object_type", "object_id", "actor_pseudonym")


def audit_event_list(*, filters: dict[str, str] | None = None) -> QuerySet[AuditEvent]:
    """Audit events, newest first, filtered on allowlisted fields only."""
    queryset = AuditEvent.objects.all()
    for field, value in (filters or {}).items():
        if field in AUDIT_FILTER_FIELDS and value:
            queryset = queryset.filter(**{field: value})
    return queryset.order_by("-seq")
