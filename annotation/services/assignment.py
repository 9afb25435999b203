"""Assignment writes: the next item for an annotator, skipping it, expiring abandoned ones.

Invariants:
- No item ever has more than ``annotations_per_item`` slots taken: a slot is claimed by a
  conditional UPDATE that the database evaluates on the locked row (``_claim``), and each
  release (skip, expiry, withdrawal) gives back the one slot it held.
- An annotator is never given an item again, except a regular item whose assignment
  expired; a control item is given to each annotator once at most.
- Control items take no slot, come at the project's ``control_rate``, and never once the
  annotator's regular items are exhausted.
- Expiry is decided by the database's clock alone (``Now()``): an assignment's deadline
  is stamped, and compared, in SQL, so a web or worker host whose clock runs ahead
  cannot expire an assignment its holder is still within, nor one running behind hand
  out a deadline already past.
- The tuning constants below are read from this module when a function runs, so a test
  patches them here (the package does not re-export them).
"""

import random
from datetime import timedelta

from django.db import transaction
from django.db.models import Case, Exists, F, FloatField, OuterRef, QuerySet, Value, When
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Now

from annotation.models import (
    Assignment,
    AssignmentStrategy,
    ControlKind,
    Item,
    Project,
    ProjectStatus,
)
from annotation.selectors.assignment import assignment_current
from annotation.services.enrolment import _active_enrolment
from core.db import atomic_with_retry, supports_skip_locked
from core.errors import Conflict, NotFound
from core.models import User

CANDIDATE_POOL = 8
# "Most contested first" draws the next item at random among this many top candidates.
CONTESTED_CANDIDATES = 10
MAX_CLAIM_ROUNDS = 20


def assignments_expire(*, project_id: int, limit: int = 500) -> int:
    """Return abandoned assignments' slots to the pool, at most ``limit`` of them.

    Safe to run concurrently and from any host: "abandoned" is decided by the database's
    clock, and each release is a conditional UPDATE that re-checks the row is still open
    and past its deadline (it may have been submitted, or expired and handed out again to
    the same annotator with a new deadline, since it was listed).
    """
    stale = list(
        Assignment.objects.filter(
            project_id=project_id, status=Assignment.Status.OPEN, expires_at__lt=Now()
        ).values_list("pk", "item_id")[:limit]
    )
    expired = 0
    for assignment_id, item_id in stale:
        # One transaction per release: the sweep runs in autocommit, and a crash between
        # the two UPDATEs would otherwise keep the slot taken for good.
        with transaction.atomic():
            # The conditional UPDATE is the claim: only one caller frees each slot.
            if Assignment.objects.filter(
                pk=assignment_id, status=Assignment.Status.OPEN, expires_at__lt=Now()
            ).update(status=Assignment.Status.EXPIRED):
                Item.objects.filter(pk=item_id, control=ControlKind.NONE).update(
                    slots_taken=F("slots_taken") - 1
                )
                expired += 1
    return expired


def _deadline(project: Project) -> CombinedExpression:
    """The new assignment's ``expires_at``: the database's clock plus the project's TTL.

    An expression, not a value: the row is stamped by the same clock that later decides
    it expired (``assignments_expire``, ``assignment_current``). Both PostgreSQL and
    SQLite evaluate it in INSERT and UPDATE.
    """
    return Now() + timedelta(seconds=project.assignment_ttl_seconds)


def _seen_by(annotator: User) -> Exists:
    """The item was given to this annotator (an expired assignment may be given again)."""
    return Exists(
        Assignment.objects.filter(item=OuterRef("pk"), annotator=annotator).exclude(
            status=Assignment.Status.EXPIRED
        )
    )


def _open_items(project: Project, annotator: User) -> QuerySet[Item]:
    """Regular items this annotator may still take: a free slot, not seen, not taken down."""
    return Item.objects.filter(
        project=project,
        control=ControlKind.NONE,
        slots_taken__lt=project.annotations_per_item,
        tombstoned_at__isnull=True,
    ).filter(~_seen_by(annotator))


