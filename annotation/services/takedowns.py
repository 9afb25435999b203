"""Data subjects and takedowns: consent of the people items show, takedown requests, their
decision, and tombstoning an item.

Invariants:
- Anyone may file a takedown request, throttled per client address (the address is never
  stored); callers never tell the filer which items matched.
- Only the item's project's owner or staff decide, staff alone on a request naming no
  item. Accepting tombstones the item: its content removed for good (the stored file only
  once the tombstone commits), its hashes and provenance kept, open assignments cancelled.
- Consent records are evidence and are never deleted; a status other than ``obtained``
  only unlinks the item from its record.
"""

import re
from datetime import datetime

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from annotation.models import Assignment, Item, SubjectConsent, TakedownRequest
from annotation.services.projects import _check_manages
from annotation.signals import item_taken_down
from core.db import atomic_with_retry
from core.errors import Conflict, PermissionDenied, ValidationFailed
from core.models import User
from core.services import rate_limit_hit
from provenance.models import ConsentRecord
from provenance.services import audit_record, consent_record_create, tombstone_create

SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


@transaction.atomic
def item_subject_consent_set(
    *,
    item: Item,
    actor: User,
    status: str,
    consent_text: str = "",
    purposes: list[str] | None = None,
    lawful_basis: str = "consent",
    evidence: str = "",
    given_at: datetime | None = None,
    expires_at: datetime | None = None,
) -> Item:
    """Record whether the people an item shows consented, with the record when they did.

    ``obtained`` needs the consent text, at least one purpose and the evidence (where the
    signed release is kept); any other status clears the link to a record (records
    themselves are kept: they are evidence).
    """
    _check_manages(item.project, actor, "record a data subject's consent")
    if status not in SubjectConsent.values:
        raise ValidationFailed(
            f"Consent status must be one of {', '.join(SubjectConsent.values)}.",
            code="invalid_consent_status",
        )
    record: ConsentRecord | None = None
    if status == SubjectConsent.OBTAINED:
        if not consent_text.strip() or not purposes or not evidence.strip():
            raise ValidationFailed(
                "Obtained consent needs the consent text, its purposes and the evidence.",
                code="consent_incomplete",
            )
        record = consent_record_create(
            subject=None,
            subject_kind=ConsentRecord.SubjectKind.DATA_SUBJECT,
            scope=f"item:{item.pk}",
            text=consent_text.strip(),
            purposes=purposes,
            method="release-form",
            lawful_basis=lawful_basis,
            evidence=evidence.strip(),
            given_at=given_at,
            expires_at=expires_at,
        )
    item.subject_consent = status
    item.subject_consent_record = record
    item.save(update_fields=["subject_consent", "subject_consent_record", "updated_at"])
    audit_record(
        actor=actor,
        action="item.subject_consent",
        obj=item,
        payload={
            "project": item.project_id,
            "status": status,
            "consent_record": record.pk if record else None,
        },
    )
    return item


def _takedown_targets(reference: str) -> list[Item]:
    """The items a takedown reference names: an item id, or a content sha256 in any project."""
    text = reference.strip().lower()
    if text.isdigit() and len(text) < 19:
        return list(Item.objects.filter(pk=int(text)).select_related("project"))
    if SHA256_HEX.match(text):
        return list(Item.objects.filter(sha256=text).select_related("project").order_by("pk"))
    return []


def takedown_throttle(*, address: str) -> str:
    """Count one request from this client address; refuse it over the hourly limit.

    Returns the filer's public handle for the audit log: ``public:`` and a keyed hash of
    the throttle key (the address itself is never stored; an unkeyed hash of an IPv4
    address could be reversed by trying them all).
    """
    key = f"takedown:{address}"
    rate_limit_hit(key=key, limit=settings.CHORUS_TAKEDOWN_MAX_PER_HOUR, window_seconds=3600)
    return "public:" + salted_hmac("chorus.takedown.filer", key).hexdigest()[:16]


