"""Control items: making an item a gold or attention-check item with its expected answer.

Invariants: the expected answer is checked against the label schema exactly like an
annotator's answer; an item changes between regular and control only while nobody holds
or has labeled it, so labels never move silently in or out of the analysis nor slots in
or out of the k count (the row lock serialises this with ``assignment._claim_control``);
nothing changes once the project is closed or the item was taken down.
"""

from typing import Any

from annotation.models import Assignment, ControlKind, Item, Project, ProjectStatus
from annotation.services.annotations import _clean_label
from annotation.services.projects import _check_manages
from core.db import atomic_with_retry
from core.errors import Conflict, ValidationFailed
from core.models import User
from provenance.services import audit_record


@atomic_with_retry()
def item_control_set(*, item: Item, actor: User, control: str, expected_value: Any = None) -> Item:
    """Make an item a gold or attention-check item with its expected answer, or a regular
    item again (``control=""``, no expected answer).

    The project's owner or staff, while the project is a draft or open. The expected
    answer is checked against the label schema exactly like an annotator's answer. An item
    may change between regular and control only while nobody holds an assignment for it or
    has labeled it: its labels would otherwise move silently in or out of the analysis, and
    its slots in or out of the k count. The expected answer of a control item, and gold
    versus attention, may be corrected at any time before the project closes.
    """
    _check_manages(item.project, actor, "manage control items")
    if control not in ControlKind.values:
        raise ValidationFailed(
            f"control must be one of: {', '.join(repr(v) for v in ControlKind.values)}.",
            code="invalid_control",
        )
    locked = Item.objects.select_for_update().get(pk=item.pk)
    project = Project.objects.get(pk=locked.project_id)
    if project.status == ProjectStatus.CLOSED:
        raise Conflict(
            "The project is closed; its items can no longer change.", code="project_closed"
        )
    if locked.tombstoned_at is not None:
        raise Conflict("This item was taken down.", code="item_tombstoned")
    if control == ControlKind.NONE:
        if expected_value is not None:
            raise ValidationFailed(
                "A regular item has no expected answer.", code="unexpected_expected_value"
            )
        clean_value = None
    else:
        if expected_value is None:
            raise ValidationFailed(
                "A control item needs its expected answer.", code="expected_value_required"
            )
        clean_value = _clean_label(project, expected_value)
    previous = {"control": locked.control, "expected_value": locked.expected_value}
    if (locked.control, locked.expected_value) == (control, clean_value):
        return locked
    is_control, was_control = control != ControlKind.NONE, locked.control != ControlKind.NONE
    if is_control != was_control and (
        locked.annotations.exists()
        or locked.assignments.filter(status=Assignment.Status.OPEN).exists()
    ):
        raise Conflict(
            "This item is already being labeled; only items nobody holds or has labeled can "
            "become or stop being control items.",
            code="item_in_use",
        )
    locked.control = control
    locked.expected_value = clean_value
    locked.save(update_fields=["control", "expected_value", "updated_at"])
    audit_record(
        actor=actor,
        action="item.control_set",
        obj=locked,
        payload={
            "project": project.pk,
            "control": control,
            "expected_value": clean_value,
            "previous": previous,
        },
    )
    return locked