def _candidate_items(
    project: Project, annotator: User, *, skip_locked: bool, limit: int
) -> list[int]:
    """Regular items this annotator may still take, in the project's strategy's order.

    Least-labeled first: fewest slots taken first, from a random point in the shuffle
    order within each fill level. Most contested first: see ``_most_contested_items``.

    With ``skip_locked`` the returned rows are locked and rows that other transactions
    hold (they are claiming them right now) are passed over, moving on to the next fill
    level if a whole level is held. Without it nothing is locked.
    """
    k = project.annotations_per_item
    pool = _open_items(project, annotator)
    if project.assignment_strategy == AssignmentStrategy.MOST_CONTESTED:
        return _most_contested_items(pool, skip_locked=skip_locked, limit=limit)
    lowest = (
        pool.order_by("slots_taken", "shuffle_key").values_list("slots_taken", flat=True).first()
    )
    if lowest is None:
        return []
    pivot = random.random()  # noqa: S311 - load spreading, not security
    ids: list[int] = []
    for level in range(lowest, k):
        at_level = pool.filter(slots_taken=level)
        for part in (
            at_level.filter(shuffle_key__gte=pivot),
            at_level.filter(shuffle_key__lt=pivot),
        ):
            queryset = part.order_by("shuffle_key")
            if skip_locked:
                queryset = queryset.select_for_update(skip_locked=True, of=("self",))
            ids.extend(queryset.values_list("pk", flat=True)[: limit - len(ids)])
            if len(ids) >= limit:
                return ids
        if ids:
            return ids
    return ids


def _most_contested_items(pool: QuerySet[Item], *, skip_locked: bool, limit: int) -> list[int]:
    """A random draw from the ``CONTESTED_CANDIDATES`` most contested items of the pool.

    The order: highest label entropy first, then fewest slots taken, then the shuffle order
    read from a random point. Handing out the very first of that order would tell each
    annotator "others disagreed on this one" (the first items they see would be exactly
    the contested ones), so the items come in random order from the top candidates.

    One ordered query: rows other transactions hold are skipped (``skip_locked``) and the
    next ones in the same order come instead.
    """
    pivot = random.random()  # noqa: S311 - load spreading, not security
    rotated_shuffle_key = Case(
        When(shuffle_key__gte=pivot, then=F("shuffle_key") - Value(pivot)),
        default=F("shuffle_key") - Value(pivot) + Value(1.0),
        output_field=FloatField(),
    )
    queryset = pool.order_by("-label_entropy", "slots_taken", rotated_shuffle_key)
    if skip_locked:
        queryset = queryset.select_for_update(skip_locked=True, of=("self",))
    candidates = list(queryset.values_list("pk", flat=True)[: max(limit, CONTESTED_CANDIDATES)])
    top = candidates[:CONTESTED_CANDIDATES]
    random.shuffle(top)
    return (top + candidates[CONTESTED_CANDIDATES:])[:limit]


def _claim(project: Project, item_id: int) -> bool:
    """Take one slot if the item still has one: evaluated by the database on the locked row.

    Only regular items have slots: an item made a control item meanwhile is not taken.
    """
    return bool(
        Item.objects.filter(
            pk=item_id, control=ControlKind.NONE, slots_taken__lt=project.annotations_per_item
        ).update(slots_taken=F("slots_taken") + 1)
    )


def _unseen_control_items(project: Project, annotator: User, *, limit: int) -> list[int]:
    """Control items this annotator was never given, from a random point in shuffle order.

    Unlike a regular item, one whose assignment expired is not given again: each control
    item is shown to each annotator once at most.
    """
    given = Assignment.objects.filter(item=OuterRef("pk"), annotator=annotator)
    pool = (
        Item.objects.filter(project=project, tombstoned_at__isnull=True)
        .exclude(control=ControlKind.NONE)
        .filter(~Exists(given))
    )
    pivot = random.random()  # noqa: S311 - picks a control item, not security
    ids = list(
        pool.filter(shuffle_key__gte=pivot)
        .order_by("shuffle_key")
        .values_list("pk", flat=True)[:limit]
    )
    if len(ids) < limit:
        ids.extend(
            pool.filter(shuffle_key__lt=pivot)
            .order_by("shuffle_key")
            .values_list("pk", flat=True)[: limit - len(ids)]
        )
    return ids