@transaction.atomic
def takedown_file(
    *, reference: str, kind: str, reason: str, contact: str = "", filer: str = "public"
) -> list[TakedownRequest]:
    """File a takedown or erasure request; anyone may, signed in or not.

    One request per item the reference names (the same content may sit in several
    projects, each with its own owner to decide); a reference that names nothing is still
    kept, for staff to triage. ``filer`` is the public handle ``takedown_throttle`` gave the
    requester; the audit log shows it as the actor. Callers must not tell the requester
    which items matched: that would answer "is my photo in this dataset?" to anyone who
    asks.
    """
    reference = reference.strip()
    reason = reason.strip()
    if not reference or len(reference) > 200:
        raise ValidationFailed(
            "Give the item's id or its sha256 (up to 200 characters).", code="invalid_reference"
        )
    if kind not in TakedownRequest.Kind.values:
        raise ValidationFailed(
            f"Kind must be one of {', '.join(TakedownRequest.Kind.values)}.", code="invalid_kind"
        )
    if not reason or len(reason) > 5000:
        raise ValidationFailed(
            "Say why the item should be taken down (up to 5000 characters).",
            code="invalid_reason",
        )
    targets: list[Item | None] = [*_takedown_targets(reference)] or [None]
    filed = []
    for item in targets:
        request = TakedownRequest(
            reference=reference,
            item=item,
            project=item.project if item is not None else None,
            kind=kind,
            reason=reason,
            contact=contact.strip()[:254],
        )
        request.full_clean()
        request.save()
        audit_record(
            actor=None,
            public_actor=filer,
            action="takedown.file",
            obj=request,
            payload={
                "kind": kind,
                "item": item.pk if item is not None else None,
                "project": request.project_id,
            },
        )
        filed.append(request)
    return filed


def _item_tombstone(*, item: Item, actor: User, reason: str, request: TakedownRequest) -> None:
    """Remove an item's content for good, keeping its hashes and provenance."""
    if item.tombstoned_at is not None:
        return
    stored_name = item.image.name if item.image else ""
    tombstone_create(
        sha256=item.sha256,
        phash=item.phash,
        object_type="annotation.item",
        object_id=str(item.pk),
        reason=f"takedown {request.pk}: {reason}"[:5000],
    )
    Assignment.objects.filter(item=item, status=Assignment.Status.OPEN).update(
        status=Assignment.Status.CANCELLED
    )
    item.text = ""
    item.image = ""
    item.metadata = {}
    item.tombstoned_at = timezone.now()
    item.save(update_fields=["text", "image", "metadata", "tombstoned_at", "updated_at"])
    if stored_name:
        # Only once the tombstone is committed: a rollback must not lose the content.
        transaction.on_commit(lambda: default_storage.delete(stored_name))
    audit_record(
        actor=actor,
        action="item.tombstone",
        obj=item,
        payload={"project": item.project_id, "takedown": request.pk, "sha256": item.sha256},
    )


@atomic_with_retry()
def takedown_decide(
    *, request: TakedownRequest, actor: User, accept: bool, reason: str
) -> TakedownRequest:
    """Accept or reject a request, with a reason. Accepting tombstones the item.

    The item's owner or staff decide; a request that names no item is for staff only.
    """
    request = (
        TakedownRequest.objects.select_for_update(of=("self",))
        .select_related("project")
        .get(pk=request.pk)
    )
    if not request.is_decidable_by(actor):
        raise PermissionDenied(
            "Only the project's owner or staff can decide takedown requests.", code="not_owner"
        )
    if request.status != TakedownRequest.Status.OPEN:
        raise Conflict("This request was already decided.", code="takedown_decided")
    reason = reason.strip()
    if not reason:
        raise ValidationFailed("Give the reason for the decision.", code="reason_required")
    if accept and request.item is None:
        raise Conflict(
            "This request names no item; there is nothing to take down.",
            code="takedown_no_item",
        )
    request.status = TakedownRequest.Status.ACCEPTED if accept else TakedownRequest.Status.REJECTED
    request.decided_by = actor
    request.decided_at = timezone.now()
    request.decision_reason = reason[:5000]
    if accept and request.item_id is not None:
        item = Item.objects.select_for_update().get(pk=request.item_id)
        _item_tombstone(item=item, actor=actor, reason=reason, request=request)
        # What held the item (dataset versions, later models) is told, and answers with
        # what it was, so its owners can be told in turn.
        responses = item_taken_down.send(
            sender=TakedownRequest, item=item, request=request, actor=actor
        )
        request.affected = [entry for _receiver, found in responses for entry in found or []]
    request.save()
    audit_record(
        actor=actor,
        action="takedown.accept" if accept else "takedown.reject",
        obj=request,
        payload={"item": request.item_id, "project": request.project_id, "reason": reason},
    )
    return request
