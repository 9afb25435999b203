"""Writes for provenance: audit events, sources, consent records."""

import datetime as dt
import hashlib
import json
import math
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models, transaction
from django.db.models.fields.files import FieldFile
from django.utils import timezone

from core.errors import ValidationFailed
from core.models import User
from provenance.licenses import CATALOGUE_COLUMNS, seed_entries
from provenance.models import (
    AuditChainCheckpoint,
    AuditChainHead,
    AuditEvent,
    ConsentRecord,
    LicenseCatalogEntry,
    Source,
    Tombstone,
)

GENESIS_HASH = "0" * 64


def _canonical(value: Any) -> str:
    return json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=str,
    )


def _numbers_as_stored(value: Any) -> Any:
    """Spell numbers the way every database gives them back.

    PostgreSQL's jsonb keeps numbers as exact decimals and prints integral ones without an
    exponent or fraction (``1e16`` comes back as ``10000000000000000``), so an integral
    float is hashed as the integer its decimal spelling denotes.
    """
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(Decimal(repr(value)))
    if isinstance(value, dict):
        return {key: _numbers_as_stored(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_numbers_as_stored(inner) for inner in value]
    return value


def audit_event_hash(
    *,
    seq: int,
    created_at: datetime,
    actor_id: int | None,
    actor_pseudonym: str,
    action: str,
    object_type: str,
    object_id: str,
    payload: dict[str, Any],
    prev_hash: str,
) -> str:
    body = _canonical(
        {
            "seq": seq,
            "created_at": created_at.astimezone(UTC).isoformat(),
            "actor_id": actor_id,
            "actor_pseudonym": actor_pseudonym,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "payload": _numbers_as_stored(payload),
        }
    )
    return hashlib.sha256(f"{prev_hash}|{body}".encode()).hexdigest()


def audit_record(
    *,
    actor: User | None,
    action: str,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    payload: dict[str, Any] | None = None,
    public_actor: str = "",
) -> AuditEvent:
    """Append one event to the chain. Joins the caller's transaction, if any.

    ``public_actor`` names someone who is no user (e.g. ``public:1a2b…`` for a takedown
    filed by anyone): shown where a user's pseudonym would be; never with ``actor``.
    """
    if actor is not None and public_actor:
        raise ValueError("An event has a user or a public actor, not both.")
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
    # Round-trip through JSON so the hashed payload is exactly what the database returns.
    clean_payload: dict[str, Any] = _numbers_as_stored(json.loads(_canonical(payload or {})))
    with transaction.atomic():
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(pk=1)
        seq = head.last_seq + 1
        prev_hash = head.last_hash or GENESIS_HASH
        created_at = timezone.now()
        actor_id = actor.pk if actor is not None else None
        pseudonym = actor.pseudonym if actor is not None else public_actor
        digest = audit_event_hash(
            seq=seq,
            created_at=created_at,
            actor_id=actor_id,
            actor_pseudonym=pseudonym,
            action=action,
            object_type=object_type,
            object_id=object_id,
            payload=clean_payload,
            prev_hash=prev_hash,
        )
        event = AuditEvent.objects.create(
            seq=seq,
            created_at=created_at,
            actor_id=actor_id,
            actor_pseudonym=pseudonym,
            action=action,
            object_type=object_type,
            object_id=object_id,
            payload=clean_payload,
            prev_hash=prev_hash,
            hash=digest,
        )
        head.last_seq = seq
        head.last_hash = digest
        head.save(update_fields=["last_seq", "last_hash"])
    return event


ADMIN_CHANGE_ACTION = "admin.change"


def _audit_value(value: Any) -> Any:
    """A field's value as the audit log keeps it: JSON values as they are, a related row as
    its primary key, many-to-many as sorted primary keys, dates in ISO 8601, others as text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, FieldFile):
        return value.name or ""
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): _audit_value(inner) for key, inner in value.items()}
    if isinstance(value, list | tuple | set | frozenset | models.QuerySet):
        values = [_audit_value(inner) for inner in value]
        # Related rows are a set: their order says nothing, so it must not show as a change.
        related = all(isinstance(inner, models.Model) for inner in value)
        return sorted(values) if related else values
    return str(value)


def _field_changes(
    *, old: Mapping[str, Any], new: Mapping[str, Any], redacted: Collection[str] = ()
) -> dict[str, dict[str, Any]]:
    """``{name: {"old": ..., "new": ...}}`` for the fields in both mappings whose values
    differ once made JSON-safe; a field in ``redacted`` shows as ``{"redacted": true}``."""
    changes: dict[str, dict[str, Any]] = {}
    for name, new_value in new.items():
        if name not in old:
            continue
        before, after = _audit_value(old[name]), _audit_value(new_value)
        if before != after:
            changes[name] = (
                {"redacted": True} if name in redacted else {"old": before, "new": after}
            )
    return changes


def model_change_audit(
    *,
    actor: User | None,
    obj: models.Model,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    action: str = ADMIN_CHANGE_ACTION,
    redacted: Collection[str] = (),
) -> AuditEvent | None:
    """Audit a change to ``obj`` as ``{"fields": {name: {"old": ..., "new": ...}}}``.

    ``old`` holds the stored values of the fields that may have changed, ``new`` the saved
    ones. Only fields whose values differ are logged, and nothing at all when none do.
    Personal data (``redacted``) must not sit in the append-only log: such a field is
    logged as changed, without its values. Joins the caller's transaction, so the change
    and its event commit or roll back together.
    """
    changes = _field_changes(old=old, new=new, redacted=redacted)
    if not changes:
        return None
    return audit_record(actor=actor, action=action, obj=obj, payload={"fields": changes})


@dataclass(frozen=True)
class ChainReport:
    """What one check of the chain found.

    ``full`` says the check started at the first event; otherwise it started after event
    ``checked_after_seq``, the checkpoint. On an intact chain ``last_seq`` and ``last_hash``
    name its last event (0 and the genesis hash when it is empty): where the checkpoint
    may move to.
    """

    ok: bool
    events_checked: int
    first_broken_seq: int | None = None
    reason: str = ""
    full: bool = True
    checked_after_seq: int = 0
    last_seq: int = 0
    last_hash: str = GENESIS_HASH


_CHAIN_FIELDS = (
    "seq",
    "created_at",
    "actor_id",
    "actor_pseudonym",
    "action",
    "object_type",
    "object_id",
    "payload",
    "prev_hash",
    "hash",
)


CHAIN_BATCH_SIZE = 2000


def _chain_check(*, after_seq: int, after_hash: str, batch_size: int) -> ChainReport:
    """Check the events after ``after_seq`` (whose hash is ``after_hash``) up to the head."""
    full = after_seq == 0

    def broken(seq: int, reason: str, checked: int = 0) -> ChainReport:
        return ChainReport(
            ok=False,
            events_checked=checked,
            first_broken_seq=seq,
            reason=reason,
            full=full,
            checked_after_seq=after_seq,
        )

    # An event and the head's move to it commit together, so a head read after the newest
    # event was seen has reached at least that event: one beyond it was never appended
    # through the head. Events appended during the walk lie beyond the head read here and
    # are left to the next check, rather than showing as a head that moved on.
    newest = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    head = AuditChainHead.objects.filter(pk=1).values_list("last_seq", "last_hash").first()
    head_seq, head_hash = head if head is not None else (0, "")
    if newest > head_seq:
        return broken(head_seq + 1, f"event #{newest} is beyond the recorded end of the chain")
    if head_seq < after_seq:
        return broken(head_seq + 1, "the chain head is behind events already verified")
    if not full:
        anchor = AuditEvent.objects.filter(seq=after_seq).values_list("hash", flat=True).first()
        if anchor != after_hash:
            return broken(after_seq, "event is missing or no longer has its verified hash")
    events = AuditEvent.objects.filter(seq__gt=after_seq, seq__lte=head_seq)
    expected_prev = after_hash
    last_seq = after_seq
    checked = 0
    rows = events.order_by("seq").values_list(*_CHAIN_FIELDS)
    for row in rows.iterator(chunk_size=batch_size):
        seq, created_at, actor_id, pseudonym, action, otype, oid, payload, prev_hash, digest = row
        if seq != last_seq + 1:
            return broken(last_seq + 1, f"event #{last_seq + 1} is missing", checked)
        if prev_hash != expected_prev:
            return broken(seq, "previous-hash link does not match", checked)
        recomputed = audit_event_hash(
            seq=seq,
            created_at=created_at,
            actor_id=actor_id,
            actor_pseudonym=pseudonym,
            action=action,
            object_type=otype,
            object_id=oid,
            payload=payload,
            prev_hash=prev_hash,
        )
        if recomputed != digest:
            return broken(seq, "event content does not match its hash", checked)
        expected_prev = digest
        last_seq = seq
        checked += 1
    if head_seq != last_seq or (last_seq and head_hash != expected_prev):
        return broken(last_seq + 1, "events after the last one are missing", checked)
    return ChainReport(
        ok=True,
        events_checked=checked,
        full=full,
        checked_after_seq=after_seq,
        last_seq=last_seq,
        last_hash=expected_prev,
    )


def audit_chain_verify(*, full: bool = False, batch_size: int = CHAIN_BATCH_SIZE) -> ChainReport:
    """Check the chain up to its recorded head and report the first broken link. Reads only.

    Every event must carry the next sequence number, the previous event's hash as its
    ``prev_hash`` and a ``hash`` recomputed from its own fields; the last one must be the
    head's. By default the check starts after the checkpoint (``AuditChainCheckpoint``):
    the first event after it must link to the checkpoint's hash, and the checkpoint's own
    event must still carry that hash. With ``full``, or with no checkpoint yet, it starts
    at the first event.

    An incremental check cannot see a change at or before the checkpoint that leaves the
    checkpoint's event's stored hash as it was: an edited, deleted or reordered old event
    (with or without its hash recomputed) passes it. Only a full check finds those; it
    runs on demand (``full=True``) and on a schedule (``audit_chain_checkpoint_advance``).
    """
    checkpoint = None if full else AuditChainCheckpoint.objects.filter(pk=1).first()
    if checkpoint is None or checkpoint.seq == 0:
        return _chain_check(after_seq=0, after_hash=GENESIS_HASH, batch_size=batch_size)
    return _chain_check(after_seq=checkpoint.seq, after_hash=checkpoint.hash, batch_size=batch_size)


def audit_chain_checkpoint_advance(*, full: bool = False) -> ChainReport:
    """Check the chain as ``audit_chain_verify`` does and move the checkpoint to its end.

    An intact chain moves the checkpoint to the last event checked. A check that started at
    the first event (``full``, or a checkpoint still at the genesis) is also recorded as the
    last full check; when it fails, the checkpoint goes back to the genesis, since it no
    longer vouches for the events before it, so every later check walks the whole chain
    and shows the break. A failed incremental check leaves the checkpoint where it was:
    the break lies after it, where every later check finds it again.

    Runs holding the checkpoint row's lock, so the schedule and the command never
    interleave their writes; appends lock only the head and never wait on a check.
    """
    AuditChainCheckpoint.objects.get_or_create(pk=1)
    with transaction.atomic():
        checkpoint = AuditChainCheckpoint.objects.select_for_update().get(pk=1)
        if full or checkpoint.seq == 0:
            after_seq, after_hash = 0, GENESIS_HASH
        else:
            after_seq, after_hash = checkpoint.seq, checkpoint.hash
        report = _chain_check(
            after_seq=after_seq, after_hash=after_hash, batch_size=CHAIN_BATCH_SIZE
        )
        now = timezone.now()
        if report.ok:
            checkpoint.seq = report.last_seq
            checkpoint.hash = report.last_hash if report.last_seq else ""
            checkpoint.verified_at = now
        if report.full:
            checkpoint.full_check_at = now
            checkpoint.full_check_ok = report.ok
            checkpoint.full_check_events = report.events_checked
            checkpoint.full_check_broken_seq = report.first_broken_seq
            checkpoint.full_check_reason = report.reason
            if not report.ok:
                checkpoint.seq, checkpoint.hash = 0, ""
        if report.ok or report.full:
            checkpoint.full_clean()
            checkpoint.save()
    return report


def source_get_or_create(*, owner: User, name: str, url: str = "", creator: str = "") -> Source:
    """``owner``'s source called ``name``, created with ``url`` and ``creator`` if they have none.

    Sources are scoped to their owner: another researcher's source of the same name is never
    matched, and neither is an unowned (legacy) one. Within one owner the first import that
    names a source sets its URL and creator; later imports naming it link to it unchanged,
    so a source is corrected in one place (the admin, audited), not row by row.
    """
    existing = Source.objects.filter(owner=owner, name=name).first()
    if existing is not None:
        return existing
    candidate = Source(owner=owner, name=name, url=url, creator=creator)
    try:
        # The (owner, name) constraint is left to the database: a concurrent import of the
        # same owner's source is resolved by get_or_create below, not refused here.
        candidate.full_clean(validate_constraints=False)
    except DjangoValidationError as error:
        raise ValidationFailed(
            f"Invalid source {name!r}.", code="invalid_source", extra={"fields": error.message_dict}
        ) from error
    source, _ = Source.objects.get_or_create(
        owner=owner, name=name, defaults={"url": url, "creator": creator}
    )
    return source


def consent_text_version(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def consent_record_create(
    *,
    subject: User | None,
    subject_kind: str,
    scope: str,
    text: str,
    purposes: list[str],
    method: str,
    lawful_basis: str = "consent",
    evidence: str = "",
    given_at: datetime | None = None,
    expires_at: datetime | None = None,
) -> ConsentRecord:
    record = ConsentRecord(
        subject=subject,
        subject_kind=subject_kind,
        scope=scope,
        text=text,
        text_version=consent_text_version(text),
        purposes=purposes,
        method=method,
        lawful_basis=lawful_basis,
        evidence=evidence,
        given_at=given_at or timezone.now(),
        expires_at=expires_at,
    )
    record.full_clean()
    record.save()
    return record


def consent_record_withdraw(*, record: ConsentRecord) -> ConsentRecord:
    if record.withdrawn_at is None:
        record.withdrawn_at = timezone.now()
        record.save(update_fields=["withdrawn_at"])
    return record


def tombstone_create(
    *, sha256: str, phash: str, object_type: str, object_id: str, reason: str
) -> Tombstone:
    """Remember taken-down content by its hashes so it is never imported again."""
    tombstone = Tombstone(
        sha256=sha256, phash=phash, object_type=object_type, object_id=object_id, reason=reason
    )
    tombstone.full_clean()
    tombstone.save()
    return tombstone


# What staff may change of an entry: every catalogue column but the id.
LICENSE_ENTRY_FIELDS = tuple(name for name in CATALOGUE_COLUMNS if name != "spdx_id")


@transaction.atomic
def license_entry_save(*, entry: LicenseCatalogEntry, actor: User | None) -> LicenseCatalogEntry:
    """Add or change a license's class in the catalogue, audited: the license report's
    answers depend on it. A ``LicenseRef-`` license needs its terms URL."""
    if entry.spdx_id.startswith("LicenseRef-") and not entry.terms_url:
        raise ValidationFailed(
            "A custom LicenseRef- license needs the URL of its terms.", code="terms_url_required"
        )
    created = entry.pk is None
    entry.full_clean()
    stored = (
        {}
        if created
        else LicenseCatalogEntry.objects.filter(pk=entry.pk).values(*LICENSE_ENTRY_FIELDS).get()
    )
    entry.save()
    payload: dict[str, Any] = {"spdx_id": entry.spdx_id} | {
        name: getattr(entry, name) for name in LICENSE_ENTRY_FIELDS if name != "notes"
    }
    if not created:
        payload["fields"] = _field_changes(
            old=stored, new={name: getattr(entry, name) for name in LICENSE_ENTRY_FIELDS}
        )
    audit_record(
        actor=actor,
        action="license.register" if created else "license.change",
        obj=entry,
        payload=payload,
    )
    return entry


def license_catalogue_seed() -> int:
    """Add the seeded license classes the catalogue lacks (staff's edits are kept).

    The migration seeds a new database; this puts them back after a flush.
    """
    existing = set(LicenseCatalogEntry.objects.values_list("spdx_id", flat=True))
    missing = [
        LicenseCatalogEntry(**asdict(entry))
        for entry in seed_entries()
        if entry.spdx_id not in existing
    ]
    LicenseCatalogEntry.objects.bulk_create(missing)
    return len(missing)
