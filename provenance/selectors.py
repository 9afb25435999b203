"""Reads for provenance."""

from collections.abc import Iterable, Sequence
from datetime import date, datetime, time

from django.db.models import QuerySet
from django.utils import timezone

from provenance.licenses import CATALOGUE_COLUMNS, CatalogueEntry, LicenseTable
from provenance.models import AuditChainCheckpoint, AuditEvent, LicenseCatalogEntry, Tombstone

# Perceptual hashes (64-bit pHash) this close are taken as the same picture: a re-encoded,
# resized or lightly edited copy typically differs in a few bits, unrelated pictures in ~32.
PHASH_MAX_DISTANCE = 6

AUDIT_FILTER_FIELDS = ("action", "object_type", "object_id", "actor_pseudonym")


def audit_event_list(
    *,
    filters: dict[str, str] | None = None,
    since: date | None = None,
    until: date | None = None,
) -> QuerySet[AuditEvent]:
    """Audit events, newest first, filtered on allowlisted fields and a date range only."""
    queryset = AuditEvent.objects.all()
    for field, value in (filters or {}).items():
        if field in AUDIT_FILTER_FIELDS and value:
            queryset = queryset.filter(**{field: value})
    zone = timezone.get_current_timezone()
    if since is not None:
        queryset = queryset.filter(created_at__gte=datetime.combine(since, time.min, zone))
    if until is not None:
        queryset = queryset.filter(created_at__lte=datetime.combine(until, time.max, zone))
    return queryset.order_by("-seq")


def audit_action_list() -> list[str]:
    """The distinct actions recorded so far, for the audit page's filter menu."""
    return list(AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct())


def audit_chain_checkpoint() -> AuditChainCheckpoint | None:
    """How far the chain has been verified and the last full check; None before any check."""
    return AuditChainCheckpoint.objects.filter(pk=1).first()


def _phash_distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def tombstone_matches(
    *, sha256s: Iterable[str], phashes: Sequence[str] = ()
) -> dict[str, Tombstone]:
    """Tombstones that the given content hashes match, keyed by the matching given hash.

    A sha256 matches exactly; a perceptual hash matches within ``PHASH_MAX_DISTANCE`` bits,
    so a re-encoded or resized copy of taken-down content is still recognised.
    """
    wanted = {value for value in sha256s if value}
    found: dict[str, Tombstone] = {}
    if wanted:
        for tombstone in Tombstone.objects.filter(sha256__in=wanted):
            found[tombstone.sha256] = tombstone
    given = [value for value in phashes if value]
    if given:
        stored = list(Tombstone.objects.exclude(phash=""))
        for value in given:
            for tombstone in stored:
                if len(tombstone.phash) == len(value) and (
                    _phash_distance(tombstone.phash, value) <= PHASH_MAX_DISTANCE
                ):
                    found[value] = tombstone
                    break
    return found


def license_table() -> LicenseTable:
    """The license catalogue as staff keep it, for the rules in ``provenance.licenses``."""
    rows = LicenseCatalogEntry.objects.order_by("spdx_id").values(*CATALOGUE_COLUMNS)
    return LicenseTable(CatalogueEntry(**row) for row in rows)