def _claim_control(item_id: int) -> bool:
    """Lock a control item's row, checking it still is one. Control items take no slot.

    The no-op UPDATE serialises this with ``item_control_set``: either that sees this
    assignment (and refuses to change the kind), or this sees the new kind.
    """
    return bool(
        Item.objects.filter(pk=item_id, tombstoned_at__isnull=True)
        .exclude(control=ControlKind.NONE)
        .update(control=F("control"))
    )


def _assign(project: Project, annotator: User, item_id: int) -> Assignment:
    # An expired assignment of the same pair is reused (one row per item and annotator).
    assignment, _ = Assignment.objects.update_or_create(
        item_id=item_id,
        annotator=annotator,
        defaults={
            "project": project,
            "status": Assignment.Status.OPEN,
            "expires_at": _deadline(project),
        },
    )
    # Read back: the deadline the database stamped, not the expression.
    return Assignment.objects.select_related("item").get(pk=assignment.pk)


def _mixed_in_control(project: Project, annotator: User) -> Assignment | None:
    """With probability ``control_rate``, a control item the annotator has not seen.

    Only between regular items: once no regular item is left for this annotator, none is
    given, so nobody is kept busy with control items alone. (Checked without locking: a
    regular item may fill up meanwhile, which at worst gives one control item last.)
    """
    if not random.random() < project.control_rate:  # noqa: S311 - sampling, not security
        return None
    if not _open_items(project, annotator).exists():
        return None
    for item_id in _unseen_control_items(project, annotator, limit=CANDIDATE_POOL):
        if _claim_control(item_id):
            return _assign(project, annotator, item_id)
    return None


@atomic_with_retry()
def assignment_next(*, project: Project, annotator: User) -> Assignment | None:
    """Give the annotator an item that still needs labels, or ``None`` when none is left.

    Never more than k slots per item: the slot is claimed by a conditional UPDATE that the
    database evaluates on the locked row, so concurrent callers cannot over-fill an item.
    ``None`` means none is left, not that the remaining ones were busy: rows other callers
    are claiming are first skipped (no waiting), then waited for before giving up, since
    such a row may still have a free slot once its holder commits. Items whose slots are
    all held by other annotators' open assignments are not "left" either: on ``None``,
    ``annotation.selectors.assignment_wait_hint`` says whether that is why, and when the
    first of those assignments runs out.

    Control items (gold and attention checks) are mixed in at the project's
    ``control_rate``: each shown to an annotator once at most, taking no slot, and never
    once the annotator's regular items are exhausted.
    """
    project = Project.objects.get(pk=project.pk)
    if project.status != ProjectStatus.OPEN:
        raise Conflict("This project is not open for labeling.", code="project_not_open")
    _active_enrolment(project, annotator, lock=True)
    current = assignment_current(project=project, annotator=annotator)
    if current is not None:
        return current
    assignments_expire(project_id=project.pk)
    control = _mixed_in_control(project, annotator)
    if control is not None:
        return control
    passes = (
        ((True, 1), (False, CANDIDATE_POOL))
        if supports_skip_locked()
        else ((False, CANDIDATE_POOL),)
    )
    for skip_locked, limit in passes:
        # Each failed claim means an item filled up meanwhile and leaves the pool, so a
        # few rounds suffice; the bound only guards against endless churn.
        for _round in range(MAX_CLAIM_ROUNDS):
            candidates = _candidate_items(project, annotator, skip_locked=skip_locked, limit=limit)
            if not candidates:
                break
            for item_id in candidates:
                if _claim(project, item_id):
                    return _assign(project, annotator, item_id)
    return None


@atomic_with_retry()
def assignment_skip(*, assignment: Assignment, annotator: User) -> Assignment:
    if assignment.annotator_id != annotator.pk:
        raise NotFound("No such assignment.")
    if Assignment.objects.filter(pk=assignment.pk, status=Assignment.Status.OPEN).update(
        status=Assignment.Status.SKIPPED
    ):
        Item.objects.filter(pk=assignment.item_id, control=ControlKind.NONE).update(
            slots_taken=F("slots_taken") - 1
        )
    assignment.refresh_from_db()
    return assignment
